//! Which episodes each compared figure may use: a loss removes an episode
//! only from the figures it can bias.
//!
//! Every figure belongs to a [`Scope`]: the sampled rows, tables and flame
//! graphs; the traced lock waits; the timeline's latencies; exact function
//! timing. An episode is left out of a scope ([`exclusion`]) when
//! - its `process_mrelease` lost the race ([`Episode::lost_race`]: no
//!   reaper-side work to measure), or it was cut short (`partial`): every
//!   scope;
//! - a task reaper should have followed was not tracked (`tracked_full`), or
//!   a loss this build does not know (an unknown counter or userspace loss,
//!   a newer recorder's) was counted: every scope, since nothing says which
//!   figures it touched;
//! - sampled: more than `--max-stack-loss` percent of its samples had no
//!   kernel stack (`sample_stack_lost` of `samples_tracked`: such a sample
//!   lands in no function, so every sampled figure undercounts by at most
//!   that fraction), samples were dropped (`sample_counts_full`), or stacks
//!   could not be symbolized;
//! - traced lock waits: waits or their stacks were lost;
//! - latencies: timeline events were lost (a full ring, unparsable records);
//! - exact timing: calls went untimed (`fn_*` counters other than
//!   `fn_vma_read_failed`, which only hides the VMA order).
//!
//! Probe runs the kernel skipped (`Episode::skipped_probe_runs`: a probe
//! that fired while its program was already running on that CPU) are
//! reported as losses by `report` and `diff` but do not exclude an episode:
//! the kernel counts them for every task, not only the episode's, and does
//! not say whose run it skipped (sid 7.2 VMs skip 0–3 `sched_process_exit`
//! runs in some episodes); where one hid a tracked call's entry or exit,
//! function timing's unmatched-call counters show it, and exact timing
//! leaves the episode out.
//!
//! The first matching reason is the one counted, in the order of
//! [`Exclusion`].

use serde::Serialize;

use reaper_common::loss::Counter;

use crate::model::Episode;
use crate::report::model::RowId;

/// Default `--max-stack-loss`, percent of an episode's samples. The real run
/// files the project holds, recorded with the sampler of 2026-11/12 (before
/// the stack map stopped refusing stacks on a bucket collision), lost 0.04–
/// 2.6% of their samples' stacks per episode (the VM fixtures and
/// `tests/data/function_timing`: 17 of 1,909, 50 of 1,898, 96 of 17,616);
/// today's build lost none where measured. At 3% every such episode keeps
/// its sampled figures, and a side's sampled figures lack at most 3% of
/// their time: below the smallest default gate threshold (5%), so stack
/// loss alone cannot cross it.
pub const DEFAULT_MAX_STACK_LOSS_PCT: f64 = 3.0;

/// How losses are judged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LossPolicy {
    /// Largest share of an episode's samples without a kernel stack, percent,
    /// for which its sampled figures are still used.
    pub max_stack_loss_pct: f64,
}

impl Default for LossPolicy {
    fn default() -> Self {
        Self {
            max_stack_loss_pct: DEFAULT_MAX_STACK_LOSS_PCT,
        }
    }
}

/// The figures that one kind of loss biases.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// cpu-clock samples: totals, sampled PTE-lock wait, rmap time, the
    /// per-context function tables and the flame graphs.
    Sampled,
    /// The `lock:contention_*` waits.
    LockTraced,
    /// The timeline's latencies (kill → mrelease done, kill → exit_mmap done).
    Latency,
    /// Exact function timing (fentry/fexit or kprobes).
    Exact,
}

impl Scope {
    /// The scope of a summary row.
    pub fn of_row(row: RowId) -> Self {
        match row {
            RowId::Total | RowId::PteLockWait | RowId::Rmap => Self::Sampled,
            RowId::PteTracedWait => Self::LockTraced,
            RowId::PteLockWaitExact => Self::Exact,
            RowId::KillToReap | RowId::KillToExitMmap => Self::Latency,
        }
    }

