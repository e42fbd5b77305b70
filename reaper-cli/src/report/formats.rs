//! The open formats `reaper report --format` writes, one file each, into
//! the output directory: pprof, Chrome trace-event JSON, speedscope.

use std::path::PathBuf;

use crate::output::{OutputDir, OutputError};

use crate::model::Run;

/// An open output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Gzipped pprof profile.proto (`go tool pprof`, Pyroscope, Parca).
    Pprof,
    /// Chrome trace-event JSON (ui.perfetto.dev, chrome://tracing).
    Trace,
    /// speedscope's JSON file format (speedscope.app).
    Speedscope,
}

impl Format {
    /// The file written into the output directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Pprof => super::pprof::FILE_NAME,
            Format::Trace => super::trace::FILE_NAME,
            Format::Speedscope => super::speedscope::FILE_NAME,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Pprof => "pprof",
            Format::Trace => "trace",
            Format::Speedscope => "speedscope",
        })
    }
}

/// `run` in `format`, as the file's bytes.
pub fn render(format: Format, run: &Run) -> Vec<u8> {
    match format {
        Format::Pprof => super::pprof::encode(&super::pprof::profile(&[run])),
        Format::Trace => super::trace::render(run).into_bytes(),
        Format::Speedscope => super::speedscope::render(run).into_bytes(),
    }
}

/// Writes `run` in `format` into `out` (atomically, through the output
/// module); returns the file.
pub fn write(format: Format, run: &Run, out: &OutputDir) -> Result<PathBuf, OutputError> {
    out.write(format.file_name(), &render(format, run))
}

/// Whether the format is binary (not for a terminal).
pub fn is_binary(format: Format) -> bool {
    format == Format::Pprof
}

/// Why `format`'s file of `run` would hold nothing, if it would: a watch
/// that saw no teardown, or episodes without one sample.
pub fn empty_because(format: Format, run: &Run) -> Option<String> {
    if run.episodes.is_empty() {
        return Some(no_episodes(run));
    }
    match format {
        // The trace draws every episode's timeline.
        Format::Trace => None,
        Format::Pprof | Format::Speedscope => (!has_samples(run)).then(|| {
            "its episodes have no sampled stack (sampling did not attach, or no tracked task ran)"
                .to_owned()
        }),
    }
}

/// Why the folded stacks and flame graphs of `run` hold nothing, if they do.
pub fn folded_empty_because(run: &Run) -> Option<String> {
    if run.episodes.is_empty() {
        return Some(no_episodes(run));
    }
    (!has_samples(run)).then(|| {
        "its episodes have no sampled stack (sampling did not attach, or no tracked task ran)"
            .to_owned()
    })
}

fn has_samples(run: &Run) -> bool {
    run.episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .flat_map(|c| &c.stacks)
        .any(|s| s.period_ns > 0)
}

fn no_episodes(run: &Run) -> String {
    match &run.watch {
        Some(w) => format!(
            "the run has no episode: the {} s watch saw no teardown it records",
            w.watched_s
        ),
        None => "the run has no episode".to_owned(),
    }
}
