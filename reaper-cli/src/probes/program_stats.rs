//! What the kernel counts per program of reaper's: its run count and run
//! time while run statistics are on ([`RunStats`], `record
//! --program-cost`), and how often it skipped one: its per-program
//! `recursion_misses` (`bpf_prog_info`, Linux 5.12+), counted when a probe
//! fires while the same program is still running on that CPU (the
//! trampolines' `__bpf_prog_enter_recur`, raw tracepoints'
//! `__bpf_trace_run`, `trace_call_bpf` for kprobes): nested in it (an
//! interrupt, a contended map lock), or, where the kernel runs programs
//! with migration but not preemption disabled, in a task that preempted
//! it. Such an event is not seen, so the recorder reports the runs skipped
//! per episode as a loss instead of dropping them silently.

use std::collections::BTreeMap;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};

use aya::Ebpf;
use aya_obj::generated::bpf_prog_info;

use crate::model::ProgramCost;

/// The kernel's per-program run statistics (`run_cnt`, `run_time_ns`),
/// switched on for as long as this lives: `BPF_ENABLE_STATS` (Linux 5.8+)
/// returns a descriptor that keeps them on until it is closed, so nothing
/// global is left changed if reaper dies, and the `kernel.bpf_stats_enabled`
/// sysctl is never written. While on, every program run of every BPF program
/// on the machine costs two clock reads more.
#[derive(Debug)]
pub struct RunStats {
    _on: OwnedFd,
}

/// Why run statistics could not be switched on.
#[derive(Debug, thiserror::Error)]
#[error(
    "BPF_ENABLE_STATS(BPF_STATS_RUN_TIME) refused (it needs Linux 5.8+ and CAP_SYS_ADMIN): {0}"
)]
pub struct RunStatsError(#[source] std::io::Error);

impl RunStats {
    /// Switches run statistics on.
    pub fn enable() -> Result<Self, RunStatsError> {
        aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .map(|fd| Self { _on: fd })
            .map_err(|e| RunStatsError(e.io_error))
    }
}

/// Cumulative runs and run time of every loaded program of `ebpf`, by
/// program name (zero while run statistics are off).
pub fn run_totals(ebpf: &Ebpf) -> BTreeMap<String, ProgramCost> {
    ebpf.programs()
        .filter_map(|(name, program)| {
            let fd = program.fd().ok()?;
            // SAFETY: plain data; all-zero asks for no arrays.
            let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
            super::prog_info(fd.as_fd().as_raw_fd(), &mut info)?;
            Some((
                name.to_owned(),
                ProgramCost {
                    runs: info.run_cnt,
                    run_ns: info.run_time_ns,
                },
            ))
        })
        .collect()
}

/// What each program cost between two [`run_totals`] readings; programs
/// that did not run left out.
pub fn costs_since(
    before: &BTreeMap<String, ProgramCost>,
    after: &BTreeMap<String, ProgramCost>,
) -> BTreeMap<String, ProgramCost> {
    after
        .iter()
        .filter_map(|(name, now)| {
            let then = before.get(name).copied().unwrap_or_default();
            let cost = ProgramCost {
                runs: now.runs.saturating_sub(then.runs),
                run_ns: now.run_ns.saturating_sub(then.run_ns),
            };
            (cost.runs > 0).then(|| (name.clone(), cost))
        })
        .collect()
}

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
    fn costs_are_the_difference_of_two_readings_and_idle_programs_are_left_out() {
        let cost = |runs, run_ns| ProgramCost { runs, run_ns };
        let before = BTreeMap::from([
            ("a".to_owned(), cost(10, 1000)),
            ("b".to_owned(), cost(5, 50)),
        ]);
        let after = BTreeMap::from([
            ("a".to_owned(), cost(10, 1000)),
            ("b".to_owned(), cost(9, 450)),
            ("c".to_owned(), cost(2, 30)),
        ]);
        assert_eq!(
            costs_since(&before, &after),
            BTreeMap::from([
                ("b".to_owned(), cost(4, 400)),
                ("c".to_owned(), cost(2, 30))
            ])
        );
    }

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
