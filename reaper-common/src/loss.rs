//! Per-CPU loss and hit counters: nothing the kernel side drops is silent.
//!
//! Every failed map insert, stack capture or ring-buffer reserve increments a
//! slot of a per-CPU array; userspace sums the CPUs and prints each non-zero
//! counter with the flag that enlarges the structure that overflowed.

/// Map: per-CPU `u64` counters indexed by [`Counter`].
pub const MAP_COUNTERS: &str = "COUNTERS";

/// Indices into [`MAP_COUNTERS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Samples taken on tracked tasks (a probe hit count).
    SamplesTracked = 0,
    /// A sample's kernel stack could not be stored (`bpf_get_stackid` failed).
    SampleStackLost = 1,
    /// The sample-count map was full; the sample is lost.
    SampleCountsFull = 2,
    /// `contention_begin` hits on tracked tasks.
    LockBeginTracked = 3,
    /// The pending-wait map was full; that wait is lost.
    LockPendingFull = 4,
    /// The lock-wait aggregate map was full; that wait is lost.
    LockWaitsFull = 5,
    /// A wait's kernel stack could not be stored.
    LockStackLost = 6,
    /// The timeline ring buffer had no room; that event is lost.
    TimelineRingFull = 7,
    /// Timeline events written.
    TimelineEvents = 8,
    /// A tracking map was full; a task reaper should follow was not tracked.
    TrackedFull = 9,
    /// The freed-bytes map was full; a tracked task's freed memory was not
    /// attributed to its context.
    RssFreedFull = 10,
}

/// Number of counters.
pub const COUNTER_COUNT: u32 = 11;

impl Counter {
    /// All counters, in index order.
    pub const ALL: [Self; COUNTER_COUNT as usize] = [
        Self::SamplesTracked,
        Self::SampleStackLost,
        Self::SampleCountsFull,
        Self::LockBeginTracked,
        Self::LockPendingFull,
        Self::LockWaitsFull,
        Self::LockStackLost,
        Self::TimelineRingFull,
        Self::TimelineEvents,
        Self::TrackedFull,
        Self::RssFreedFull,
    ];

    /// Stable machine name, used in run files.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SamplesTracked => "samples_tracked",
            Self::SampleStackLost => "sample_stack_lost",
            Self::SampleCountsFull => "sample_counts_full",
            Self::LockBeginTracked => "lock_begin_tracked",
            Self::LockPendingFull => "lock_pending_full",
            Self::LockWaitsFull => "lock_waits_full",
            Self::LockStackLost => "lock_stack_lost",
            Self::TimelineRingFull => "timeline_ring_full",
            Self::TimelineEvents => "timeline_events",
            Self::TrackedFull => "tracked_full",
            Self::RssFreedFull => "rss_freed_full",
        }
    }

    /// The counter of a stable name (as run files key them); `None` for a
    /// name this build does not know (a newer recorder's).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether a non-zero value means data was lost (as opposed to a hit count).
    pub const fn is_loss(self) -> bool {
        !matches!(
            self,
            Self::SamplesTracked | Self::LockBeginTracked | Self::TimelineEvents
        )
    }
}
