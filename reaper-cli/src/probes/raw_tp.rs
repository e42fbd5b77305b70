//! Which of reaper's tracepoint programs run as raw tracepoints on this
//! kernel, and the facts their programs need, resolved before loading.
//!
//! A raw tracepoint program (BPF_PROG_TYPE_RAW_TRACEPOINT) gets the
//! tracepoint's `TP_PROTO` arguments instead of a perf record: the kernel
//! builds no record before it runs, and releasing its link unregisters the
//! probe and frees it after an RCU grace period *asynchronously*
//! (kernel/bpf/syscall.c `bpf_raw_tp_link_release` →
//! kernel/tracepoint.c `tracepoint_remove_func` → `release_probes` →
//! `call_rcu`), where closing a classic tracepoint's perf event waits for
//! the grace period under `event_mutex` (`perf_trace_event_unreg` →
//! `tracepoint_synchronize_unregister`).
//!
//! The arguments are a kernel's own types, so each program's expectation is
//! checked against this kernel's BTF (`btf_trace_<event>` typedefs): a
//! prototype that differs, or a struct offset BTF does not give, keeps that
//! event on its classic tracepoint. Without BTF, only the events whose
//! prototype is the same in every kernel read (6.1, 6.12, 6.18, 7.x; see
//! [`Reads`]) and that read no struct field run raw.

use reaper_common::{
    lock_wait,
    timeline::{self},
    tracepoint_offsets::{MARK_VICTIM_PID, MARK_VICTIM_TASK, TracepointOffsets},
};

use super::btf::{KernelBtf, Param};

/// What a raw program reads from its tracepoint's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Nothing (`exit_mmap(mm)`, `sched_process_exit(p[, group_dead])`:
    /// the program uses the current task).
    Nothing,
    /// `(int pid)`: the oom reaping events.
    Pid,
    /// `(void *lock, unsigned int flags | int ret)`: lock contention.
    Lock,
    /// `(struct pt_regs *regs, long id | ret)`: raw_syscalls, plus the first
    /// syscall argument from `regs`.
    Syscall,
    /// The pid of a `struct task_struct *` argument at this index.
    TaskPid(usize),
    /// `oom:mark_victim`: `(int pid)` or `(struct task_struct *, uid_t)`.
    MarkVictim,
}

/// One tracepoint program with its raw twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracepoint {
    /// The classic program.
    pub prog: &'static str,
    /// Its category (`lock`).
    pub category: &'static str,
    /// Its event (`contention_begin`).
    pub event: &'static str,
    /// The raw program.
    pub raw_prog: &'static str,
    /// The raw tracepoint it attaches to (`contention_begin`, `sys_enter`).
    pub raw_event: &'static str,
    /// What the raw program reads.
    pub reads: Reads,
}

const fn tp(
    prog: &'static str,
    category: &'static str,
    event: &'static str,
    raw_prog: &'static str,
    raw_event: &'static str,
    reads: Reads,
) -> Tracepoint {
    Tracepoint {
        prog,
        category,
        event,
        raw_prog,
        raw_event,
        reads,
    }
}

/// `lock:contention_begin`.
pub const CONTENTION_BEGIN: Tracepoint = tp(
    lock_wait::PROG_CONTENTION_BEGIN,
    "lock",
    "contention_begin",
    lock_wait::PROG_RAW_CONTENTION_BEGIN,
    "contention_begin",
    Reads::Lock,
);
/// `lock:contention_end`.
pub const CONTENTION_END: Tracepoint = tp(
    lock_wait::PROG_CONTENTION_END,
    "lock",
    "contention_end",
    lock_wait::PROG_RAW_CONTENTION_END,
    "contention_end",
    Reads::Lock,
);

