//! Rare teardown events (mrelease enter/exit, exit_mmap done, process
//! exit/free, the oom:* events) written with timestamps to a ring buffer.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_ktime_get_ns},
    macros::{map, tracepoint},
    maps::RingBuf,
    programs::TracePointContext,
};
use reaper_common::{
    context::{CONTEXT_MRELEASE_CALLER, CONTEXT_UNTRACKED, CONTEXT_VICTIM_EXIT},
    loss::Counter,
    timeline::{TIMELINE_DEFAULT_BYTES, TimelineEvent, TimelineKind},
};

use crate::maps::{
    arm_tgid, bump, context_of, current_ids, offsets, track_tgid, track_tid, untrack_tid, watching,
};

/// The event stream (size set by `--ringbuf-size`).
#[map(name = "TIMELINE")]
static TIMELINE: RingBuf = RingBuf::with_byte_size(TIMELINE_DEFAULT_BYTES, 0);

/// Which tasks an event is recorded for.
#[derive(Clone, Copy)]
enum Scope {
    /// Every task (rare system-wide events: mrelease calls, oom:*).
    Everyone,
    /// Only tracked tasks (per-task events such as exit).
    Tracked,
}

/// Writes one event for the current task; `None` from `arg` drops nothing but
/// records 0, since a missing argument must not hide the event itself.
#[inline(always)]
fn emit(ctx: &TracePointContext, kind: TimelineKind, scope: Scope, arg: i64) {
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
    entry.submit(0);
    bump(Counter::TimelineEvents);
}

/// Reads an integer field at a loader-provided offset (0 when unreadable).
#[inline(always)]
fn field<T: Into<i64>>(ctx: &TracePointContext, offset: u32) -> i64 {
    // SAFETY: the offset comes from this kernel's tracefs format.
    unsafe { ctx.read_at::<T>(offset as usize) }.map_or(0, Into::into)
}

/// Declares a tracepoint program that emits one timeline event.
/// `$arg` maps the context and the loader's offsets to the event argument.
macro_rules! timeline_probe {
    ($name:ident, $kind:ident, $scope:ident, |$ctx:ident, $off:ident| $arg:expr) => {
        #[tracepoint]
        #[allow(unused_variables, reason = "not every probe reads its record")]
        pub fn $name($ctx: TracePointContext) -> u32 {
            let $off = offsets();
            emit(&$ctx, TimelineKind::$kind, Scope::$scope, $arg);
            0
        }
    };
}

timeline_probe!(timeline_exit_mmap, ExitMmap, Tracked, |ctx, off| 0);
timeline_probe!(timeline_process_exit, ProcessExit, Tracked, |ctx, off| 0);
timeline_probe!(
    timeline_oom_wake_reaper,
    OomWakeReaper,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid)
);
timeline_probe!(
    timeline_oom_start_reaping,
    OomStartReaping,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid)
);
timeline_probe!(
    timeline_oom_finish_reaping,
    OomFinishReaping,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid)
);
timeline_probe!(
    timeline_oom_skip_reaping,
    OomSkipReaping,
    Everyone,
    |ctx, off| field::<i32>(&ctx, off.oom_pid)
);

/// `sched_process_free` runs in an RCU callback, not in the freed task, so
/// tracking is checked against the record's `pid` field instead of `current`.
#[tracepoint]
pub fn timeline_process_free(ctx: TracePointContext) -> u32 {
    let pid = field::<i32>(&ctx, offsets().process_free_pid);
    if context_of(pid as u32, pid as u32).is_some() {
        emit(&ctx, TimelineKind::ProcessFree, Scope::Everyone, pid);
    }
    0
}

/// `oom:mark_victim` also arms a tracked OOM victim, so its work counts
/// from the kill on and not while it was still allocating; in watch mode it
/// starts tracking the victim.
#[tracepoint]
pub fn timeline_oom_mark_victim(ctx: TracePointContext) -> u32 {
    let pid = field::<i32>(&ctx, offsets().oom_pid);
    if watching() {
        track_tgid(pid as u32, CONTEXT_VICTIM_EXIT);
    } else {
        arm_tgid(pid as u32);
    }
    emit(&ctx, TimelineKind::OomMarkVictim, Scope::Everyone, pid);
    0
}

/// `process_mrelease` entry; in watch mode the caller is tracked for the
/// duration of the call, owned by its own process.
#[tracepoint]
pub fn timeline_mrelease_enter(ctx: TracePointContext) -> u32 {
    if watching() {
        let (tid, tgid) = current_ids();
        track_tid(tid, CONTEXT_MRELEASE_CALLER, tgid);
    }
    emit(
        &ctx,
        TimelineKind::MreleaseEnter,
        Scope::Everyone,
        field::<i32>(&ctx, offsets().mrelease_enter_pidfd),
    );
    0
}

/// `process_mrelease` return; in watch mode the caller stops being tracked.
#[tracepoint]
pub fn timeline_mrelease_exit(ctx: TracePointContext) -> u32 {
    emit(
        &ctx,
        TimelineKind::MreleaseExit,
        Scope::Everyone,
        field::<i64>(&ctx, offsets().mrelease_exit_ret),
    );
    if watching() {
        untrack_tid(current_ids().0);
    }
    0
}

/// SIGKILL generation (watch mode only): the target may be torn down next, so
/// it is tracked from here, and the sender is recorded for pairing with a
/// later process_mrelease call.
#[tracepoint]
pub fn timeline_signal_generate(ctx: TracePointContext) -> u32 {
    if !watching() {
        return 0;
    }
    let offsets = offsets();
    if field::<i32>(&ctx, offsets.signal_generate_sig) != SIGKILL {
        return 0;
    }
    let pid = field::<i32>(&ctx, offsets.signal_generate_pid);
    if pid <= 1 {
        return 0;
    }
    track_tgid(pid as u32, CONTEXT_VICTIM_EXIT);
    emit(&ctx, TimelineKind::SigKill, Scope::Everyone, pid);
    0
}

/// SIGKILL's number on every Linux architecture.
const SIGKILL: i64 = 9;
