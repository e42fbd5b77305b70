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

/// Writes `run` in `format` into `out` (atomically, through the output
/// module); returns the file.
pub fn write(format: Format, run: &Run, out: &OutputDir) -> Result<PathBuf, OutputError> {
    let bytes = match format {
        Format::Pprof => super::pprof::encode(&super::pprof::profile(&[run])),
        Format::Trace => super::trace::render(run).into_bytes(),
        Format::Speedscope => super::speedscope::render(run).into_bytes(),
    };
    out.write(format.file_name(), &bytes)
}
