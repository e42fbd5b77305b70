//! Rare teardown events (mrelease enter/exit, exit_mmap done, process
//! exit/free, the oom:* events) written with timestamps to a ring buffer.
//!
//! Each event has two programs with one body: a classic tracepoint, which
//! reads the perf record at tracefs offsets, and a raw tracepoint, which
//! reads the `TP_PROTO` arguments (no record is built, and detaching it
//! waits for no RCU grace period). Userspace attaches the raw one and falls
//! back to the classic one, except for the syscalls: `process_mrelease`
//! and `exit_group` have no raw tracepoint of their own, and the raw
//! programs that stand in for them sit on `raw_syscalls:sys_enter/sys_exit`,
//! which run for every syscall on the machine (returning at once unless the
//! call is 448 or `exit_group`). Their classic per-syscall tracepoints
//! (`CONFIG_FTRACE_SYSCALLS`) run a program only for their own syscall, so
//! userspace attaches those first and the raw pair only without them.

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_comm, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
};
use reaper_common::{
    context::{CONTEXT_MRELEASE_CALLER, CONTEXT_UNTRACKED, CONTEXT_VICTIM_EXIT},
    loss::Counter,
    timeline::{MRELEASE_CALLS_MAX_ENTRIES, TIMELINE_DEFAULT_BYTES, TimelineEvent, TimelineKind},
    tracepoint_offsets::{MARK_VICTIM_TASK, NR_PROCESS_MRELEASE},
};

use crate::maps::{
    arm_tgid, atomic_add, bump, context_of, current_ids, following_mrelease, offsets, track_tgid,
    track_tid, untrack_tid, watching,
};

/// The event stream (size set by `--ringbuf-size`).
#[map(name = "TIMELINE")]
static TIMELINE: RingBuf = RingBuf::with_byte_size(TIMELINE_DEFAULT_BYTES, 0);

/// Threads inside `process_mrelease` (tid → pidfd), for the raw `sys_exit`.
#[map(name = "MRELEASE_CALLS")]
static MRELEASE_CALLS: HashMap<u32, i64> = HashMap::with_max_entries(MRELEASE_CALLS_MAX_ENTRIES, 0);

/// How many `process_mrelease` calls the raw `sys_enter` saw open: the raw
/// `sys_exit` runs for every syscall on the system, and returns after this
/// one array load while it is 0, before any hash lookup.
#[map(name = "MRELEASE_OPEN")]
static MRELEASE_OPEN: Array<u64> = Array::with_max_entries(1, 0);

/// Which tasks an event is recorded for.
#[derive(Clone, Copy)]
pub(crate) enum Scope {
    /// Every task (rare system-wide events: mrelease calls, oom:*).
    Everyone,
    /// Only tracked tasks (per-task events such as exit).
    Tracked,
}

