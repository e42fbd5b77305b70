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
//! [`Exclusion`]. The types (scopes, reasons, [`Coverage`]) are
//! reaper-model's, as `diff --json` and `gate --json` write them.

use reaper_common::loss::Counter;

use crate::model::Episode;

pub use reaper_model::output::clean::{
    Coverage, DEFAULT_MAX_STACK_LOSS_PCT, Exclusion, LeftOut, LossPolicy, Scope,
};

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
