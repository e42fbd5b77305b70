//! Lock wait time from the `lock:contention_begin/end` tracepoints.
//!
//! `contention_begin` stores the start time and the kernel stack of a tracked
//! task's wait: a spinning one in this CPU's slot of [`MAP_SPIN_WAITS`],
//! any other (or one nested in a spinning wait, from an interrupt) in a
//! pending map keyed by (tid, lock address).
//! `contention_end` closes the wait and adds it to a per-CPU aggregate keyed by
//! (context, stack id, lock flags).
//!
//! A thread's waits on one lock are unwound at the first and then at every
//! [`LOCK_STACK_REFRESH`]th; the waits between take the stack last unwound
//! for that (thread, lock) from [`MAP_LOCK_STACK_CACHE`]. A thread takes a
//! given lock from one call path during a teardown (the PTE lock of one page
//! table from the zap loop, the lruvec lock from the batched free), so the
//! reused stack is that path; where a thread takes one lock from several
//! paths, the in-between waits follow the last unwound one, like samples.

/// Program on `lock:contention_begin`.
pub const PROG_CONTENTION_BEGIN: &str = "lock_contention_begin";
/// Program on `lock:contention_end`.
pub const PROG_CONTENTION_END: &str = "lock_contention_end";
/// Map: [`PendingWaitKey`] → [`PendingWait`].
/// `lock:contention_begin` as a raw tracepoint (`args`: lock, flags).
pub const PROG_RAW_CONTENTION_BEGIN: &str = "raw_contention_begin";
/// `lock:contention_end` as a raw tracepoint (`args`: lock, ret).
pub const PROG_RAW_CONTENTION_END: &str = "raw_contention_end";
/// Map: open waits (tid, lock) → start.
pub const MAP_PENDING_WAITS: &str = "PENDING_WAITS";
/// Map: [`LockWaitKey`] → [`LockWaitStats`], per CPU.
pub const MAP_LOCK_WAITS: &str = "LOCK_WAITS";
/// Pending waits: one per spinning tracked thread and lock, so small.
pub const PENDING_WAITS_MAX_ENTRIES: u32 = 4096;
/// Default size of the aggregate map; keys are (context, stack, flags).
pub const LOCK_WAITS_DEFAULT_ENTRIES: u32 = 8192;

/// Map: [`LockStackCacheKey`] → [`CachedLockStack`] (LRU): the stack
/// last unwound for a tracked thread's wait on a lock.
pub const MAP_LOCK_STACK_CACHE: &str = "LOCK_STACK_CACHE";
/// Entries of [`MAP_LOCK_STACK_CACHE`]; the LRU drops the oldest beyond
/// this (a teardown's threads wait on a few hundred locks at most).
pub const LOCK_STACK_CACHE_ENTRIES: u32 = 8192;
/// A thread's waits on one lock take the stack unwound at the first of
/// every this many; the ones between reuse it. Unwinding is what a wait
/// probe costs: bpf_stats on 6.18 x86_64 read 4.1 µs per tracked
/// `contention_begin` with a stack each time, 0.5 µs without, and an
/// 8-frame `bpf_get_stack` cost as much as a full one (the helper's fixed
/// cost dominates), so only fewer unwinds help.
pub const LOCK_STACK_REFRESH: u32 = 16;

/// Map: [`SlowpathWaitKey`] → [`SlowpathWait`]: spin slow-path calls of
/// tracked threads, open.
pub const MAP_SLOWPATH_WAITS: &str = "SLOWPATH_WAITS";

/// Key of [`MAP_SLOWPATH_WAITS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlowpathWaitKey {
    /// The waiting thread.
    pub tid: u32,
    /// The call's index on the thread's function-timing entry stack.
    pub depth: u32,
}
const _: () = assert!(core::mem::size_of::<SlowpathWaitKey>() == 8);

/// Value of [`MAP_SLOWPATH_WAITS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlowpathWait {
    /// The lock's address (the slow path's first argument).
    pub lock: u64,
    /// The waiter's context.
    pub context: u32,
    /// Kernel stack at the slow path's entry, or a `STACK_ID_*` marker.
    pub stack_id: i32,
}
const _: () = assert!(core::mem::size_of::<SlowpathWait>() == 16);

/// Key of [`MAP_LOCK_STACK_CACHE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockStackCacheKey {
    /// The waiting thread.
    pub tid: u32,
    /// Its context.
    pub context: u32,
    /// The lock's address.
    pub lock: u64,
}
const _: () = assert!(core::mem::size_of::<LockStackCacheKey>() == 16);

/// Value of [`MAP_LOCK_STACK_CACHE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CachedLockStack {
    /// Stack id of the last unwound wait.
    pub stack_id: i32,
    /// Waits that used it, the unwound one included.
    pub uses: u32,
}
const _: () = assert!(core::mem::size_of::<CachedLockStack>() == 8);

/// `LCB_F_SPIN` from include/trace/events/lock.h: a spinning waiter.
pub const LCB_F_SPIN: u32 = 1 << 0;
/// `LCB_F_MUTEX` from include/trace/events/lock.h: a mutex waiter (with
/// `LCB_F_SPIN` while it spins optimistically, and it may then sleep).
pub const LCB_F_MUTEX: u32 = 1 << 5;
/// `LCB_F_RT` from include/trace/events/lock.h: alone, a waiter on a
/// `struct rt_mutex_base` (PREEMPT_RT's `spinlock_t`, and `rt_mutex`);
/// with `LCB_F_READ` or `LCB_F_WRITE`, an RT rwlock (`struct rwbase_rt`).
pub const LCB_F_RT: u32 = 1 << 3;

