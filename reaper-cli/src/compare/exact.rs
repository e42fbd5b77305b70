//! Exact per-function timing (fentry/fexit or kprobes), where a run has it.
//!
//! Run files carry it per episode as [`FunctionTiming`]: one
//! [`FunctionTime`] per context × function. An episode without it
//! contributes nothing, and a (context, function) pair missing from an
//! episode that has it was not called (0 ns). Rows are matched by catalog
//! concept, so differently named functions of two kernels line up.
//!
//! The attach modes and the reaper's VMA order are facts of the run, read
//! from every episode (and the run's probe list); the timings come only
//! from the episodes the exact scope may use ([`super::clean`]).

use std::collections::BTreeMap;

use super::clean::{Coverage, LossPolicy, Scope, exclusion};
use super::load::RunSet;
use crate::model::{AttachMode, FunctionTime, FunctionTiming, ProbeOutcome};

/// One side's exact timing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExactTiming {
    /// Episodes whose timing the series hold.
    pub episodes: usize,
    /// Episodes used, left out, and without function timing.
    pub coverage: Coverage,
    /// Episodes that carry function timing, used or not.
    pub with_timing: usize,
    /// Inclusive time per (context, concept), ms, one value per such
    /// episode.
    pub series: BTreeMap<(String, String), Vec<f64>>,
    /// The symbols seen per key (the kernel's functions for the concept).
    pub symbols: BTreeMap<(String, String), Vec<String>>,
    /// The run (index into the set's runs) of each value of every series.
    pub run_of: Vec<usize>,
    /// Attach modes of the function probes ("fentry", "kprobe"), distinct:
    /// the run's attached probes and every episode's timed functions.
    pub modes: Vec<String>,
    /// The reaper's VMA traversal order ("forward", "reverse", "mixed") and
    /// in how many episodes it was seen, from `function_timing.vma_orders`
    /// of the reaper contexts of every episode.
    pub reaper_orders: BTreeMap<String, usize>,
}

/// A timed function's series key: its context and catalog concept.
fn key(f: &FunctionTime) -> (String, String) {
    (f.context.name().to_owned(), f.concept.name().to_owned())
}

fn add_mode(modes: &mut Vec<String>, mode: AttachMode) {
    if mode != AttachMode::None && !modes.iter().any(|m| m == mode.name()) {
        modes.push(mode.name().to_owned());
    }
}

/// Exact timing over a run set: facts from every episode, timings from the
/// episodes the exact scope may use under `policy`.
pub fn exact(set: &RunSet, policy: &LossPolicy) -> ExactTiming {
    let mut timing = ExactTiming::default();
    let mut per_episode: Vec<BTreeMap<(String, String), f64>> = Vec::new();
    for (run_index, loaded) in set.runs.iter().enumerate() {
        for probe in &loaded.run.function_probes {
            if probe.status == ProbeOutcome::Attached {
                add_mode(&mut timing.modes, probe.mode);
            }
        }
        for episode in &loaded.run.episodes {
            let episode_timing = episode.function_timing.as_ref();
            if let Some(t) = episode_timing {
                timing.add_facts(t);
            }
            let outcome = exclusion(episode, Scope::Exact, policy);
            timing.coverage.add(outcome, episode_timing.is_some());
            let (None, Some(t)) = (outcome, episode_timing) else {
                continue;
            };
            per_episode.push(timing.episode_times(t));
            timing.run_of.push(run_index);
        }
    }
    timing.episodes = per_episode.len();
    timing.fill_series(&per_episode);
    timing
}

impl ExactTiming {
    /// Counts an episode with function timing `t`: its reaper VMA order and
    /// the attach modes of its timed functions.
    fn add_facts(&mut self, t: &FunctionTiming) {
        self.with_timing += 1;
        if let Some(seen) = t.reaper_vma_order() {
            *self
                .reaper_orders
                .entry(seen.order.name().to_owned())
                .or_default() += 1;
        }
        for f in &t.functions {
            add_mode(&mut self.modes, f.mode);
        }
    }

    /// A used episode's inclusive time per key, ns; its symbols are noted
    /// per key.
    fn episode_times(&mut self, t: &FunctionTiming) -> BTreeMap<(String, String), f64> {
        let mut map = BTreeMap::new();
        for f in &t.functions {
            let seen = self.symbols.entry(key(f)).or_default();
            if !seen.contains(&f.symbol) {
                seen.push(f.symbol.clone());
            }
            *map.entry(key(f)).or_insert(0.0) += f.total_ns as f64;
        }
        map
    }

