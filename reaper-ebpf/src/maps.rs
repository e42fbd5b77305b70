//! Maps and helpers shared by several probe modules: task tracking, the kernel
//! stack map, the loss/hit counters and the tracepoint field offsets.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use reaper_common::{
    loss::{COUNTER_COUNT, Counter},
    sampling::{KERNEL_STACKS_DEFAULT_ENTRIES, KernelStack, STACK_SCRATCH_SLOTS},
    tracepoint_offsets::TracepointOffsets,
    tracking::{SETTING_WATCH, SETTINGS_COUNT, TRACKED_MAX_ENTRIES, TrackedTask, tag},
};

/// tgid → context; see `reaper_common::tracking`.
#[map(name = "TRACKED_TGIDS")]
pub static TRACKED_TGIDS: HashMap<u32, TrackedTask> =
    HashMap::with_max_entries(TRACKED_MAX_ENTRIES, 0);

/// tid → context; consulted before [`TRACKED_TGIDS`].
#[map(name = "TRACKED_TIDS")]
pub static TRACKED_TIDS: HashMap<u32, TrackedTask> =
    HashMap::with_max_entries(TRACKED_MAX_ENTRIES, 0);

/// Kernel stacks of samples and lock waits by id (size set by
/// `--stack-map-size`); see `reaper_common::sampling` for why a hash.
#[map(name = "KERNEL_STACKS")]
pub static KERNEL_STACKS: HashMap<u32, KernelStack> =
    HashMap::with_max_entries(KERNEL_STACKS_DEFAULT_ENTRIES, 0);

/// Where a program captures a stack before looking it up (too big for the
/// 512-byte BPF stack). Per CPU and per capturing program (`SCRATCH_*`): a
/// program does not run nested in itself on one CPU (the kernel's
/// per-program recursion check for raw tracepoints, `bpf_prog_active` for
/// perf_event), but the sampler's NMI can interrupt the raw
/// `contention_begin`, so each has its own slot.
#[map(name = "STACK_SCRATCH")]
pub static STACK_SCRATCH: PerCpuArray<KernelStack> =
    PerCpuArray::with_max_entries(STACK_SCRATCH_SLOTS, 0);

/// Per-CPU hit and loss counters indexed by [`Counter`].
#[map(name = "COUNTERS")]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);

/// Tracepoint field offsets, written by the loader from tracefs `format`.
#[unsafe(no_mangle)]
pub static TRACEPOINT_OFFSETS: TracepointOffsets = TracepointOffsets {
    contention_begin_lock: 0,
    contention_begin_flags: 0,
    contention_end_lock: 0,
    mrelease_enter_pidfd: 0,
    mrelease_exit_ret: 0,
    process_free_pid: 0,
    oom_pid: 0,
    signal_generate_sig: 0,
    signal_generate_pid: 0,
    raw_task_pid: 0,
    raw_syscall_arg0: 0,
    raw_mark_victim: 0,
    rss_stat_mm_id: 0,
    rss_stat_curr: 0,
    rss_stat_member: 0,
    rss_stat_size: 0,
    nr_exit_group: 0,
    exit_group_code: 0,
};

/// The loader-provided offsets (volatile so the compiler cannot fold the
/// zero initialiser into the programs).
#[inline(always)]
pub fn offsets() -> TracepointOffsets {
    // SAFETY: a plain read of a global the loader initialised.
    unsafe { core::ptr::read_volatile(&TRACEPOINT_OFFSETS) }
}

/// Counts a dropped or skipped event ([`bump`]) and, when the loader turned
/// eBPF logging on (`reaper -vv record`), says why through aya-log. Off, the
/// loader sets `AYA_LOG_LEVEL` to 0 in the frozen .rodata, so the verifier
/// proves the log branch dead and neither loads nor runs it.
#[macro_export]
macro_rules! dropped {
    ($ctx:expr, $counter:expr, $($message:tt)+) => {{
        $crate::maps::bump($counter);
        aya_log_ebpf::debug!($ctx, $($message)+);
    }};
}

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn bump(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot; BPF programs do not preempt each other on one
        // CPU except NMI-context perf samples, whose rare lost update is
        // acceptable for a counter.
        unsafe { *slot += 1 };
    }
}

/// The current task's thread id and thread-group id.
#[inline(always)]
pub fn current_ids() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    (pid_tgid as u32, (pid_tgid >> 32) as u32)
}

/// Settings written by userspace after loading (`SETTING_*`).
#[map(name = "SETTINGS")]
pub static SETTINGS: Array<u32> = Array::with_max_entries(SETTINGS_COUNT, 0);

/// Whether `record --watch` runs (the kernel side then tracks by itself).
#[inline(always)]
pub fn watching() -> bool {
    SETTINGS.get(SETTING_WATCH).is_some_and(|&v| v != 0)
}

/// Whether every `process_mrelease` caller is tracked for its call
/// (`record --watch`, or `record --pid P` waiting for P's own exit).
#[inline(always)]
pub fn following_mrelease() -> bool {
    watching()
        || SETTINGS
            .get(reaper_common::tracking::SETTING_FOLLOW_MRELEASE)
            .is_some_and(|&v| v != 0)
}

/// The tag (context and owner) of a task, looked up by tid first, then by
/// tgid; unarmed entries do not count yet.
#[inline(always)]
pub fn context_of(tid: u32, tgid: u32) -> Option<u32> {
    // SAFETY: values are plain data copied out immediately.
    let task = unsafe { TRACKED_TIDS.get(&tid).or_else(|| TRACKED_TGIDS.get(&tgid)) }?;
    (task.armed != 0).then_some(tag(task.context, task.owner))
}

/// Arms a tracked process (see `TrackedTask::armed`).
#[inline(always)]
pub fn arm_tgid(tgid: u32) {
    if let Some(task) = TRACKED_TGIDS.get_ptr_mut(&tgid) {
        // SAFETY: a map value pointer; a plain u32 store.
        unsafe { (*task).armed = 1 };
    }
}

/// Tracks a process from the kernel side (watch mode), owned by itself.
#[inline(always)]
pub fn track_tgid(tgid: u32, context: u32) {
    let task = TrackedTask {
        context,
        armed: 1,
        owner: tgid,
        _pad: 0,
    };
    if TRACKED_TGIDS.insert(&tgid, &task, 0).is_err() {
        bump(reaper_common::loss::Counter::TrackedFull);
    }
}

/// Tracks a thread from the kernel side (watch mode), owned by `owner`.
#[inline(always)]
pub fn track_tid(tid: u32, context: u32, owner: u32) {
    let task = TrackedTask {
        context,
        armed: 1,
        owner,
        _pad: 0,
    };
    if TRACKED_TIDS.insert(&tid, &task, 0).is_err() {
        bump(reaper_common::loss::Counter::TrackedFull);
    }
}

/// Stops tracking a thread (watch mode).
#[inline(always)]
pub fn untrack_tid(tid: u32) {
    let _ = TRACKED_TIDS.remove(&tid);
}

/// Context of the current task, if reaper tracks it.
#[inline(always)]
pub fn current_context() -> Option<u32> {
    let (tid, tgid) = current_ids();
    context_of(tid, tgid)
}

/// Adds `value` (wrapping: `u64::MAX` subtracts one) to a map value shared
/// by every CPU, atomically (BPF's atomic add; the old value is not read).
#[inline(always)]
pub fn atomic_add(target: *mut u64, value: u64) {
    // SAFETY: `target` is a map value pointer the caller got from a lookup.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            target, value,
        );
    }
}
