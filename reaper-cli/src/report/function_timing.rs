//! Builds the exact-function-timing part of the report
//! ([`FunctionTimingReport`]) from a run: the reaper's VMA order, the "Exact
//! period (ms)" tables beside the sampled period per context, latency
//! histograms of the PTE-lock and per-VMA unmap functions, and the probes'
//! hit counts. Without function probes the report says "not measured" with
//! the recorder's reason, never 0. Rendering is in `text/function_timing.rs`
//! and `json.rs`.

use reaper_common::context::Context;

use super::model::{
    Bucket, CallsNotTimed, EpisodeExact, EpisodeTiming, ExactRow, ExactTable, FunctionTimingReport,
    Histogram, OrderCount, OrderEvidence, OrderUnknown, ProbeHits, ReaperOrder,
};
use crate::model::{ConceptId, Episode, FunctionTime, FunctionTiming, Run, VmaOrderSeen};

/// Concepts whose latency histograms are printed.
const HISTOGRAM_CONCEPTS: [ConceptId; 2] = [ConceptId::PteLock, ConceptId::PerVmaUnmap];
/// The function-timing part of the report.
pub fn build(run: &Run) -> FunctionTimingReport {
    let measured = run.episodes.iter().any(|e| e.function_timing.is_some());
    FunctionTimingReport {
        order: reaper_order(run),
        not_measured: (!measured).then(|| why_not_measured(run)),
        episodes: if measured {
            run.episodes
                .iter()
                .map(|e| episode_timing(run, e))
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Why function timing is missing, from the run's `not_measured`.
pub(crate) fn why_not_measured(run: &Run) -> String {
    run.not_measured
        .iter()
        .find(|n| n.subject.is_function_timing())
        .map_or_else(
            || "no function probe attached".to_owned(),
            |n| n.why.clone(),
        )
}

/// The reaper's VMA order in one episode (mrelease caller first).
fn episode_order(episode: &Episode) -> Option<(&VmaOrderSeen, Context)> {
    let timing = episode.function_timing.as_ref()?;
    Context::REAPERS.iter().find_map(|&c| {
        timing
            .vma_orders
            .iter()
            .find(|o| o.context == c)
            .map(|o| (o, c))
    })
}

fn evidence((o, context): (&VmaOrderSeen, Context)) -> OrderEvidence {
    OrderEvidence {
        vmas: o.vmas,
        first: o.first,
        last: o.last,
        function: o.function.clone(),
        context,
    }
}

/// The reaper's VMA order over the run's episodes.
fn reaper_order(run: &Run) -> ReaperOrder {
    let orders: Vec<(&VmaOrderSeen, Context)> =
        run.episodes.iter().filter_map(episode_order).collect();
    let Some(&first) = orders.first() else {
        let measured = run.episodes.iter().any(|e| e.function_timing.is_some());
        return ReaperOrder::Unknown {
            why: if measured {
                OrderUnknown::ReaperUnmapNotSeen
            } else {
                OrderUnknown::NoFunctionProbes
            },
        };
    };
    if orders.iter().all(|(o, _)| o.order == first.0.order) {
        return ReaperOrder::Same {
            order: first.0.order,
            seen_in: orders.len(),
            episodes: run.episodes.len(),
            evidence: evidence(first),
        };
    }
    let mut counts: Vec<OrderCount> = Vec::new();
    for (o, _) in &orders {
        match counts.iter_mut().find(|c| c.order == o.order) {
            Some(c) => c.episodes += 1,
            None => counts.push(OrderCount {
                order: o.order,
                episodes: 1,
            }),
        }
    }
    ReaperOrder::Differs {
        counts,
        evidence: evidence(first),
    }
}

/// One episode's function timing.
fn episode_timing(run: &Run, episode: &Episode) -> EpisodeTiming {
    EpisodeTiming {
        index: episode.index,
        exact: episode.function_timing.as_ref().map(|timing| EpisodeExact {
            tables: exact_tables(episode, timing),
            histograms: timing
                .functions
                .iter()
                .filter(|f| HISTOGRAM_CONCEPTS.contains(&f.concept))
                .filter_map(histogram)
                .collect(),
            probe_hits: timing
                .probe_hits
                .iter()
                .map(|(symbol, &hits)| ProbeHits {
                    symbol: symbol.clone(),
                    hits,
                })
                .collect(),
            calls_not_timed: timing
                .losses
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(reason, &calls)| CallsNotTimed {
                    reason: reason.clone(),
                    calls,
                })
                .collect(),
            probe_overhead: super::probe_cost::overhead(run, episode),
        }),
    }
}

/// One table per run of consecutive functions of the same context, in
/// recorded order (the recorder groups them by context).
fn exact_tables(episode: &Episode, timing: &FunctionTiming) -> Vec<ExactTable> {
    let mut contexts: Vec<Context> = timing.functions.iter().map(|f| f.context).collect();
    contexts.dedup();
    contexts
        .into_iter()
        .map(|context| {
            let rows = timing
                .functions
                .iter()
                .filter(|f| f.context == context)
                .map(|f| exact_row(episode, context, f))
                .collect();
            ExactTable { context, rows }
        })
        .collect()
}

fn exact_row(episode: &Episode, context: Context, f: &FunctionTime) -> ExactRow {
    ExactRow {
        symbol: f.symbol.clone(),
        concept: f.concept,
        mode: f.mode,
        sampled_period_ns: super::stacks::sampled_ns(episode, context, &f.symbol),
        exact_period_ns: f.total_ns,
        calls: f.calls,
        mean_ns: f.total_ns.checked_div(f.calls).unwrap_or(0),
        max_ns: f.max_ns,
    }
}

/// A function's log2 histogram from its first non-empty bucket; `None` for
/// a context reaper does not know.
fn histogram(f: &FunctionTime) -> Option<Histogram> {
    let first = f.hist_log2_ns.iter().position(|&c| c > 0).unwrap_or(0);
    Some(Histogram {
        context: f.context,
        symbol: f.symbol.clone(),
        concept: f.concept,
        mode: f.mode,
        calls: f.calls,
        buckets: f
            .hist_log2_ns
            .iter()
            .enumerate()
            .skip(first)
            .map(|(i, &count)| Bucket {
                low_ns: match i {
                    0 => 0,
                    _ => 1u64.checked_shl(i as u32).unwrap_or(u64::MAX),
                },
                high_ns: 1u64.checked_shl(i as u32 + 1).map_or(u64::MAX, |b| b - 1),
                count,
            })
            .collect(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{NotMeasured, VmaOrderKind};

    /// A one-episode run from the report fixtures, with `timing` and the
    /// recorder's reason for missing function probes.
    pub(crate) fn run_with(timing: Option<FunctionTiming>) -> Run {
        let text = std::fs::read_to_string(format!(
            "{}/tests/data/report/6.18-mrelease.run.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut run: Run = serde_json::from_str(&text).unwrap();
        run.episodes.truncate(1);
        run.episodes[0].function_timing = timing;
        run.not_measured.push(NotMeasured {
            subject: "exact per-function timing (calls, inclusive ns, histograms)".into(),
            why: "fentry load: BPF_PROG_LOAD refused [EPERM 1]".into(),
        });
        run
    }

    /// One timed per-VMA unmap function in the mrelease caller.
    pub(crate) fn timing() -> FunctionTiming {
        FunctionTiming {
            functions: vec![FunctionTime {
                context: Context::MreleaseCaller,
                concept: ConceptId::PerVmaUnmap,
                symbol: "zap_vma_for_reaping".into(),
                mode: crate::model::AttachMode::Fentry,
                calls: 3,
                total_ns: 3_000_000,
                max_ns: 1_500_000,
                hist_log2_ns: vec![0, 0, 1, 2],
            }],
            vma_orders: vec![VmaOrderSeen {
                context: Context::MreleaseCaller,
                function: "zap_vma_for_reaping".into(),
                order: VmaOrderKind::Reverse,
                vmas: 64,
                first: 0x7f00_0000_0000,
                last: 0x5500_0000_0000,
                forward_steps: 0,
                reverse_steps: 63,
                addresses: vec![],
            }],
            probe_hits: BTreeMap::from([("zap_vma_for_reaping".to_owned(), 70)]),
            losses: BTreeMap::from([("fn_stack_full".to_owned(), 0)]),
            ..FunctionTiming::default()
        }
    }

    /// A recorded run under `tests/data/function_timing/`.
    pub(crate) fn real(name: &str) -> Run {
        let path = format!(
            "{}/tests/data/function_timing/{name}.run.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
    }

    #[test]
    fn without_probes_the_whole_part_is_not_measured_with_the_recorders_reason() {
        let t = build(&run_with(None));
        assert_eq!(
            t.order,
            ReaperOrder::Unknown {
                why: OrderUnknown::NoFunctionProbes
            }
        );
        assert_eq!(
            t.not_measured.as_deref(),
            Some("fentry load: BPF_PROG_LOAD refused [EPERM 1]")
        );
        assert!(t.episodes.is_empty());
    }

    #[test]
    fn with_probes_it_holds_order_exact_rows_histogram_and_hits() {
        let t = build(&run_with(Some(timing())));
        assert_eq!(t.not_measured, None);
        let ReaperOrder::Same {
            order,
            seen_in,
            episodes,
            evidence,
        } = &t.order
        else {
            panic!("{:?}", t.order);
        };
        assert_eq!((*order, *seen_in, *episodes), (VmaOrderKind::Reverse, 1, 1));
        assert_eq!(evidence.context, Context::MreleaseCaller);
        assert_eq!(evidence.vmas, 64);
        let exact = t.episodes[0].exact.as_ref().unwrap();
        assert_eq!(exact.tables.len(), 1);
        assert_eq!(exact.tables[0].context, Context::MreleaseCaller);
        let row = &exact.tables[0].rows[0];
        assert_eq!(row.exact_period_ns, 3_000_000);
        assert_eq!(row.mean_ns, 1_000_000);
        assert_eq!(row.max_ns, 1_500_000);
        // The fixture has samples of the mrelease caller, none of them in
        // zap_vma_for_reaping: measured, and 0.
        assert_eq!(row.sampled_period_ns, Some(0));
        let h = &exact.histograms[0];
        assert_eq!(
            h.buckets,
            [
                Bucket {
                    low_ns: 4,
                    high_ns: 7,
                    count: 1
                },
                Bucket {
                    low_ns: 8,
                    high_ns: 15,
                    count: 2
                }
            ]
        );
        assert_eq!(
            exact.probe_hits,
            [ProbeHits {
                symbol: "zap_vma_for_reaping".into(),
                hits: 70
            }]
        );
        assert!(exact.calls_not_timed.is_empty(), "zero losses are left out");
    }

    #[test]
    fn an_episode_without_timing_is_not_measured_beside_one_with_it() {
        let mut run = run_with(Some(timing()));
        let mut second = run.episodes[0].clone();
        second.index = 1;
        second.function_timing = None;
        run.episodes.push(second);
        let t = build(&run);
        assert!(t.episodes[0].exact.is_some());
        assert_eq!(t.episodes[1].index, 1);
        assert!(t.episodes[1].exact.is_none());
    }

    #[test]
    fn differing_orders_are_counted_by_first_appearance() {
        let mut run = run_with(Some(timing()));
        for (index, order) in [(1, VmaOrderKind::Forward), (2, VmaOrderKind::Reverse)] {
            let mut e = run.episodes[0].clone();
            e.index = index;
            e.function_timing.as_mut().unwrap().vma_orders[0].order = order;
            run.episodes.push(e);
        }
        let ReaperOrder::Differs { counts, evidence } = build(&run).order else {
            panic!("orders differ");
        };
        let counts: Vec<(VmaOrderKind, usize)> =
            counts.iter().map(|c| (c.order, c.episodes)).collect();
        assert_eq!(
            counts,
            [(VmaOrderKind::Reverse, 2), (VmaOrderKind::Forward, 1)]
        );
        assert_eq!(evidence.first, 0x7f00_0000_0000);
    }

    #[test]
    fn the_mrelease_caller_order_is_preferred_over_the_oom_reapers() {
        let mut t = timing();
        let mut reaper = t.vma_orders[0].clone();
        reaper.context = Context::OomReaper;
        reaper.order = VmaOrderKind::Forward;
        t.vma_orders.insert(0, reaper);
        let ReaperOrder::Same {
            order, evidence, ..
        } = build(&run_with(Some(t))).order
        else {
            panic!("one episode");
        };
        assert_eq!(order, VmaOrderKind::Reverse);
        assert_eq!(evidence.context, Context::MreleaseCaller);
    }

    #[test]
    fn real_sid_x86_64_run_has_tables_for_both_sides_and_pte_lock_histograms() {
        let t = build(&real("sid-x86_64"));
        assert_eq!(t.episodes.len(), 3);
        let exact = t.episodes[0].exact.as_ref().unwrap();
        let contexts: Vec<Context> = exact.tables.iter().map(|t| t.context).collect();
        assert_eq!(contexts, [Context::MreleaseCaller, Context::VictimExit]);
        assert!(
            exact
                .histograms
                .iter()
                .any(|h| h.symbol == "pte_offset_map_lock" && h.context == Context::MreleaseCaller)
        );
    }

    #[test]
    fn a_histogram_beyond_64_buckets_does_not_overflow() {
        let mut t = timing();
        t.functions[0].hist_log2_ns = vec![1; 66];
        let h = &build(&run_with(Some(t))).episodes[0]
            .exact
            .clone()
            .unwrap()
            .histograms[0];
        assert_eq!(h.buckets[62].high_ns, u64::MAX >> 1);
        assert_eq!(h.buckets[63].high_ns, u64::MAX);
        assert_eq!(h.buckets[65].low_ns, u64::MAX);
    }
}
