//! Why an episode's "kill → mrelease done" or "kill → exit_mmap done" is
//! not measured, from what the run recorded: the scenario (no race, or a
//! kernel without `process_mrelease`), the call's failure, the tracepoint's
//! status and the function probe that could have stood in for it. "event
//! not seen" is left for an event whose probe was there.

use crate::model::{ConceptId, Episode, FunctionProbe, Run};
use crate::recorder::figure_source::{EXIT_MMAP_TRACEPOINT, tracepoint_missing};

/// Why `kill → mrelease done` (and the call's duration) of `e` is not
/// measured.
pub fn mrelease_done(run: &Run, e: &Episode) -> String {
    let scenario = &run.recording.scenario;
    if let Some(why) = &scenario.mrelease_unavailable {
        return why.clone();
    }
    if !scenario.mrelease {
        return "no process_mrelease in this scenario".to_owned();
    }
    if let Some(ret) = e.latencies.mrelease_ret.filter(|&r| failed(r)) {
        return format!(
            "process_mrelease failed ({ret}: {}), so it reaped nothing",
            errno_name(ret)
        );
    }
    match tracepoint_missing(&run.recording.probes) {
        Some(status) => format!(
            "syscalls:sys_exit_process_mrelease: {status}; {}",
            not_timed(run, ConceptId::MreleaseSyscall)
        ),
        None => "event not seen".to_owned(),
    }
}

/// Why `kill → exit_mmap done` of an episode is not measured.
pub fn exit_mmap_done(run: &Run) -> String {
    match run
        .recording
        .probes
        .iter()
        .find(|p| p.probe == EXIT_MMAP_TRACEPOINT)
    {
        Some(p) if !p.status.is_attached() => format!(
            "mmap:exit_mmap (Linux 6.1+): {}; {}",
            p.status,
            not_timed(run, ConceptId::VictimTeardown)
        ),
        _ => "event not seen".to_owned(),
    }
}

/// Whether a `process_mrelease` return value is a failure other than the
/// lost race (ESRCH), which the run keeps and marks.
pub fn failed(ret: i64) -> bool {
    ret < 0 && ret != -i64::from(libc::ESRCH)
}

/// `ENOSYS` for -38, else the OS's description.
fn errno_name(ret: i64) -> String {
    let errno = i32::try_from(-ret).unwrap_or(0);
    match errno {
        libc::ENOSYS => "ENOSYS, the kernel has no such syscall".to_owned(),
        libc::EBADF => "EBADF".to_owned(),
        libc::EINVAL => "EINVAL".to_owned(),
        _ => std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

/// Why the function of `concept` gave no stand-in figure.
fn not_timed(run: &Run, concept: ConceptId) -> String {
    let probe: Option<&FunctionProbe> = run.function_probes.iter().find(|p| p.concept == concept);
    match probe {
        Some(p) if p.status.is_attached() => format!(
            "{} was timed but no call of it was kept in the episode's context",
            p.symbol.as_deref().unwrap_or(concept.name())
        ),
        Some(p) => format!(
            "{} not timed: {}",
            p.symbol.as_deref().unwrap_or(concept.name()),
            p.status
        ),
        None => format!("{concept} not timed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_and_the_lost_race_is_not_one() {
        assert!(failed(-38));
        assert!(!failed(-i64::from(libc::ESRCH)));
        assert!(!failed(0));
        assert!(errno_name(-38).starts_with("ENOSYS"));
    }
}
