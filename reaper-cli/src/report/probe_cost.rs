//! What the function probes add to the exact periods they measure: per
//! context and function, the timed calls made inside it (from the call
//! edges) times the calibrated cost of one timed call in its attach mode,
//! and the exact period with that subtracted. An estimate, and labelled so:
//! the calibration loop runs a cheap syscall, not the teardown's code.
//!
//! Compared like with like: a function's sampled period counts every stack
//! through it, including the `[reaper probe: …]` frames of the probes that
//! fired inside it, so the exact period minus the probes is set beside the
//! sampled period minus those frames. The frames' sampled time is also the
//! probes' cost measured in situ, a check on the calibrated estimate.
//!
//! This module builds the report model's [`ProbeOverhead`]; the text
//! renderer prints it after each episode's exact tables.

use std::collections::BTreeMap;

use super::model::{CorrectedPeriod, ProbeOverhead};
use crate::model::{
    AttachMode, Context, Episode, FunctionTime, FunctionTiming, NotMeasuredSubject, ProbeCost, Run,
};
use crate::probe_frames::probe_label;

/// Guards the recursion over call edges against a cycle (a probed function
/// that recurses through another one).
const MAX_DEPTH: usize = 16;

/// Cost of one timed call (entry + exit hit) per attach mode, ns.
pub fn costs_by_mode(costs: &[ProbeCost]) -> BTreeMap<AttachMode, f64> {
    costs
        .iter()
        .filter(|c| c.per_call_ns.is_finite() && c.per_call_ns >= 0.0)
        .map(|c| (c.mode, c.per_call_ns))
        .collect()
}

/// Timed calls of every probed function made inside all calls of `symbol`
/// in `context`: each direct child's calls, plus that child's own nested
/// calls in proportion to the share of its calls made from `symbol`.
fn nested_calls(timing: &FunctionTiming, context: Context, symbol: &str, depth: usize) -> f64 {
    if depth >= MAX_DEPTH {
        return 0.0;
    }
    timing
        .edges
        .iter()
        .filter(|e| e.context == context && e.parent == symbol && e.child != symbol)
        .map(|e| {
            let child_calls = calls_of(timing, context, &e.child);
            let share = if child_calls > 0 {
                e.calls as f64 / child_calls as f64
            } else {
                0.0
            };
            e.calls as f64 + share * nested_calls(timing, context, &e.child, depth + 1)
        })
        .sum()
}

fn calls_of(timing: &FunctionTiming, context: Context, symbol: &str) -> u64 {
    timing
        .functions
        .iter()
        .find(|f| f.context == context && f.symbol == symbol)
        .map_or(0, |f| f.calls)
}

/// The estimate for one row, or `None` when its mode has no measured cost.
pub fn corrected(
    timing: &FunctionTiming,
    f: &FunctionTime,
    costs: &BTreeMap<AttachMode, f64>,
) -> Option<CorrectedPeriod> {
    let per_call = *costs.get(&f.mode)?;
    // The function's own entry and exit each put about half a hit's work
    // between its two timestamps.
    let hits = nested_calls(timing, f.context, &f.symbol, 0) + 0.5 * f.calls as f64;
    let overhead_ns = hits * per_call;
    Some(CorrectedPeriod {
        context: f.context,
        symbol: f.symbol.clone(),
        mode: f.mode,
        sampled_period_ns: None,
        exact_ns: f.total_ns,
        probe_hits: hits,
        overhead_ns,
        corrected_ns: (overhead_ns < f.total_ns as f64).then_some(f.total_ns as f64 - overhead_ns),
        sampled_probe_ns: None,
        sampled_without_probes_ns: None,
    })
}

/// Every row of an episode's function timing that has a measured cost.
pub fn corrected_all(timing: &FunctionTiming, costs: &[ProbeCost]) -> Vec<CorrectedPeriod> {
    let by_mode = costs_by_mode(costs);
    timing
        .functions
        .iter()
        .filter_map(|f| corrected(timing, f, &by_mode))
        .collect()
}

/// Why the run has no calibrated cost, from its `not_measured`.
fn why_not_calibrated(run: &Run) -> String {
    let why = run
        .not_measured
        .iter()
        .filter(|n| matches!(n.subject, NotMeasuredSubject::ProbeCost(_)))
        .map(|n| format!("{}: {}", n.subject, n.why))
        .collect::<Vec<_>>();
    if why.is_empty() {
        "this run has no probe calibration".to_owned()
    } else {
        why.join("; ")
    }
}

