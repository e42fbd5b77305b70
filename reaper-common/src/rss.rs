//! Resident memory freed by a teardown, from `kmem:rss_stat`.
//!
//! The kernel fires `kmem:rss_stat` whenever one of an mm's resident
//! counters changes (include/trace/events/kmem.h, Linux 5.5+): a page
//! fault, and each batch a teardown zaps (`zap_pte_range` updates the
//! counters once per page-table page). Its record carries the counter's new
//! value (`size`, bytes), which counter (`member`), a hash of the mm
//! (`mm_id`), and `curr`: whether the mm is the current task's own. A
//! teardown runs with `curr == 0` (`exit_mmap` after `exit_mm` cleared
//! `current->mm`; a `process_mrelease` caller or the `oom_reaper` on another
//! task's mm), so the program returns after one field read for every page
//! fault on the system.
//!
//! For a tracked task it keeps the counter's last value per (mm, member) in
//! [`MAP_RSS_LAST`] and adds the drop since then to the task's tag in
//! [`MAP_RSS_FREED`] (signed: a counter that grew subtracts), and emits a
//! timeline event ([`crate::timeline::TimelineKind::RssStat`]) when the
//! value moved by [`emit_step`] since the last one it emitted for that
//! counter, so the RSS counter track of a large victim stays a few hundred
//! points whatever its size.
//!
//! The classic tracepoint is used, not a raw one: its arguments changed
//! from `(mm, member, count)` to `(mm, member)` in 6.2 and the counter's
//! layout keeps changing (`atomic_long_t`, `percpu_counter`, newer per-NUMA
//! and tree counters), while the record's `size` is the kernel's own sum.

/// The classic tracepoint program.
pub const PROG_RSS_STAT: &str = "rss_stat";
/// Map: (mm, member) → [`RssLast`] (an LRU hash: entries of finished
/// teardowns age out by themselves).
pub const MAP_RSS_LAST: &str = "RSS_LAST";
/// Map: tag (context and owner) → bytes freed, as a two's-complement `i64`
/// stored in a `u64` (BPF has an atomic add, not a signed one).
pub const MAP_RSS_FREED: &str = "RSS_FREED";
/// Entries of [`MAP_RSS_LAST`]: four counters per mm torn down at once,
/// with room for overlapping `--watch` teardowns.
pub const RSS_LAST_MAX_ENTRIES: u32 = 1024;
/// Entries of [`MAP_RSS_FREED`]: one per tracked tag.
pub const RSS_FREED_MAX_ENTRIES: u32 = 1024;

/// `MM_FILEPAGES`, `MM_ANONPAGES`, `MM_SWAPENTS`, `MM_SHMEMPAGES`
/// (include/linux/mm_types_task.h, the same order since 4.5).
pub const MEMBER_FILE: u32 = 0;
/// Anonymous pages.
pub const MEMBER_ANON: u32 = 1;
/// Swap entries: not resident, so left out of RSS.
pub const MEMBER_SWAP: u32 = 2;
/// Shared memory pages.
pub const MEMBER_SHMEM: u32 = 3;
/// Counters an mm has.
pub const MEMBERS: u32 = 4;

/// Whether a counter is part of the resident set (`get_mm_rss()`: file +
/// anon + shmem).
pub const fn is_resident(member: u32) -> bool {
    matches!(member, MEMBER_FILE | MEMBER_ANON | MEMBER_SHMEM)
}

/// Key of [`MAP_RSS_LAST`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RssKey {
    /// The record's `mm_id` (a hash of the mm pointer).
    pub mm_id: u32,
    /// The record's `member`.
    pub member: u32,
}
const _: () = assert!(core::mem::size_of::<RssKey>() == 8);

/// Value of [`MAP_RSS_LAST`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RssLast {
    /// The counter's value at its last change seen, bytes.
    pub value: i64,
    /// The value of the last event emitted for it, bytes.
    pub emitted: i64,
}
const _: () = assert!(core::mem::size_of::<RssLast>() == 16);

/// The smallest move of a counter that emits a new point: 1/32 of its last
/// emitted value (a 3% step on the chart, about 110 points from 1 GiB to
/// 32 MiB), at least 1 MiB, so tiny counters do not emit every batch.
pub const fn emit_step(emitted: i64) -> i64 {
    let relative = emitted.unsigned_abs() >> 5;
    let floor: u64 = 1 << 20;
    (if relative > floor { relative } else { floor }) as i64
}

/// Bits of an event's `arg` holding the value; the member sits above.
const VALUE_BITS: u32 = 60;

/// Packs a counter's member and value (bytes, at most 2^60) into a
/// timeline event's `arg`.
pub const fn pack(member: u32, bytes: i64) -> i64 {
    let value = if bytes < 0 { 0 } else { bytes as u64 } & ((1 << VALUE_BITS) - 1);
    (((member as u64) << VALUE_BITS) | value) as i64
}

/// The (member, bytes) of an event's `arg`.
pub const fn unpack(arg: i64) -> (u32, u64) {
    let raw = arg as u64;
    ((raw >> VALUE_BITS) as u32, raw & ((1 << VALUE_BITS) - 1))
}

crate::user_pod!(RssKey, RssLast);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_arg_round_trips() {
        for member in 0..MEMBERS {
            for bytes in [0, 4096, 1 << 30, (1 << 50) + 12_288] {
                assert_eq!(unpack(pack(member, bytes)), (member, bytes as u64));
            }
        }
        assert_eq!(unpack(pack(MEMBER_ANON, -4096)), (MEMBER_ANON, 0));
    }

    #[test]
    fn the_step_is_relative_with_a_floor() {
        assert_eq!(emit_step(1 << 30), 1 << 25);
        assert_eq!(emit_step(1 << 20), 1 << 20);
        assert_eq!(emit_step(0), 1 << 20);
        assert_eq!(emit_step(-(1 << 30)), 1 << 25);
    }

    #[test]
    fn resident_counters() {
        assert!(is_resident(MEMBER_FILE) && is_resident(MEMBER_ANON) && is_resident(MEMBER_SHMEM));
        assert!(!is_resident(MEMBER_SWAP));
    }
}
