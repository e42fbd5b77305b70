//! Attaches the probe groups reaper records with, and records for each one
//! what it was attached with or the kernel's answer when it was refused.
//! A group that fails does not stop the recording; the report then lists
//! what could not be measured and why.

use aya::{
    Ebpf,
    programs::{
        PerfEvent, Program, ProgramError, RawTracePoint, TracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use reaper_common::{rss, sampling};

use super::raw_tp::{self, RawPlan, Tracepoint};
use crate::model::{AttachMode, NotMeasured, ProbeGroup, ProbeOutcome, ProbeUse, error_chain};

/// What got attached.
#[derive(Debug, Default)]
pub struct AttachReport {
    /// One entry per probe group or tracepoint.
    pub probes: Vec<ProbeUse>,
    /// Measurements lost because a group did not attach.
    pub not_measured: Vec<NotMeasured>,
}

impl AttachReport {
    /// Whether a probe (by `ProbeUse::probe` name) attached.
    pub fn attached(&self, probe: &str) -> bool {
        self.probes
            .iter()
            .any(|p| p.probe == probe && p.status.is_attached())
    }

    /// The kernel's answer for a probe (by `ProbeUse::probe` name) that did
    /// not attach, or `None` when it attached.
    pub fn refusal(&self, probe: &str) -> Option<String> {
        match self.probes.iter().find(|p| p.probe == probe) {
            Some(p) if p.status.is_attached() => None,
            Some(p) => Some(
                Some(p.status.to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "not attached".to_owned()),
            ),
            None => Some("not attached in this mode".to_owned()),
        }
    }

    /// Records a probe group's outcome; a failure also lists what the group
    /// measures as not measured, with the kernel's answer.
    fn record_group(&mut self, group: ProbeGroup, attached: Attached) {
        if let ProbeOutcome::NotAttached(answer) = &attached.outcome {
            self.not_measured.push(NotMeasured {
                subject: group.measures().into(),
                why: group.did_not_attach(answer),
            });
        }
        self.push(group.name(), attached);
    }

    /// Records a probe's outcome; a failure also lists `subject` it costs as
    /// not measured, with `failed` (what did not attach) and the kernel's answer.
    fn record(&mut self, probe: &str, attached: Attached, subject: &str, failed: &str) {
        if let ProbeOutcome::NotAttached(answer) = &attached.outcome {
            self.not_measured.push(NotMeasured {
                subject: subject.into(),
                why: format!("{failed} did not attach: {answer}"),
            });
        }
        self.push(probe, attached);
    }

    fn push(&mut self, probe: &str, attached: Attached) {
        self.probes.push(ProbeUse {
            probe: probe.into(),
            mode: attached.mode,
            status: attached.outcome,
            fallback_from: attached.fallback_from,
        });
    }
}

/// How one probe ended up attached.
#[derive(Debug)]
struct Attached {
    mode: AttachMode,
    outcome: ProbeOutcome,
    /// Why the raw tracepoint was not used when the classic one was.
    fallback_from: Option<String>,
}

impl Attached {
    fn plain(mode: AttachMode, result: Result<(), ProgramAttachError>) -> Self {
        Self {
            mode,
            outcome: ProbeOutcome::from_result(result),
            fallback_from: None,
        }
    }
}

/// Why a tracepoint or the cpu-clock sampler did not attach: the step,
/// with aya's error kept whole (the kernel's errno, the verifier's log), so
/// `doctor` can type it as a refusal; it prints with its causes.
#[derive(Debug, thiserror::Error)]
pub enum ProgramAttachError {
    /// The object has no program of that name.
    #[error("program missing from the object")]
    Missing,
    /// The program is of another kind than asked for.
    #[error("{}", error_chain(.0))]
    WrongKind(ProgramError),
    /// BPF_PROG_LOAD refused it.
    #[error("BPF_PROG_LOAD refused: {}", error_chain(.0))]
    Load(ProgramError),
    /// The attach was refused.
    #[error("{}", error_chain(.0))]
    Attach(ProgramError),
    /// The sampler's attach on one CPU was refused.
    #[error("cpu {cpu}: {}", error_chain(.error))]
    Cpu {
        /// The CPU.
        cpu: u32,
        /// The kernel's answer.
        error: ProgramError,
    },
}

/// Loads the program `prog` of the object as a `T` (unless `load` finds
/// it loaded) and attaches it: the one load-and-attach path of reaper's
/// tracepoint and sampling programs, used by `record` and `doctor`
/// (function probes have theirs in `function_probe`).
pub fn load_and_attach<T>(
    ebpf: &mut Ebpf,
    prog: &str,
    load: impl FnOnce(&mut T) -> Result<(), ProgramError>,
    attach: impl FnOnce(&mut T) -> Result<(), ProgramAttachError>,
) -> Result<(), ProgramAttachError>
where
    for<'a> &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let program: &mut T = ebpf
        .program_mut(prog)
        .ok_or(ProgramAttachError::Missing)?
        .try_into()
        .map_err(ProgramAttachError::WrongKind)?;
    load(program).map_err(ProgramAttachError::Load)?;
    attach(program)
}

/// Attaches cpu-clock sampling on every CPU with a fixed period.
pub fn attach_sampling(
    ebpf: &mut Ebpf,
    cpus: &[u32],
    period_ns: u64,
) -> Result<(), ProgramAttachError> {
    load_and_attach(
        ebpf,
        sampling::PROG_SAMPLE_CPU_CLOCK,
        PerfEvent::load,
        |p| {
            for &cpu in cpus {
                p.attach(
                    PerfEventConfig::Software(SoftwareEvent::CpuClock),
                    PerfEventScope::AllProcessesOneCpu { cpu },
                    SamplePolicy::Period(period_ns),
                    false,
                )
                .map_err(|error| ProgramAttachError::Cpu { cpu, error })?;
            }
            Ok(())
        },
    )
}

/// Loads and attaches one classic tracepoint program.
pub fn attach_tracepoint(
    ebpf: &mut Ebpf,
    prog: &str,
    category: &str,
    event: &str,
) -> Result<(), ProgramAttachError> {
    load_and_attach(ebpf, prog, TracePoint::load, |p: &mut TracePoint| {
        p.attach(category, event)
            .map(drop)
            .map_err(ProgramAttachError::Attach)
    })
}

/// Loads (once) and attaches one raw tracepoint program.
pub fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    prog: &str,
    event: &str,
) -> Result<(), ProgramAttachError> {
    let load_once = |p: &mut RawTracePoint| match p.fd() {
        Ok(_) => Ok(()),
        Err(_) => p.load(),
    };
    load_and_attach(ebpf, prog, load_once, |p: &mut RawTracePoint| {
        p.attach(event)
            .map(drop)
            .map_err(ProgramAttachError::Attach)
    })
}

