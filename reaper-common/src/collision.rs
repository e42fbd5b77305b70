//! Who blocks whom (issue 25): the walkers' per-VMA steps with their times,
//! and each PTE-lock wait of a tracked context with the lock's last taker.
//!
//! All of it is recorded by function timing's programs (one program set,
//! `reaper-ebpf/src/probes/function_timing.rs`), so it costs no probe of its
//! own:
//! - the walker step function's entry (the per-VMA zap both contexts call:
//!   `unmap_page_range` up to 6.18, `__zap_vma_range` on 7.x) appends a
//!   [`WalkerStep`] to its context's [`WalkerLog`], and its exit closes it;
//! - the PTE-lock function's fexit (`__pte_offset_map_lock` from 6.5,
//!   `pte_offset_map_lock` on 7.x; inline on 6.1) stores a tracked taker as
//!   the lock's [`LastTaker`] in [`MAP_PTE_LAST_TAKER`], keyed by the lock
//!   address it wrote to `*ptlp`;
//! - the spin slow path's entry, when its nearest probed caller is the
//!   PTE-lock call site, appends a [`PteWait`] with the lock's last taker to
//!   this CPU's [`WaitLog`], and its exit sets the wait's duration.
//!
//! The waits are the slow path's calls, not `lock:contention_begin`'s:
//! qspinlock fires that tracepoint only after its `queue:` label
//! (kernel/locking/qspinlock.c), so the lone waiter spinning on the pending
//! bit (the usual victim vs reaper case) would be missed; the slow path's
//! calls are also what the summary's "PTE-lock wait, exact" row sums, so
//! the waiter × holder table adds up to it.
//!
//! On PREEMPT_RT the PTE lock is a sleeping `rt_spin_lock`, whose waits
//! never reach the spin slow path; there the waits come from
//! `lock:contention_begin/end` instead (`reaper-ebpf/src/probes/rt_owner.rs`,
//! configured by [`RtOwnerConfig`]), and the holder is the lock's owner,
//! which the kernel keeps in the `rt_mutex_base` and reaper reads at the
//! wait's start: no last-taker guess.
//!
//! Userspace names the holder: the last taker when one was recorded and is
//! not the waiter itself, else (6.1, where the PTE lock is inline, and
//! kprobe mode, whose kretprobe cannot read `*ptlp`) the other tracked
//! walker inside its per-VMA step when the wait began, else unknown.

/// Walker steps kept per context and episode: the synthetic victim has 64
/// VMAs plus a few of the binary, so 256 leaves room; later steps are
/// counted in [`WalkerLog::count`] and reported as lost.
pub const WALKER_LOG_LEN: usize = 256;
/// PTE-lock waits kept per CPU and episode: a 256M race in a 2-vCPU TCG
/// guest has a few hundred contended PTE-lock acquisitions a side; later
/// ones are counted in [`WaitLog::count`] and reported as lost. 256 × 80
/// bytes keeps the per-CPU value under the kernel's 32 KiB per-CPU limit.
pub const WAIT_LOG_LEN: usize = 256;
/// Locks whose last taker is remembered: one per page-table page a tracked
/// walker locked (a 4 GiB victim has 2,048); the LRU forgets the oldest.
pub const LAST_TAKER_ENTRIES: u32 = 4096;

/// Map: [`WalkerLog`] per context (not per CPU: one walker per context).
pub const MAP_WALKER_LOG: &str = "FN_WALKER_LOG";
/// Map: [`WaitLog`] per CPU.
pub const MAP_PTE_WAIT_LOG: &str = "FN_PTE_WAIT_LOG";
/// Map: lock address (`u64`) → [`LastTaker`], LRU.
pub const MAP_PTE_LAST_TAKER: &str = "FN_PTE_LAST_TAKER";
/// Map: per CPU, [`OpenWait`] by entry-stack depth.
pub const MAP_PTE_OPEN_WAITS: &str = "FN_PTE_OPEN_WAITS";

/// [`LastTaker::context`] of a taker reaper does not track.
pub const TAKER_UNTRACKED: u32 = u32::MAX;
/// [`PteWait::duration_ns`] of a wait whose slow-path exit was not seen.
pub const WAIT_OPEN: u64 = u64::MAX;