/// Writes one event for the current task; `None` from `arg` drops nothing but
/// records 0, since a missing argument must not hide the event itself.
#[inline(always)]
pub(crate) fn emit<C: EbpfContext>(ctx: &C, kind: TimelineKind, scope: Scope, arg: i64) {
    let (tid, tgid) = current_ids();
    let context = context_of(tid, tgid);
    if matches!(scope, Scope::Tracked) && context.is_none() {
        return;
    }
    let Some(mut entry) = TIMELINE.reserve::<TimelineEvent>(0) else {
        crate::dropped!(
            ctx,
            Counter::TimelineRingFull,
            "timeline event {} dropped: TIMELINE ring buffer full (--ringbuf-size)",
            kind as u32
        );
        return;
    };
    let event = TimelineEvent {
        ts_ns: unsafe { bpf_ktime_get_ns() },
        arg,
        kind: kind as u32,
        context: context.unwrap_or(CONTEXT_UNTRACKED),
        tid,
        tgid,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    entry.write(event);
    // A record submitted without a wake-up would also keep the kernel's
    // adaptive wake-up of the next record from firing (the reader is no
    // longer caught up), so the waking kinds force it.
    entry.submit(if kind.wakes_reader() {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    });
    bump(Counter::TimelineEvents);
}

/// Reads an integer field at a loader-provided offset (0 when unreadable).
#[inline(always)]
fn field<T: Into<i64>>(ctx: &TracePointContext, offset: u32) -> i64 {
    // SAFETY: the offset comes from this kernel's tracefs format.
    unsafe { ctx.read_at::<T>(offset as usize) }.map_or(0, Into::into)
}

/// Reads a `TP_PROTO` argument's struct field at `offset` (0 when unreadable).
#[inline(always)]
fn kernel_field<T: Into<i64>>(base: u64, offset: u32) -> i64 {
    // SAFETY: bpf_probe_read_kernel checks the address; the offset comes
    // from this kernel's BTF.
    unsafe { bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.map_or(0, Into::into)
}

/// The pid of a `struct task_struct *` argument of a raw tracepoint.
#[inline(always)]
fn task_pid(ctx: &RawTracePointContext, arg: usize) -> i64 {
    kernel_field::<i32>(ctx.arg::<u64>(arg), offsets().raw_task_pid)
}

/// Declares a classic and a raw tracepoint program that emit one timeline
/// event. `$arg` maps the classic context and the loader's offsets to the
/// event argument, `$raw` the raw context.
macro_rules! timeline_probe {
    (
        $name:ident, $raw_name:ident, $kind:ident, $scope:ident,
        |$ctx:ident, $off:ident| $arg:expr,
        |$rctx:ident| $raw:expr
    ) => {
        #[tracepoint]
        #[allow(unused_variables, reason = "not every probe reads its record")]
        pub fn $name($ctx: TracePointContext) -> u32 {
            let $off = offsets();
            emit(&$ctx, TimelineKind::$kind, Scope::$scope, $arg);
            0
        }

        #[raw_tracepoint]
        #[allow(unused_variables, reason = "not every probe reads its arguments")]
        pub fn $raw_name($rctx: RawTracePointContext) -> i32 {
            emit(&$rctx, TimelineKind::$kind, Scope::$scope, $raw);
            0
        }
    };
}

// mmap:exit_mmap(struct mm_struct *mm) and
// sched:sched_process_exit(struct task_struct *p[, bool group_dead]) both
// run in the exiting task, which is what they are recorded for.
timeline_probe!(
    timeline_exit_mmap,
    raw_exit_mmap,
    ExitMmap,
    Tracked,
    |ctx, off| 0,
    |ctx| 0
);

/// A thread passing `sched_process_exit`: its process's exit has begun, so
/// a tracked process that was not armed yet (one reaper follows until it
/// exits on its own, `record --pid P` without `--kill`) is armed here. On
/// kernels whose `do_exit()` fires this before `exit_mm()` (6.18, whose
/// tracepoint carries `group_dead`; not 6.1), and for every thread of a
/// multi-threaded process but the last, that is before the teardown.
#[inline(always)]
fn process_exit<C: EbpfContext>(ctx: &C) {
    arm_tgid(current_ids().1);
    emit(ctx, TimelineKind::ProcessExit, Scope::Tracked, 0);
}

#[tracepoint]
pub fn timeline_process_exit(ctx: TracePointContext) -> u32 {
    process_exit(&ctx);
    0
}

/// `sched:sched_process_exit(struct task_struct *p[, bool group_dead])`.
#[raw_tracepoint]
pub fn raw_process_exit(ctx: RawTracePointContext) -> i32 {
    process_exit(&ctx);
    0
}
// oom:wake_reaper/start_task_reaping/finish_task_reaping/skip_task_reaping
// are TP_PROTO(int pid) on every kernel reaper supports.
timeline_probe!(
    timeline_oom_wake_reaper,
    raw_oom_wake_reaper,
    OomWakeReaper,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid),
    |ctx| i64::from(ctx.arg::<i32>(0))
);
timeline_probe!(
    timeline_oom_start_reaping,
    raw_oom_start_reaping,
    OomStartReaping,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid),
    |ctx| i64::from(ctx.arg::<i32>(0))
);
timeline_probe!(
    timeline_oom_finish_reaping,
    raw_oom_finish_reaping,
    OomFinishReaping,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid),
    |ctx| i64::from(ctx.arg::<i32>(0))
);
timeline_probe!(
    timeline_oom_skip_reaping,
    raw_oom_skip_reaping,
    OomSkipReaping,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid),
    |ctx| i64::from(ctx.arg::<i32>(0))
);

