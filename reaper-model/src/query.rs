//! Questions readers ask of a run file (xtask's VM checks and benchmark,
//! `reaper diff`, the integration tests), answered here once so that no
//! reader compares the model's contexts or probe outcomes itself.

use crate::{
    AttachMode, CallEdge, ConceptId, ContextProfile, Episode, FunctionProbe, FunctionTime,
    FunctionTiming, ProbeOutcome, ProbeUse, Run, Scenario, VmaOrderSeen,
};

pub use crate::Context;
/// Prefix of the `recording.probes` entries of function probes
/// (`function:SYMBOL`, or `function:CONCEPT` when the kernel has none).
pub const FUNCTION_PROBE_PREFIX: &str = "function:";

/// A model value that belongs to one context.
pub trait InContext {
    /// The context it belongs to.
    fn context(&self) -> Context;

    /// Whether it belongs to `context`.
    fn is_in(&self, context: Context) -> bool {
        self.context() == context
    }

    /// Whether it belongs to a reaper side (a `process_mrelease` caller or
    /// the oom_reaper), as opposed to the dying victim.
    fn is_reaper_side(&self) -> bool {
        self.context().is_reaper()
    }
}

macro_rules! in_context {
    ($($t:ty),*) => {$(
        impl InContext for $t {
            fn context(&self) -> Context {
                self.context
            }
        }
    )*};
}
in_context!(ContextProfile, FunctionTime, CallEdge, VmaOrderSeen);

impl Scenario {
    /// The description as comparisons name it: runs recorded before
    /// 2026-12-05 said "victim victim 1G,..." for a synthetic victim, read
    /// here as the "victim 1G,..." later runs say, so an old baseline and a
    /// new candidate of the same scenario do not differ by a typo.
    pub fn label(&self) -> &str {
        let d = self.description.as_str();
        match d.strip_prefix("victim ") {
            Some(rest) if rest.starts_with("victim ") => rest,
            _ => d,
        }
    }
}

impl ProbeUse {
    /// Whether the probe group attached.
    pub fn attached(&self) -> bool {
        self.status.is_attached()
    }

    /// Whether it says it did not attach (attach mode "none").
    pub fn not_attached(&self) -> bool {
        self.mode == AttachMode::None
    }

    /// For a function probe, its function (or concept, when the kernel has
    /// no function for it); `None` for the other probe groups.
    pub fn function(&self) -> Option<&str> {
        self.probe.strip_prefix(FUNCTION_PROBE_PREFIX)
    }
}

impl FunctionProbe {
    /// Whether the function got a probe (any rung of the ladder).
    pub fn attached(&self) -> bool {
        self.mode != AttachMode::None
    }
}

impl Run {
    /// Why record chose not to time a concept's function (`--exact-locks`
    /// and the like name the flag), from `function_probes`; `None` when it
    /// was timed, refused or absent. Skipped concepts carry no symbol.
    pub fn not_timed_why(&self, concept: ConceptId) -> Option<&str> {
        self.function_probes
            .iter()
            .find(|p| p.concept == concept)
            .and_then(|p| match &p.status {
                ProbeOutcome::NotTimed(why) => Some(why.as_str()),
                _ => None,
            })
    }

    /// The `recording.probes` entries of function probes.
    pub fn function_probe_uses(&self) -> impl Iterator<Item = &ProbeUse> {
        self.recording
            .probes
            .iter()
            .filter(|p| p.function().is_some())
    }

    /// The episode whose victim is `pid`.
    pub fn episode_of(&self, pid: u32) -> Option<&Episode> {
        self.episodes.iter().find(|e| e.victim.pid == pid)
    }
}

impl Episode {
    /// The profile of `context`, when it was tracked in this episode.
    pub fn context(&self, context: Context) -> Option<&ContextProfile> {
        self.contexts.iter().find(|c| c.is_in(context))
    }

    /// Whether `process_mrelease` returned 0, i.e. the reaper side worked.
    pub fn mrelease_succeeded(&self) -> bool {
        self.latencies.mrelease_ret == Some(0)
    }