    /// For people: "sampled", "latency", ...
    pub fn label(self) -> &'static str {
        match self {
            Self::Sampled => "sampled",
            Self::LockTraced => "traced-lock",
            Self::Latency => "latency",
            Self::Exact => "exact",
        }
    }
}

/// Why an episode is left out of a scope, in the order the reasons are
/// checked.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// `process_mrelease` returned ESRCH (every scope).
    LostRace,
    /// The episode was cut short (every scope).
    Partial,
    /// A task reaper should follow was not tracked (every scope).
    TasksUntracked,
    /// A loss counter this build does not know (every scope).
    UnknownLoss,
    /// Too many samples without a stack (sampled).
    StackLoss,
    /// Samples dropped from a full map (sampled).
    SamplesDropped,
    /// Stacks could not be symbolized (sampled, traced locks).
    Unsymbolized,
    /// Lock waits or their stacks lost (traced locks).
    LockWaitsLost,
    /// Timeline events lost (latencies).
    TimelineLost,
    /// Function calls not timed (exact).
    UntimedCalls,
}

impl Exclusion {
    /// For people, e.g. "lost race", "stack loss over 3%".
    pub fn label(self, policy: &LossPolicy) -> String {
        match self {
            Self::LostRace => "lost race".to_owned(),
            Self::Partial => "partial".to_owned(),
            Self::TasksUntracked => "tasks untracked".to_owned(),
            Self::UnknownLoss => "unknown loss".to_owned(),
            Self::StackLoss => format!("stack loss over {}%", policy.max_stack_loss_pct),
            Self::SamplesDropped => "samples dropped".to_owned(),
            Self::Unsymbolized => "stacks unsymbolized".to_owned(),
            Self::LockWaitsLost => "lock waits lost".to_owned(),
            Self::TimelineLost => "timeline events lost".to_owned(),
            Self::UntimedCalls => "calls not timed".to_owned(),
        }
    }
}

/// The scopes one kernel loss counter biases; `None` for a hit counter.
fn counter_scopes(counter: Counter) -> Option<(Exclusion, &'static [Scope])> {
    use Scope::*;
    Some(match counter {
        Counter::SampleStackLost => (Exclusion::StackLoss, &[Sampled]),
        Counter::SampleCountsFull => (Exclusion::SamplesDropped, &[Sampled]),
        Counter::LockPendingFull | Counter::LockWaitsFull | Counter::LockStackLost => {
            (Exclusion::LockWaitsLost, &[LockTraced])
        }
        Counter::TimelineRingFull => (Exclusion::TimelineLost, &[Latency]),
        Counter::TrackedFull => (
            Exclusion::TasksUntracked,
            &[Sampled, LockTraced, Latency, Exact],
        ),
        // Biases only the reclaim figures (bytes freed per context), which
        // diff and gate do not compare.
        Counter::RssFreedFull => (Exclusion::UnknownLoss, &[]),
        Counter::SamplesTracked | Counter::LockBeginTracked | Counter::TimelineEvents => {
            return None;
        }
    })
}

/// The scopes a userspace loss (by the recorder's name) biases.
fn user_loss_scopes(name: &str) -> (Exclusion, &'static [Scope]) {
    use Scope::*;
    match name {
        "timeline_malformed" => (Exclusion::TimelineLost, &[Latency]),
        "stacks_unsymbolized" => (Exclusion::Unsymbolized, &[Sampled, LockTraced]),
        "lock_waits_unfinished" => (Exclusion::LockWaitsLost, &[LockTraced]),
        _ => (
            Exclusion::UnknownLoss,
            &[Sampled, LockTraced, Latency, Exact],
        ),
    }
}

/// Function-timing loss counters that do not bias timing: a VMA whose start
/// could not be read hides the reaper's order, not a call's time.
const FN_ORDER_ONLY: &[&str] = &["fn_vma_read_failed"];

