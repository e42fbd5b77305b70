//! PREEMPT_RT PTE-lock waits with their owners, from the lock tracepoints
//! (see `reaper_common::collision::RtOwnerConfig`).
//!
//! On PREEMPT_RT `spin_lock(ptl)` is `rt_spin_lock()`, a sleeping lock
//! built on `struct rt_mutex_base`. A waiter fires
//! `lock:contention_begin(lock, LCB_F_RT)` in `rtlock_slowlock_locked()`
//! after `try_to_take_rt_mutex()` failed, with `lock->wait_lock` held
//! (kernel/locking/rtmutex.c): the owner word then holds the task that
//! has the lock (bit 0 is `RT_MUTEX_HAS_WAITERS`), and cannot change until
//! the wait lock is dropped. So the holder is read, not guessed.
//!
//! Only a walker's waits (its thread inside its per-VMA step) whose
//! `rt_spin_lock` was called by a PTE-lock caller are kept (a short stack
//! read compared with the addresses the loader found in kallsyms): the
//! lruvec and zone locks a teardown also sleeps on, and a victim sibling's
//! exit-time page fault, stay out, as they do from the PTE-lock rows. An open wait lives in
//! [`RT_PTE_WAITS`] and joins this CPU's wait log when it ends.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_stack, bpf_probe_read_kernel},
    macros::map,
    maps::HashMap,
};
use reaper_common::{
    collision::{
        LastTaker, PteWait, RT_PTE_WAITS_ENTRIES, RT_STACK_FRAMES, RtOwnerConfig, TAKER_UNTRACKED,
        WAIT_OPEN,
    },
    lock_wait::PendingWaitKey,
    tracking::{tag_context, tag_owner},
};

use crate::maps::context_of;

/// The loader's configuration; `owner_offset` 0 (the default): off.
#[unsafe(no_mangle)]
pub static RT_OWNERS: RtOwnerConfig = RtOwnerConfig::DISABLED;

/// Open PTE-lock waits by (thread, lock).
#[map(name = "RT_PTE_WAITS")]
static RT_PTE_WAITS: HashMap<PendingWaitKey, PteWait> =
    HashMap::with_max_entries(RT_PTE_WAITS_ENTRIES, 0);

/// `RT_MUTEX_HAS_WAITERS`, bit 0 of the owner word.
const HAS_WAITERS: u64 = 1;

#[inline(always)]
fn config() -> RtOwnerConfig {
    // SAFETY: a plain read of a global the loader initialised (volatile so
    // the zero initialiser is not folded into the program).
    unsafe { core::ptr::read_volatile(&RT_OWNERS) }
}

/// A tracked thread (`tag`) begins an `LCB_F_RT` wait on `lock`: when it
/// is a PTE-lock wait, opens it with the lock's owner. Returns whether it
/// did (the lock-wait record then marks it for [`close`]). `now` is the
/// wait's start, the lock-wait record's too.
#[inline(always)]
pub fn open<C: EbpfContext>(ctx: &C, tid: u32, tag: u32, lock: u64, now: u64) -> bool {
    let cfg = config();
    // A walker's wait only: inside its per-VMA step (as the spin slow
    // path's waits are, called from the zap path), so a victim thread
    // faulting in its exit (mm_release's put_user on a page the reaper
    // zapped) stays out, as it does from the PTE-lock rows.
    if cfg.owner_offset == 0
        || !super::collision::in_step(tid, tag_context(tag))
        || !pte_wait(ctx, &cfg)
    {
        return false;
    }
    let mut wait = PteWait {
        start_ns: now,
        duration_ns: WAIT_OPEN,
        lock,
        holder: LastTaker::default(),
        tid,
        context: tag_context(tag),
        found: 0,
        _pad: 0,
    };
    // SAFETY: a checked kernel read of the rt_mutex_base's owner word.
    let word = unsafe { bpf_probe_read_kernel((lock + cfg.owner_offset as u64) as *const u64) };
    let owner = word.unwrap_or(0) & !HAS_WAITERS;
    // NULL: the lock is free and its top waiter about to take it; the
    // holder stays unknown.
    if owner != 0 {
        wait.holder = holder(&cfg, owner, tag, now);
        wait.found = 1;
    }
    let key = PendingWaitKey { tid, _pad: 0, lock };
    if RT_PTE_WAITS.insert(&key, &wait, 0).is_err() {
        // Full: logged now, as an open wait (counted as such).
        super::collision::append_wait(&wait);
        return false;
    }
    true
}

/// Whether the current stack waits in `rt_spin_lock` called by a PTE-lock
/// caller.
#[inline(always)]
fn pte_wait<C: EbpfContext>(ctx: &C, cfg: &RtOwnerConfig) -> bool {
    let mut frames = [0u64; RT_STACK_FRAMES];
    // SAFETY: the buffer is `frames` and `size` its length.
    let bytes = unsafe {
        bpf_get_stack(
            ctx.as_ptr(),
            frames.as_mut_ptr().cast(),
            core::mem::size_of_val(&frames) as u32,
            0,
        )
    };
    bytes > 0 && cfg.is_pte_wait(&frames)
}

/// The owner task at `owner` as a taker: its thread, its context when it
/// is tracked for the same owner as the waiter (`waiter_tag`), its comm.
#[inline(always)]
fn holder(cfg: &RtOwnerConfig, owner: u64, waiter_tag: u32, now: u64) -> LastTaker {
    let read_u32 = |offset: u32| {
        // SAFETY: checked kernel reads of the owner's task_struct.
        unsafe { bpf_probe_read_kernel((owner + offset as u64) as *const u32) }.unwrap_or(0)
    };
    let tid = read_u32(cfg.task_pid_offset);
    let tgid = read_u32(cfg.task_tgid_offset);
    let context = match context_of(tid, tgid) {
        Some(tag) if tag_owner(tag) == tag_owner(waiter_tag) => tag_context(tag),
        _ => TAKER_UNTRACKED,
    };
    // SAFETY: as above; the comm is a NUL-padded char[16].
    let comm =
        unsafe { bpf_probe_read_kernel((owner + cfg.task_comm_offset as u64) as *const [u8; 16]) }
            .unwrap_or([0; 16]);
    LastTaker {
        // Seen holding it at the wait's start; when it took it is unknown.
        taken_ns: now,
        addr: 0,
        tid,
        context,
        comm,
    }
}

/// The wait opened by [`open`] for thread `tid` on `lock` could not be
/// followed to its end (the lock-wait record was not stored): it joins
/// the log as an open wait, which the report counts.
#[inline(always)]
pub fn abandon(tid: u32, lock: u64) {
    let key = PendingWaitKey { tid, _pad: 0, lock };
    // SAFETY: copied out before the entry is removed.
    let Some(wait) = (unsafe { RT_PTE_WAITS.get(&key) }).copied() else {
        return;
    };
    let _ = RT_PTE_WAITS.remove(&key);
    super::collision::append_wait(&wait);
}

/// The wait opened by [`open`] for thread `tid` on `lock` ended: it joins
/// this CPU's wait log with its duration, to `now`.
#[inline(always)]
pub fn close(tid: u32, lock: u64, now: u64) {
    let key = PendingWaitKey { tid, _pad: 0, lock };
    // SAFETY: copied out before the entry is removed.
    let Some(mut wait) = (unsafe { RT_PTE_WAITS.get(&key) }).copied() else {
        return;
    };
    let _ = RT_PTE_WAITS.remove(&key);
    wait.duration_ns = now.saturating_sub(wait.start_ns);
    super::collision::append_wait(&wait);
}