    /// When the teardown ended, ns after t = 0: the last of `exit_mmap`
    /// done, `process_mrelease` done and the oom_reaper's finish; `None`
    /// when none was seen.
    pub fn teardown_end_ns(&self) -> Option<u64> {
        let l = &self.latencies;
        let oom_done = self
            .timeline
            .iter()
            .find(|e| e.kind == reaper_common::timeline::TimelineKind::OomFinishReaping)
            .and_then(|e| u64::try_from(e.t_ns).ok());
        [
            l.kill_to_exit_mmap_done_ns,
            l.kill_to_mrelease_done_ns,
            oom_done,
        ]
        .into_iter()
        .flatten()
        .max()
    }
}

impl ContextProfile {
    /// Samples (and their summed period, ns) of the stacks holding `frame`.
    pub fn under(&self, frame: &str) -> (u64, u64) {
        self.stacks
            .iter()
            .filter(|s| s.frames.iter().any(|f| f == frame))
            .fold((0, 0), |(n, ns), s| (n + s.samples, ns + s.period_ns))
    }
}

impl FunctionTiming {
    /// The VMA order seen in `context`, when recorded.
    pub fn vma_order(&self, context: Context) -> Option<&VmaOrderSeen> {
        self.vma_orders.iter().find(|o| o.is_in(context))
    }

    /// The reaper's VMA order (the first reaper-side context's).
    pub fn reaper_vma_order(&self) -> Option<&VmaOrderSeen> {
        self.vma_orders.iter().find(|o| o.is_reaper_side())
    }

    /// `symbol`'s row in `context`.
    pub fn function(&self, context: Context, symbol: &str) -> Option<&FunctionTime> {
        self.functions
            .iter()
            .find(|f| f.context == context && f.symbol == symbol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProbeOutcome, VmaOrderKind};

    fn order(context: Context, order: VmaOrderKind) -> VmaOrderSeen {
        VmaOrderSeen {
            context,
            function: "zap_vma_for_reaping".into(),
            order,
            vmas: 64,
            first: 2,
            last: 1,
            forward_steps: 0,
            reverse_steps: 63,
            addresses: Vec::new(),
        }
    }

    #[test]
    fn an_old_runs_doubled_victim_reads_as_a_new_runs() {
        let scenario = |description: &str| Scenario {
            kind: crate::ScenarioKind::Victim,
            description: description.into(),
            victim_bytes: None,
            vmas: None,
            threads: None,
            mrelease: true,
            mrelease_unavailable: None,
            runs: 1,
        };
        let old = scenario("victim victim 1G,vmas=64,threads=4 + process_mrelease");
        let new = scenario("victim 1G,vmas=64,threads=4 + process_mrelease");
        assert_eq!(old.label(), new.label());
        assert_eq!(new.label(), new.description);
        assert_eq!(scenario("pid 812").label(), "pid 812");
    }

    #[test]
    fn reaper_side_orders_are_found_by_context() {
        let timing = FunctionTiming {
            vma_orders: vec![
                order(Context::VictimExit, VmaOrderKind::Forward),
                order(Context::OomReaper, VmaOrderKind::Reverse),
            ],
            ..FunctionTiming::default()
        };
        assert_eq!(
            timing.reaper_vma_order().unwrap().order,
            VmaOrderKind::Reverse
        );
        assert_eq!(
            timing.vma_order(Context::VictimExit).unwrap().order,
            VmaOrderKind::Forward
        );
        assert!(timing.vma_order(Context::MreleaseCaller).is_none());
    }

    #[test]
    fn function_probes_are_told_apart_from_other_groups() {
        let p = |probe: &str, mode: AttachMode, status: ProbeOutcome| ProbeUse {
            probe: probe.into(),
            mode,
            status,
            fallback_from: None,
        };
        let sampling = p("sampling", AttachMode::PerfEvent, ProbeOutcome::Attached);
        let reap = p(
            "function:__oom_reap_task_mm",
            AttachMode::Fentry,
            ProbeOutcome::Attached,
        );
        let loop_ = p(
            "function:reaper_kthread",
            AttachMode::None,
            ProbeOutcome::not_timed("loop"),
        );
        assert_eq!(sampling.function(), None);
        assert_eq!(reap.function(), Some("__oom_reap_task_mm"));
        assert!(reap.attached() && !reap.not_attached());
        assert!(!loop_.attached() && loop_.not_attached());
    }
}