/// The timeline's tracepoints. `process_mrelease` is seen through
/// `raw_syscalls:sys_enter/sys_exit` (no syscall has a raw tracepoint of
/// its own, and these need no `FTRACE_SYSCALLS`).
pub const TIMELINE: &[Tracepoint] = &[
    tp(
        timeline::PROG_MRELEASE_ENTER,
        "syscalls",
        "sys_enter_process_mrelease",
        timeline::PROG_RAW_SYS_ENTER,
        "sys_enter",
        Reads::Syscall,
    ),
    tp(
        timeline::PROG_MRELEASE_EXIT,
        "syscalls",
        "sys_exit_process_mrelease",
        timeline::PROG_RAW_SYS_EXIT,
        "sys_exit",
        Reads::Syscall,
    ),
    tp(
        timeline::PROG_EXIT_MMAP,
        "mmap",
        "exit_mmap",
        timeline::PROG_RAW_EXIT_MMAP,
        "exit_mmap",
        Reads::Nothing,
    ),
    tp(
        timeline::PROG_PROCESS_EXIT,
        "sched",
        "sched_process_exit",
        timeline::PROG_RAW_PROCESS_EXIT,
        "sched_process_exit",
        Reads::Nothing,
    ),
    // Runs from an RCU callback (delayed_put_task_struct), not in the freed
    // task: the pid comes from the argument.
    tp(
        timeline::PROG_PROCESS_FREE,
        "sched",
        "sched_process_free",
        timeline::PROG_RAW_PROCESS_FREE,
        "sched_process_free",
        Reads::TaskPid(0),
    ),
    tp(
        timeline::PROG_OOM_MARK_VICTIM,
        "oom",
        "mark_victim",
        timeline::PROG_RAW_OOM_MARK_VICTIM,
        "mark_victim",
        Reads::MarkVictim,
    ),
    tp(
        timeline::PROG_OOM_WAKE_REAPER,
        "oom",
        "wake_reaper",
        timeline::PROG_RAW_OOM_WAKE_REAPER,
        "wake_reaper",
        Reads::Pid,
    ),
    tp(
        timeline::PROG_OOM_START_REAPING,
        "oom",
        "start_task_reaping",
        timeline::PROG_RAW_OOM_START_REAPING,
        "start_task_reaping",
        Reads::Pid,
    ),
    tp(
        timeline::PROG_OOM_FINISH_REAPING,
        "oom",
        "finish_task_reaping",
        timeline::PROG_RAW_OOM_FINISH_REAPING,
        "finish_task_reaping",
        Reads::Pid,
    ),
    tp(
        timeline::PROG_OOM_SKIP_REAPING,
        "oom",
        "skip_task_reaping",
        timeline::PROG_RAW_OOM_SKIP_REAPING,
        "skip_task_reaping",
        Reads::Pid,
    ),
];

/// `signal:signal_generate` (`record --watch`).
pub const SIGNAL_GENERATE: Tracepoint = tp(
    timeline::PROG_SIGNAL_GENERATE,
    "signal",
    "signal_generate",
    timeline::PROG_RAW_SIGNAL_GENERATE,
    "signal_generate",
    Reads::TaskPid(2),
);

/// Every tracepoint program reaper may attach.
pub fn all() -> impl Iterator<Item = Tracepoint> {
    [CONTENTION_BEGIN, CONTENTION_END]
        .into_iter()
        .chain(TIMELINE.iter().copied())
        .chain([SIGNAL_GENERATE])
}

/// Where the first syscall argument sits in `struct pt_regs` by the uapi
/// layout, for kernels without BTF: x86_64 `di` (15th of the 8-byte
/// registers r15 … di), arm64 `regs[0]`.
const fn uapi_syscall_arg0() -> Option<u32> {
    if cfg!(target_arch = "x86_64") {
        Some(112)
    } else if cfg!(target_arch = "aarch64") {
        Some(0)
    } else {
        None
    }
}

/// The `pt_regs` member holding the first syscall argument.
const fn syscall_arg0_member() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "regs"
    } else {
        "di"
    }
}

/// Which raw programs may be attached, and why not the others.
#[derive(Clone, Debug, Default)]
pub struct RawPlan {
    /// Raw program → why it is not used (absent: it may be attached).
    refused: Vec<(&'static str, String)>,
}

impl RawPlan {
    /// `Ok` when the raw program may be attached, else why not.
    pub fn allows(&self, raw_prog: &str) -> Result<(), &str> {
        match self.refused.iter().find(|(p, _)| *p == raw_prog) {
            Some((_, why)) => Err(why),
            None => Ok(()),
        }
    }

