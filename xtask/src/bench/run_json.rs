//! What the benchmark reads from reaper's run.json, decoded with
//! reaper-model's types (the ones reaper writes it with).

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use reaper_model::Episode;

use crate::reaper_json::{self, Context, Run};

/// Loads DIR/run.json.
pub fn load(dir: &Path) -> Result<Run> {
    reaper_json::read(&dir.join("run.json"))
}

/// The episode whose victim is `pid`.
pub fn episode(run: &Run, pid: u32) -> Option<&Episode> {
    run.episode_of(pid)
}

/// Sum of period_ns of `context`'s stacks that contain `symbol`; None when
/// the episode has no such context.
pub fn period_with_symbol(episode: &Episode, context: Context, symbol: &str) -> Option<u64> {
    Some(episode.context(context)?.under(symbol).1)
}

/// The run's counters, plus the run-level losses (evicted episodes).
///
/// In a `--watch` run every episode carries the watch's running totals at the
/// time it was finished (reaper-cli's recorder/watch.rs), not its own share,
/// so the run's total is the largest value of each counter, not the sum.
pub fn counters(run: &Run) -> BTreeMap<String, u64> {
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for e in &run.episodes {
        for (k, v) in e.counters.iter().chain(&e.user_losses) {
            let total = totals.entry(k.clone()).or_default();
            *total = (*total).max(*v);
        }
    }
    if let Some(watch) = &run.watch {
        totals.insert("episodes_evicted".into(), watch.episodes_evicted);
    }
    totals
}

/// Whether a counter name denotes a loss.
pub fn is_loss(name: &str) -> bool {
    ["full", "lost", "evicted", "drop"]
        .iter()
        .any(|w| name.contains(w))
}

/// Function probes that actually attached (`recording.probes` "function:*").
pub fn function_probes_attached(run: &Run) -> usize {
    run.function_probe_uses().filter(|p| p.attached()).count()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reaper_json::fixtures;

    fn fixture() -> Run {
        let stack = |frames: &[&str], samples: u64, period_ns: u64| json!({"frames": frames, "samples": samples, "period_ns": period_ns});
        let run = fixtures::run(json!({
            "recording": {"probes": [
                {"probe": "sampling", "mode": "perf_event", "status": "attached"},
                {"probe": "function:exit_mmap", "mode": "none", "status": "not attached"}
            ]},
            "watch": {"watched_s": 1, "episodes_seen": 2, "episodes_evicted": 0,
                      "plain_kills_ignored": 0},
            "episodes": [
                fixtures::episode(42, json!({
                    "contexts": [{
                        "context": "victim_exit", "tasks": [], "lock_waits": [],
                        "stacks": [
                            stack(&["do_exit", "exit_mmap", "unmap_vmas"], 2, 500000),
                            stack(&["do_exit", "mm_release"], 1, 250000),
                            stack(&["do_exit", "exit_mmap"], 1, 250000)
                        ]
                    }],
                    "counters": {"samples_tracked": 10, "sample_stack_lost": 1}
                })),
                fixtures::episode(43, json!({
                    "counters": {"samples_tracked": 15, "sample_stack_lost": 1}
                }))
            ]
        }));
        serde_json::from_value(run).unwrap()
    }

    #[test]
    fn periods_counters_losses() {
        let run = fixture();
        let ep = episode(&run, 42).unwrap();
        assert_eq!(
            period_with_symbol(ep, Context::VictimExit, "exit_mmap"),
            Some(750_000)
        );
        assert_eq!(
            period_with_symbol(ep, Context::MreleaseCaller, "exit_mmap"),
            None
        );
        assert!(episode(&run, 7).is_none());
        let c = counters(&run);
        // Running totals: the later episode's values, not 10 + 15.
        assert_eq!(c["samples_tracked"], 15);
        assert_eq!(c["sample_stack_lost"], 1);
        assert_eq!(c["episodes_evicted"], 0);
        assert!(
            is_loss("sample_stack_lost")
                && is_loss("timeline_ring_full")
                && !is_loss("samples_tracked")
        );
        assert_eq!(function_probes_attached(&run), 0);
    }
}