/// Attaches a tracepoint's raw program when the plan allows it and the
/// kernel takes it, else its classic program.
fn attach_preferring_raw(ebpf: &mut Ebpf, t: &Tracepoint, raw: &RawPlan) -> Attached {
    let refused = match raw.allows(t.raw_prog) {
        Ok(()) => match attach_raw_tracepoint(ebpf, t.raw_prog, t.raw_event) {
            Ok(()) => return Attached::plain(AttachMode::RawTracepoint, Ok(())),
            Err(why) => format!("raw tracepoint {}: {why}", t.raw_event),
        },
        Err(why) => format!("raw tracepoint {}: {why}", t.raw_event),
    };
    match attach_tracepoint(ebpf, t.prog, t.category, t.event) {
        Ok(()) => Attached {
            mode: AttachMode::Tracepoint,
            outcome: ProbeOutcome::Attached,
            fallback_from: Some(refused),
        },
        Err(why) => Attached {
            mode: AttachMode::Tracepoint,
            outcome: ProbeOutcome::NotAttached(format!("{why}; {refused}")),
            fallback_from: None,
        },
    }
}

/// Attaches everything `reaper record` uses on this kernel: each
/// tracepoint as a raw tracepoint where `raw` allows it and the kernel
/// takes it, else as a classic one; the syscall tracepoints the other way
/// round ([`attach_syscalls`]).
pub fn attach_all(ebpf: &mut Ebpf, cpus: &[u32], period_ns: u64, raw: &RawPlan) -> AttachReport {
    let mut report = AttachReport::default();

    let sampling = attach_sampling(ebpf, cpus, period_ns);
    report.record_group(
        ProbeGroup::Sampling,
        Attached::plain(ProbeGroup::Sampling.mode(), sampling),
    );

    let begin = attach_preferring_raw(ebpf, &raw_tp::CONTENTION_BEGIN, raw);
    let lock = if begin.outcome.is_attached() {
        // Each end takes its own best mode (they share their maps, so a mix
        // sees the same waits); the group is raw only when both are.
        let end = attach_preferring_raw(ebpf, &raw_tp::CONTENTION_END, raw);
        let both_raw = begin.mode == AttachMode::RawTracepoint && end.mode == begin.mode;
        Attached {
            mode: if both_raw {
                AttachMode::RawTracepoint
            } else {
                AttachMode::Tracepoint
            },
            fallback_from: begin.fallback_from.or(end.fallback_from),
            outcome: end.outcome,
        }
    } else {
        begin
    };
    report.record_group(ProbeGroup::LockWait, lock);

    // Classic only: the raw arguments changed in 6.2 and the counters'
    // layout keeps changing, while the record holds the kernel's own sum
    // (reaper_common::rss).
    let rss = attach_tracepoint(ebpf, rss::PROG_RSS_STAT, "kmem", "rss_stat");
    report.record_group(
        ProbeGroup::Reclaim,
        Attached::plain(ProbeGroup::Reclaim.mode(), rss),
    );

    let syscalls = attach_syscalls(ebpf, raw);
    let others = raw_tp::TIMELINE
        .iter()
        .map(|t| (t, attach_preferring_raw(ebpf, t, raw)));
    for (t, attached) in raw_tp::SYSCALLS.iter().zip(syscalls).chain(others) {
        let what = format!("timeline event {}:{}", t.category, t.event);
        let failed = format!("{}:{}", t.category, t.event);
        report.record(
            &format!("timeline:{}:{}", t.category, t.event),
            attached,
            &what,
            &failed,
        );
    }
    report
}

