//! The pieces every "Summary of measurements (ms)" row is built from: the
//! cells and stats of a row, the split value (victim + reaper side), why a
//! row could not be measured, and the stacks of an episode's side. The
//! summary ([`super::summary`]) and its PTE-lock rows ([`super::pte_lock`],
//! [`super::pte_lock_exact`]) use them; none of them uses a row builder.

use reaper_common::timeline::TimelineKind;

use crate::catalog::ConceptId;
use crate::duration::NS_PER_MS;
use crate::model::{Context, Episode, ProbeGroup, Run, SampledStack, TimelineEventKind};
use crate::stats;

use super::model::{Cell, RowId, RowStats, SummaryRow, Value};

/// Split-line label of the thread's rows.
pub(crate) const SPLIT_LABEL: &str = "(exit_mmap + reaper work)";

/// The sampled stacks of one context in one episode.
pub fn episode_stacks(
    episode: &Episode,
    context: Context,
) -> impl Iterator<Item = &SampledStack> + '_ {
    episode
        .contexts
        .iter()
        .filter(move |c| c.context == context)
        .flat_map(|c| c.stacks.iter())
}

/// Why a probe group did not measure, if it did not: the group's programs
/// did not attach, with the kernel's answer from its `recording.probes`
/// entry. `None` when it was attached or the run does not list it.
pub fn probe_failure(run: &Run, group: ProbeGroup) -> Option<String> {
    let entry = run
        .recording
        .probes
        .iter()
        .find(|p| p.probe == group.name())?;
    (!entry.status.is_attached()).then(|| group.did_not_attach(&entry.status.to_string()))
}

/// Why the sampled rows cannot be built: sampling did not attach, or the
/// kernel's unwinder lost callers in the sampled stacks (a kretprobe's
/// return trampoline left in place of the probed function's caller; see
/// [`crate::model::FRAME_CALLER_LOST`]), so "time under exit_mmap" would
/// miss every sample below a kretprobed function.
pub fn sampled_rows_failure(run: &Run) -> Option<String> {
    if let Some(why) = probe_failure(run, ProbeGroup::Sampling) {
        return Some(why);
    }
    let (mut lost, mut total) = (0u64, 0u64);
    for stack in run
        .episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .flat_map(|c| &c.stacks)
    {
        total += stack.samples;
        if stack
            .frames
            .iter()
            .any(|f| f == crate::model::FRAME_CALLER_LOST)
        {
            lost += stack.samples;
        }
    }
    (lost > 0).then(|| {
        format!(
            "{lost} of {total} samples have a caller the kernel's unwinder lost to a kretprobe's \
             return trampoline (this kernel's unwinder does not recover it; arm64's does from \
             5.16); `record --attach sampling` gives these rows, the exact rows are unaffected"
        )
    })
}

/// Whether lock waits were measured: `Err(why)` when the lock_wait probe did
/// not attach and no other source stood in for it, or when the run has
/// neither a probe entry nor any lock data.
pub fn lock_wait_status(run: &Run) -> Result<(), LockWaitsNotMeasured> {
    if run.recording.lock_wait_source.is_some() {
        return Ok(());
    }
    if let Some(why) = probe_failure(run, ProbeGroup::LockWait) {
        let why = if run.not_timed_why(ConceptId::SpinSlowpath).is_some() {
            format!(
                "{why}; record --exact-locks times the spin slow path, whose calls are then the lock waits"
            )
        } else {
            why
        };
        return Err(LockWaitsNotMeasured::NotAttached(why));
    }
    let listed = run
        .recording
        .probes
        .iter()
        .any(|p| p.probe == ProbeGroup::LockWait.name());
    let has_data = run
        .episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .any(|c| !c.lock_waits.is_empty());
    if listed || has_data {
        return Ok(());
    }
    Err(LockWaitsNotMeasured::NoProbe)
}