    /// One series per key any used episode has, ms, 0 where an episode
    /// lacks the key.
    fn fill_series(&mut self, per_episode: &[BTreeMap<(String, String), f64>]) {
        let keys: Vec<(String, String)> =
            per_episode.iter().flat_map(|m| m.keys().cloned()).collect();
        for key in keys {
            if self.series.contains_key(&key) {
                continue;
            }
            let values = per_episode
                .iter()
                .map(|m| m.get(&key).copied().unwrap_or(0.0) / 1e6)
                .collect();
            self.series.insert(key, values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::load::LoadedRun;
    use crate::compare::synth::{self, Spec, factors};
    use crate::model::{
        AttachMode, ConceptId, Context, FunctionTiming, Run, VmaOrderKind, VmaOrderSeen,
    };

    fn timed(context: Context, concept: ConceptId, symbol: &str, total_ns: u64) -> FunctionTime {
        FunctionTime {
            context,
            concept,
            symbol: symbol.into(),
            mode: AttachMode::Fentry,
            calls: 1,
            total_ns,
            max_ns: total_ns,
            hist_log2_ns: Vec::new(),
        }
    }

    fn order(context: Context, order: VmaOrderKind) -> VmaOrderSeen {
        VmaOrderSeen {
            context,
            function: "zap_vma_for_reaping".into(),
            order,
            vmas: 64,
            first: 1,
            last: 2,
            forward_steps: 0,
            reverse_steps: 63,
            addresses: Vec::new(),
        }
    }

    /// Two clean episodes of a synthetic run, with the given timings.
    fn set(timings: [Option<FunctionTiming>; 2]) -> RunSet {
        let raw = synth::run(&Spec::new(factors(2, 1.0, 0.0, 1)));
        let mut run: Run = serde_json::from_value(raw).unwrap();
        for (episode, timing) in run.episodes.iter_mut().zip(timings) {
            episode.function_timing = timing;
        }
        RunSet {
            path: "a".into(),
            runs: vec![LoadedRun {
                path: "a/run.json".into(),
                run,
            }],
        }
    }

    #[test]
    fn series_are_keyed_by_concept_and_missing_calls_are_zero() {
        let first = FunctionTiming {
            functions: vec![
                timed(
                    Context::MreleaseCaller,
                    ConceptId::PerVmaUnmap,
                    "zap_vma_for_reaping",
                    2_000_000,
                ),
                timed(
                    Context::VictimExit,
                    ConceptId::PerVmaUnmap,
                    "unmap_page_range",
                    5_000_000,
                ),
            ],
            vma_orders: vec![order(Context::MreleaseCaller, VmaOrderKind::Reverse)],
            ..FunctionTiming::default()
        };
        let second = FunctionTiming {
            functions: vec![timed(
                Context::MreleaseCaller,
                ConceptId::PerVmaUnmap,
                "unmap_page_range",
                3_000_000,
            )],
            ..FunctionTiming::default()
        };
        let t = exact(&set([Some(first), Some(second)]), &LossPolicy::default());
        assert_eq!(t.episodes, 2);
        assert_eq!(t.run_of, [0, 0]);
        assert_eq!(t.modes, ["fentry"]);
        assert_eq!(t.reaper_orders, BTreeMap::from([("reverse".into(), 1)]));
        let reaper = ("mrelease_caller".to_owned(), "per_vma_unmap".to_owned());
        let victim = ("victim_exit".to_owned(), "per_vma_unmap".to_owned());
        assert_eq!(t.series[&reaper], [2.0, 3.0]);
        assert_eq!(t.series[&victim], [5.0, 0.0]);
        assert_eq!(
            t.symbols[&reaper],
            ["zap_vma_for_reaping", "unmap_page_range"]
        );
    }

    #[test]
    fn episodes_without_timing_contribute_nothing() {
        let t = exact(&set([None, None]), &LossPolicy::default());
        assert_eq!(t.episodes, 0);
        assert!(t.series.is_empty() && t.modes.is_empty());
        assert_eq!((t.coverage.episodes, t.coverage.not_measured), (2, 2));
    }
}