/// `sched_process_free` runs in an RCU callback, not in the freed task, so
/// tracking is checked against the freed task's pid instead of `current`.
#[inline(always)]
fn process_free<C: EbpfContext>(ctx: &C, pid: i64) {
    if context_of(pid as u32, pid as u32).is_some() {
        emit(ctx, TimelineKind::ProcessFree, Scope::Everyone, pid);
    }
}

#[tracepoint]
pub fn timeline_process_free(ctx: TracePointContext) -> u32 {
    process_free(&ctx, field::<i32>(&ctx, offsets().process_free_pid));
    0
}

/// `sched:sched_process_free(struct task_struct *p)`.
#[raw_tracepoint]
pub fn raw_process_free(ctx: RawTracePointContext) -> i32 {
    process_free(&ctx, task_pid(&ctx, 0));
    0
}

/// `oom:mark_victim` also arms a tracked OOM victim, so its work counts
/// from the kill on and not while it was still allocating; in watch mode it
/// starts tracking the victim.
#[inline(always)]
fn mark_victim<C: EbpfContext>(ctx: &C, pid: i64) {
    if watching() {
        track_tgid(pid as u32, CONTEXT_VICTIM_EXIT);
    } else {
        arm_tgid(pid as u32);
    }
    emit(ctx, TimelineKind::OomMarkVictim, Scope::Everyone, pid);
}

#[tracepoint]
pub fn timeline_oom_mark_victim(ctx: TracePointContext) -> u32 {
    mark_victim(&ctx, field::<i32>(&ctx, offsets().oom_pid));
    0
}

/// `oom:mark_victim`: `(int pid)` or `(struct task_struct *task, uid_t uid)`,
/// as userspace read from this kernel's BTF.
#[raw_tracepoint]
pub fn raw_oom_mark_victim(ctx: RawTracePointContext) -> i32 {
    let pid = if offsets().raw_mark_victim == MARK_VICTIM_TASK {
        task_pid(&ctx, 0)
    } else {
        i64::from(ctx.arg::<i32>(0))
    };
    mark_victim(&ctx, pid);
    0
}

/// `process_mrelease` entry; in watch mode (and while `record --pid P`
/// waits for P's exit) the caller is tracked for the duration of the call,
/// owned by its own process.
#[inline(always)]
fn mrelease_enter<C: EbpfContext>(ctx: &C, pidfd: i64) {
    if following_mrelease() {
        let (tid, tgid) = current_ids();
        track_tid(tid, CONTEXT_MRELEASE_CALLER, tgid);
    }
    emit(ctx, TimelineKind::MreleaseEnter, Scope::Everyone, pidfd);
}

/// `process_mrelease` return; in watch mode the caller stops being tracked.
#[inline(always)]
fn mrelease_exit<C: EbpfContext>(ctx: &C, ret: i64) {
    emit(ctx, TimelineKind::MreleaseExit, Scope::Everyone, ret);
    if following_mrelease() {
        untrack_tid(current_ids().0);
    }
}

#[tracepoint]
pub fn timeline_mrelease_enter(ctx: TracePointContext) -> u32 {
    mrelease_enter(&ctx, field::<i32>(&ctx, offsets().mrelease_enter_pidfd));
    0
}

#[tracepoint]
pub fn timeline_mrelease_exit(ctx: TracePointContext) -> u32 {
    mrelease_exit(&ctx, field::<i64>(&ctx, offsets().mrelease_exit_ret));
    0
}

