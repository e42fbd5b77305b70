//! Figures whose usual tracepoint this kernel lacks, taken from the
//! exact-timing probe of the kernel function instead, each labelled with
//! its source ([`FigureSource`]); with the tracepoints attached nothing
//! changes.
//!
//! - "kill → mrelease done" without `syscalls:*_process_mrelease` (a
//!   kernel without `FTRACE_SYSCALLS`): the `process_mrelease` syscall
//!   function's longest call in the mrelease caller, whose exit is the
//!   figure and whose length is the call's duration.
//! - "kill → exit_mmap done" without `mmap:exit_mmap` (before 6.1): the
//!   victim's longest `exit_mmap` call, which ends where the tracepoint
//!   would fire (at the end of `exit_mmap()`).
//! - lock waits without `lock:contention_*` (before 5.19): the spin slow
//!   path's calls, recorded kernel-side with the lock and the caller's
//!   stack (`reaper_common::lock_wait`); here only the run's label.

use crate::model::{
    AttachMode, ConceptId, Context, FigureSource, FunctionCall, FunctionProbe, FunctionTiming,
    Latencies, ProbeGroup, ProbeUse, doctor::ProgramKind,
};

/// The catalog concept of the `process_mrelease` syscall function.
pub const CONCEPT: ConceptId = ConceptId::MreleaseSyscall;
/// The run's probe entry of the exit tracepoint.
pub const EXIT_TRACEPOINT: &str = "timeline:syscalls:sys_exit_process_mrelease";
/// The catalog concept of the victim's teardown.
const EXIT_MMAP_CONCEPT: ConceptId = ConceptId::VictimTeardown;
/// The run's probe entry of `mmap:exit_mmap`.
pub const EXIT_MMAP_TRACEPOINT: &str = "timeline:mmap:exit_mmap";
/// The catalog concept of the spin slow path.
const SLOWPATH_CONCEPT: ConceptId = ConceptId::SpinSlowpath;

/// Why the probe entry `probe` gave no figure: `Some(its status)` when it
/// did not attach (or was never listed), `None` when it attached.
fn missing(probes: &[ProbeUse], probe: &str) -> Option<String> {
    match probes.iter().find(|p| p.probe == probe) {
        Some(p) if p.status.is_attached() => None,
        Some(p) => Some(p.status.to_string()),
        None => Some("not attached".to_owned()),
    }
}

/// Why the exit tracepoint gave no figure: `Some(its status)` when it did
/// not attach (or was never listed), `None` when it attached.
pub fn tracepoint_missing(probes: &[ProbeUse]) -> Option<String> {
    missing(probes, EXIT_TRACEPOINT)
}

/// The exit probe `concept`'s function was timed with ("fexit" or
/// "kretprobe"), `None` when it was not timed.
fn exit_probe(function_probes: &[FunctionProbe], concept: ConceptId) -> Option<&'static str> {
    match function_probes
        .iter()
        .find(|p| p.concept == concept && p.status.is_attached())?
        .mode
    {
        AttachMode::Kprobe => Some(ProgramKind::Kretprobe.name()),
        AttachMode::Fentry => Some(ProgramKind::Fexit.name()),
        _ => None,
    }
}

/// The longest kept call of `concept` in `context`, with its symbol.
fn longest_call(
    timing: Option<&FunctionTiming>,
    context: Context,
    concept: ConceptId,
) -> Option<(&str, &FunctionCall)> {
    let kept = timing
        .into_iter()
        .flat_map(|t| &t.longest_calls)
        .find(|f| f.context == context && f.concept == concept)?;
    Some((kept.symbol.as_str(), kept.calls.first()?))
}

/// Fills the mrelease latencies from the syscall function's probe when the
/// tracepoints are missing and the function's call was kept.
pub fn fall_back(
    latencies: &mut Latencies,
    timing: Option<&FunctionTiming>,
    probes: &[ProbeUse],
    function_probes: &[FunctionProbe],
) {
    if latencies.kill_to_mrelease_done_ns.is_some() {
        return;
    }
    let Some(tracepoints) = tracepoint_missing(probes) else {
        return;
    };
    // One process_mrelease call per episode; the longest is the race's.
    let Some((symbol, call)) = longest_call(timing, Context::MreleaseCaller, CONCEPT) else {
        return;
    };
    let Ok(done) = u64::try_from(call.end_ns()) else {
        return;
    };
    latencies.kill_to_mrelease_done_ns = Some(done);
    latencies.mrelease_duration_ns = Some(call.duration_ns);
    latencies.mrelease_source = Some(FigureSource::FunctionProbe {
        symbol: symbol.to_owned(),
        exit_probe: exit_probe(function_probes, CONCEPT)
            .unwrap_or(ProgramKind::Fexit.name())
            .to_owned(),
        tracepoints,
    });
}

