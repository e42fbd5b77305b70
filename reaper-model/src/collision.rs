//! The run file's walker steps and PTE-lock waits (issue 25): where each
//! tracked context was tearing down over time, and each PTE-lock wait of a
//! tracked context with the lock's last taker. Every field is optional in
//! the run file: runs recorded before reaper logged them still read.

use serde::{Deserialize, Serialize};

use reaper_common::timeline::TimelineKind;

use crate::output::report::Holder;
use crate::{Context, Episode};

/// How a recording set up the PTE-lock wait log (`recording.pte_holders`);
/// absent in runs recorded before reaper had it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PteHolderSetup {
    /// Why no PTE-lock wait was logged; `None`: logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_off: Option<String>,
    /// Why holders are not named by the lock's last taker (they are then
    /// the other walker inside its step, or unknown); `None`: the PTE-lock
    /// function's fexit recorded last takers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_taker_off: Option<String>,
    /// `record --pte-holders-all`: untracked takers were named too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub third_party: bool,
    /// PREEMPT_RT: the waits are the sleeping `rt_spin_lock` waits the
    /// lock tracepoints saw, and each holder is the lock's owner, which the
    /// kernel keeps in the lock and reaper read when the wait began.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rt_owner: bool,
}

/// One episode's walker steps and PTE-lock waits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Collisions {
    /// Per context, its walker steps in call order.
    #[serde(default)]
    pub walkers: Vec<WalkerSteps>,
    /// PTE-lock waits of tracked contexts, in start order.
    #[serde(default)]
    pub waits: Vec<PteWaitSeen>,
    /// Waits seen but not kept (a CPU's log was full).
    #[serde(default)]
    pub waits_lost: u64,
}

/// One context's walker steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WalkerSteps {
    /// The walking context.
    pub context: Context,
    /// The step function whose calls these are.
    pub function: String,
    /// The kept steps, in call order.
    pub steps: Vec<WalkerStepSeen>,
    /// Steps seen but not kept (the log was full).
    #[serde(default)]
    pub lost: u64,
}

/// One call of the walker step function, on the timeline's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WalkerStepSeen {
    /// First address of the range.
    pub range_start: u64,
    /// End of the range (exclusive).
    pub range_end: u64,
    /// The walking thread.
    pub tid: u32,
    /// Entry, ns since the kill.
    pub enter_ns: i64,
    /// Return, ns since the kill; `None` when it was not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_ns: Option<i64>,
}

impl WalkerStepSeen {
    /// Whether the step was running at `t_ns`.
    pub fn covers(&self, t_ns: i64) -> bool {
        self.enter_ns <= t_ns && self.exit_ns.is_some_and(|exit| t_ns < exit)
    }
}

/// One PTE-lock wait of a tracked thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PteWaitSeen {
    /// The waiting context.
    pub context: Context,
    /// The waiting thread.
    pub tid: u32,
    /// The lock's address.
    pub lock: u64,
    /// Start, ns since the kill.
    pub start_ns: i64,
    /// How long it waited, ns; `None` when its end was not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    /// The lock's last taker when the wait began, when one was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taker: Option<TakerSeen>,
}

/// Who last took a PTE lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TakerSeen {
    /// Its context; `None`: a task reaper does not track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    /// Its thread.
    pub tid: u32,
    /// Its `comm`.
    pub comm: String,
    /// The address whose PTE it mapped (0 on PREEMPT_RT: unknown).
    pub addr: u64,
    /// When it took the lock, ns since the kill (PREEMPT_RT: when it was
    /// seen holding it, the wait's start).
    pub taken_ns: i64,
}

impl Collisions {
    /// Who held the lock `wait` waited on. A wait's holder is the lock's
    /// last taker (on PREEMPT_RT, the lock's owner) when one was recorded
    /// and it is not the waiter's own thread; a taker of the waiter's own
    /// context on another thread (a multi-threaded victim's sibling) is
    /// named as such, not as the context. Where last takers are recorded, a lock
    /// without one was taken by no tracked walker since the episode began,
    /// so its holder is a task reaper does not track: unknown, unless
    /// `record --pte-holders-all` named it. Where they cannot be recorded
    /// (the PTE lock inline on 6.1; a kretprobe cannot read the lock it
    /// returns), the holder is the other tracked walker when it was inside
    /// its per-VMA step as the wait began, else unknown.
    pub fn holder_of(&self, setup: &PteHolderSetup, wait: &PteWaitSeen) -> Holder {
        if setup.last_taker_off.is_none() {
            return match &wait.taker {
                Some(t) if t.tid == wait.tid => Holder::Unknown,
                Some(t) => match t.context {
                    Some(context) if context == wait.context => Holder::OtherThread(context),
                    Some(context) => Holder::Context(context),
                    None => Holder::Other(t.comm.clone()),
                },
                None => Holder::Unknown,
            };
        }
        self.walkers
            .iter()
            .filter(|w| w.context != wait.context)
            .find(|w| w.steps.iter().any(|s| s.covers(wait.start_ns)))
            .map_or(Holder::Unknown, |w| Holder::Context(w.context))
    }
}

impl Episode {
    /// The steps of `walker` that belong to the victim's teardown, and how
    /// many do not: the mrelease caller's count between
    /// `process_mrelease`'s entry and return only (its thread later unmaps
    /// its own stack when it exits, through the same function, which is not
    /// the victim's address space); the other contexts' all count.
    pub fn teardown_steps<'a>(&self, walker: &'a WalkerSteps) -> (Vec<&'a WalkerStepSeen>, usize) {
        let at = |kind: TimelineKind| {
            self.timeline
                .iter()
                .find(|e| e.kind == kind && e.context == Some(walker.context))
                .map(|e| e.t_ns)
        };
        let (from, to) = match walker.context {
            Context::MreleaseCaller => (
                at(TimelineKind::MreleaseEnter).unwrap_or(i64::MIN),
                at(TimelineKind::MreleaseExit).unwrap_or(i64::MAX),
            ),
            _ => (i64::MIN, i64::MAX),
        };
        let kept: Vec<_> = walker
            .steps
            .iter()
            .filter(|s| (from..=to).contains(&s.enter_ns))
            .collect();
        let left_out = walker.steps.len() - kept.len();
        (kept, left_out)
    }
}

/// Whether a walk's range starts, in call order, only go up (`Some(true)`)
/// or only down (`Some(false)`), ignoring repeats; `None` when they go both
/// ways or never move.
pub fn walk_direction(starts: impl IntoIterator<Item = u64>) -> Option<bool> {
    let starts: Vec<u64> = starts.into_iter().collect();
    let mut moves = starts
        .windows(2)
        .filter(|p| p[0] != p[1])
        .map(|p| p[1] > p[0]);
    let first = moves.next()?;
    moves.all(|m| m == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::walk_direction;

    #[test]
    fn a_walk_goes_one_way_or_neither() {
        assert_eq!(walk_direction([1, 2, 2, 5]), Some(true));
        assert_eq!(walk_direction([9, 4, 4, 1]), Some(false));
        assert_eq!(walk_direction([1, 5, 3]), None);
        assert_eq!(walk_direction([7, 7]), None);
        assert_eq!(walk_direction([]), None);
    }
}