/// Attaches the timeline's syscall tracepoints ([`raw_tp::SYSCALLS`]), one
/// outcome each in that order: all as classic per-syscall tracepoints, or,
/// when one of those is refused (a kernel without `FTRACE_SYSCALLS`), all
/// through the raw `sys_enter`/`sys_exit` programs, each attached once.
fn attach_syscalls(ebpf: &mut Ebpf, raw: &RawPlan) -> Vec<Attached> {
    let mut attached = Vec::new();
    let mut refused = None;
    for t in raw_tp::SYSCALLS {
        match attach_tracepoint(ebpf, t.prog, t.category, t.event) {
            Ok(()) => attached.push(t.prog),
            Err(why) => {
                refused = Some(format!("tracepoint {}:{}: {why}", t.category, t.event));
                break;
            }
        }
    }
    let Some(refused) = refused else {
        return raw_tp::SYSCALLS
            .iter()
            .map(|_| Attached::plain(AttachMode::Tracepoint, Ok(())))
            .collect();
    };
    // The raw pair sees these calls too: a classic program left attached
    // would record them twice.
    for prog in attached {
        if let Some(program) = ebpf.program_mut(prog) {
            unload(program);
        }
    }
    attach_syscalls_raw(ebpf, raw, &refused)
}

/// [`attach_syscalls`]' fallback: each syscall tracepoint through its raw
/// program, each program attached once; `refused` is why the classic ones
/// were not used.
fn attach_syscalls_raw(ebpf: &mut Ebpf, raw: &RawPlan, refused: &str) -> Vec<Attached> {
    let mut outcomes: Vec<(&str, ProbeOutcome)> = Vec::new();
    raw_tp::SYSCALLS
        .iter()
        .map(|t| {
            let outcome = match outcomes.iter().find(|(p, _)| *p == t.raw_prog) {
                Some((_, outcome)) => outcome.clone(),
                None => {
                    let outcome = match raw.allows(t.raw_prog) {
                        Ok(()) => ProbeOutcome::from_result(attach_raw_tracepoint(
                            ebpf,
                            t.raw_prog,
                            t.raw_event,
                        )),
                        Err(why) => ProbeOutcome::not_attached(why),
                    };
                    outcomes.push((t.raw_prog, outcome.clone()));
                    outcome
                }
            };
            match outcome {
                ProbeOutcome::NotAttached(why) => Attached {
                    mode: AttachMode::RawTracepoint,
                    outcome: ProbeOutcome::NotAttached(format!(
                        "raw tracepoint {}: {why}; {refused}",
                        t.raw_event
                    )),
                    fallback_from: None,
                },
                outcome => Attached {
                    mode: AttachMode::RawTracepoint,
                    outcome,
                    fallback_from: Some(refused.to_owned()),
                },
            }
        })
        .collect()
}

