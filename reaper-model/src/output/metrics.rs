//! The compared metrics: every summary row of `reaper report`, as its
//! total and its exit_mmap / reaper-work parts, by the names `reaper diff`
//! shows and `reaper gate --max-regression` gates on ([`METRICS`]).
//!
//! A vocabulary, like [`crate::ConceptId`]: the table is the one place a
//! metric's name and meaning are spelled. reaper-cli's `compare::metrics`
//! extracts each metric's samples from a run set.

use serde::{Deserialize, Serialize};

pub use super::report::RowId as Row;

/// Which part of a row's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The row's total.
    Total,
    /// The victim's exit_mmap part.
    ExitMmap,
    /// The reaper-work part (process_mrelease caller and oom_reaper).
    Reaper,
}

/// A metric that `reaper diff` shows and `reaper gate` can gate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Metric {
    /// Name used in `--max-regression`, e.g. "pte_lock_wait".
    pub name: &'static str,
    /// What it measures, for `--help` and reports.
    pub description: &'static str,
    /// The summary row.
    pub row: Row,
    /// The part of the row.
    pub part: Part,
}

const fn metric(name: &'static str, description: &'static str, row: Row, part: Part) -> Metric {
    Metric {
        name,
        description,
        row,
        part,
    }
}

/// Every metric, in the summary table's order (a total before its parts).
pub const METRICS: &[Metric] = &[
    metric(
        "total",
        "total running time, exit_mmap + reaper work (sampled CPU time)",
        Row::Total,
        Part::Total,
    ),
    metric(
        "total_exit_mmap",
        "the victim's exit_mmap part of the total",
        Row::Total,
        Part::ExitMmap,
    ),
    metric(
        "total_reaper",
        "the reaper-work part of the total",
        Row::Total,
        Part::Reaper,
    ),
    metric(
        "pte_lock_wait",
        "time waiting for the PTE spinlock, exit_mmap + reaper work (sampled spin time under the PTE-lock function)",
        Row::PteLockWait,
        Part::Total,
    ),
    metric(
        "pte_lock_wait_exit_mmap",
        "the victim's part of the PTE-lock wait",
        Row::PteLockWait,
        Part::ExitMmap,
    ),
    metric(
        "pte_lock_wait_reaper",
        "the reaper's part of the PTE-lock wait",
        Row::PteLockWait,
        Part::Reaper,
    ),
    metric(
        "pte_lock_wait_exact",
        "PTE-lock wait from function timing: inclusive time of the spin slow path's calls from the PTE-lock call site, exit_mmap + reaper work (sees the pending-bit spins lock:contention_begin misses)",
        Row::PteLockWaitExact,
        Part::Total,
    ),
    metric(
        "pte_lock_wait_exact_exit_mmap",
        "the victim's part of the exact PTE-lock wait",
        Row::PteLockWaitExact,
        Part::ExitMmap,
    ),
    metric(
        "pte_lock_wait_exact_reaper",
        "the reaper's part of the exact PTE-lock wait",
        Row::PteLockWaitExact,
        Part::Reaper,
    ),
    metric(
        "rmap",
        "rmap-removal time (folio_remove_rmap_ptes or page_remove_rmap), exit_mmap + reaper work",
        Row::Rmap,
        Part::Total,
    ),
    metric(
        "rmap_exit_mmap",
        "the victim's part of the rmap-removal time",
        Row::Rmap,
        Part::ExitMmap,
    ),
    metric(
        "rmap_reaper",
        "the reaper's part of the rmap-removal time",
        Row::Rmap,
        Part::Reaper,
    ),
    metric(
        "kill_to_reap",
        "latency from the kill to process_mrelease returning (wall clock)",
        Row::KillToReap,
        Part::Total,
    ),
    metric(
        "kill_to_exit_mmap",
        "latency from the kill to the victim's exit_mmap finishing (wall clock)",
        Row::KillToExitMmap,
        Part::Total,
    ),
];

/// Looks a metric up by name.
pub fn find(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// Every metric name, comma-separated (for messages).
pub fn names() -> String {
    METRICS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a metric as `--json` writes it (the whole [`Metric`]) back into
/// its entry of [`METRICS`], for `#[serde(deserialize_with)]`: a name this
/// build does not know, or one whose row or part differ from the table's,
/// is an error (its description is the table's).
pub fn deserialize_metric<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<&'static Metric, D::Error> {
    use serde::de::Error as _;
    /// A metric as written.
    #[derive(Deserialize)]
    struct Written {
        name: String,
        row: Row,
        part: Part,
    }
    let written = Written::deserialize(d)?;
    let metric = find(&written.name).ok_or_else(|| {
        D::Error::custom(format!(
            "unknown metric {:?}; this build knows {}",
            written.name,
            names()
        ))
    })?;
    if (metric.row, metric.part) != (written.row, written.part) {
        return Err(D::Error::custom(format!(
            "metric {} is written as {:?} {:?}; this build has it as {:?} {:?}",
            metric.name, written.row, written.part, metric.row, metric.part
        )));
    }
    Ok(metric)
}
