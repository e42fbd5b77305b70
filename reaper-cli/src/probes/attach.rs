//! Attaches the probe groups reaper records with, and records for each one
//! what it was attached with or the kernel's answer when it was refused.
//! A group that fails does not stop the recording; the report then lists
//! what could not be measured and why.

use aya::{
    Ebpf,
    programs::{
        PerfEvent, Program, TracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use reaper_common::{lock_wait, sampling, timeline};

use crate::model::{AttachMode, NotMeasured, ProbeGroup, ProbeOutcome, ProbeUse};

/// The tracepoints of the timeline: (program, category, event).
pub const TIMELINE_TRACEPOINTS: &[(&str, &str, &str)] = &[
    (
        timeline::PROG_MRELEASE_ENTER,
        "syscalls",
        "sys_enter_process_mrelease",
    ),
    (
        timeline::PROG_MRELEASE_EXIT,
        "syscalls",
        "sys_exit_process_mrelease",
    ),
    (timeline::PROG_EXIT_MMAP, "mmap", "exit_mmap"),
    (timeline::PROG_PROCESS_EXIT, "sched", "sched_process_exit"),
    (timeline::PROG_PROCESS_FREE, "sched", "sched_process_free"),
    (timeline::PROG_OOM_MARK_VICTIM, "oom", "mark_victim"),
    (timeline::PROG_OOM_WAKE_REAPER, "oom", "wake_reaper"),
    (
        timeline::PROG_OOM_START_REAPING,
        "oom",
        "start_task_reaping",
    ),
    (
        timeline::PROG_OOM_FINISH_REAPING,
        "oom",
        "finish_task_reaping",
    ),
    (timeline::PROG_OOM_SKIP_REAPING, "oom", "skip_task_reaping"),
];

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

    /// Records a probe group's outcome; a failure also lists what the group
    /// measures as not measured, with the kernel's answer.
    fn record_group(&mut self, group: ProbeGroup, outcome: ProbeOutcome) {
        if let ProbeOutcome::NotAttached(answer) = &outcome {
            self.not_measured.push(NotMeasured {
                subject: group.measures().into(),
                why: group.did_not_attach(answer),
            });
        }
        self.push(group.name(), group.mode(), outcome);
    }

    /// Records a probe's outcome; a failure also lists `subject` it costs as
    /// not measured, with `failed` (what did not attach) and the kernel's answer.
    fn record(
        &mut self,
        probe: &str,
        mode: AttachMode,
        outcome: ProbeOutcome,
        subject: &str,
        failed: &str,
    ) {
        if let ProbeOutcome::NotAttached(answer) = &outcome {
            self.not_measured.push(NotMeasured {
                subject: subject.into(),
                why: format!("{failed} did not attach: {answer}"),
            });
        }
        self.push(probe, mode, outcome);
    }

    fn push(&mut self, probe: &str, mode: AttachMode, status: ProbeOutcome) {
        self.probes.push(ProbeUse {
            probe: probe.into(),
            mode,
            status,
        });
    }
}

/// Renders an error with its sources, e.g. "perf_event_open failed: Permission denied".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Attaches cpu-clock sampling on every CPU with a fixed period.
pub fn attach_sampling(ebpf: &mut Ebpf, cpus: &[u32], period_ns: u64) -> Result<(), String> {
    let program: &mut PerfEvent = ebpf
        .program_mut(sampling::PROG_SAMPLE_CPU_CLOCK)
        .ok_or("program missing from the object")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| error_chain(&e))?;
    program
        .load()
        .map_err(|e| format!("BPF_PROG_LOAD refused: {}", error_chain(&e)))?;
    for &cpu in cpus {
        program
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Period(period_ns),
                false,
            )
            .map_err(|e| format!("cpu {cpu}: {}", error_chain(&e)))?;
    }
    Ok(())
}

/// Loads and attaches one classic tracepoint program.
pub fn attach_tracepoint(
    ebpf: &mut Ebpf,
    prog: &str,
    category: &str,
    event: &str,
) -> Result<(), String> {
    let program: &mut TracePoint = ebpf
        .program_mut(prog)
        .ok_or("program missing from the object")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| error_chain(&e))?;
    program
        .load()
        .map_err(|e| format!("BPF_PROG_LOAD refused: {}", error_chain(&e)))?;
    program
        .attach(category, event)
        .map(|_| ())
        .map_err(|e| error_chain(&e))
}

/// Attaches everything `reaper record` uses on this kernel.
pub fn attach_all(ebpf: &mut Ebpf, cpus: &[u32], period_ns: u64) -> AttachReport {
    let mut report = AttachReport::default();

    let sampling = attach_sampling(ebpf, cpus, period_ns);
    report.record_group(ProbeGroup::Sampling, ProbeOutcome::from_result(sampling));

    let begin = attach_tracepoint(
        ebpf,
        lock_wait::PROG_CONTENTION_BEGIN,
        "lock",
        "contention_begin",
    );
    let end = begin.and_then(|()| {
        attach_tracepoint(
            ebpf,
            lock_wait::PROG_CONTENTION_END,
            "lock",
            "contention_end",
        )
    });
    report.record_group(ProbeGroup::LockWait, ProbeOutcome::from_result(end));

    for &(prog, category, event) in TIMELINE_TRACEPOINTS {
        let result = attach_tracepoint(ebpf, prog, category, event);
        let what = format!("timeline event {category}:{event}");
        report.record(
            &format!("timeline:{category}:{event}"),
            AttachMode::Tracepoint,
            ProbeOutcome::from_result(result),
            &what,
            AttachMode::Tracepoint.name(),
        );
    }
    report
}

/// Attaches what `record --watch` needs on top of [`attach_all`]: SIGKILL
/// generation, so the kernel side can track every killed process.
pub fn attach_watch(ebpf: &mut Ebpf, report: &mut AttachReport) {
    let result = attach_tracepoint(
        ebpf,
        timeline::PROG_SIGNAL_GENERATE,
        "signal",
        "signal_generate",
    );
    report.record(
        "timeline:signal:signal_generate",
        AttachMode::Tracepoint,
        ProbeOutcome::from_result(result),
        "victims of SIGKILL + process_mrelease in --watch (their exit is not profiled)",
        "signal:signal_generate",
    );
}

/// Detaches and unloads every loaded program, all at once: one thread per
/// program. Detaching a classic tracepoint waits for the kernel's RCU grace
/// periods (`perf_trace_event_unreg` → `tracepoint_synchronize_unregister`,
/// about 65 ms each on the 2-CPU development VM); one after the other, the
/// 13 tracepoints of `record --watch` took about 0.9 s, while concurrent
/// detaches share their grace periods.
pub fn detach_all(ebpf: &mut Ebpf) {
    std::thread::scope(|scope| {
        for (_, program) in ebpf.programs_mut() {
            if program.fd().is_ok() {
                scope.spawn(move || unload(program));
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