/// Samples and samples without a kernel stack in one episode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackLoss {
    /// Samples taken on tracked tasks.
    pub samples: u64,
    /// Of those, samples whose stack was lost.
    pub lost: u64,
}

impl StackLoss {
    /// The episode's counters.
    pub fn of(e: &Episode) -> Self {
        let get = |c: Counter| e.counters.get(c.name()).copied().unwrap_or(0);
        Self {
            samples: get(Counter::SamplesTracked),
            lost: get(Counter::SampleStackLost),
        }
    }

    /// Lost share, percent (100 when stacks were lost and no sample counted).
    pub fn pct(&self) -> f64 {
        match (self.lost, self.samples) {
            (0, _) => 0.0,
            (_, 0) => 100.0,
            (lost, samples) => lost as f64 / samples as f64 * 100.0,
        }
    }
}

/// Why `e` is left out of `scope`, or `None` when it is used.
pub fn exclusion(e: &Episode, scope: Scope, policy: &LossPolicy) -> Option<Exclusion> {
    if e.lost_race() {
        return Some(Exclusion::LostRace);
    }
    if e.partial {
        return Some(Exclusion::Partial);
    }
    let mut found: Option<Exclusion> = None;
    let mut note = |reason: Exclusion| {
        found = Some(found.map_or(reason, |f| f.min(reason)));
    };
    for (name, &value) in &e.counters {
        if value == 0 {
            continue;
        }
        let Some(counter) = Counter::from_name(name) else {
            note(Exclusion::UnknownLoss);
            continue;
        };
        let Some((reason, scopes)) = counter_scopes(counter) else {
            continue;
        };
        if !scopes.contains(&scope) {
            continue;
        }
        if reason == Exclusion::StackLoss && StackLoss::of(e).pct() <= policy.max_stack_loss_pct {
            continue;
        }
        note(reason);
    }
    for (name, &value) in &e.user_losses {
        let (reason, scopes) = user_loss_scopes(name);
        if value > 0 && scopes.contains(&scope) {
            note(reason);
        }
    }
    if scope == Scope::Exact
        && let Some(timing) = &e.function_timing
        && timing
            .losses
            .iter()
            .any(|(name, &v)| v > 0 && !FN_ORDER_ONLY.contains(&name.as_str()))
    {
        note(Exclusion::UntimedCalls);
    }
    found
}

/// Episodes left out for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LeftOut {
    /// Why.
    pub reason: Exclusion,
    /// How many episodes.
    pub episodes: usize,
}

/// How many of a side's episodes one figure used, and why not the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Coverage {
    /// Episodes on the side.
    pub episodes: usize,
    /// Episodes whose value the figure used.
    pub used: usize,
    /// Episodes left out by a loss or a lost race, by reason.
    pub left_out: Vec<LeftOut>,
    /// Episodes that kept their data but did not measure this figure (a
    /// missing event, no function timing, no split).
    pub not_measured: usize,
}

impl Coverage {
    /// `episodes` episodes, all used (what a comparison built from values
    /// alone knows).
    pub fn all(episodes: usize) -> Self {
        Self {
            episodes,
            used: episodes,
            ..Self::default()
        }
    }

    /// Counts one episode: used, left out for `reason`, or not measured.
    pub fn add(&mut self, outcome: Option<Exclusion>, measured: bool) {
        self.episodes += 1;
        match outcome {
            Some(reason) => match self.left_out.iter_mut().find(|l| l.reason == reason) {
                Some(l) => l.episodes += 1,
                None => {
                    self.left_out.push(LeftOut {
                        reason,
                        episodes: 1,
                    });
                    self.left_out.sort_by_key(|l| l.reason);
                }
            },
            None if measured => self.used += 1,
            None => self.not_measured += 1,
        }
    }

    /// Episodes left out by losses or lost races.
    pub fn excluded(&self) -> usize {
        self.left_out.iter().map(|l| l.episodes).sum()
    }