/// One call of the walker step function.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkerStep {
    /// First address of the range (the VMA's start, or the zapped part's).
    pub start: u64,
    /// End of the range (exclusive).
    pub end: u64,
    /// `bpf_ktime_get_ns()` at entry.
    pub enter_ns: u64,
    /// `bpf_ktime_get_ns()` at exit; 0 while open or when missed.
    pub exit_ns: u64,
    /// The thread that walked.
    pub tid: u32,
    /// Reserved; keeps the size a multiple of 8.
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<WalkerStep>() == 40);

/// Value of [`MAP_WALKER_LOG`]: one context's steps in call order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkerLog {
    /// Steps seen, also past the log (lost = count - [`WALKER_LOG_LEN`]).
    pub count: u64,
    /// The first [`WALKER_LOG_LEN`] steps.
    pub steps: [WalkerStep; WALKER_LOG_LEN],
}
const _: () = assert!(core::mem::size_of::<WalkerLog>() == 8 + 40 * WALKER_LOG_LEN);

impl Default for WalkerLog {
    fn default() -> Self {
        Self {
            count: 0,
            steps: [WalkerStep::default(); WALKER_LOG_LEN],
        }
    }
}

impl WalkerLog {
    /// The kept steps.
    pub fn kept(&self) -> &[WalkerStep] {
        &self.steps[..(self.count as usize).min(WALKER_LOG_LEN)]
    }

    /// Steps seen but not kept.
    pub fn lost(&self) -> u64 {
        self.count.saturating_sub(WALKER_LOG_LEN as u64)
    }
}

/// Value of [`MAP_PTE_LAST_TAKER`]: who last took a PTE lock.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastTaker {
    /// `bpf_ktime_get_ns()` at the PTE-lock function's return.
    pub taken_ns: u64,
    /// The address whose PTE the taker mapped (the function's `addr`).
    pub addr: u64,
    /// The taker's thread.
    pub tid: u32,
    /// Its context id, or [`TAKER_UNTRACKED`].
    pub context: u32,
    /// Its `comm`, NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<LastTaker>() == 40);

/// One PTE-lock wait of a tracked thread: a spin slow-path call made
/// directly from the PTE-lock call site.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PteWait {
    /// `bpf_ktime_get_ns()` at the slow path's entry.
    pub start_ns: u64,
    /// The call's inclusive time, or [`WAIT_OPEN`].
    pub duration_ns: u64,
    /// The lock's address (the slow path's first argument).
    pub lock: u64,
    /// The lock's last taker at the wait's start (valid when `found`).
    pub holder: LastTaker,
    /// The waiting thread.
    pub tid: u32,
    /// Its context id.
    pub context: u32,
    /// Non-zero: `holder` was found in [`MAP_PTE_LAST_TAKER`].
    pub found: u32,
    /// Reserved; keeps the size a multiple of 8.
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<PteWait>() == 80);

/// Value of [`MAP_PTE_WAIT_LOG`]: one CPU's PTE-lock waits in order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitLog {
    /// Waits seen, also past the log (lost = count - [`WAIT_LOG_LEN`]).
    pub count: u64,
    /// The first [`WAIT_LOG_LEN`] waits.
    pub waits: [PteWait; WAIT_LOG_LEN],
}
const _: () = assert!(core::mem::size_of::<WaitLog>() == 8 + 80 * WAIT_LOG_LEN);

impl Default for WaitLog {
    fn default() -> Self {
        Self {
            count: 0,
            waits: [PteWait::default(); WAIT_LOG_LEN],
        }
    }
}

impl WaitLog {
    /// The kept waits.
    pub fn kept(&self) -> &[PteWait] {
        &self.waits[..(self.count as usize).min(WAIT_LOG_LEN)]
    }

    /// Waits seen but not kept.
    pub fn lost(&self) -> u64 {
        self.count.saturating_sub(WAIT_LOG_LEN as u64)
    }
}

/// Value of [`MAP_PTE_OPEN_WAITS`]: the logged wait a slow-path call at
/// this entry-stack depth opened on this CPU (the slow path spins with
/// preemption off, so its exit runs on the same CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenWait {
    /// The waiting thread; 0: none open.
    pub tid: u32,
    /// Index in this CPU's [`WaitLog::waits`].
    pub index: u32,
}
const _: () = assert!(core::mem::size_of::<OpenWait>() == 8);

