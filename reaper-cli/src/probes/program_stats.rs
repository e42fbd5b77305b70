//! How often the kernel skipped one of reaper's programs: its per-program
//! `recursion_misses` (`bpf_prog_info`, Linux 5.12+), counted when a probe
//! fires while the same program is still running on that CPU (the
//! trampolines' `__bpf_prog_enter_recur`, raw tracepoints'
//! `__bpf_trace_run`, `trace_call_bpf` for kprobes): nested in it (an
//! interrupt, a contended map lock), or, where the kernel runs programs
//! with migration but not preemption disabled, in a task that preempted
//! it. Such an event is not seen, so the recorder reports the runs skipped
//! per episode as a loss instead of dropping them silently.

use std::collections::BTreeMap;
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::Ebpf;
use aya_obj::generated::bpf_prog_info;

/// Cumulative skipped runs of every loaded program of `ebpf` that has any,
/// by program name. The counters are not enabled by `kernel.bpf_stats`:
/// the kernel always keeps them.
pub fn recursion_misses(ebpf: &Ebpf) -> BTreeMap<String, u64> {
    ebpf.programs()
        .filter_map(|(name, program)| {
            let fd = program.fd().ok()?;
            // SAFETY: plain data; all-zero asks for no arrays.
            let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
            super::prog_info(fd.as_fd().as_raw_fd(), &mut info)?;
            (info.recursion_misses > 0).then(|| (name.to_owned(), info.recursion_misses))
        })
        .collect()
}

/// The runs skipped between two [`recursion_misses`] readings, by program
/// name; programs with none left out.
pub fn skipped_since(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(name, &now)| {
            let skipped = now.saturating_sub(before.get(name).copied().unwrap_or(0));
            (skipped > 0).then(|| (name.clone(), skipped))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_programs_that_skipped_runs_since_the_first_reading_are_kept() {
        let before = BTreeMap::from([("a".to_owned(), 3), ("b".to_owned(), 5)]);
        let after = BTreeMap::from([
            ("a".to_owned(), 3),
            ("b".to_owned(), 9),
            ("c".to_owned(), 2),
        ]);
        assert_eq!(
            skipped_since(&before, &after),
            BTreeMap::from([("b".to_owned(), 4), ("c".to_owned(), 2)])
        );
    }
}
