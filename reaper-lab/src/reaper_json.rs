//! Reading what reaper wrote (`run.json`, `reaper doctor --json`) with the
//! types reaper writes it with (reaper-model), so a renamed field breaks
//! the build instead of silently emptying a check, a benchmark row or an A/B line.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::de::DeserializeOwned;

pub use reaper_model::doctor::Diagnosis;
pub use reaper_model::{Context, Run};

/// Largest run file a reader of reaper's own outputs takes (reaper's
/// default `--max-input` is 128 MiB of run files in all).
pub const MAX_RUN_FILE_BYTES: u64 = 128 << 20;

/// Reads a run file through reaper-model's loader: a newer schema is
/// refused, an older one upgraded, and the value checks of the run's own
/// types applied; a file over [`MAX_RUN_FILE_BYTES`] is refused unread.
pub fn read_run(path: &Path) -> Result<Run> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_RUN_FILE_BYTES {
        anyhow::bail!(
            "{}: {len} bytes, more than a run file reaper writes ({MAX_RUN_FILE_BYTES} at most here)",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    reaper_model::migrate::read_run(&text)
        .with_context(|| format!("{} is not a reaper run file", path.display()))
}

/// One of reaper's JSON files, read the way its kind needs.
pub trait ReaperFile: Sized {
    /// Reads and decodes the file at `path`.
    fn read_from(path: &Path) -> Result<Self>;
}

impl ReaperFile for Run {
    fn read_from(path: &Path) -> Result<Self> {
        read_run(path)
    }
}

impl ReaperFile for Diagnosis {
    fn read_from(path: &Path) -> Result<Self> {
        read_json(path)
    }
}

/// Reads one of reaper's JSON files: run files through reaper-model's
/// loader ([`read_run`]), `doctor --json` with its types.
pub fn read<T: ReaperFile>(path: &Path) -> Result<T> {
    T::read_from(path)
}

/// Decodes a JSON file with the types reaper writes it with.
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a {} as this build of reaper writes it",
            path.display(),
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("file")
        )
    })
}
