//! The summary's two PTE-lock rows: sampled time waiting for the PTE lock,
//! and the waits the `lock:contention_begin/end` tracepoints saw. The two
//! stay apart: one is sampled CPU time, the other traced wall time.
//!
//! On most kernels the PTE lock is a spinning `spinlock_t`: a wait is a
//! spinlock slow-path frame called directly by the PTE-lock function (or,
//! where that is inlined, by the zap path). On PREEMPT_RT kernels the same
//! `spin_lock()` is a sleeping `rt_spin_lock()`: a contended waiter enters
//! `rtlock_slowlock_locked()`, spins only while the owner runs and otherwise
//! sleeps. Those waits are attributed the same way (an `rt_spin_lock` frame
//! called by the PTE-lock function or the inlined zap path), and the rows'
//! labels say they are sleeping waits.

use crate::catalog::{ConceptFrames, ConceptId};
use crate::model::{Context, Run, SampledStack};

use super::model::{Cell, RowId, SummaryRow};
use super::rows::{
    SPLIT_LABEL, absent, episode_stacks, lock_wait_status, row, sampled_rows_failure, split_value,
    uniform_row,
};
use super::stacks::frames_within;

use crate::catalog::{INLINED_PTE_LOCK_CALLERS, RT_SPIN_LOCK};
/// Which kind of lock the PTE lock is on the recorded kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteLockKind {
    /// A spinning `spinlock_t` (qspinlock).
    Spinning,
    /// PREEMPT_RT: a sleeping `rt_spin_lock`.
    Sleeping,
}

impl PteLockKind {
    /// PREEMPT_RT when the run's host said so, or when any of its stacks
    /// (runs recorded before reaper looked) went through `rt_spin_lock`.
    pub fn of(run: &Run) -> Self {
        let rt_frames = || {
            run.episodes.iter().flat_map(|e| &e.contexts).any(|c| {
                c.stacks
                    .iter()
                    .map(|s| &s.frames)
                    .chain(c.lock_waits.iter().map(|w| &w.frames))
                    .any(|frames| frames.iter().any(|f| f == RT_SPIN_LOCK))
            })
        };
        if run.host.preempt_rt.is_some() || rt_frames() {
            Self::Sleeping
        } else {
            Self::Spinning
        }
    }
}

/// `spin_lock()`'s inline body (include/linux/spinlock_api_smp.h) emitted
/// out of line. arm64 selects `ARCH_INLINE_SPIN_LOCK`, so `spin_lock()` is
/// `__raw_spin_lock()` there, and a size-optimised build (the 6.1 kernels
/// `cargo xtask kernel build` makes) keeps it as a local function: the PTE-lock
/// caller's frame is followed by `__raw_spin_lock`, not `_raw_spin_lock`, and
/// the spinning below it (`queued_spin_lock_slowpath`, or the leaf
/// `__cmpwait_case_32` whose caller the frame-pointer unwinder skips) counts
/// only through it.
const OUT_OF_LINE_SPIN_LOCK: &str = "__raw_spin_lock";

/// Frames that mean "spinning for a lock" below the PTE-lock function.
pub(crate) fn spin_frames(frames: &ConceptFrames) -> Vec<&str> {
    let mut spin = vec![
        "_raw_spin_lock",
        OUT_OF_LINE_SPIN_LOCK,
        "queued_spin_lock_slowpath",
        "native_queued_spin_lock_slowpath",
    ];
    if let Some(slowpath) = frames.frame(ConceptId::SpinSlowpath) {
        spin.push(slowpath);
    }
    spin
}

/// The functions whose direct spinlock calls are PTE-lock acquisitions: the
/// resolved PTE-lock function, or the zap path where it is inlined.
pub(crate) fn pte_callers(frames: &ConceptFrames) -> Vec<&str> {
    match frames.symbol(ConceptId::PteLock) {
        Some(symbol) => vec![symbol],
        None => INLINED_PTE_LOCK_CALLERS.to_vec(),
    }
}

/// Frames without fentry trampolines (they sit between a probed function
/// and its caller).
fn real_frames(frames: &[String]) -> Vec<&str> {
    frames
        .iter()
        .map(String::as_str)
        .filter(|f| !f.starts_with("bpf_trampoline_"))
        .collect()
}

