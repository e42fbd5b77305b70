//! Timestamped teardown events streamed to userspace through a ring buffer.
//!
//! Rare, ordered events (a few per episode) go through the ring buffer; hot
//! paths never do. Each event carries `bpf_ktime_get_ns()`, i.e.
//! CLOCK_MONOTONIC, so userspace can place its own kill timestamp beside them.

/// Map: the ring buffer of [`TimelineEvent`]s.
pub const MAP_TIMELINE: &str = "TIMELINE";
/// Default ring buffer size in bytes (a power of two and a page multiple);
/// `--ringbuf-size` changes it.
pub const TIMELINE_DEFAULT_BYTES: u32 = 256 * 1024;

/// `syscalls:sys_enter_process_mrelease`.
pub const PROG_MRELEASE_ENTER: &str = "timeline_mrelease_enter";
/// `syscalls:sys_exit_process_mrelease`.
pub const PROG_MRELEASE_EXIT: &str = "timeline_mrelease_exit";
/// `syscalls:sys_enter_exit_group`: attached with the two above, in place
/// of [`PROG_RAW_SYS_ENTER`]'s watch for `exit_group`.
pub const PROG_EXIT_GROUP: &str = "timeline_exit_group";
/// `mmap:exit_mmap` (fires at the end of `exit_mmap()`).
pub const PROG_EXIT_MMAP: &str = "timeline_exit_mmap";
/// `sched:sched_process_exit`.
pub const PROG_PROCESS_EXIT: &str = "timeline_process_exit";
/// `sched:sched_process_free`.
pub const PROG_PROCESS_FREE: &str = "timeline_process_free";
/// `oom:mark_victim`.
pub const PROG_OOM_MARK_VICTIM: &str = "timeline_oom_mark_victim";
/// `oom:wake_reaper`.
pub const PROG_OOM_WAKE_REAPER: &str = "timeline_oom_wake_reaper";
/// `oom:start_task_reaping`.
pub const PROG_OOM_START_REAPING: &str = "timeline_oom_start_reaping";
/// `oom:finish_task_reaping`.
pub const PROG_OOM_FINISH_REAPING: &str = "timeline_oom_finish_reaping";
/// `oom:skip_task_reaping`.
pub const PROG_OOM_SKIP_REAPING: &str = "timeline_oom_skip_reaping";
/// `signal:signal_generate` (SIGKILLs, in `record --watch`).
pub const PROG_SIGNAL_GENERATE: &str = "timeline_signal_generate";

/// Raw tracepoint programs (BPF_PROG_TYPE_RAW_TRACEPOINT): the same events
/// from the tracepoints' `TP_PROTO` arguments, with no record built and no
/// RCU grace period waited for at detach. `process_mrelease` (and
/// `exit_group`) can be seen through `raw_syscalls:sys_enter`/`sys_exit`,
/// filtered on their numbers: the fallback for kernels without the
/// per-syscall tracepoints (`CONFIG_FTRACE_SYSCALLS`), since these two run
/// for every syscall on the machine.
pub const PROG_RAW_SYS_ENTER: &str = "raw_sys_enter";
/// `raw_syscalls:sys_exit`, for `process_mrelease` calls seen entering.
pub const PROG_RAW_SYS_EXIT: &str = "raw_sys_exit";
/// `mmap:exit_mmap` as a raw tracepoint.
pub const PROG_RAW_EXIT_MMAP: &str = "raw_exit_mmap";
/// `sched:sched_process_exit` as a raw tracepoint.
pub const PROG_RAW_PROCESS_EXIT: &str = "raw_process_exit";
/// `sched:sched_process_free` as a raw tracepoint.
pub const PROG_RAW_PROCESS_FREE: &str = "raw_process_free";
/// `oom:mark_victim` as a raw tracepoint.
pub const PROG_RAW_OOM_MARK_VICTIM: &str = "raw_oom_mark_victim";
/// `oom:wake_reaper` as a raw tracepoint.
pub const PROG_RAW_OOM_WAKE_REAPER: &str = "raw_oom_wake_reaper";
/// `oom:start_task_reaping` as a raw tracepoint.
pub const PROG_RAW_OOM_START_REAPING: &str = "raw_oom_start_reaping";
/// `oom:finish_task_reaping` as a raw tracepoint.
pub const PROG_RAW_OOM_FINISH_REAPING: &str = "raw_oom_finish_reaping";
/// `oom:skip_task_reaping` as a raw tracepoint.
pub const PROG_RAW_OOM_SKIP_REAPING: &str = "raw_oom_skip_reaping";
/// `signal:signal_generate` as a raw tracepoint.
pub const PROG_RAW_SIGNAL_GENERATE: &str = "raw_signal_generate";
/// Map: threads inside `process_mrelease` (tid → pidfd), seen by the raw
/// `sys_enter` program, so `sys_exit` knows which exit is the call's.
pub const MAP_MRELEASE_CALLS: &str = "MRELEASE_CALLS";
/// Entries of [`MAP_MRELEASE_CALLS`]: concurrent `process_mrelease` calls
/// (one per caller thread; a handful in practice).
pub const MRELEASE_CALLS_MAX_ENTRIES: u32 = 1024;

