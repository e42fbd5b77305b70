//! The one place the open-format writers (pprof, trace, speedscope) put a
//! file on disk, so a safer writer (atomic temp file and rename, no symlink
//! following) can be swapped in here alone.

use std::path::Path;

/// Writes `bytes` to `path`, replacing it.
pub fn write_output(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