    /// "3 of 5", with the reasons when some were left out: "3 of 5 (2 lost
    /// race)".
    pub fn text(&self, policy: &LossPolicy) -> String {
        let reasons = self.reasons(policy);
        if reasons.is_empty() {
            format!("{} of {}", self.used, self.episodes)
        } else {
            format!("{} of {} ({reasons})", self.used, self.episodes)
        }
    }

    /// "2 lost race, 1 not measured", or "" when every episode was used.
    pub fn reasons(&self, policy: &LossPolicy) -> String {
        let mut parts: Vec<String> = self
            .left_out
            .iter()
            .map(|l| format!("{} {}", l.episodes, l.reason.label(policy)))
            .collect();
        if self.not_measured > 0 {
            parts.push(format!("{} not measured", self.not_measured));
        }
        parts.join(", ")
    }
}

/// The coverage of a scope over `episodes`, where `measured` says whether an
/// episode that is not left out has the figure.
pub fn coverage<'a>(
    episodes: impl IntoIterator<Item = &'a Episode>,
    scope: Scope,
    policy: &LossPolicy,
    measured: impl Fn(&Episode) -> bool,
) -> Coverage {
    let mut c = Coverage::default();
    for e in episodes {
        let outcome = exclusion(e, scope, policy);
        c.add(outcome, outcome.is_none() && measured(e));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Context, TimelineEntry};

    fn episode() -> Episode {
        serde_json::from_value(serde_json::json!({
            "index": 0,
            "victim": { "pid": 1, "comm": "v", "rss_bytes": 1, "threads": 1, "vmas": 1 },
            "contexts": [], "timeline": [], "latencies": {}, "counters": {}, "partial": false
        }))
        .expect("a minimal episode decodes")
    }

    const ALL: [Scope; 4] = [
        Scope::Sampled,
        Scope::LockTraced,
        Scope::Latency,
        Scope::Exact,
    ];

    fn scopes_left_out(e: &Episode) -> Vec<(Scope, Exclusion)> {
        ALL.iter()
            .filter_map(|&s| exclusion(e, s, &LossPolicy::default()).map(|x| (s, x)))
            .collect()
    }

    #[test]
    fn clean_episode_is_used_everywhere() {
        assert_eq!(scopes_left_out(&episode()), []);
    }

    #[test]
    fn lost_races_and_partial_episodes_leave_every_scope() {
        let mut e = episode();
        e.marked_lost_race = true;
        assert!(
            scopes_left_out(&e)
                .iter()
                .all(|(_, x)| *x == Exclusion::LostRace)
        );
        assert_eq!(scopes_left_out(&e).len(), 4);
        let mut e = episode();
        e.latencies.mrelease_ret = Some(-3);
        assert_eq!(
            exclusion(&e, Scope::Latency, &LossPolicy::default()),
            Some(Exclusion::LostRace)
        );
        let mut e = episode();
        e.timeline.push(TimelineEntry {
            t_ns: 70_000,
            kind: reaper_common::timeline::TimelineKind::MreleaseExit.into(),
            context: Some(Context::MreleaseCaller),
            tid: 9,
            tgid: 9,
            comm: "reaper".into(),
            arg: -3,
        });
        assert_eq!(scopes_left_out(&e).len(), 4);
        e.timeline[0].arg = 0;
        assert_eq!(scopes_left_out(&e), []);
        let mut e = episode();
        e.partial = true;
        assert_eq!(
            exclusion(&e, Scope::Exact, &LossPolicy::default()),
            Some(Exclusion::Partial)
        );
    }

    /// Issue 22: one lost stack made an episode unclean for every metric,
    /// latencies included, so a whole 6.1 VM recording compared nothing.
    #[test]
    fn a_lost_stack_leaves_only_the_sampled_figures_and_only_past_the_tolerance() {
        let mut e = episode();
        e.counters.insert("samples_tracked".into(), 1909);
        e.counters.insert("sample_stack_lost".into(), 17);
        assert_eq!(scopes_left_out(&e), [], "0.9% is under the 3% default");
        let strict = LossPolicy {
            max_stack_loss_pct: 0.5,
        };
        assert_eq!(
            exclusion(&e, Scope::Sampled, &strict),
            Some(Exclusion::StackLoss)
        );
        assert_eq!(exclusion(&e, Scope::Latency, &strict), None);
        assert_eq!(exclusion(&e, Scope::Exact, &strict), None);
        e.counters.insert("sample_stack_lost".into(), 100);
        assert_eq!(
            scopes_left_out(&e),
            [(Scope::Sampled, Exclusion::StackLoss)]
        );
        assert_eq!(
            Exclusion::StackLoss.label(&LossPolicy::default()),
            "stack loss over 3%"
        );
    }

    #[test]
    fn each_loss_leaves_the_figures_it_biases() {
        let with = |name: &str| {
            let mut e = episode();
            e.counters.insert("samples_tracked".into(), 500);
            e.counters.insert(name.into(), 1);
            scopes_left_out(&e)
        };
        assert_eq!(with("timeline_events"), [], "a hit count is not a loss");
        assert_eq!(
            with("timeline_ring_full"),
            [(Scope::Latency, Exclusion::TimelineLost)]
        );
        assert_eq!(
            with("sample_counts_full"),
            [(Scope::Sampled, Exclusion::SamplesDropped)]
        );
        assert_eq!(
            with("lock_stack_lost"),
            [(Scope::LockTraced, Exclusion::LockWaitsLost)]
        );
        assert_eq!(with("tracked_full").len(), 4);
        assert!(
            with("some_future_counter")
                .iter()
                .all(|(_, x)| *x == Exclusion::UnknownLoss)
        );
        let mut e = episode();
        e.user_losses.insert("timeline_malformed".into(), 2);
        assert_eq!(
            scopes_left_out(&e),
            [(Scope::Latency, Exclusion::TimelineLost)]
        );
        let mut e = episode();
        let mut timing = crate::model::FunctionTiming::default();
        timing.losses.insert("fn_vma_read_failed".into(), 3);
        timing.losses.insert("fn_exit_unmatched".into(), 0);
        e.function_timing = Some(timing.clone());
        assert_eq!(scopes_left_out(&e), [], "the order only");
        timing.losses.insert("fn_exit_unmatched".into(), 1);
        e.function_timing = Some(timing);
        assert_eq!(
            scopes_left_out(&e),
            [(Scope::Exact, Exclusion::UntimedCalls)]
        );
    }

    #[test]
    fn coverage_counts_used_left_out_and_not_measured() {
        let mut lost = episode();
        lost.marked_lost_race = true;
        let mut untimed = episode();
        untimed.user_losses.insert("timeline_malformed".into(), 1);
        let mut unmeasured = episode();
        unmeasured.index = 4;
        let episodes = [episode(), lost.clone(), lost, untimed, unmeasured];
        let p = LossPolicy::default();
        let c = coverage(&episodes, Scope::Latency, &p, |e| e.index == 0);
        assert_eq!(
            (c.episodes, c.used, c.not_measured, c.excluded()),
            (5, 1, 1, 3)
        );
        assert_eq!(
            c.text(&p),
            "1 of 5 (2 lost race, 1 timeline events lost, 1 not measured)"
        );
        let c = coverage(&episodes, Scope::Sampled, &p, |_| true);
        assert_eq!(c.text(&p), "3 of 5 (2 lost race)");
        assert_eq!(Coverage::all(4).text(&p), "4 of 4");
    }

    #[test]
    fn stack_loss_share() {
        let mut e = episode();
        assert_eq!(StackLoss::of(&e).pct(), 0.0);
        e.counters.insert("sample_stack_lost".into(), 3);
        assert_eq!(StackLoss::of(&e).pct(), 100.0);
        e.counters.insert("samples_tracked".into(), 300);
        assert!((StackLoss::of(&e).pct() - 1.0).abs() < 1e-12);
    }
}