/// Fills "kill → exit_mmap done" from the victim's `exit_mmap` probe when
/// `mmap:exit_mmap` is missing: the victim's one teardown is its longest
/// `exit_mmap` call, done when that call returned.
pub fn exit_mmap_fall_back(
    latencies: &mut Latencies,
    timing: Option<&FunctionTiming>,
    probes: &[ProbeUse],
    function_probes: &[FunctionProbe],
) {
    if latencies.kill_to_exit_mmap_done_ns.is_some() {
        return;
    }
    let Some(tracepoint) = missing(probes, EXIT_MMAP_TRACEPOINT) else {
        return;
    };
    let Some((symbol, call)) = longest_call(timing, Context::VictimExit, EXIT_MMAP_CONCEPT) else {
        return;
    };
    let Some(exit_probe) = exit_probe(function_probes, EXIT_MMAP_CONCEPT) else {
        return;
    };
    // A teardown that ended before the kill is not this episode's.
    let Ok(done) = u64::try_from(call.end_ns()) else {
        return;
    };
    latencies.kill_to_exit_mmap_done_ns = Some(done);
    latencies.exit_mmap_source = Some(FigureSource::FunctionProbe {
        symbol: symbol.to_owned(),
        exit_probe: exit_probe.to_owned(),
        tracepoints: tracepoint,
    });
}