/// Which tracepoint produced a [`TimelineEvent`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimelineKind {
    /// `process_mrelease` entered; `arg` is the pidfd.
    MreleaseEnter = 1,
    /// `process_mrelease` returned; `arg` is the return value.
    MreleaseExit = 2,
    /// `exit_mmap()` finished in a tracked task.
    ExitMmap = 3,
    /// A tracked task passed `sched_process_exit` (after `exit_mm`).
    ProcessExit = 4,
    /// A tracked task's `task_struct` was freed; `arg` is the pid.
    ProcessFree = 5,
    /// `oom:mark_victim`; `arg` is the victim pid.
    OomMarkVictim = 6,
    /// `oom:wake_reaper`; `arg` is the victim pid.
    OomWakeReaper = 7,
    /// `oom:start_task_reaping`; `arg` is the victim pid.
    OomStartReaping = 8,
    /// `oom:finish_task_reaping`; `arg` is the victim pid.
    OomFinishReaping = 9,
    /// `oom:skip_task_reaping`; `arg` is the victim pid.
    OomSkipReaping = 10,
    /// `signal:signal_generate` of SIGKILL (`record --watch` only); `arg` is
    /// the target pid, the sender is the current task.
    SigKill = 11,
    /// `kmem:rss_stat` of a tracked task changing another mm's resident
    /// counter (a teardown's); `arg` is [`crate::rss::pack`]ed (member, new
    /// value in bytes). Emitted per [`crate::rss::emit_step`], not per change.
    RssStat = 12,
    /// A tracked process called `exit_group(2)`: its own exit began (and its
    /// tracking was armed); `arg` is the exit code.
    ExitGroup = 13,
}

impl TimelineKind {
    /// Every kind, in raw-value order.
    pub const ALL: [Self; 13] = [
        Self::MreleaseEnter,
        Self::MreleaseExit,
        Self::ExitMmap,
        Self::ProcessExit,
        Self::ProcessFree,
        Self::OomMarkVictim,
        Self::OomWakeReaper,
        Self::OomStartReaping,
        Self::OomFinishReaping,
        Self::OomSkipReaping,
        Self::SigKill,
        Self::RssStat,
        Self::ExitGroup,
    ];

