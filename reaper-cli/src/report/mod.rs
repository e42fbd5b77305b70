//! `reaper report`: everything printed or written from a run.
//!
//! A run ([`crate::model::Run`]) is turned once into a derived [`Report`]
//! (`analysis`, `summary`, `stacks`, `function_timing`), which the renderers
//! only read: plain text tables and the call-graph tree (`text`, `tree`),
//! JSON (`json`), Brendan Gregg folded stacks (`folded`) and flame-graph
//! SVGs (`svg`, the only user of inferno).

pub mod analysis;
pub mod collision;
pub mod collision_map;
pub mod collision_svg;
pub mod folded;
pub mod formats;
pub mod function_timing;
pub mod json;
pub mod latency_why;
pub mod load;
pub mod losses;
pub mod model;
pub mod pprof;
pub mod probe_cost;
pub mod program_cost;
pub mod pte_lock;
pub mod pte_lock_exact;
pub mod reclaim;
pub mod rows;
pub mod speedscope;
pub mod stacks;
pub mod summary;
pub mod svg;
pub mod text;
pub mod trace;
pub mod tree;
pub mod validate;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use load::{LoadError, load_run};
pub use model::Report;

use crate::model::Run;
use crate::output::{OutputDir, OutputError};

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
    /// The output directory or a file could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// inferno could not render a flame graph.
    #[error("{name}: cannot render the flame graph")]
    Render {
        /// The file that was being rendered.
        name: String,
        /// inferno's error.
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
    text::render(&analyze(run, opts))
}

/// The derived report as pretty JSON.
pub fn render_json(run: &Run, opts: &ReportOptions) -> String {
    json::render(&analyze(run, opts))
}

/// Every name [`write_files`] may write, whatever the run holds (a
/// recording checks them all before it starts).
pub fn file_names() -> Vec<String> {
    crate::model::Context::ALL
        .iter()
        .map(|c| c.name())
        .chain(["combined"])
        .flat_map(|name| [format!("{name}.folded"), format!("{name}.svg")])
        .collect()
}

/// Writes `<context>.folded` and `<context>.svg` per context, plus
/// `combined.folded` and `combined.svg`, and a collision map per episode
/// whose walker steps were logged (`collision_map_episode_<n>.svg`,
/// `record --exact-locks`) into `out` (each atomically, see
/// [`crate::output`]). A context without samples gets a folded file but no
/// SVG (an empty flame graph says nothing). Returns the files written.
/// The options do not change these files today (folded stacks and flame
/// graphs are never cut); the parameter keeps the signature stable.
pub fn write_files(
    run: &Run,
    out: &OutputDir,
    _opts: &ReportOptions,
) -> Result<Vec<PathBuf>, WriteError> {
    let mut written = Vec::new();
    // (file name, flame graph title, lines)
    let mut files: Vec<(&str, &str, Vec<String>)> = analysis::contexts_in(run)
        .into_iter()
        .map(|context| {
            let lines = folded::context_lines(run, context);
            (context.name(), context.label(), lines)
        })
        .collect();
    files.push(("combined", "combined", folded::combined_lines(run)));
    // Everything rendered before the first file is written: a failure
    // leaves no half-written set.
    let mut rendered = Vec::new();
    for (name, label, lines) in &files {
        rendered.push((
            format!("{name}.folded"),
            folded::to_text(lines).into_bytes(),
        ));
        if lines.is_empty() {
            continue;
        }
        let svg_name = format!("{name}.svg");
        let svg = svg::flamegraph(run, label, lines).map_err(|source| WriteError::Render {
            name: svg_name.clone(),
            source,
        })?;
        rendered.push((svg_name, svg));
    }
    for map in collision_map::build(run) {
        let svg = collision_svg::render(run, &map);
        rendered.push((collision_svg::file_name(map.episode), svg.into_bytes()));
    }
    written.extend(out.write_all(&rendered)?);
    Ok(written)
}