/// Whether a wait with these `LCB_F_*` flags spins until it ends, with
/// preemption off, on the CPU it began on: a spinlock's or rwlock's, not a
/// mutex's optimistic spin. Such a wait goes to [`MAP_SPIN_WAITS`] (as
/// `perf lock contention -b` keeps them in a per-CPU array).
pub const fn spins_in_place(flags: u32) -> bool {
    flags & (LCB_F_SPIN | LCB_F_MUTEX) == LCB_F_SPIN
}

/// Map: per CPU, the one open wait of a tracked thread that
/// [`spins_in_place`] ([`SpinWait`]). `contention_begin` and `_end` of
/// such a wait run on one CPU with nothing of that thread in between, so
/// an array slot replaces [`MAP_PENDING_WAITS`]'s hash insert, lookup and
/// delete (the largest part of a wait's probe cost after the unwind). A
/// wait that finds the slot taken (an interrupt contending another lock
/// while the thread spins) goes to [`MAP_PENDING_WAITS`].
pub const MAP_SPIN_WAITS: &str = "SPIN_WAITS";
/// Map: one counter, the waits open in [`MAP_PENDING_WAITS`]; while it is
/// 0, `contention_end` (which runs for every contended lock on the
/// machine) returns without a hash lookup.
pub const MAP_PENDING_OPEN: &str = "PENDING_OPEN";
/// A slot of [`MAP_SPIN_WAITS`] opened this long ago is a wait whose
/// `contention_end` was missed (a skipped program run), not a spin: it is
/// taken over. Spin waits last micro- to milliseconds.
pub const SPIN_WAIT_STALE_NS: u64 = 1_000_000_000;

/// Value of [`MAP_SPIN_WAITS`]; `lock` 0 is an empty slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpinWait {
    /// The lock's address; 0: no wait open.
    pub lock: u64,
    /// The waiting thread.
    pub tid: u32,
    /// Reserved; keeps the layout explicit.
    pub _pad: u32,
    /// The wait, as [`MAP_PENDING_WAITS`] would hold it.
    pub wait: PendingWait,
}
const _: () = assert!(core::mem::size_of::<SpinWait>() == 40);

/// Key of [`MAP_PENDING_WAITS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingWaitKey {
    /// The waiting thread.
    pub tid: u32,
    /// Reserved; keeps the layout explicit.
    pub _pad: u32,
    /// The lock's address.
    pub lock: u64,
}
const _: () = assert!(core::mem::size_of::<PendingWaitKey>() == 16);

/// Value of [`MAP_PENDING_WAITS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingWait {
    /// `bpf_ktime_get_ns()` at `contention_begin`.
    pub start_ns: u64,
    /// The waiter's context.
    pub context: u32,
    /// Kernel stack at `contention_begin`, or a `STACK_ID_*` marker.
    pub stack_id: i32,
    /// `flags` of `contention_begin` (`LCB_F_*`).
    pub flags: u32,
    /// Non-zero: a PREEMPT_RT PTE-lock wait also open in
    /// `crate::collision::MAP_RT_PTE_WAITS` (so `contention_end` looks
    /// there only for those).
    pub rt_pte: u32,
}
const _: () = assert!(core::mem::size_of::<PendingWait>() == 24);

/// Key of [`MAP_LOCK_WAITS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LockWaitKey {
    /// A `CONTEXT_*` id.
    pub context: u32,
    /// Kernel stack at `contention_begin`, or a `STACK_ID_*` marker.
    pub stack_id: i32,
    /// `LCB_F_*` flags of the wait.
    pub flags: u32,
    /// Reserved; keeps the layout explicit.
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<LockWaitKey>() == 16);

/// Value of [`MAP_LOCK_WAITS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockWaitStats {
    /// Completed waits.
    pub count: u64,
    /// Sum of wait times, ns.
    pub total_ns: u64,
    /// Longest single wait, ns.
    pub max_ns: u64,
}
const _: () = assert!(core::mem::size_of::<LockWaitStats>() == 24);
crate::user_pod!(
    PendingWaitKey,
    PendingWait,
    SpinWait,
    LockWaitKey,
    LockWaitStats,
    SlowpathWaitKey,
    SlowpathWait
);

#[cfg(test)]
mod tests {
    use super::*;

    /// `LCB_F_READ`, `LCB_F_WRITE`, `LCB_F_RT` from include/trace/events/lock.h.
    const READ: u32 = 1 << 1;
    const WRITE: u32 = 1 << 2;
    const RT: u32 = 1 << 3;

    #[test]
    fn only_spinlock_and_rwlock_waits_spin_in_place() {
        assert!(spins_in_place(LCB_F_SPIN), "spinlock");
        assert!(spins_in_place(LCB_F_SPIN | READ), "rwlock, reader");
        assert!(spins_in_place(LCB_F_SPIN | WRITE), "rwlock, writer");
        assert!(
            !spins_in_place(LCB_F_SPIN | LCB_F_MUTEX),
            "a mutex's optimistic spin may sleep after it"
        );
        assert!(!spins_in_place(LCB_F_MUTEX), "mutex");
        assert!(!spins_in_place(READ), "rwsem, reader");
        assert!(!spins_in_place(RT), "rtmutex (PREEMPT_RT spinlock_t)");
    }
}