    /// Decodes a raw kind; `None` for values this build does not know.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::MreleaseEnter,
            2 => Self::MreleaseExit,
            3 => Self::ExitMmap,
            4 => Self::ProcessExit,
            5 => Self::ProcessFree,
            6 => Self::OomMarkVictim,
            7 => Self::OomWakeReaper,
            8 => Self::OomStartReaping,
            9 => Self::OomFinishReaping,
            10 => Self::OomSkipReaping,
            11 => Self::SigKill,
            12 => Self::RssStat,
            13 => Self::ExitGroup,
            _ => return None,
        })
    }

    /// Whether committing this event wakes the reader at once. Only the
    /// events that close a step do (the mrelease call returned, a task freed,
    /// the OOM reaper done); the others wait in the ring buffer for the next
    /// such wake or the reader's poll deadline. A wake-up on a kill or an
    /// mrelease entry scheduled reaper's reader thread in the middle of the
    /// race it measures: the bench's process_mrelease lost the race (ESRCH)
    /// in 3 and 2 of 10 episodes under `reaper record --watch`, never
    /// without a profiler or under perf, whose buffer wakes its reader only
    /// at a watermark.
    pub const fn wakes_reader(self) -> bool {
        matches!(
            self,
            Self::MreleaseExit | Self::ProcessFree | Self::OomFinishReaping | Self::OomSkipReaping
        )
    }

    /// Stable machine name, used in run files.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MreleaseEnter => "mrelease_enter",
            Self::MreleaseExit => "mrelease_exit",
            Self::ExitMmap => "exit_mmap_done",
            Self::ProcessExit => "process_exit",
            Self::ProcessFree => "process_free",
            Self::OomMarkVictim => "oom_mark_victim",
            Self::OomWakeReaper => "oom_wake_reaper",
            Self::OomStartReaping => "oom_start_reaping",
            Self::OomFinishReaping => "oom_finish_reaping",
            Self::OomSkipReaping => "oom_skip_reaping",
            Self::SigKill => "sigkill",
            Self::RssStat => "rss_stat",
            Self::ExitGroup => "exit_group",
        }
    }
}

/// One ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimelineEvent {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// Kind-specific argument (see [`TimelineKind`]).
    pub arg: i64,
    /// A raw [`TimelineKind`].
    pub kind: u32,
    /// Tag (context and owner, see `tracking::tag`) of the current task, or
    /// `CONTEXT_UNTRACKED`.
    pub context: u32,
    /// Current thread id.
    pub tid: u32,
    /// Current thread-group id.
    pub tgid: u32,
    /// Current task's comm, NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<TimelineEvent>() == 48);
crate::user_pod!(TimelineEvent);

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::TimelineKind;

    /// Every wait in the recorder ends on a waking kind (the victim freed,
    /// the OOM reaper's verdict), and nothing on the way from a kill to
    /// process_mrelease's start wakes the reader.
    /// `ALL` is every kind `from_raw` decodes, once, in raw order, and no
    /// two kinds share a run-file name.
    #[test]
    fn all_lists_every_decodable_kind() {
        let decoded: Vec<TimelineKind> = (0..=u8::MAX as u32)
            .filter_map(TimelineKind::from_raw)
            .collect();
        assert_eq!(decoded, TimelineKind::ALL);
        for k in TimelineKind::ALL {
            assert_eq!(TimelineKind::from_raw(k as u32), Some(k));
            let same_name = TimelineKind::ALL.iter().filter(|o| o.name() == k.name());
            assert_eq!(same_name.count(), 1, "{}", k.name());
        }
    }

    #[test]
    fn only_closing_events_wake_the_reader() {
        let all: Vec<TimelineKind> = (0..=14).filter_map(TimelineKind::from_raw).collect();
        assert_eq!(all.len(), 13);
        let waking: Vec<&str> = all
            .iter()
            .filter(|k| k.wakes_reader())
            .map(|k| k.name())
            .collect();
        assert_eq!(
            waking,
            [
                "mrelease_exit",
                "process_free",
                "oom_finish_reaping",
                "oom_skip_reaping"
            ]
        );
        for quiet in [
            TimelineKind::SigKill,
            TimelineKind::MreleaseEnter,
            TimelineKind::OomMarkVictim,
            TimelineKind::OomWakeReaper,
            TimelineKind::RssStat,
            TimelineKind::ExitGroup,
        ] {
            assert!(!quiet.wakes_reader(), "{}", quiet.name());
        }
    }
}
