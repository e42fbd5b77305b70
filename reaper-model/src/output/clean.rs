//! Which episodes a compared figure used: the loss policy, the kinds of
//! figure ([`Scope`]), why an episode was left out of one ([`Exclusion`])
//! and the count of each ([`Coverage`]), as `reaper diff --json` and
//! `reaper gate --json` write them.
//!
//! reaper-cli's `compare::clean` decides which episodes each scope may use;
//! the types and their wording live here.

use serde::{Deserialize, Serialize};

use super::report::RowId;

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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
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
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
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

/// Episodes left out for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeftOut {
    /// Why.
    pub reason: Exclusion,
    /// How many episodes.
    pub episodes: usize,
}

/// How many of a side's episodes one figure used, and why not the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
