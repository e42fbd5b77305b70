//! Reading what reaper wrote (`run.json`, `reaper doctor --json`) with the
//! types reaper writes it with (reaper-model), so a renamed field breaks
//! the build instead of silently emptying a check, a benchmark row or an A/B line.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::de::DeserializeOwned;

pub use reaper_model::doctor::Diagnosis;
pub use reaper_model::{Context, Run};

/// Reads and decodes one of reaper's JSON files.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T> {
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
