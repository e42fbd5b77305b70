//! A run file is untrusted input (in CI it comes from pull-request
//! artifacts anyone can shape): every name in it that can become part of a
//! path is checked against reaper's typed set before anything is rendered,
//! and the file's size is bounded before it is read.

use reaper_common::context::{CONTEXT_NAMES, Context};

use crate::model::Run;

/// Largest run file read. The largest real run is about 60 KB per episode
/// (stacks of three contexts) times `record --runs`' limit of 1000, about
/// 60 MB; four times that leaves room and still refuses a file meant to
/// exhaust memory.
pub const MAX_RUN_FILE_BYTES: u64 = 256 << 20;

/// Checks every context name of a decoded run (profiles, timeline, exact
/// timing); returns what is wrong, for [`super::LoadError::NotARun`].
pub fn check_names(run: &Run) -> Result<(), String> {
    for episode in &run.episodes {
        let timing = episode.function_timing.iter();
        let names = episode
            .contexts
            .iter()
            .map(|c| c.context.as_str())
            .chain(episode.timeline.iter().filter_map(|t| t.context.as_deref()))
            .chain(
                timing
                    .clone()
                    .flat_map(|t| &t.functions)
                    .map(|f| f.context.as_str()),
            )
            .chain(
                timing
                    .clone()
                    .flat_map(|t| &t.edges)
                    .map(|e| e.context.as_str()),
            )
            .chain(
                timing
                    .flat_map(|t| &t.vma_orders)
                    .map(|v| v.context.as_str()),
            );
        for name in names {
            if Context::from_name(name).is_none() {
                return Err(format!(
                    "episode {}: unknown context {name:?}; reaper writes only {}",
                    episode.index,
                    CONTEXT_NAMES.join(", ")
                ));
            }
        }
    }
    Ok(())
}