/// Attaches what `record --watch` needs on top of [`attach_all`]: SIGKILL
/// generation, so the kernel side can track every killed process.
pub fn attach_watch(ebpf: &mut Ebpf, report: &mut AttachReport, raw: &RawPlan) {
    let attached = attach_preferring_raw(ebpf, &raw_tp::SIGNAL_GENERATE, raw);
    report.record(
        "timeline:signal:signal_generate",
        attached,
        "victims of SIGKILL + process_mrelease in --watch (their exit is not profiled)",
        "signal:signal_generate",
    );
}

/// Detaches and unloads every loaded program. Detaching a classic
/// tracepoint waits for the kernel's RCU grace periods
/// (`perf_trace_event_unreg` → `tracepoint_synchronize_unregister`, about
/// 65 ms each on the 2-CPU development VM, serialised under `event_mutex`),
/// so those get one thread each and share their grace periods. Everything
/// else (raw tracepoints, the default where the kernel takes them, and
/// perf events) releases without waiting (see `raw_tp`) and is unloaded on
/// this thread: on a loaded machine a spawned thread can wait longer for a
/// CPU than the close it would run.
pub fn detach_all(ebpf: &mut Ebpf) {
    std::thread::scope(|scope| {
        for (_, program) in ebpf.programs_mut() {
            if program.fd().is_err() {
                continue;
            }
            if matches!(program, Program::TracePoint(_)) {
                scope.spawn(move || unload(program));
            } else {
                unload(program);
            }
        }
    });
}

/// Unloads one program (its links first), whatever its kind.
fn unload(program: &mut Program) {
    let result = match program {
        Program::TracePoint(p) => p.unload(),
        Program::PerfEvent(p) => p.unload(),
        Program::KProbe(p) => p.unload(),
        Program::FEntry(p) => p.unload(),
        Program::FExit(p) => p.unload(),
        Program::BtfTracePoint(p) => p.unload(),
        Program::RawTracePoint(p) => p.unload(),
        // reaper loads no other kind; dropping the object unloads it anyway.
        _ => Ok(()),
    };
    if let Err(err) = result {
        log::debug!("unloading a program: {}", error_chain(&err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: ProbeOutcome) -> AttachReport {
        let mut report = AttachReport::default();
        report.push(
            ProbeGroup::LockWait.name(),
            Attached {
                mode: AttachMode::Tracepoint,
                outcome,
                fallback_from: None,
            },
        );
        report
    }

    /// A refused probe always has an answer (never read as attached), an
    /// attached one none, and a probe never tried says so.
    #[test]
    fn a_refusal_is_the_kernels_answer_and_never_empty() {
        let lock = ProbeGroup::LockWait.name();
        let refused = report(ProbeOutcome::not_attached("ENOENT 2"));
        assert_eq!(refused.refusal(lock).as_deref(), Some("ENOENT 2"));
        let silent = report(ProbeOutcome::not_attached(""));
        assert!(silent.refusal(lock).is_some_and(|why| !why.is_empty()));
        assert_eq!(report(ProbeOutcome::Attached).refusal(lock), None);
        assert!(AttachReport::default().refusal(lock).is_some());
    }
}