/// The run's lock-wait source when the kernel-side spin slow-path waits
/// were on (`lock_slot_on`) because the contention tracepoints are missing,
/// and the slow path's function was timed.
pub fn lock_waits(
    lock_slot_on: bool,
    probes: &[ProbeUse],
    function_probes: &[FunctionProbe],
) -> Option<FigureSource> {
    if !lock_slot_on {
        return None;
    }
    let tracepoints = missing(probes, ProbeGroup::LockWait.name())?;
    let probe = function_probes
        .iter()
        .find(|p| p.concept == SLOWPATH_CONCEPT && p.status.is_attached())?;
    Some(FigureSource::FunctionProbe {
        symbol: probe.symbol.clone()?,
        exit_probe: exit_probe(function_probes, SLOWPATH_CONCEPT)?.to_owned(),
        tracepoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttachMode, FunctionCalls, ProbeOutcome};

    fn probe(name: &str, status: &str) -> Vec<ProbeUse> {
        vec![ProbeUse {
            probe: name.into(),
            mode: AttachMode::Tracepoint,
            status: ProbeOutcome::parse(status),
            fallback_from: None,
        }]
    }

    fn timing(context: Context, concept: ConceptId, symbol: &str) -> FunctionTiming {
        FunctionTiming {
            longest_calls: vec![FunctionCalls {
                context,
                concept,
                symbol: symbol.into(),
                calls: vec![FunctionCall {
                    tid: 9,
                    start_ns: 2_000_000,
                    duration_ns: 16_000_000,
                }],
                left_out: 0,
            }],
            ..FunctionTiming::default()
        }
    }

    fn mrelease_timing() -> FunctionTiming {
        timing(
            Context::MreleaseCaller,
            CONCEPT,
            "__x64_sys_process_mrelease",
        )
    }

    fn timed(concept: ConceptId, symbol: &str, mode: AttachMode) -> Vec<FunctionProbe> {
        vec![FunctionProbe {
            concept,
            symbol: Some(symbol.into()),
            mode,
            status: ProbeOutcome::Attached,
            fallback_from: None,
        }]
    }

    #[test]
    fn missing_syscall_tracepoints_fall_back_to_the_function_exit() {
        let mut l = Latencies::default();
        let missing = probe(
            EXIT_TRACEPOINT,
            "tracepoint syscalls:sys_exit_process_mrelease: not found [ENOENT 2]",
        );
        let kprobed = timed(CONCEPT, "__x64_sys_process_mrelease", AttachMode::Kprobe);
        fall_back(&mut l, Some(&mrelease_timing()), &missing, &kprobed);
        assert_eq!(l.kill_to_mrelease_done_ns, Some(18_000_000));
        assert_eq!(l.mrelease_duration_ns, Some(16_000_000));
        assert_eq!(l.mrelease_ret, None, "the return value is not known");
        let source = l.mrelease_source.unwrap();
        assert_eq!(source.label(), "from kretprobe __x64_sys_process_mrelease");
        let FigureSource::FunctionProbe { tracepoints, .. } = source;
        assert!(tracepoints.contains("ENOENT"));
    }

    #[test]
    fn attached_tracepoints_keep_their_figures_and_no_source() {
        let mut l = Latencies::default();
        let attached = probe(EXIT_TRACEPOINT, "attached");
        fall_back(&mut l, Some(&mrelease_timing()), &attached, &[]);
        assert_eq!(
            l,
            Latencies::default(),
            "an unseen event stays not measured"
        );
        let mut seen = Latencies {
            kill_to_mrelease_done_ns: Some(5),
            ..Latencies::default()
        };
        fall_back(
            &mut seen,
            Some(&mrelease_timing()),
            &probe(EXIT_TRACEPOINT, "refused"),
            &[],
        );
        assert_eq!(seen.kill_to_mrelease_done_ns, Some(5));
        assert_eq!(seen.mrelease_source, None);
    }

    #[test]
    fn no_function_call_leaves_it_not_measured() {
        let mut l = Latencies::default();
        fall_back(&mut l, None, &probe(EXIT_TRACEPOINT, "refused"), &[]);
        assert_eq!(l.kill_to_mrelease_done_ns, None);
        fall_back(&mut l, Some(&FunctionTiming::default()), &[], &[]);
        assert_eq!(l.kill_to_mrelease_done_ns, None);
    }

    /// 5.10 has no `mmap:exit_mmap` (6.1 added it); the victim's timed
    /// exit_mmap gives the figure, named.
    #[test]
    fn exit_mmap_done_falls_back_to_the_function_exit_before_6_1() {
        let missing = probe(
            EXIT_MMAP_TRACEPOINT,
            "tracepoint mmap:exit_mmap: not found [ENOENT 2]",
        );
        let t = timing(Context::VictimExit, EXIT_MMAP_CONCEPT, "exit_mmap");
        let fentry = timed(EXIT_MMAP_CONCEPT, "exit_mmap", AttachMode::Fentry);
        let mut l = Latencies::default();
        exit_mmap_fall_back(&mut l, Some(&t), &missing, &fentry);
        assert_eq!(l.kill_to_exit_mmap_done_ns, Some(18_000_000));
        assert_eq!(
            l.exit_mmap_source.as_ref().map(FigureSource::label),
            Some("from fexit exit_mmap".to_owned())
        );
        // Not timed (--attach sampling): stays not measured.
        let mut l = Latencies::default();
        exit_mmap_fall_back(&mut l, Some(&t), &missing, &[]);
        assert_eq!(l, Latencies::default());
        // With the tracepoint, nothing changes.
        let mut l = Latencies::default();
        exit_mmap_fall_back(
            &mut l,
            Some(&t),
            &probe(EXIT_MMAP_TRACEPOINT, "attached"),
            &fentry,
        );
        assert_eq!(l, Latencies::default());
    }

    #[test]
    fn lock_waits_are_labelled_only_when_the_slow_path_gave_them() {
        let missing = probe(
            "lock_wait",
            "tracepoint lock:contention_begin: not found [ENOENT 2]",
        );
        let slowpath = timed(
            SLOWPATH_CONCEPT,
            "native_queued_spin_lock_slowpath",
            AttachMode::Fentry,
        );
        let source = lock_waits(true, &missing, &slowpath).unwrap();
        assert_eq!(
            source.label(),
            "from fexit native_queued_spin_lock_slowpath"
        );
        assert_eq!(lock_waits(false, &missing, &slowpath), None);
        assert_eq!(lock_waits(true, &missing, &[]), None);
        assert_eq!(
            lock_waits(true, &probe("lock_wait", "attached"), &slowpath),
            None
        );
    }
}
