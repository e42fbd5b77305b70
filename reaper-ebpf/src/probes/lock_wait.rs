//! Lock wait time of tracked tasks from `lock:contention_begin/end`, keyed by
//! the kernel stack at `contention_begin` so userspace can tell PTE-lock waits
//! from others.
//!
//! Cost: a wait's stack is unwound at a thread's first wait on a lock and
//! then at every `LOCK_STACK_REFRESH`th; the waits between reuse it
//! (`reaper_common::lock_wait`), and a mutex waiter's repeated
//! `contention_begin` of one wait takes none. A spinning wait (nearly all
//! of a teardown's: lruvec, zone and PTE locks) is kept open in this CPU's
//! [`SPIN_WAITS`] slot, array loads and stores where a hash insert, lookup
//! and delete were. `contention_end` of a spinlock fires after the lock is
//! taken (kernel/locking/qspinlock.c, label `release`), so everything it
//! does lengthens the critical section the other side then waits on: for
//! an untracked thread (every other contended lock on the machine) it is
//! two array loads while no sleeping wait is open, and for a tracked one
//! the slot's store and one per-CPU add.
//!
//! Each event has a classic tracepoint program (record fields at tracefs
//! offsets) and a raw tracepoint program (`TP_PROTO(void *lock, unsigned int
//! flags)` / `(void *lock, int ret)`, the same on 6.1 through 7.x), sharing
//! one body. The raw one is cheaper per event (no perf record is built
//! before it runs) and detaches without an RCU grace period; userspace
//! attaches it and falls back to the classic one.
//!
//! Without those tracepoints (before 5.19), function timing's spin
//! slow-path probe opens and closes the same waits ([`slowpath_begin`],
//! [`slowpath_end`]); see `reaper_common::lock_wait`.

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_NOEXIST,
    helpers::bpf_ktime_get_ns,
    macros::{map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap},
    programs::{RawTracePointContext, TracePointContext},
};
use reaper_common::{
    lock_wait::{
        CachedLockStack, LCB_F_RT, LCB_F_SPIN, LOCK_STACK_CACHE_ENTRIES, LOCK_STACK_REFRESH,
        LOCK_WAITS_DEFAULT_ENTRIES, LockStackCacheKey, LockWaitKey, LockWaitStats,
        PENDING_WAITS_MAX_ENTRIES, PendingWait, PendingWaitKey, SPIN_WAIT_STALE_NS, SlowpathWait,
        SlowpathWaitKey, SpinWait, spins_in_place,
    },
    loss::Counter,
    sampling::SCRATCH_LOCK_WAIT,
};

use crate::maps::{atomic_add, bump, context_of, current_ids, offsets};

/// Open waits of tracked tasks.
#[map(name = "PENDING_WAITS")]
static PENDING_WAITS: HashMap<PendingWaitKey, PendingWait> =
    HashMap::with_max_entries(PENDING_WAITS_MAX_ENTRIES, 0);

/// This CPU's open spinning wait of a tracked thread; see
/// `reaper_common::lock_wait::MAP_SPIN_WAITS`.
#[map(name = "SPIN_WAITS")]
static SPIN_WAITS: PerCpuArray<SpinWait> = PerCpuArray::with_max_entries(1, 0);

/// Waits open in [`PENDING_WAITS`]; see
/// `reaper_common::lock_wait::MAP_PENDING_OPEN`.
#[map(name = "PENDING_OPEN")]
static PENDING_OPEN: Array<u64> = Array::with_max_entries(1, 0);

/// Completed waits aggregated per (context, stack, flags).
#[map(name = "LOCK_WAITS")]
static LOCK_WAITS: PerCpuHashMap<LockWaitKey, LockWaitStats> =
    PerCpuHashMap::with_max_entries(LOCK_WAITS_DEFAULT_ENTRIES, 0);

/// The stack last unwound per (thread, context, lock); see
/// `reaper_common::lock_wait`.
#[map(name = "LOCK_STACK_CACHE")]
static LOCK_STACK_CACHE: LruHashMap<LockStackCacheKey, CachedLockStack> =
    LruHashMap::with_max_entries(LOCK_STACK_CACHE_ENTRIES, 0);