/// Sampled period of the stacks through `symbol` that end in one of
/// reaper's probe frames below it (`None`: the context was not profiled).
fn sampled_probe_ns(episode: &Episode, context: Context, symbol: &str) -> Option<u64> {
    let profile = episode.contexts.iter().find(|c| c.context == context)?;
    Some(
        profile
            .stacks
            .iter()
            .filter(|s| {
                s.frames
                    .iter()
                    .position(|f| f == symbol)
                    .is_some_and(|at| s.frames[at + 1..].iter().any(|f| probe_label(f).is_some()))
            })
            .map(|s| s.period_ns)
            .sum(),
    )
}

/// One episode's probe-overhead estimate, when it has function timing.
pub fn overhead(run: &Run, episode: &Episode) -> Option<ProbeOverhead> {
    let timing = episode.function_timing.as_ref()?;
    let rows = corrected_all(timing, &run.probe_costs)
        .into_iter()
        .map(|mut r| {
            r.sampled_period_ns = super::stacks::sampled_ns(episode, r.context, &r.symbol);
            r.sampled_probe_ns = sampled_probe_ns(episode, r.context, &r.symbol);
            r.sampled_without_probes_ns = r
                .sampled_period_ns
                .zip(r.sampled_probe_ns)
                .map(|(all, probes)| all.saturating_sub(probes));
            r
        })
        .collect();
    let stacks = || episode.contexts.iter().flat_map(|c| &c.stacks);
    let samples = stacks().map(|s| s.samples).sum::<u64>();
    Some(ProbeOverhead {
        costs: run.probe_costs.clone(),
        not_calibrated: run.probe_costs.is_empty().then(|| why_not_calibrated(run)),
        rows,
        samples,
        samples_counted_ns: run
            .recording
            .periods_counted
            .then(|| stacks().map(|s| s.period_ns).sum()),
        samples_nominal_ns: samples * run.recording.sample_period_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallEdge;

    const C: Context = Context::OomReaper;

    pub(super) fn f(context: Context, symbol: &str, calls: u64, total_ns: u64) -> FunctionTime {
        FunctionTime {
            context,
            // Not read by the probe-cost arithmetic.
            concept: crate::model::ConceptId::ReaperWork,
            symbol: symbol.into(),
            mode: AttachMode::Fentry,
            calls,
            total_ns,
            max_ns: 0,
            hist_log2_ns: vec![],
        }
    }

    fn edge(parent: &str, child: &str, calls: u64) -> CallEdge {
        CallEdge {
            context: C,
            parent: parent.into(),
            child: child.into(),
            calls,
            total_ns: 0,
        }
    }

    fn cost(mode: AttachMode, per_call_ns: f64) -> ProbeCost {
        ProbeCost {
            mode,
            function: "__x64_sys_getppid".into(),
            calls_per_batch: 1000,
            batches: 5,
            unprobed_ns: 100.0,
            probed_ns: 100.0 + per_call_ns,
            per_call_ns,
        }
    }

    #[test]
    fn nested_calls_follow_the_edges_to_every_depth() {
        // top -> mid (10 calls), mid -> leaf (100 calls), top -> leaf (5).
        let timing = FunctionTiming {
            functions: vec![
                f(C, "top", 1, 1_000_000),
                f(C, "mid", 10, 500_000),
                f(C, "leaf", 105, 100_000),
            ],
            edges: vec![
                edge("top", "mid", 10),
                edge("mid", "leaf", 100),
                edge("top", "leaf", 5),
            ],
            ..FunctionTiming::default()
        };
        let rows = corrected_all(&timing, &[cost(AttachMode::Fentry, 1000.0)]);
        let top = rows.iter().find(|r| r.symbol == "top").unwrap();
        // 10 + 100 + 5 nested, plus half of its own call.
        assert_eq!(top.probe_hits, 115.5);
        assert_eq!(top.overhead_ns, 115_500.0);
        assert_eq!(top.corrected_ns, Some(884_500.0));
        let leaf = rows.iter().find(|r| r.symbol == "leaf").unwrap();
        assert_eq!(leaf.probe_hits, 52.5);
    }

    #[test]
    fn a_mode_without_a_cost_or_a_cost_above_the_period_gives_no_estimate() {
        let timing = FunctionTiming {
            functions: vec![f(C, "top", 10, 1000)],
            ..FunctionTiming::default()
        };
        assert!(corrected_all(&timing, &[cost(AttachMode::Kprobe, 50.0)]).is_empty());
        // 1000 ns, 10 calls: probes estimated at 5 × 50 = 250 ns leave 750 ns...
        let rows = corrected_all(&timing, &[cost(AttachMode::Fentry, 50.0)]);
        assert_eq!(rows[0].corrected_ns, Some(750.0));
        // ...at 5 × 300 ns they reach the whole period: no figure, not 0.
        let rows = corrected_all(&timing, &[cost(AttachMode::Fentry, 300.0)]);
        assert_eq!(rows[0].corrected_ns, None);
        assert_eq!(rows[0].ratio(), None);
    }

    #[test]
    fn a_recursive_edge_does_not_loop() {
        let timing = FunctionTiming {
            functions: vec![f(C, "a", 2, 100), f(C, "b", 2, 50)],
            edges: vec![edge("a", "b", 2), edge("b", "a", 1)],
            ..FunctionTiming::default()
        };
        let rows = corrected_all(&timing, &[cost(AttachMode::Fentry, 1.0)]);
        assert!(rows.iter().all(|r| r.probe_hits.is_finite()));
    }
}

#[cfg(test)]
mod like_with_like {
    use super::*;
    use crate::model::{CallEdge, SampledStack};
    use crate::probe_frames::label;

    fn stack(frames: &[&str], samples: u64) -> SampledStack {
        SampledStack {
            frames: frames.iter().map(|f| (*f).to_owned()).collect(),
            samples,
            period_ns: samples * 250_000,
        }
    }

    /// The sampled period of a function counts the probe frames under it;
    /// the comparison takes them out, and the ratio sets exact minus the
    /// calibrated probes against sampled minus the probe frames.
    #[test]
    fn probe_frames_under_the_function_are_taken_out_of_its_sampled_period() {
        let c = Context::VictimExit;
        let time = |symbol: &str, calls, total_ns| super::tests::f(c, symbol, calls, total_ns);
        let timing = FunctionTiming {
            functions: vec![
                time("exit_mmap", 1, 10_000_000),
                time("leaf", 1000, 2_000_000),
            ],
            edges: vec![CallEdge {
                context: c,
                parent: "exit_mmap".into(),
                child: "leaf".into(),
                calls: 1000,
                total_ns: 2_000_000,
            }],
            ..FunctionTiming::default()
        };
        let mut run = crate::report::function_timing::tests::run_with(Some(timing));
        run.probe_costs = vec![ProbeCost {
            mode: AttachMode::Fentry,
            function: "__do_sys_getppid".into(),
            calls_per_batch: 1000,
            batches: 5,
            unprobed_ns: 100.0,
            probed_ns: 2100.0,
            per_call_ns: 2000.0,
        }];
        let probe = label("fexit leaf");
        let episode = &mut run.episodes[0];
        let profile = episode
            .contexts
            .iter_mut()
            .find(|p| p.context == c)
            .unwrap();
        profile.stacks = vec![
            stack(&["do_exit", "exit_mmap", "leaf"], 16),
            stack(&["do_exit", "exit_mmap", "leaf", &probe], 8),
            stack(&["do_exit", "exit_mmap"], 8),
            // A probe frame outside the function is not its probes' cost.
            stack(&["do_exit", &probe], 4),
        ];
        let o = overhead(&run, &run.episodes[0]).unwrap();
        let row = o.rows.iter().find(|r| r.symbol == "exit_mmap").unwrap();
        assert_eq!(row.sampled_period_ns, Some(32 * 250_000));
        assert_eq!(row.sampled_probe_ns, Some(8 * 250_000));
        assert_eq!(row.sampled_without_probes_ns, Some(24 * 250_000));
        // 1000 nested hits + half of its own call, 2 µs each.
        assert_eq!(row.overhead_ns, 1000.5 * 2000.0);
        assert_eq!(
            row.ratio(),
            Some((10_000_000.0 - 2_001_000.0) / 6_000_000.0)
        );
        assert_eq!(row.sampled_per_hit_ns(), Some(2_000_000.0 / 1000.5));
        assert_eq!(row.corrected_in_situ_ns(), Some(8_000_000.0));
        assert_eq!(row.ratio_in_situ(), Some(8_000_000.0 / 6_000_000.0));
    }
}