/// Whether a stack spins for the PTE lock: a spinlock frame whose direct
/// caller (fentry trampolines skipped) takes the PTE lock.
pub(crate) fn spins_for_pte_lock(frames: &[String], pte_callers: &[&str], spin: &[&str]) -> bool {
    real_frames(frames)
        .windows(2)
        .any(|w| pte_callers.contains(&w[0]) && spin.contains(&w[1]))
}

/// Whether a stack waits for the PTE lock on PREEMPT_RT: `rt_spin_lock`
/// called directly by a PTE-lock caller (fentry trampolines skipped). Its
/// contended path (`rtlock_slowlock`, the wait_lock, `wake_up_q`) is inlined
/// into `rt_spin_lock` or below it, so, as with `_raw_spin_lock` on other
/// kernels, everything under that call counts; `lock:contention_begin`
/// fires only in `rtlock_slowlock_locked`, so traced waits are all contended.
pub(crate) fn sleeps_for_pte_lock(frames: &[String], pte_callers: &[&str]) -> bool {
    real_frames(frames)
        .windows(2)
        .any(|w| pte_callers.contains(&w[0]) && w[1] == RT_SPIN_LOCK)
}

/// The thread's "Time waiting for pte spinlock": sampled CPU time spinning
/// for the PTE lock. Sampling is used rather than lock:contention because
/// the qspinlock tracepoint fires only for waiters that reach the MCS queue:
/// a lone waiter spinning on the pending bit (the usual exit_mmap vs reaper
/// case) and x86 guests' virt_spin_lock() path never trace it. On
/// PREEMPT_RT it is the on-CPU part of sleeping waits (the rtlock slow path
/// spinning on a running owner); the sleep itself is off-CPU, unsampled, and
/// in the traced row.
pub fn pte_wait_row(run: &Run, frames: &ConceptFrames) -> SummaryRow {
    let id = RowId::PteLockWait;
    let kind = PteLockKind::of(run);
    let label = match kind {
        PteLockKind::Spinning => "Time waiting for pte spinlock",
        PteLockKind::Sleeping => {
            "Time waiting for pte lock (sleeping rt_spin_lock, on-CPU samples)"
        }
    }
    .to_owned();
    if let Some(why) = sampled_rows_failure(run) {
        return uniform_row(run, id, label, why);
    }
    let callers = pte_callers(frames);
    let spin = spin_frames(frames);
    let waiting = |s: &&SampledStack| match kind {
        PteLockKind::Spinning => spins_for_pte_lock(&s.frames, &callers, &spin),
        PteLockKind::Sleeping => {
            sleeps_for_pte_lock(&s.frames, &callers)
                || spins_for_pte_lock(&s.frames, &callers, &spin)
        }
    };
    let victim_fn = frames
        .frame(ConceptId::VictimTeardown)
        .unwrap_or("exit_mmap");
    let cells = run
        .episodes
        .iter()
        .map(|e| {
            let victim: u64 = episode_stacks(e, Context::VictimExit)
                .filter(|s| s.frames.iter().any(|f| f == victim_fn))
                .filter(waiting)
                .map(|s| s.period_ns)
                .sum();
            let reaper: u64 = Context::REAPERS
                .into_iter()
                .flat_map(|c| episode_stacks(e, c))
                .filter(waiting)
                .map(|s| s.period_ns)
                .sum();
            Cell::Measured(split_value(victim, reaper, None))
        })
        .collect();
    row(id, label, Some(SPLIT_LABEL), cells)
}

/// Why lock waits cannot be classified by their stacks: some have a
/// caller the kernel's unwinder lost to a kretprobe's return trampoline
/// (the spin slow path's kprobe on arm64 5.10), so a PTE-lock wait could
/// not be told from another.
fn lost_callers(run: &Run) -> Option<String> {
    let (mut lost, mut total) = (0u64, 0u64);
    for wait in run
        .episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .flat_map(|c| &c.lock_waits)
    {
        total += wait.count;
        if wait
            .frames
            .iter()
            .any(|f| f == crate::model::FRAME_CALLER_LOST)
        {
            lost += wait.count;
        }
    }
    (lost > 0).then(|| {
        format!(
            "{lost} of {total} waits have a caller the kernel's unwinder lost to a kretprobe's \
             return trampoline, so PTE-lock waits cannot be told from others by stack; the exact \
             row counts the slow path's calls by their probed caller"
        )
    })
}

