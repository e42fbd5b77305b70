//! No kernel stack is lost at reaper's defaults (issue 22 item 3): every
//! episode of the cell's default recording and of its many-VMA recording
//! (`--victim 256M,vmas=16384`, the largest default-sized scenario the
//! project measures) has `sample_stack_lost` and `lock_stack_lost` at 0.
//! Comparisons leave an episode out of the sampled figures only past a
//! tolerance of lost stacks; this check keeps that tolerance a safety net
//! rather than something defaults rely on, so a change that brings losses
//! back fails CI.

use reaper_model::Run;

use super::read_or_fail;
use super::{CellContext, RECORD_DIR, RECORD_VMAS_DIR, Verdict, find_run_json, step_failed};

/// The counters that mean a lost stack.
const STACK_LOSSES: [&str; 2] = ["sample_stack_lost", "lock_stack_lost"];

/// Totals of one recording.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    episodes: usize,
    samples: u64,
    lock_waits: u64,
    /// "record-vmas episode 2: sample_stack_lost=12 of 2000 samples".
    losses: Vec<String>,
    map_entries: Option<u32>,
}

fn tally(name: &str, run: &Run) -> Tally {
    let mut t = Tally {
        episodes: run.episodes.len(),
        map_entries: run.recording.stack_map_entries,
        ..Tally::default()
    };
    for e in &run.episodes {
        let get = |k: &str| e.counters.get(k).copied().unwrap_or(0);
        t.samples += get("samples_tracked");
        t.lock_waits += get("lock_begin_tracked");
        for counter in STACK_LOSSES {
            let lost = get(counter);
            if lost > 0 {
                t.losses.push(format!(
                    "{name} episode {}: {counter}={lost} of {} samples",
                    e.index,
                    get("samples_tracked")
                ));
            }
        }
    }
    t
}

/// The verdict on the two recordings' runs.
fn verdict(runs: &[(&str, &Run)]) -> Verdict {
    let mut parts = Vec::new();
    let mut losses = Vec::new();
    for (name, run) in runs {
        let t = tally(name, run);
        parts.push(format!(
            "{name}: {} episodes, {} samples, {} lock waits, stack map {}",
            t.episodes,
            t.samples,
            t.lock_waits,
            t.map_entries.map_or_else(
                || "size not recorded".to_owned(),
                |n| format!("{n} entries")
            )
        ));
        losses.extend(t.losses);
    }
    if losses.is_empty() {
        Verdict::Pass(format!("0 stacks lost ({})", parts.join("; ")))
    } else {
        Verdict::Fail(format!(
            "stacks lost at the defaults: {} ({}); the stack map must hold every distinct stack of a run (reaper-cli/src/recorder/sizing.rs)",
            losses.join("; "),
            parts.join("; ")
        ))
    }
}

/// `cargo xtask vm-test`'s check on `/out/record` and `/out/record-vmas`.
pub fn none_lost_at_the_defaults(ctx: &CellContext) -> Verdict {
    if !ctx.reaper_ran {
        return Verdict::Skip("reaper not run (--smoke)".into());
    }
    let mut runs = Vec::new();
    for (step, dir) in [("record", RECORD_DIR), ("record-vmas", RECORD_VMAS_DIR)] {
        if let Some(fail) = step_failed(ctx.out_dir, step) {
            return fail;
        }
        let Some(path) = find_run_json(&ctx.out_dir.join(dir)) else {
            return Verdict::Fail(format!("no run.json under /out/{dir}"));
        };
        match read_or_fail::<Run>(&path) {
            Ok(run) => runs.push((dir, run)),
            Err(fail) => return fail,
        }
    }
    let named: Vec<(&str, &Run)> = runs.iter().map(|(n, r)| (*n, r)).collect();
    verdict(&named)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reaper_json::fixtures;

    fn run(counters: serde_json::Value) -> Run {
        let value = fixtures::run(json!({
            "recording": {"stack_map_entries": 16384},
            "episodes": [
                fixtures::episode(100, json!({"counters": {"samples_tracked": 2000, "lock_begin_tracked": 40}})),
                fixtures::episode(101, json!({"index": 1, "counters": counters})),
            ],
        }));
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn no_lost_stack_passes_with_the_counters() {
        let r = run(json!({"samples_tracked": 1740, "sample_stack_lost": 0}));
        let Verdict::Pass(msg) = verdict(&[("record-vmas", &r)]) else {
            panic!()
        };
        assert_eq!(
            msg,
            "0 stacks lost (record-vmas: 2 episodes, 3740 samples, 40 lock waits, stack map 16384 entries)"
        );
    }

    #[test]
    fn any_lost_stack_fails_naming_the_episode() {
        let r = run(json!({"samples_tracked": 1909, "sample_stack_lost": 17}));
        let Verdict::Fail(msg) = verdict(&[("record", &r)]) else {
            panic!()
        };
        assert!(
            msg.contains("record episode 1: sample_stack_lost=17 of 1909 samples"),
            "{msg}"
        );
        let r = run(json!({"samples_tracked": 10, "lock_stack_lost": 1}));
        assert!(matches!(verdict(&[("record", &r)]), Verdict::Fail(_)));
    }
}
