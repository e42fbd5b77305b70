//! What `cargo xtask ab` reads back from each side's run.json files for its
//! per-episode lines: the reaper's VMA order (the reverse-order patch), the
//! lost mrelease races, and a frozen victim's thread fates (the thaw
//! patch). Everything else is left to `reaper diff` and `reaper gate`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use reaper_model::Episode;

use crate::reaper_json::{self, Context, Run};

/// One episode as the A/B summary shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeLine {
    /// `batch-N/…` and the episode's number in its run.
    pub origin: String,
    /// "forward", "reverse", …, or why there is none.
    pub reaper_order: String,
    /// process_mrelease returned ESRCH: the victim finished first.
    pub lost_race: bool,
    /// `record --frozen`: threads, how many were still there at the timeout.
    pub frozen: Option<(u64, u64)>,
}

/// All run.json files under `dir`, sorted.
pub fn run_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "run.json") {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// The episode lines of every run under `dir`.
pub fn read_all(dir: &Path) -> Result<Vec<EpisodeLine>> {
    let mut lines = Vec::new();
    for file in run_files(dir) {
        let run: Run = reaper_json::read(&file)?;
        let origin = file
            .strip_prefix(dir)
            .unwrap_or(&file)
            .iter()
            .next()
            .map_or_else(String::new, |c| c.to_string_lossy().into_owned());
        lines.extend(episode_lines(&run, &origin));
    }
    Ok(lines)
}

/// The episode lines of one run file.
pub fn episode_lines(run: &Run, origin: &str) -> Vec<EpisodeLine> {
    run.episodes
        .iter()
        .enumerate()
        .map(|(i, e)| EpisodeLine {
            origin: format!("{origin} #{}", i + 1),
            reaper_order: reaper_order(e),
            lost_race: e.lost_race,
            frozen: e.frozen.as_ref().map(|f| {
                (
                    u64::from(f.threads),
                    f.still_present_at_timeout.len() as u64,
                )
            }),
        })
        .collect()
}

fn reaper_order(episode: &Episode) -> String {
    let order = episode.function_timing.as_ref();
    match order.and_then(|t| t.vma_order(Context::MreleaseCaller)) {
        Some(o) => format!("{} ({} VMAs via {})", o.order, o.vmas, o.function),
        None => "not measured (no per-VMA function timing of the reaper in this episode)".into(),
    }
}

/// The bare order word of a line ("forward", "reverse"), if measured.
pub fn order_word(line: &EpisodeLine) -> Option<&str> {
    let word = line.reaper_order.split_whitespace().next()?;
    (word != "not").then_some(word)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reaper_json::fixtures;

    #[test]
    fn lines_carry_order_race_and_frozen_fates() {
        let frozen = json!({"threads": 4, "timeout_ms": 1000, "thread_exits": [],
                            "still_present_at_timeout": [101, 102, 103]});
        let run = fixtures::run(json!({"episodes": [
            fixtures::episode(1, json!({"function_timing": {"functions": [], "vma_orders": [
                fixtures::vma_order("victim_exit", "unmap_page_range", "forward", 70),
                fixtures::vma_order("mrelease_caller", "unmap_page_range", "reverse", 70)]}})),
            fixtures::episode(2, json!({"lost_race": true, "frozen": frozen}))
        ]}));
        let run: Run = serde_json::from_value(run).unwrap();
        let lines = episode_lines(&run, "batch-1");
        assert_eq!(
            lines[0].reaper_order,
            "reverse (70 VMAs via unmap_page_range)"
        );
        assert_eq!(order_word(&lines[0]), Some("reverse"));
        assert!(lines[1].lost_race);
        assert_eq!(order_word(&lines[1]), None);
        assert_eq!(lines[1].frozen, Some((4, 3)));
        assert_eq!(lines[1].origin, "batch-1 #2");
    }
}