/// `raw_syscalls:sys_enter(struct pt_regs *regs, long id)`: runs for every
/// syscall on the system, so the number is compared first; a
/// `process_mrelease` call is remembered per thread for `sys_exit`.
#[raw_tracepoint]
pub fn raw_sys_enter(ctx: RawTracePointContext) -> i32 {
    let nr = ctx.arg::<i64>(1);
    if nr != NR_PROCESS_MRELEASE {
        let exit_group = offsets().nr_exit_group;
        if exit_group != 0 && nr == i64::from(exit_group) {
            let code = kernel_field::<i32>(ctx.arg::<u64>(0), offsets().raw_syscall_arg0);
            exit_group_enter(&ctx, code);
        }
        return 0;
    }
    let pidfd = kernel_field::<i32>(ctx.arg::<u64>(0), offsets().raw_syscall_arg0);
    let (tid, _) = current_ids();
    if MRELEASE_CALLS.insert(&tid, &pidfd, 0).is_ok() {
        if let Some(open) = MRELEASE_OPEN.get_ptr_mut(0) {
            atomic_add(open, 1);
        }
    } else {
        bump(Counter::TrackedFull);
    }
    mrelease_enter(&ctx, pidfd);
    0
}

/// `exit_group(code)`: the process's own exit begins here, before any of its
/// threads leaves its mm, so a tracked process not armed yet is armed now
/// (single-threaded exits on kernels that fire `sched_process_exit` after
/// `exit_mm()` have no other hook before the teardown).
#[inline(always)]
fn exit_group_enter<C: EbpfContext>(ctx: &C, code: i64) {
    let (_, tgid) = current_ids();
    arm_tgid(tgid);
    emit(ctx, TimelineKind::ExitGroup, Scope::Tracked, code);
}

/// `syscalls:sys_enter_exit_group`, attached with the classic
/// `process_mrelease` pair in place of `raw_sys_enter`'s watch.
#[tracepoint]
pub fn timeline_exit_group(ctx: TracePointContext) -> u32 {
    exit_group_enter(&ctx, field::<i32>(&ctx, offsets().exit_group_code));
    0
}

/// `raw_syscalls:sys_exit(struct pt_regs *regs, long ret)`: runs for every
/// syscall; returns after one array load unless a `process_mrelease` call
/// is open somewhere, and then only acts on the thread that made it.
#[raw_tracepoint]
pub fn raw_sys_exit(ctx: RawTracePointContext) -> i32 {
    // SAFETY: plain data.
    if MRELEASE_OPEN.get(0).is_none_or(|&open| open == 0) {
        return 0;
    }
    let (tid, _) = current_ids();
    // SAFETY: only presence is checked.
    if unsafe { MRELEASE_CALLS.get(&tid) }.is_none() {
        return 0;
    }
    if MRELEASE_CALLS.remove(&tid).is_ok() {
        if let Some(open) = MRELEASE_OPEN.get_ptr_mut(0) {
            atomic_add(open, u64::MAX);
        }
    }
    mrelease_exit(&ctx, ctx.arg::<i64>(1));
    0
}

/// SIGKILL generation (watch mode only): the target may be torn down next, so
/// it is tracked from here, and the sender is recorded for pairing with a
/// later process_mrelease call.
#[inline(always)]
fn signal_generate<C: EbpfContext>(ctx: &C, pid: i64) {
    if pid <= 1 {
        return;
    }
    track_tgid(pid as u32, CONTEXT_VICTIM_EXIT);
    emit(ctx, TimelineKind::SigKill, Scope::Everyone, pid);
}

#[tracepoint]
pub fn timeline_signal_generate(ctx: TracePointContext) -> u32 {
    if !watching() {
        return 0;
    }
    let offsets = offsets();
    if field::<i32>(&ctx, offsets.signal_generate_sig) != SIGKILL {
        return 0;
    }
    signal_generate(&ctx, field::<i32>(&ctx, offsets.signal_generate_pid));
    0
}

/// `signal:signal_generate(int sig, struct kernel_siginfo *info,
/// struct task_struct *task, int group, int result)`.
#[raw_tracepoint]
pub fn raw_signal_generate(ctx: RawTracePointContext) -> i32 {
    if i64::from(ctx.arg::<i32>(0)) != SIGKILL || !watching() {
        return 0;
    }
    signal_generate(&ctx, task_pid(&ctx, 2));
    0
}

/// SIGKILL's number on every Linux architecture.
const SIGKILL: i64 = 9;
