//! What `reaper-lab ab` reads back from each side's run.json files (typed,
//! through `reaper-model`) for its per-episode lines: the reaper's VMA
//! order (the reverse-order patch), the lost mrelease races, and a frozen
//! victim's thread fates (the thaw patch). Everything else is left to
//! `reaper diff` and `reaper gate`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use reaper_model::{Context, Episode, FrozenOutcome, Run};

use crate::reaper_json;

/// The context whose per-VMA order the patch changes: the task that called
/// process_mrelease (the reaper side of the race).
const REAPER_CONTEXT: Context = Context::MreleaseCaller;

/// One episode as the A/B summary shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeLine {
    /// `batch-N/run-M` and the episode's number in its run.
    pub origin: String,
    /// The reaper's per-VMA unmap order, when it was timed.
    pub order: Option<Order>,
    /// process_mrelease returned ESRCH: the victim finished first.
    pub lost_race: bool,
    /// `record --frozen`: what happened to the victim's threads.
    pub frozen: Option<Frozen>,
}

/// The reaper's VMA order in one episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// "forward", "reverse", "mixed" or "unknown".
    pub word: String,
    pub vmas: u64,
    pub function: String,
}

/// A frozen victim's thread fates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    pub threads: u32,
    /// Threads still there when reaper stopped watching.
    pub still_present: usize,
    /// When the last thread exited, if all did.
    pub all_exited_ms: Option<u64>,
    pub timeout_ms: u64,
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
        // e.g. "batch-1/run-3": the boot and the run directory in it.
        let parent = file.parent().unwrap_or(dir);
        let origin = parent
            .strip_prefix(dir)
            .unwrap_or(parent)
            .display()
            .to_string();
        lines.extend(episode_lines(&run, &origin));
    }
    Ok(lines)
}

/// The episode lines of one run.
pub fn episode_lines(run: &Run, origin: &str) -> Vec<EpisodeLine> {
    run.episodes
        .iter()
        .enumerate()
        .map(|(i, e)| EpisodeLine {
            origin: format!("{origin} #{}", i + 1),
            order: reaper_order(e),
            lost_race: e.lost_race(),
            frozen: e.frozen.as_ref().map(frozen),
        })
        .collect()
}

fn reaper_order(episode: &Episode) -> Option<Order> {
    let seen = episode
        .function_timing
        .as_ref()?
        .vma_orders
        .iter()
        .find(|o| o.context == REAPER_CONTEXT)?;
    Some(Order {
        word: seen.order.name().to_owned(),
        vmas: seen.vmas,
        function: seen.function.clone(),
    })
}

fn frozen(f: &FrozenOutcome) -> Frozen {
    Frozen {
        threads: f.threads,
        still_present: f.still_present_at_timeout.len(),
        all_exited_ms: f.all_exited_ms,
        timeout_ms: f.timeout_ms,
    }
}

impl fmt::Display for EpisodeLine {
    /// `batch-1 #2: reaper order reverse (70 VMAs via unmap_page_range); …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: reaper order ", self.origin)?;
        match &self.order {
            Some(o) if o.word == ORDER_UNDETERMINED => write!(
                f,
                "undetermined ({} VMA(s) via {}: too few to show an order; the exit had torn the rest down)",
                o.vmas, o.function
            )?,
            Some(o) => write!(f, "{} ({} VMAs via {})", o.word, o.vmas, o.function)?,
            None if self.lost_race => write!(
                f,
                "not measured (the reaper found no VMA: it lost the race)"
            )?,
            None => write!(
                f,
                "not measured (no per-VMA function timing of the reaper in this episode)"
            )?,
        }
        if self.lost_race {
            write!(f, "; lost the mrelease race (ESRCH)")?;
        }
        if let Some(fr) = &self.frozen {
            match fr.all_exited_ms {
                Some(ms) if fr.still_present == 0 => write!(
                    f,
                    "; frozen victim: all {} threads exited, the last {ms} ms after the kill",
                    fr.threads
                )?,
                _ => write!(
                    f,
                    "; frozen victim: {} of {} threads still there {} ms after the kill",
                    fr.still_present, fr.threads, fr.timeout_ms
                )?,
            }
        }
        Ok(())
    }
}

/// One side's summary: how many episodes showed each order, e.g.
/// "reverse in 9 of 10 episodes (1 lost the race)"; and for a frozen
/// scenario, in how many every thread exited.
pub fn summary(lines: &[EpisodeLine]) -> String {
    let mut orders: BTreeMap<&str, usize> = BTreeMap::new();
    for o in lines.iter().filter_map(|l| l.order.as_ref()) {
        *orders.entry(o.word.as_str()).or_default() += 1;
    }
    let total = lines.len();
    let mut out = if orders.is_empty() {
        format!("reaper order not measured in any of {total} episodes")
    } else {
        let parts: Vec<String> = orders
            .iter()
            .map(|(word, n)| format!("{word} in {n} of {total} episodes"))
            .collect();
        format!("reaper order {}", parts.join(", "))
    };
    let lost = lines.iter().filter(|l| l.lost_race).count();
    if lost > 0 {
        out.push_str(&format!("; {lost} lost the mrelease race"));
    }
    let frozen: Vec<&Frozen> = lines.iter().filter_map(|l| l.frozen.as_ref()).collect();
    if !frozen.is_empty() {
        let all_exited = frozen.iter().filter(|f| f.still_present == 0).count();
        out.push_str(&format!(
            "; frozen victim: every thread exited in {all_exited} of {} episodes",
            frozen.len()
        ));
    }
    out
}

