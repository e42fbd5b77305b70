//! `reaper report`: everything printed or written from a run.
//!
//! A run ([`crate::model::Run`]) is turned once into a derived [`Report`]
//! (`analysis`, `summary`, `stacks`), which the renderers only read: plain
//! text tables and the call-graph tree (`text`, `tree`), JSON (`json`),
//! Brendan Gregg folded stacks (`folded`) and flame-graph SVGs (`svg`, the
//! only user of inferno).

pub mod analysis;
pub mod folded;
pub mod formats;
pub mod function_timing;
pub mod json;
pub mod load;
pub mod losses;
pub mod model;
pub mod output;
pub mod pprof;
pub mod speedscope;
pub mod stacks;
pub mod summary;
pub mod svg;
pub mod text;
pub mod trace;
pub mod tree;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use load::{LoadError, load_run};
pub use model::Report;

use crate::model::Run;

/// Rows of the Children/Self table by default; the thread shows ~20.
pub const DEFAULT_TOP: usize = 25;
/// Call-graph cut-off, percent of the parent node; simpleperf's habit.
pub const DEFAULT_PERCENT_LIMIT: f64 = 0.5;
/// Call-graph depth below the root; teardown stacks under the anchor are
/// about 10 deep, so 24 hides nothing real while bounding runaway recursion.
pub const DEFAULT_MAX_DEPTH: usize = 24;
/// Lock-wait stacks shown per context; contention concentrates on a few.
pub const DEFAULT_LOCK_TOP: usize = 10;
/// Summary columns per episode up to this many episodes, then median and
/// min–max (a wider table stops fitting a terminal).
pub const MAX_EPISODE_COLUMNS: usize = 5;

/// How to render a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// Rows of each Children/Self table.
    pub top: usize,
    /// Call-graph entries below this percent of their parent are hidden.
    pub percent_limit: f64,
    /// Call-graph levels shown below each root (a continuation line of a
    /// merged chain is a level too).
    pub max_depth: usize,
    /// Lock-wait stacks shown per context.
    pub lock_top: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            top: DEFAULT_TOP,
            percent_limit: DEFAULT_PERCENT_LIMIT,
            max_depth: DEFAULT_MAX_DEPTH,
            lock_top: DEFAULT_LOCK_TOP,
        }
    }
}

/// Why report files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Creating the output directory or a file failed.
    #[error("{}: cannot write report file; check that the directory is writable", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Derives the report model.
pub fn analyze(run: &Run, opts: &ReportOptions) -> Report {
    analysis::analyze(run, opts)
}

/// Every table and the call graphs, as plain text.
pub fn render_text(run: &Run, opts: &ReportOptions) -> String {
    function_timing::splice(run, &text::render(&analyze(run, opts)))
}

/// The derived report as pretty JSON.
pub fn render_json(run: &Run, opts: &ReportOptions) -> String {
    json::render(&analyze(run, opts))
}

/// Writes `<context>.folded` and `<context>.svg` per context, plus
/// `combined.folded` and `combined.svg`, into `dir` (created if needed).
/// A context without samples gets a folded file but no SVG (an empty flame
/// graph says nothing). Returns the files written.
/// The options do not change these files today (folded stacks and flame
/// graphs are never cut); the parameter keeps the signature stable.
pub fn write_files(
    run: &Run,
    dir: &Path,
    _opts: &ReportOptions,
) -> Result<Vec<PathBuf>, WriteError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    let mut write = |name: String, bytes: &[u8]| -> Result<(), WriteError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        written.push(path);
        Ok(())
    };
    let mut files: Vec<(String, Vec<String>)> = analysis::contexts_in(run)
        .into_iter()
        .map(|context| {
            let lines = folded::context_lines(run, &context);
            (context, lines)
        })
        .collect();
    files.push(("combined".to_owned(), folded::combined_lines(run)));
    for (name, lines) in &files {
        write(format!("{name}.folded"), folded::to_text(lines).as_bytes())?;
        if lines.is_empty() {
            continue;
        }
        let label = if name == "combined" {
            name.clone()
        } else {
            analysis::context_label(name)
        };
        let svg =
            svg::flamegraph(run, &label, lines).map_err(io(&dir.join(format!("{name}.svg"))))?;
        write(format!("{name}.svg"), &svg)?;
    }
    Ok(written)
}