/// Why a run's lock waits are not measured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockWaitsNotMeasured {
    /// The lock_wait probe did not attach, in the run's words.
    #[error("{0}")]
    NotAttached(String),
    /// The run has neither the probe nor any lock data (an older run).
    #[error("the run has no {} probe", ProbeGroup::LockWait.name())]
    NoProbe,
}

/// A catalog concept this kernel has no function for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("absent on this kernel: none of {}", crate::catalog::entry(*.0).candidates.join(", "))]
pub struct Absent(pub ConceptId);

/// An episode's sampled stacks of the victim and of the reaper contexts.
pub(crate) fn side_stacks(e: &Episode) -> (Vec<SampledStack>, Vec<SampledStack>) {
    let victim = episode_stacks(e, Context::VictimExit).cloned().collect();
    let reaper = Context::REAPERS
        .into_iter()
        .flat_map(|c| episode_stacks(e, c).cloned())
        .collect();
    (victim, reaper)
}

pub(crate) fn split_value(victim_ns: u64, reaper_ns: u64, count: Option<u64>) -> Value {
    Value {
        total_ms: (victim_ns + reaper_ns) as f64 / NS_PER_MS,
        split_ms: Some((victim_ns as f64 / NS_PER_MS, reaper_ns as f64 / NS_PER_MS)),
        count,
    }
}

pub(crate) fn absent(concept: ConceptId) -> String {
    Absent(concept).to_string()
}

pub(crate) fn uniform_row(run: &Run, id: RowId, label: String, why: String) -> SummaryRow {
    row(
        id,
        label,
        Some(SPLIT_LABEL),
        vec![Cell::NotMeasured { why }; run.episodes.len()],
    )
}

pub(crate) fn row(
    id: RowId,
    label: String,
    split_label: Option<&str>,
    cells: Vec<Cell>,
) -> SummaryRow {
    let stats = row_stats(&cells);
    SummaryRow {
        id: Some(id),
        label,
        split_label: split_label.map(str::to_owned),
        cells,
        stats,
    }
}

/// Component-wise median/min/max of the measured cells.
pub fn row_stats(cells: &[Cell]) -> Option<RowStats> {
    let values: Vec<Value> = cells
        .iter()
        .filter_map(|c| match c {
            Cell::Measured(v) => Some(*v),
            Cell::NotMeasured { .. } => None,
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    let stat = |f: &dyn Fn(&Value) -> Option<f64>| -> Option<(f64, f64, f64)> {
        let xs: Vec<f64> = values.iter().filter_map(f).collect();
        Some((stats::median(&xs)?, stats::min(&xs)?, stats::max(&xs)?))
    };
    let total = stat(&|v| Some(v.total_ms)).unwrap_or_default();
    let victim = stat(&|v| v.split_ms.map(|s| s.0));
    let reaper = stat(&|v| v.split_ms.map(|s| s.1));
    let count = stat(&|v| v.count.map(|c| c as f64));
    let pick = |i: usize| {
        let get = |t: (f64, f64, f64)| [t.0, t.1, t.2][i];
        Value {
            total_ms: get(total),
            split_ms: victim.zip(reaper).map(|(v, r)| (get(v), get(r))),
            count: count.map(|c| get(c).round() as u64),
        }
    };
    Some(RowStats {
        measured: values.len(),
        median: pick(0),
        min: pick(1),
        max: pick(2),
    })
}

/// What t = 0 of a timeline is: a kill (reaper's entry, or the OOM
/// killer's `oom:mark_victim`), else the start of the process's own exit.
pub(crate) fn t0_of(timeline: &[crate::model::TimelineEntry]) -> super::model::TimeZero {
    let killed = timeline
        .iter()
        .any(|e| e.kind == TimelineEventKind::Kill || e.kind == TimelineKind::OomMarkVictim);
    if killed || timeline.is_empty() {
        super::model::TimeZero::Kill
    } else {
        super::model::TimeZero::ExitBegan
    }
}