/// Map: open PREEMPT_RT PTE-lock waits, by (thread, lock)
/// (`crate::lock_wait::PendingWaitKey` → [`PteWait`]); the wait joins this
/// CPU's [`WaitLog`] when it ends (the waiter may have slept and moved).
pub const MAP_RT_PTE_WAITS: &str = "RT_PTE_WAITS";
/// Every map of the collision logs, in the order run.json lists their
/// kernel memory (`recording.collision_maps`).
pub const COLLISION_MAPS: [&str; 5] = [
    MAP_WALKER_LOG,
    MAP_PTE_WAIT_LOG,
    MAP_PTE_OPEN_WAITS,
    MAP_PTE_LAST_TAKER,
    MAP_RT_PTE_WAITS,
];
/// Open PREEMPT_RT PTE-lock waits at once: one per tracked thread is the
/// most a teardown has.
pub const RT_PTE_WAITS_ENTRIES: u32 = 256;
/// Loader global: the [`RtOwnerConfig`].
pub const GLOBAL_RT_OWNERS: &str = "RT_OWNERS";
/// Functions whose direct `rt_spin_lock` calls take a PTE lock, at most.
pub const RT_PTE_CALLERS: usize = 4;
/// Kernel frames searched for `rt_spin_lock` called by a PTE-lock caller
/// at `contention_begin` (rtlock_slowlock_locked, rt_spin_lock, the
/// caller, and room for a trampoline).
pub const RT_STACK_FRAMES: usize = 8;

/// Where the PREEMPT_RT owner of a PTE lock is, set by the loader from the
/// kernel's BTF and kallsyms; `owner_offset` 0 switches it off (the owner
/// never comes first: `wait_lock` does).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtOwnerConfig {
    /// `offsetof(struct rt_mutex_base, owner)`; `spinlock_t` starts with
    /// its `rt_mutex_base` on PREEMPT_RT. Bit 0 of the owner word is
    /// `RT_MUTEX_HAS_WAITERS`.
    pub owner_offset: u32,
    /// `offsetof(struct task_struct, pid)`.
    pub task_pid_offset: u32,
    /// `offsetof(struct task_struct, tgid)`.
    pub task_tgid_offset: u32,
    /// `offsetof(struct task_struct, comm)`.
    pub task_comm_offset: u32,
    /// `[start, end)` of `rt_spin_lock`.
    pub rt_spin_lock: [u64; 2],
    /// `[start, end)` of each function whose `rt_spin_lock` call takes a
    /// PTE lock (`pte_offset_map_lock` and kin per kernel); `[0, 0]`
    /// unused.
    pub pte_callers: [[u64; 2]; RT_PTE_CALLERS],
}
const _: () = assert!(core::mem::size_of::<RtOwnerConfig>() == 16 + 16 + 16 * RT_PTE_CALLERS);

impl RtOwnerConfig {
    /// Off.
    pub const DISABLED: Self = Self {
        owner_offset: 0,
        task_pid_offset: 0,
        task_tgid_offset: 0,
        task_comm_offset: 0,
        rt_spin_lock: [0; 2],
        pte_callers: [[0; 2]; RT_PTE_CALLERS],
    };

    /// Whether `ip` is inside `rt_spin_lock`.
    #[inline(always)]
    pub fn in_rt_spin_lock(&self, ip: u64) -> bool {
        ip >= self.rt_spin_lock[0] && ip < self.rt_spin_lock[1]
    }

    /// Whether `ip` is inside one of the PTE-lock callers.
    #[inline(always)]
    pub fn in_pte_caller(&self, ip: u64) -> bool {
        let mut i = 0;
        while i < RT_PTE_CALLERS {
            let [start, end] = self.pte_callers[i];
            if ip >= start && ip < end {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Whether a stack (innermost frame first) waits in `rt_spin_lock`
    /// called directly by a PTE-lock caller.
    #[inline(always)]
    pub fn is_pte_wait(&self, frames: &[u64; RT_STACK_FRAMES]) -> bool {
        let mut i = 0;
        while i + 1 < RT_STACK_FRAMES {
            if self.in_rt_spin_lock(frames[i]) && self.in_pte_caller(frames[i + 1]) {
                return true;
            }
            i += 1;
        }
        false
    }
}

crate::user_pod!(
    WalkerStep,
    WalkerLog,
    LastTaker,
    PteWait,
    WaitLog,
    OpenWait,
    RtOwnerConfig
);
