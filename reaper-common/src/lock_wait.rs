//! Lock wait time from the `lock:contention_begin/end` tracepoints.
//!
//! `contention_begin` stores the start time and the kernel stack of a tracked
//! task in a pending map keyed by (tid, lock address), which is correct even
//! when an interrupt contends another lock while the task spins.
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
    /// Reserved; keeps the layout explicit.
    pub _pad: u32,
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
    LockWaitKey,
    LockWaitStats,
    SlowpathWaitKey,
    SlowpathWait
);