/// The word reaper writes when the reaper unmapped fewer than two VMAs, or
/// none in a direction: there is no order to compare (the victim's own
/// exit had already torn the rest down), which is not a wrong order.
const ORDER_UNDETERMINED: &str = reaper_model::VmaOrderKind::Unknown.name();

/// `--expect-order`: every episode whose reaper order could be determined
/// shows `want`, and at least one could. An episode in which the reaper
/// lost the race, or reached fewer than two VMAs, has no order and is
/// neither a match nor a mismatch. Returns why not.
pub fn check_order(lines: &[EpisodeLine], want: &str) -> Result<(), OrderMismatch> {
    let measured: Vec<&Order> = lines
        .iter()
        .filter_map(|l| l.order.as_ref())
        .filter(|o| o.word != ORDER_UNDETERMINED)
        .collect();
    if measured.is_empty() {
        return Err(OrderMismatch::Undetermined {
            want: want.to_owned(),
            episodes: lines.len(),
        });
    }
    let other: Vec<&str> = measured
        .iter()
        .filter(|o| o.word != want)
        .map(|o| o.word.as_str())
        .collect();
    if !other.is_empty() {
        return Err(OrderMismatch::Differ {
            want: want.to_owned(),
            measured: measured.len(),
            other: other.into_iter().map(str::to_owned).collect(),
        });
    }
    Ok(())
}

/// Why `--expect-order` failed on one side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderMismatch {
    /// No episode had an order to compare.
    #[error(
        "expected reaper order {want}, but it could be determined in none of {episodes} episodes"
    )]
    Undetermined {
        /// The order expected.
        want: String,
        /// Episodes on the side.
        episodes: usize,
    },
    /// Some episodes with an order showed another one.
    #[error(
        "expected reaper order {want}, but {} of {measured} episodes with a determined order differ ({})",
        other.len(),
        other.join(", ")
    )]
    Differ {
        /// The order expected.
        want: String,
        /// Episodes with a determined order.
        measured: usize,
        /// The orders of the episodes that differ, in episode order.
        other: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        // A stored run (any will do: the test overwrites what it reads).
        let mut run: Run = serde_json::from_str(include_str!(
            "../../../reaper-cli/tests/data/report/6.18-3-episodes.run.json"
        ))
        .unwrap();
        run.episodes.truncate(2);
        run
    }

    #[test]
    fn lines_carry_order_race_and_frozen_fates() {
        let mut r = run();
        let e0 = &mut r.episodes[0];
        e0.marked_lost_race = false;
        let timing = e0.function_timing.get_or_insert_with(Default::default);
        timing.vma_orders = vec![reaper_model::VmaOrderSeen {
            context: REAPER_CONTEXT,
            function: "unmap_page_range".into(),
            order: reaper_model::VmaOrderKind::Reverse,
            vmas: 70,
            first: 2,
            last: 1,
            forward_steps: 0,
            reverse_steps: 69,
            addresses: Vec::new(),
        }];
        e0.frozen = None;
        let e1 = &mut r.episodes[1];
        e1.marked_lost_race = true;
        e1.function_timing = None;
        e1.frozen = Some(FrozenOutcome {
            threads: 4,
            timeout_ms: 5000,
            thread_exits: Vec::new(),
            all_exited_ms: None,
            still_present_at_timeout: vec![11, 12, 13],
        });
        let lines = episode_lines(&r, "batch-1");
        assert_eq!(
            lines[0].to_string(),
            "batch-1 #1: reaper order reverse (70 VMAs via unmap_page_range)"
        );
        assert_eq!(
            lines[1].to_string(),
            "batch-1 #2: reaper order not measured (the reaper found no VMA: it lost the race); \
             lost the mrelease race (ESRCH); frozen victim: 3 of 4 threads still there 5000 ms \
             after the kill"
        );
        assert_eq!(
            summary(&lines),
            "reaper order reverse in 1 of 2 episodes; 1 lost the mrelease race; frozen victim: \
             every thread exited in 0 of 1 episodes"
        );
        assert_eq!(check_order(&lines, "reverse"), Ok(()));
        assert!(check_order(&lines, "forward").is_err());
        assert!(check_order(&lines[1..], "reverse").is_err());
    }

    fn order_line(word: &str, vmas: u64) -> EpisodeLine {
        EpisodeLine {
            origin: "batch-1/run-1 #1".into(),
            order: Some(Order {
                word: word.into(),
                vmas,
                function: "unmap_page_range".into(),
            }),
            lost_race: false,
            frozen: None,
        }
    }

    #[test]
    fn an_undetermined_order_neither_matches_nor_fails_the_expectation() {
        // As seen in CI: the reaper reached one VMA in one B episode.
        let lines = vec![
            order_line("reverse", 88),
            order_line("unknown", 1),
            order_line("reverse", 88),
        ];
        assert_eq!(check_order(&lines, "reverse"), Ok(()));
        assert!(lines[1].to_string().contains("undetermined (1 VMA(s)"));
        // Only undetermined episodes: the expectation is not shown.
        let err = check_order(&lines[1..2], "reverse").unwrap_err();
        assert!(
            matches!(err, OrderMismatch::Undetermined { episodes: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("determined in none of 1"), "{err}");
        // A mixed order is a real mismatch.
        let lines = vec![order_line("reverse", 88), order_line("mixed", 88)];
        let err = check_order(&lines, "reverse").unwrap_err();
        assert!(
            matches!(&err, OrderMismatch::Differ { measured: 2, other, .. } if other == &["mixed"]),
            "{err}"
        );
        assert!(err.to_string().contains("1 of 2"), "{err}");
    }
}