/// Open spin slow-path calls of tracked tasks (kernels without the
/// contention tracepoints).
#[map(name = "SLOWPATH_WAITS")]
static SLOWPATH_WAITS: HashMap<SlowpathWaitKey, SlowpathWait> =
    HashMap::with_max_entries(PENDING_WAITS_MAX_ENTRIES, 0);

/// `-EEXIST`: a wait on this (task, lock) is already open; keep the first.
const EEXIST: i32 = 17;

#[tracepoint]
pub fn lock_contention_begin(ctx: TracePointContext) -> u32 {
    let (tid, tgid) = current_ids();
    let Some(context) = context_of(tid, tgid) else {
        return 0;
    };
    let offsets = offsets();
    // SAFETY: offsets come from this kernel's tracefs format.
    let (Ok(lock), Ok(flags)) = (
        unsafe { ctx.read_at::<u64>(offsets.contention_begin_lock as usize) },
        unsafe { ctx.read_at::<u32>(offsets.contention_begin_flags as usize) },
    ) else {
        bump(Counter::LockBeginTracked);
        aya_log_ebpf::debug!(
            &ctx,
            "lock wait skipped: contention_begin fields unreadable at offsets {} and {}",
            offsets.contention_begin_lock,
            offsets.contention_begin_flags
        );
        return 0;
    };
    begin(&ctx, tid, context, lock, flags);
    0
}

/// `lock:contention_begin(void *lock, unsigned int flags)`.
#[raw_tracepoint]
pub fn raw_contention_begin(ctx: RawTracePointContext) -> i32 {
    let (tid, tgid) = current_ids();
    let Some(context) = context_of(tid, tgid) else {
        return 0;
    };
    begin(&ctx, tid, context, ctx.arg::<u64>(0), ctx.arg::<u32>(1));
    0
}

/// Opens a wait of a tracked task on `lock`, with its stack: in this CPU's
/// spin slot when it spins in place and the slot is free, else in
/// [`PENDING_WAITS`].
#[inline(always)]
fn begin<C: EbpfContext>(ctx: &C, tid: u32, context: u32, lock: u64, flags: u32) {
    bump(Counter::LockBeginTracked);
    if spins_in_place(flags) && open_spin_wait(ctx, tid, context, lock, flags) {
        return;
    }
    let key = PendingWaitKey { tid, _pad: 0, lock };
    // A mutex waiter fires contention_begin again when it stops spinning and
    // sleeps, and again each time it spins as the first waiter: the wait
    // opened by the first one is still running, so keep it and take no
    // second stack or timestamp.
    // SAFETY: only presence is checked.
    if unsafe { PENDING_WAITS.get(&key) }.is_some() {
        return;
    }
    let stack_id = wait_stack_id(ctx, tid, context, lock);
    let start_ns = unsafe { bpf_ktime_get_ns() };
    // PREEMPT_RT: a sleeping PTE-lock wait is also logged with its owner,
    // from the same start, so the log and the aggregate agree.
    let rt_pte = flags == LCB_F_RT && super::rt_owner::open(ctx, tid, context, lock, start_ns);
    let wait = PendingWait {
        start_ns,
        context,
        stack_id,
        flags,
        rt_pte: rt_pte as u32,
    };
    match PENDING_WAITS.insert(&key, &wait, BPF_NOEXIST as u64) {
        Ok(()) => {
            if let Some(open) = PENDING_OPEN.get_ptr_mut(0) {
                atomic_add(open, 1);
            }
        }
        Err(_) if rt_pte => super::rt_owner::abandon(tid, lock),
        Err(err) if err != -EEXIST => {
            crate::dropped!(
                ctx,
                Counter::LockPendingFull,
                "lock wait dropped: PENDING_WAITS insert returned {} (full? --lock-map-size)",
                err
            );
        }
        Err(_) => {}
    }
}