    /// No raw program at all (e.g. doctor's classic checks).
    pub fn none(why: &str) -> Self {
        Self {
            refused: all().map(|t| (t.raw_prog, why.to_owned())).collect(),
        }
    }
}

/// Resolves the raw programs' facts into `offsets` and says which raw
/// programs this kernel can run.
pub fn resolve(btf: Option<&KernelBtf>, offsets: &mut TracepointOffsets) -> RawPlan {
    let facts = match btf {
        Some(btf) => Facts::from_btf(btf),
        None => Facts::without_btf(),
    };
    offsets.raw_task_pid = facts.task_pid.unwrap_or(0);
    offsets.raw_syscall_arg0 = facts.syscall_arg0.unwrap_or(0);
    let mut plan = RawPlan::default();
    for t in all() {
        match facts.check(&t) {
            Ok(Some(mark_victim)) => offsets.raw_mark_victim = mark_victim,
            Ok(None) => {}
            Err(why) => plan.refused.push((t.raw_prog, why.to_string())),
        }
    }
    plan
}

/// Why a raw program does not fit this kernel (its classic tracepoint is
/// used instead).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RawRefusal {
    /// No BTF, and the architecture's `pt_regs` layout is not built in.
    #[error("no pt_regs layout known for this architecture")]
    NoPtRegsLayout,
    /// No BTF, and the program reads a field only BTF can locate.
    #[error("no kernel BTF to find task_struct.pid or the prototype in")]
    NoBtf,
    /// BTF lacks the event's prototype.
    #[error("kernel BTF has no btf_trace_{event} (its TP_PROTO)")]
    NoProto {
        /// The raw event.
        event: &'static str,
    },
    /// The event's prototype is not the one the program reads.
    #[error("TP_PROTO of {event} is {proto}, not what the raw program reads")]
    UnexpectedProto {
        /// The raw event.
        event: &'static str,
        /// The prototype as text, e.g. `(struct mm_struct *)`.
        proto: String,
    },
    /// BTF has no offset for `task_struct.pid`.
    #[error("kernel BTF gives no task_struct.pid offset")]
    NoTaskPidOffset,
    /// BTF has no offset for the first syscall argument in `pt_regs`.
    #[error("kernel BTF gives no pt_regs argument offset")]
    NoSyscallArgOffset,
}

