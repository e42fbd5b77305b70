//! `reaper diff --json`: two run sets side by side, computed once by
//! reaper-cli's `compare::diff`, which its text renderer and `--json` only
//! read. `reaper gate --json` reuses the sides ([`SideInfo`]).

use serde::{Deserialize, Serialize};

use super::clean::{Coverage, LossPolicy, Scope};
use super::design::DesignCheck;
use super::metrics::{Part, Row};
use super::quantity::{Comparison, Coverages};
use super::report::Holder;
use crate::{ConceptId, Context};

/// Everything `reaper diff` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diff {
    /// The two sides, and how they differ.
    pub header: Header,
    /// The summary metrics (totals and their exit_mmap / reaper parts).
    pub metrics: Vec<MetricRow>,
    /// Were the sides recorded so that drift cancels (interleaved, no trend
    /// inside a side)?
    pub design: DesignCheck,
    /// Exact per-function timing, where both sides have it.
    pub exact: Exact,
    /// Per-context sampled period tables.
    pub contexts: Vec<ContextTable>,
    /// PTE-lock waits by waiter × holder on both sides (issue 25); absent
    /// when neither side's runs logged them (recorded before reaper did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collisions: Option<CollisionDiff>,
}

/// The waiter × holder tables of both sides, as means per episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CollisionDiff {
    /// Why a side has no table, per side ("A: ..."), when one has none.
    pub not_measured: Vec<String>,
    /// Episodes with a table on each side (the means' denominators).
    pub episodes: Sides<usize>,
    /// (waiter, holder) cells present on either side, largest mean wait
    /// on either side first.
    pub rows: Vec<CollisionDiffRow>,
}

/// One (waiter, holder) cell on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CollisionDiffRow {
    /// Who waited.
    pub waiter: Context,
    /// Who held the lock.
    pub holder: Holder,
    /// Mean waits per episode on each side.
    pub waits: Sides<f64>,
    /// Mean total wait per episode on each side, ms.
    pub total_ms: Sides<f64>,
}

/// One value per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sides<T> {
    /// A's.
    pub a: T,
    /// B's.
    pub b: T,
}

/// What one side is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SideInfo {
    /// Column label.
    pub label: String,
    /// The path given.
    pub path: String,
    /// Run files.
    pub runs: usize,
    /// Episodes over all runs.
    pub episodes: usize,
    /// Complete episodes.
    pub complete_episodes: usize,
    /// Per kind of figure, the episodes it may use and why not the others
    /// ([`super::clean`]): sampled and latency figures always, exact timing
    /// when an episode has it.
    pub usage: Vec<ScopeUsage>,
    /// Samples without a kernel stack.
    pub stack_loss: StackLossSummary,
    /// Kernel releases (distinct).
    pub kernels: Vec<String>,
    /// Architectures (distinct).
    pub archs: Vec<String>,
    /// CPU counts (distinct).
    pub cpus: Vec<String>,
    /// Sampling frequencies (distinct).
    pub freqs: Vec<String>,
    /// Scenario descriptions (distinct).
    pub scenarios: Vec<String>,
    /// Victim sizes (distinct).
    pub victim_sizes: Vec<String>,
    /// reaper versions (distinct).
    pub tools: Vec<String>,
    /// How functions were timed exactly ("fentry", "kprobe"), or "none":
    /// function probes add overhead to what they time, so a side with them
    /// is slower than one without. A fact of the runs (every episode).
    pub function_probes: Vec<String>,
    /// The reaper's VMA order per episode, e.g. "reverse ×5", or
    /// "unknown (needs fentry or kprobe)"; from every episode.
    pub reaper_order: String,
    /// Runs marked partial.
    pub partial_runs: usize,
    /// Loss counters summed over the runs, by name (non-zero only).
    pub losses: Vec<(String, u64)>,
}

/// The episodes one kind of figure may use on a side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScopeUsage {
    /// The kind of figure.
    pub scope: Scope,
    /// Episodes used and left out.
    pub coverage: Coverage,
}

/// A side's samples without a kernel stack (they count in no function).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StackLossSummary {
    /// Samples on tracked tasks, all episodes.
    pub samples: u64,
    /// Of those, samples without a stack.
    pub lost: u64,
    /// The largest share in one episode, percent.
    pub worst_episode_pct: f64,
    /// Episodes over the tolerance (left out of the sampled figures unless
    /// something else left them out first).
    pub over_tolerance: usize,
}

/// Run-level facts of both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Header {
    /// Side A.
    pub a: SideInfo,
    /// Side B.
    pub b: SideInfo,
    /// "kernel: X → Y" lines for what differs (allowed; shown).
    pub differences: Vec<String>,
    /// Comparability notes (e.g. a forced size mismatch).
    pub notes: Vec<String>,
    /// Which losses left episodes out of which figures.
    pub policy: LossPolicy,
}

/// One summary metric on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricRow {
    /// Metric name (as in `reaper gate --max-regression`).
    pub metric: String,
    /// Row label, from the report ("folio_remove_rmap_ptes time").
    pub label: String,
    /// Which summary row.
    pub row: Row,
    /// Which part of the row.
    pub part: Part,
    /// The comparison.
    pub comparison: Comparison,
}

/// Exact per-function timing on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Exact {
    /// `Some(why)` when there is nothing to compare.
    pub not_measured: Option<String>,
    /// Episodes each side's rows used (every row the same).
    pub coverage: Coverages,
    /// (context, function) pairs present on both sides.
    pub rows: Vec<ExactRow>,
}

/// A function's exact inclusive time on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExactRow {
    /// Context name.
    pub context: String,
    /// Function(s), "a → b" when the sides' kernels name the concept
    /// differently, with the concept in brackets.
    pub function: String,
    /// The comparison.
    pub comparison: Comparison,
}

/// One context's function table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContextTable {
    /// The context.
    pub context: Context,
    /// Display label.
    pub label: String,
    /// Episodes each side's rows used (every row the same: the sampled
    /// scope's).
    pub coverage: Coverages,
    /// Rows.
    pub rows: Vec<FunctionRow>,
}

/// One function's sampled period on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionRow {
    /// Catalog concept, when the row is one.
    pub concept: Option<ConceptId>,
    /// Function name(s).
    pub name: String,
    /// The comparison.
    pub comparison: Comparison,
}