/// Opens a spinning wait in this CPU's slot; false when the slot is taken
/// (a wait this one interrupted), and the wait goes to the hash.
#[inline(always)]
fn open_spin_wait<C: EbpfContext>(ctx: &C, tid: u32, context: u32, lock: u64, flags: u32) -> bool {
    let Some(slot) = SPIN_WAITS.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's value; a nested begin (an interrupt) sees the slot
    // taken and leaves it alone.
    let slot = unsafe { &mut *slot };
    if slot.lock != 0 && !stale(slot) {
        return false;
    }
    // Claimed before the unwind, so an interrupt's wait in between goes to
    // the hash (and does not find it stale).
    slot.lock = lock;
    slot.tid = tid;
    slot.wait.start_ns = u64::MAX;
    let stack_id = wait_stack_id(ctx, tid, context, lock);
    slot.wait = PendingWait {
        start_ns: unsafe { bpf_ktime_get_ns() },
        context,
        stack_id,
        flags,
        rt_pte: 0,
    };
    true
}

/// Whether a taken spin slot is a wait whose end was missed (see
/// `SPIN_WAIT_STALE_NS`).
#[inline(always)]
fn stale(slot: &SpinWait) -> bool {
    unsafe { bpf_ktime_get_ns() }.saturating_sub(slot.wait.start_ns) > SPIN_WAIT_STALE_NS
}

/// The wait's stack id: the one last unwound for this thread and lock,
/// unless that was [`LOCK_STACK_REFRESH`] waits ago or never; then the
/// stack is unwound, stored and cached.
#[inline(always)]
fn wait_stack_id<C: EbpfContext>(ctx: &C, tid: u32, context: u32, lock: u64) -> i32 {
    let key = LockStackCacheKey { tid, context, lock };
    if let Some(cached) = LOCK_STACK_CACHE.get_ptr_mut(&key) {
        // SAFETY: a map value pointer; only this thread uses its key, and it
        // waits on one lock at a time.
        unsafe {
            if (*cached).uses < LOCK_STACK_REFRESH {
                (*cached).uses += 1;
                return (*cached).stack_id;
            }
        }
    }
    let stack_id = super::stack_id_of(ctx, SCRATCH_LOCK_WAIT, Counter::LockStackLost);
    if stack_id >= 0 {
        // A full LRU map evicts its oldest entry; an error only costs the
        // next wait an unwind.
        let _ = LOCK_STACK_CACHE.insert(&key, &CachedLockStack { stack_id, uses: 1 }, 0);
    }
    stack_id
}

#[tracepoint]
pub fn lock_contention_end(ctx: TracePointContext) -> u32 {
    // SAFETY: offset from this kernel's tracefs format.
    let Ok(lock) = (unsafe { ctx.read_at::<u64>(offsets().contention_end_lock as usize) }) else {
        return 0;
    };
    end(&ctx, lock);
    0
}

/// `lock:contention_end(void *lock, int ret)`.
#[raw_tracepoint]
pub fn raw_contention_end(ctx: RawTracePointContext) -> i32 {
    end(&ctx, ctx.arg::<u64>(0));
    0
}

/// Closes the current thread's open wait on `lock`, if it has one: this
/// CPU's spin slot when it holds it, else [`PENDING_WAITS`]'s entry, looked
/// up only while that map has any.
#[inline(always)]
fn end<C: EbpfContext>(ctx: &C, lock: u64) {
    let (tid, _) = current_ids();
    if let Some(slot) = SPIN_WAITS.get_ptr_mut(0) {
        // SAFETY: this CPU's value.
        let slot = unsafe { &mut *slot };
        if slot.lock == lock && slot.tid == tid {
            let wait = slot.wait;
            slot.lock = 0;
            close(ctx, &wait);
            return;
        }
    }
    // SAFETY: plain data.
    if PENDING_OPEN.get(0).is_none_or(|&open| open == 0) {
        return;
    }
    let key = PendingWaitKey { tid, _pad: 0, lock };
    // SAFETY: copied out before the entry is removed.
    let Some(wait) = (unsafe { PENDING_WAITS.get(&key) }).copied() else {
        return;
    };
    if PENDING_WAITS.remove(&key).is_ok() {
        if let Some(open) = PENDING_OPEN.get_ptr_mut(0) {
            atomic_add(open, u64::MAX);
        }
    }
    let now = unsafe { bpf_ktime_get_ns() };
    if wait.rt_pte != 0 {
        super::rt_owner::close(tid, lock, now);
    }
    close_at(ctx, &wait, now);
}