/// A raw event's `TP_PROTO` arguments, `None` when BTF lacks them.
type Proto = (&'static str, Option<Vec<Param>>);

/// What this kernel says about the raw tracepoints' arguments.
struct Facts {
    /// `TP_PROTO` per raw event, `None` without BTF.
    protos: Option<Vec<Proto>>,
    task_pid: Option<u32>,
    syscall_arg0: Option<u32>,
}

impl Facts {
    fn from_btf(btf: &KernelBtf) -> Self {
        let events: Vec<&'static str> = all().map(|t| t.raw_event).collect();
        let protos = btf.tracepoint_protos(&events);
        let offsets =
            btf.member_offsets(&[("task_struct", "pid"), ("pt_regs", syscall_arg0_member())]);
        Self {
            protos: Some(events.into_iter().zip(protos).collect()),
            task_pid: offsets[0],
            syscall_arg0: offsets[1],
        }
    }

    fn without_btf() -> Self {
        Self {
            protos: None,
            task_pid: None,
            syscall_arg0: uapi_syscall_arg0(),
        }
    }

    /// `Ok(Some(MARK_VICTIM_*))` for mark_victim, `Ok(None)` for the others
    /// when the raw program fits this kernel, else why not.
    fn check(&self, t: &Tracepoint) -> Result<Option<u32>, RawRefusal> {
        let Some(protos) = &self.protos else {
            return match t.reads {
                Reads::Nothing | Reads::Pid | Reads::Lock => Ok(None),
                Reads::Syscall => self
                    .syscall_arg0
                    .map(|_| None)
                    .ok_or(RawRefusal::NoPtRegsLayout),
                Reads::TaskPid(_) | Reads::MarkVictim => Err(RawRefusal::NoBtf),
            };
        };
        let Some(Some(args)) = protos
            .iter()
            .find(|(e, _)| *e == t.raw_event)
            .map(|(_, a)| a)
        else {
            return Err(RawRefusal::NoProto { event: t.raw_event });
        };
        let is_task = |i: usize| {
            args.get(i)
                .is_some_and(|a| a.points_to_struct.as_deref() == Some("task_struct"))
        };
        let scalar = |i: usize| args.get(i).is_some_and(|a| a.points_to_struct.is_none());
        let unexpected = || {
            Err(RawRefusal::UnexpectedProto {
                event: t.raw_event,
                proto: describe(args),
            })
        };
        let task_pid = || self.task_pid.map(|_| ()).ok_or(RawRefusal::NoTaskPidOffset);
        match t.reads {
            Reads::Nothing => Ok(None),
            Reads::Pid if args.len() == 1 && scalar(0) => Ok(None),
            Reads::Lock if args.len() == 2 && scalar(0) && scalar(1) => Ok(None),
            Reads::Syscall
                if args.len() == 2
                    && args[0].points_to_struct.as_deref() == Some("pt_regs")
                    && scalar(1) =>
            {
                self.syscall_arg0
                    .map(|_| None)
                    .ok_or(RawRefusal::NoSyscallArgOffset)
            }
            Reads::TaskPid(i) if is_task(i) => task_pid().map(|()| None),
            Reads::MarkVictim if is_task(0) => task_pid().map(|()| Some(MARK_VICTIM_TASK)),
            Reads::MarkVictim if args.len() == 1 && scalar(0) => Ok(Some(MARK_VICTIM_PID)),
            _ => unexpected(),
        }
    }
}

/// A prototype as text: `(struct task_struct *, scalar)`.
fn describe(args: &[Param]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| match &a.points_to_struct {
            Some(s) => format!("struct {s} *"),
            None => "scalar".to_owned(),
        })
        .collect();
    format!("({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: Option<&str>) -> Param {
        Param {
            name: String::new(),
            points_to_struct: s.map(str::to_owned),
        }
    }

    fn facts(protos: Vec<Proto>) -> Facts {
        Facts {
            protos: Some(protos),
            task_pid: Some(2456),
            syscall_arg0: Some(112),
        }
    }

    fn mark_victim() -> Tracepoint {
        TIMELINE
            .iter()
            .copied()
            .find(|t| t.raw_event == "mark_victim")
            .unwrap()
    }

    #[test]
    fn mark_victim_takes_either_prototype() {
        let old = facts(vec![("mark_victim", Some(vec![arg(None)]))]);
        assert_eq!(old.check(&mark_victim()), Ok(Some(MARK_VICTIM_PID)));
        let new = facts(vec![(
            "mark_victim",
            Some(vec![arg(Some("task_struct")), arg(None)]),
        )]);
        assert_eq!(new.check(&mark_victim()), Ok(Some(MARK_VICTIM_TASK)));
        let odd = facts(vec![("mark_victim", Some(vec![arg(Some("mm_struct"))]))]);
        let why = odd.check(&mark_victim()).unwrap_err();
        assert!(
            matches!(&why, RawRefusal::UnexpectedProto { proto, .. } if proto == "(struct mm_struct *)"),
            "{why}"
        );
    }

    #[test]
    fn an_unknown_offset_keeps_the_classic_tracepoint() {
        let mut f = facts(vec![(
            "signal_generate",
            Some(vec![
                arg(None),
                arg(Some("kernel_siginfo")),
                arg(Some("task_struct")),
                arg(None),
                arg(None),
            ]),
        )]);
        assert_eq!(f.check(&SIGNAL_GENERATE), Ok(None));
        f.task_pid = None;
        assert_eq!(f.check(&SIGNAL_GENERATE), Err(RawRefusal::NoTaskPidOffset));
        let missing = facts(vec![]);
        assert_eq!(
            missing.check(&CONTENTION_BEGIN),
            Err(RawRefusal::NoProto {
                event: CONTENTION_BEGIN.raw_event
            })
        );
    }

    #[test]
    fn without_btf_only_fixed_prototypes_run_raw() {
        let f = Facts::without_btf();
        assert_eq!(f.check(&CONTENTION_BEGIN), Ok(None));
        assert!(f.check(&mark_victim()).is_err());
        assert!(f.check(&SIGNAL_GENERATE).is_err());
        let mut offsets = TracepointOffsets::default();
        let plan = resolve(None, &mut offsets);
        assert!(plan.allows(lock_wait::PROG_RAW_CONTENTION_END).is_ok());
        assert!(plan.allows(timeline::PROG_RAW_PROCESS_FREE).is_err());
    }

    /// On the running kernel (skips without BTF): every raw program fits.
    #[test]
    fn the_running_kernel_runs_every_program_raw() {
        let Ok(btf) = KernelBtf::from_sys_fs() else {
            eprintln!("skipped: no readable /sys/kernel/btf/vmlinux");
            return;
        };
        let mut offsets = TracepointOffsets::default();
        let plan = resolve(Some(&btf), &mut offsets);
        assert_eq!(plan.refused, vec![], "{plan:?}");
        assert!(offsets.raw_task_pid > 0);
    }
}
