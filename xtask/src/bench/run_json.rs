//! What the benchmark reads from reaper's run.json (kept as untyped JSON so
//! the benchmark does not depend on reaper-cli's model crate-wise).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context as _, Result};
use serde_json::Value;

/// Loads DIR/run.json.
pub fn load(dir: &Path) -> Result<Value> {
    let path = dir.join("run.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn episodes(run: &Value) -> &[Value] {
    run["episodes"].as_array().map_or(&[], Vec::as_slice)
}

/// The episode whose victim is `pid`.
pub fn episode(run: &Value, pid: u32) -> Option<&Value> {
    episodes(run)
        .iter()
        .find(|e| e["victim"]["pid"].as_u64() == Some(u64::from(pid)))
}

/// Sum of period_ns of `context`'s stacks that contain `symbol`; None when
/// the episode has no such context.
pub fn period_with_symbol(episode: &Value, context: &str, symbol: &str) -> Option<u64> {
    let ctx = episode["contexts"]
        .as_array()?
        .iter()
        .find(|c| c["context"] == context)?;
    Some(
        ctx["stacks"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|s| {
                s["frames"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == symbol))
            })
            .filter_map(|s| s["period_ns"].as_u64())
            .sum(),
    )
}

/// The run's counters, plus the run-level losses (evicted episodes).
///
/// In a `--watch` run every episode carries the watch's running totals at the
/// time it was finished (reaper-cli's recorder/watch.rs), not its own share,
/// so the run's total is the largest value of each counter, not the sum.
pub fn counters(run: &Value) -> BTreeMap<String, u64> {
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for e in episodes(run) {
        for key in ["counters", "user_losses"] {
            if let Some(map) = e[key].as_object() {
                for (k, v) in map {
                    let total = totals.entry(k.clone()).or_default();
                    *total = (*total).max(v.as_u64().unwrap_or(0));
                }
            }
        }
    }
    if let Some(evicted) = run["watch"]["episodes_evicted"].as_u64() {
        totals.insert("episodes_evicted".into(), evicted);
    }
    totals
}

/// Whether a counter name denotes a loss.
pub fn is_loss(name: &str) -> bool {
    ["full", "lost", "evicted", "drop"]
        .iter()
        .any(|w| name.contains(w))
}

/// Function-probe kinds that actually attached (`probe` "function:*").
pub fn function_probes_attached(run: &Value) -> usize {
    run["recording"]["probes"].as_array().map_or(0, |p| {
        p.iter()
            .filter(|p| {
                p["probe"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("function:"))
                    && p["status"] == "attached"
            })
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Value {
        serde_json::json!({
            "recording": {"probes": [
                {"probe": "sampling", "status": "attached"},
                {"probe": "function:exit_mmap", "status": "not attached"}
            ]},
            "watch": {"episodes_evicted": 0},
            "episodes": [{
                "victim": {"pid": 42},
                "contexts": [{
                    "context": "victim_exit",
                    "stacks": [
                        {"frames": ["do_exit", "exit_mmap", "unmap_vmas"], "samples": 2, "period_ns": 500000},
                        {"frames": ["do_exit", "mm_release"], "samples": 1, "period_ns": 250000},
                        {"frames": ["do_exit", "exit_mmap"], "samples": 1, "period_ns": 250000}
                    ]
                }],
                "counters": {"samples_tracked": 10, "sample_stack_lost": 1},
                "user_losses": {}
            }, {
                "victim": {"pid": 43}, "contexts": [],
                "counters": {"samples_tracked": 15, "sample_stack_lost": 1}
            }]
        })
    }

    #[test]
    fn periods_counters_losses() {
        let run = fixture();
        let ep = episode(&run, 42).unwrap();
        assert_eq!(
            period_with_symbol(ep, "victim_exit", "exit_mmap"),
            Some(750_000)
        );
        assert_eq!(period_with_symbol(ep, "mrelease_caller", "exit_mmap"), None);
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