/// Adds a wait that ends now to its aggregate.
#[inline(always)]
fn close<C: EbpfContext>(ctx: &C, wait: &PendingWait) {
    close_at(ctx, wait, unsafe { bpf_ktime_get_ns() });
}

/// Adds a wait that ended at `now` to its aggregate.
#[inline(always)]
fn close_at<C: EbpfContext>(ctx: &C, wait: &PendingWait, now: u64) {
    let waited = now.saturating_sub(wait.start_ns);
    let agg_key = LockWaitKey {
        context: wait.context,
        stack_id: wait.stack_id,
        flags: wait.flags,
        _pad: 0,
    };
    add_wait(ctx, &agg_key, waited);
}

/// Adds one completed wait of `waited` ns to its aggregate.
#[inline(always)]
fn add_wait<C: EbpfContext>(ctx: &C, agg_key: &LockWaitKey, waited: u64) {
    match LOCK_WAITS.get_ptr_mut(agg_key) {
        Some(stats) => {
            // SAFETY: per-CPU value, no concurrent writer on this CPU.
            unsafe {
                (*stats).count += 1;
                (*stats).total_ns += waited;
                if waited > (*stats).max_ns {
                    (*stats).max_ns = waited;
                }
            }
        }
        None => {
            let first = LockWaitStats {
                count: 1,
                total_ns: waited,
                max_ns: waited,
            };
            if let Err(err) = LOCK_WAITS.insert(agg_key, &first, 0) {
                crate::dropped!(
                    ctx,
                    Counter::LockWaitsFull,
                    "lock wait dropped: LOCK_WAITS insert returned {} (full? --lock-map-size)",
                    err
                );
            }
        }
    }
}

/// Opens a spin slow-path wait of a tracked thread on `lock`, the call at
/// `depth` on its function-timing entry stack: unwinds (or reuses) the
/// caller's stack. Called before the call's entry time is taken, so the
/// unwind is not part of the wait.
#[inline(always)]
pub fn slowpath_begin<C: EbpfContext>(ctx: &C, tid: u32, context: u32, depth: u32, lock: u64) {
    bump(Counter::LockBeginTracked);
    let stack_id = wait_stack_id(ctx, tid, context, lock);
    let key = SlowpathWaitKey { tid, depth };
    let wait = SlowpathWait {
        lock,
        context,
        stack_id,
    };
    // A stale entry at this depth (a call whose exit was missed) is
    // replaced.
    if let Err(err) = SLOWPATH_WAITS.insert(key, wait, 0) {
        crate::dropped!(
            ctx,
            Counter::LockPendingFull,
            "lock wait dropped: SLOWPATH_WAITS insert returned {} (full? --lock-map-size)",
            err
        );
    }
}

/// Closes the spin slow-path wait at `depth` of thread `tid`, which the
/// call's timing measured at `waited` ns.
#[inline(always)]
pub fn slowpath_end<C: EbpfContext>(ctx: &C, tid: u32, depth: u32, waited: u64) {
    let key = SlowpathWaitKey { tid, depth };
    // SAFETY: copied out before the entry is removed.
    let Some(wait) = (unsafe { SLOWPATH_WAITS.get(key) }).copied() else {
        return;
    };
    let _ = SLOWPATH_WAITS.remove(key);
    let agg_key = LockWaitKey {
        context: wait.context,
        stack_id: wait.stack_id,
        flags: LCB_F_SPIN,
        _pad: 0,
    };
    add_wait(ctx, &agg_key, waited);
}