/// PTE-lock waits the lock:contention tracepoints saw: queued waiters only
/// on spinning kernels (qspinlock traces `contention_begin` after its
/// `queue:` label, so a lone waiter spinning on the pending bit is never
/// seen; the label says so, and the exact row counts those waits); on PREEMPT_RT every contended `rt_spin_lock` (the
/// tracepoint fires in `rtlock_slowlock_locked`), attributed like the
/// sampled row.
pub fn pte_traced_wait_row(run: &Run, frames: &ConceptFrames) -> SummaryRow {
    let id = RowId::PteTracedWait;
    let kind = PteLockKind::of(run);
    let label = traced_wait_label(kind, run.recording.lock_wait_source.as_ref());
    if let Err(why) = lock_wait_status(run) {
        return uniform_row(run, id, label, why.to_string());
    }
    if let Some(why) = lost_callers(run) {
        return uniform_row(run, id, label, why);
    }
    let pte_fn = frames.frame(ConceptId::PteLock);
    if kind == PteLockKind::Spinning && pte_fn.is_none() {
        return uniform_row(run, id, label, absent(ConceptId::PteLock));
    }
    let callers = pte_callers(frames);
    let spin = spin_frames(frames);
    let pte_symbol = frames.symbol(ConceptId::PteLock);
    let victim_fn = frames
        .frame(ConceptId::VictimTeardown)
        .unwrap_or("exit_mmap");
    let counts = |stack: &[String], is_victim: bool| -> bool {
        if is_victim && !stack.iter().any(|f| f == victim_fn) {
            return false;
        }
        match (kind, pte_symbol) {
            (PteLockKind::Sleeping, _) => sleeps_for_pte_lock(stack, &callers),
            (PteLockKind::Spinning, Some(pte_fn)) if is_victim => {
                frames_within(stack, victim_fn, pte_fn)
            }
            (PteLockKind::Spinning, Some(pte_fn)) => stack.iter().any(|f| f == pte_fn),
            // The PTE lock is inline (6.1): its inline fallback frame
            // (zap_pte_range) is in no stack, so classify by the spinlock's
            // direct caller, as the sampled row does.
            (PteLockKind::Spinning, None) => spins_for_pte_lock(stack, &callers, &spin),
        }
    };
    let cells = run
        .episodes
        .iter()
        .map(|e| traced_wait_cell(e, &counts))
        .collect();
    row(id, label, Some(SPLIT_LABEL), cells)
}

/// The traced-wait row's label for this kind of PTE lock and where the
/// lock waits came from.
fn traced_wait_label(kind: PteLockKind, source: Option<&crate::model::FigureSource>) -> String {
    match (kind, source) {
        // Every contended acquisition enters the slow path, pending-bit
        // spins included (see reaper_common::lock_wait).
        (PteLockKind::Spinning, Some(source)) => format!("PTE-lock waits ({})", source.label()),
        (PteLockKind::Spinning, None) => {
            "PTE-lock waits traced (queued only, not pending-bit spins)".to_owned()
        }
        (PteLockKind::Sleeping, _) => "PTE-lock sleeping waits traced (rt_spin_lock)".to_owned(),
    }
}

/// One episode's traced PTE-lock waits, split victim / reaper, with their
/// count; `counts` says whether a wait's stack (of the victim's side or
/// not) is one.
fn traced_wait_cell(e: &crate::model::Episode, counts: &dyn Fn(&[String], bool) -> bool) -> Cell {
    let (mut victim, mut reaper, mut count) = (0, 0, 0);
    for ctx in &e.contexts {
        let is_victim = !ctx.context.is_reaper();
        for wait in ctx
            .lock_waits
            .iter()
            .filter(|w| counts(&w.frames, is_victim))
        {
            count += wait.count;
            if is_victim {
                victim += wait.total_ns;
            } else {
                reaper += wait.total_ns;
            }
        }
    }
    Cell::Measured(split_value(victim, reaper, Some(count)))
}
