//! The run file's walker steps and PTE-lock waits (issue 25): where each
//! tracked context was tearing down over time, and each PTE-lock wait of a
//! tracked context with the lock's last taker. Every field is optional in
//! the run file: runs recorded before reaper logged them still read.

use serde::{Deserialize, Serialize};

use crate::Context;

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
    /// The address whose PTE it mapped.
    pub addr: u64,
    /// When it took the lock, ns since the kill.
    pub taken_ns: i64,
}
