//! `record --program-cost`: the kernel's run statistics of reaper's
//! programs switched on for the recording, read at each episode's set-up
//! and end and over the whole recording, and named by what each program
//! probes.

use std::collections::BTreeMap;

use crate::model::{NotMeasured, ProgramCost};
use crate::probes::program_stats::{self, RunStats, RunStatsError};

use super::setup::EpisodeSetup;
use super::{RecordSettings, Recorder};

/// The not-measured subject of `--program-cost` when the kernel refused
/// run statistics.
pub const PROGRAM_COST: &str = "probe program cost (--program-cost)";

/// The kernel's run statistics for `--program-cost`, switched on once
/// everything is loaded and attached (so that is not counted), or why not.
pub fn run_stats(settings: &RecordSettings) -> Option<Result<RunStats, RunStatsError>> {
    settings.program_cost.then(RunStats::enable)
}

impl Recorder {
    /// Reads the programs' statistics as recording begins.
    pub(super) fn start_program_costs(&mut self) {
        if let Some(Ok(_)) = &self.run_stats {
            self.program_runs_at_start = Some(program_stats::run_totals(&self.ebpf));
        }
    }

    /// What each program cost over the whole recording (empty unless
    /// `--program-cost` switched the statistics on).
    pub(super) fn run_program_costs(&self) -> BTreeMap<String, ProgramCost> {
        self.program_runs_at_start
            .as_ref()
            .map(|before| self.program_costs_since(before))
            .unwrap_or_default()
    }

    /// `--program-cost` refused by the kernel, as a not-measured line.
    pub(super) fn program_cost_refused(&self) -> Option<NotMeasured> {
        match &self.run_stats {
            Some(Err(why)) => Some(NotMeasured {
                subject: PROGRAM_COST.into(),
                why: why.to_string(),
            }),
            _ => None,
        }
    }

    /// Reads the programs' statistics at an episode's set-up.
    pub(super) fn program_runs_now(&self) -> Option<BTreeMap<String, ProgramCost>> {
        matches!(&self.run_stats, Some(Ok(_))).then(|| program_stats::run_totals(&self.ebpf))
    }

    /// What reaper's programs did in the kernel since the episode's set-up:
    /// the runs it skipped, and (with `--program-cost`) what each cost.
    pub(super) fn program_accounts(
        &self,
        setup: &EpisodeSetup,
    ) -> (BTreeMap<String, u64>, BTreeMap<String, ProgramCost>) {
        let skipped = setup
            .skipped_runs_before
            .as_ref()
            .map(|before| self.probe_runs_skipped_since(before))
            .unwrap_or_default();
        let costs = setup
            .program_runs_before
            .as_ref()
            .map(|before| self.program_costs_since(before))
            .unwrap_or_default();
        (skipped, costs)
    }

    /// What each of reaper's programs cost since `before` (a
    /// [`program_stats::run_totals`] reading), by what each program probes;
    /// two programs probing one thing are summed.
    fn program_costs_since(
        &self,
        before: &BTreeMap<String, ProgramCost>,
    ) -> BTreeMap<String, ProgramCost> {
        let now = program_stats::run_totals(&self.ebpf);
        let mut costs: BTreeMap<String, ProgramCost> = BTreeMap::new();
        for (program, cost) in program_stats::costs_since(before, &now) {
            let entry = costs
                .entry(self.probe_frames.describe(&program))
                .or_default();
            entry.runs += cost.runs;
            entry.run_ns += cost.run_ns;
        }
        costs
    }
}
