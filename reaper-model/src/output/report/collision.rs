//! The report's waiter × holder table of PTE-lock waits (issue 25): per
//! episode and summed, who waited on a PTE lock and who held it.

use serde::{Deserialize, Serialize};

use crate::Context;

/// The waiter × holder table, or why the run has none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CollisionReport {
    /// Why the table could not be measured on this run's kernel; `None`:
    /// measured (see `episodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_measured: Option<String>,
    /// How holders were named: by the lock's last taker, or (where that
    /// cannot be observed) by the other walker inside its per-VMA step.
    pub named_by: HolderSource,
    /// Why holders are not named by the lock's last taker, when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_taker_off: Option<String>,
    /// Per episode, in run order.
    pub episodes: Vec<EpisodeCollisions>,
    /// All episodes together (`distinct_locks` summed over episodes: each
    /// episode's victim has its own page tables).
    pub summed: Vec<HolderRow>,
}

/// How a run's holders were named.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum HolderSource {
    /// The PTE-lock function's fexit recorded who last took each lock.
    #[default]
    LastTaker,
    /// The other tracked walker, when inside its per-VMA step as the wait
    /// began (6.1, kprobe mode).
    WalkerInStep,
    /// PREEMPT_RT: the lock's owner (an `rt_mutex_base`), read as each
    /// wait began.
    RtOwner,
}

/// One episode's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EpisodeCollisions {
    /// 1-based episode number.
    pub episode: usize,
    /// Why this episode has no table (no function timing in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_measured: Option<String>,
    /// One row per (waiter, holder), largest total wait first.
    pub rows: Vec<HolderRow>,
    /// Waits the kernel's per-CPU log had no room for (not in `rows`).
    pub waits_lost: u64,
    /// Waits whose end was not seen (not in `rows`).
    pub waits_open: u64,
    /// Walker steps the per-context log had no room for.
    pub steps_lost: u64,
}

/// Who held the lock a wait waited on.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// A tracked context.
    Context(Context),
    /// Another thread of the waiter's own context: a sibling of a
    /// multi-threaded victim (exiting or faulting while the last thread
    /// tears the address space down), never the waiting thread itself.
    OtherThread(Context),
    /// A task reaper does not track, by `comm` (`record --pte-holders-all`).
    Other(String),
    /// Not known: no last taker was recorded (or it was the waiter itself),
    /// or no other walker was inside its step.
    Unknown,
}

impl Holder {
    /// As tables, JSON readers and checks name it: a context's name
    /// (`victim_exit`), `victim_exit (another thread)`, `other: <comm>` or
    /// `unknown`.
    pub fn name(&self) -> String {
        match self {
            Self::Context(context) => context.name().to_owned(),
            Self::OtherThread(context) => format!("{} (another thread)", context.name()),
            Self::Other(comm) => format!("other: {comm}"),
            Self::Unknown => "unknown".to_owned(),
        }
    }

    /// The same with a context's label (`victim exit`), for pictures.
    pub fn label(&self) -> String {
        match self {
            Self::Context(context) => context.label().to_owned(),
            Self::OtherThread(context) => format!("{} (another thread)", context.label()),
            other => other.name(),
        }
    }
}

/// Waits of one waiter context on locks one holder held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HolderRow {
    /// The waiting context.
    pub waiter: Context,
    /// Who held the lock.
    pub holder: Holder,
    /// Waits.
    pub count: u64,
    /// Their total, ns.
    pub total_ns: u64,
    /// The longest, ns.
    pub max_ns: u64,
    /// Distinct lock addresses (page-table pages, so PMDs) waited on.
    pub distinct_locks: u64,
}
