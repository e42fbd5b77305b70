//! "kill → mrelease done" when the `syscalls:*_process_mrelease`
//! tracepoints are missing (a kernel without `FTRACE_SYSCALLS`): the figure
//! then comes from the exact-timing probe of the `process_mrelease` syscall
//! function (fexit or kretprobe), whose longest call in the mrelease caller
//! the kernel kept with its entry time and duration. The episode's
//! [`Latencies::mrelease_source`] says so; with the tracepoints attached
//! nothing changes.

use crate::model::{
    AttachMode, Context, FunctionProbe, FunctionTiming, Latencies, MreleaseSource, ProbeUse,
    doctor::ProgramKind,
};

/// The catalog concept of the `process_mrelease` syscall function.
pub const CONCEPT: &str = "mrelease_syscall";
/// The context that calls `process_mrelease`.
const CALLER: Context = Context::MreleaseCaller;
/// The run's probe entry of the exit tracepoint.
pub const EXIT_TRACEPOINT: &str = "timeline:syscalls:sys_exit_process_mrelease";

/// Why the exit tracepoint gave no figure: `Some(its status)` when it did
/// not attach (or was never listed), `None` when it attached.
pub fn tracepoint_missing(probes: &[ProbeUse]) -> Option<String> {
    match probes.iter().find(|p| p.probe == EXIT_TRACEPOINT) {
        Some(p) if p.status.is_attached() => None,
        Some(p) => Some(p.status.to_string()),
        None => Some("not attached".to_owned()),
    }
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
    let Some(kept) = timing
        .into_iter()
        .flat_map(|t| &t.longest_calls)
        .find(|f| f.context == CALLER && f.concept == CONCEPT)
    else {
        return;
    };
    // One process_mrelease call per episode; the longest is the race's.
    let Some(call) = kept.calls.first() else {
        return;
    };
    let Ok(done) = u64::try_from(call.end_ns()) else {
        return;
    };
    let exit_probe = match function_probes
        .iter()
        .find(|p| p.concept == CONCEPT)
        .map(|p| p.mode)
    {
        Some(AttachMode::Kprobe) => ProgramKind::Kretprobe.name(),
        _ => ProgramKind::Fexit.name(),
    };
    latencies.kill_to_mrelease_done_ns = Some(done);
    latencies.mrelease_duration_ns = Some(call.duration_ns);
    latencies.mrelease_source = Some(MreleaseSource::FunctionProbe {
        symbol: kept.symbol.clone(),
        exit_probe: exit_probe.to_owned(),
        tracepoints,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttachMode, FunctionCall, FunctionCalls, ProbeOutcome};

    fn probe(status: &str) -> Vec<ProbeUse> {
        vec![ProbeUse {
            probe: EXIT_TRACEPOINT.into(),
            mode: AttachMode::Tracepoint,
            status: ProbeOutcome::parse(status),
            fallback_from: None,
        }]
    }

    fn timing() -> FunctionTiming {
        FunctionTiming {
            longest_calls: vec![FunctionCalls {
                context: CALLER,
                concept: CONCEPT.into(),
                symbol: "__x64_sys_process_mrelease".into(),
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

    fn kprobed() -> Vec<FunctionProbe> {
        vec![FunctionProbe {
            concept: CONCEPT.into(),
            symbol: Some("__x64_sys_process_mrelease".into()),
            mode: AttachMode::Kprobe,
            status: ProbeOutcome::Attached,
            fallback_from: None,
        }]
    }

    #[test]
    fn missing_syscall_tracepoints_fall_back_to_the_function_exit() {
        let mut l = Latencies::default();
        let missing = probe("tracepoint syscalls:sys_exit_process_mrelease: not found [ENOENT 2]");
        fall_back(&mut l, Some(&timing()), &missing, &kprobed());
        assert_eq!(l.kill_to_mrelease_done_ns, Some(18_000_000));
        assert_eq!(l.mrelease_duration_ns, Some(16_000_000));
        assert_eq!(l.mrelease_ret, None, "the return value is not known");
        let source = l.mrelease_source.unwrap();
        assert_eq!(source.label(), "from kretprobe __x64_sys_process_mrelease");
        let MreleaseSource::FunctionProbe { tracepoints, .. } = source;
        assert!(tracepoints.contains("ENOENT"));
    }

    #[test]
    fn attached_tracepoints_keep_their_figures_and_no_source() {
        let mut l = Latencies::default();
        fall_back(&mut l, Some(&timing()), &probe("attached"), &[]);
        assert_eq!(
            l,
            Latencies::default(),
            "an unseen event stays not measured"
        );
        let mut seen = Latencies {
            kill_to_mrelease_done_ns: Some(5),
            ..Latencies::default()
        };
        fall_back(&mut seen, Some(&timing()), &probe("refused"), &[]);
        assert_eq!(seen.kill_to_mrelease_done_ns, Some(5));
        assert_eq!(seen.mrelease_source, None);
    }

    #[test]
    fn no_function_call_leaves_it_not_measured() {
        let mut l = Latencies::default();
        fall_back(&mut l, None, &probe("refused"), &[]);
        assert_eq!(l.kill_to_mrelease_done_ns, None);
        fall_back(&mut l, Some(&FunctionTiming::default()), &[], &[]);
        assert_eq!(l.kill_to_mrelease_done_ns, None);
    }
}
