//! `reaper report --json` (and `reaper record --json`): the derived report,
//! what every renderer prints, computed once from a run.
//!
//! Nothing here is formatted text. reaper-cli's analysis (`report::analysis`)
//! fills it from a [`Run`](crate::Run); its text, JSON, folded and SVG
//! renderers only read it, and readers of `--json` decode it with these
//! types. Times are in the unit their field name says; tables that average
//! over episodes hold the per-episode mean and [`ContextReport::episodes`]
//! says over how many.

use serde::{Deserialize, Serialize};

use crate::{
    Context, FrozenOutcome, Latencies, Lockdown, NotMeasured, ProbeUse, TimelineEntry, VictimInfo,
    WatchSummary,
};

mod collision;
mod function_timing;

pub use collision::{CollisionReport, EpisodeCollisions, Holder, HolderRow, HolderSource};
pub use function_timing::{
    Bucket, CallsNotTimed, CorrectedPeriod, EpisodeExact, EpisodeTiming, ExactRow, ExactTable,
    FunctionTimingReport, Histogram, OrderCount, OrderEvidence, OrderUnknown, ProbeHits,
    ProbeOverhead, ReaperOrder,
};

/// Everything `reaper report` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// Run-level facts and warnings.
    pub header: Header,
    /// The thread's "Summary of measurements (ms)".
    pub summary: Summary,
    /// One entry per context that appears in any episode.
    pub contexts: Vec<ContextReport>,
    /// Per-episode timeline, latencies and counters.
    pub episodes: Vec<EpisodeReport>,
    /// What the run could not measure, and why.
    pub not_measured: Vec<NotMeasured>,
    /// Exact function timing: the reaper order, exact tables, histograms
    /// and probe hits.
    pub function_timing: FunctionTimingReport,
    /// What each of reaper's programs cost the kernel per episode
    /// (`record --program-cost`); absent when not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_cost: Option<ProgramCostReport>,
    /// PTE-lock waits by waiter × holder (issue 25); absent for runs
    /// recorded before reaper logged them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collisions: Option<CollisionReport>,
}

/// Run-level facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Header {
    /// `record --watch` totals.
    pub watch: Option<WatchSummary>,
    /// "reaper 0.1.0".
    pub tool: String,
    /// `uname -r` of the recorded kernel.
    pub kernel_release: String,
    /// `uname -m`.
    pub arch: String,
    /// Online CPUs.
    pub cpus: u32,
    /// The kernel's lockdown, when the run saw one.
    pub lockdown: Option<Lockdown>,
    /// The kernel's clocksource, when the run recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clocksource: Option<String>,
    /// Sampling frequency.
    pub freq_hz: u64,
    /// cpu-clock period, ns.
    pub sample_period_ns: u64,
    /// Human scenario description.
    pub scenario: String,
    /// Seconds since the Unix epoch when recording started.
    pub started_unix: u64,
    /// Episodes in the run.
    pub episodes: usize,
    /// Episodes the scenario asked for (more than `episodes` when cut short).
    pub episodes_requested: u32,
    /// `Some(reason)` when the run is partial.
    pub partial: Option<String>,
    /// How each probe group was attached.
    pub probes: Vec<ProbeUse>,
    /// Losses summed over all episodes (empty: nothing was lost).
    pub losses: Vec<Loss>,
    /// Episodes whose mrelease caller lost the race (`process_mrelease`
    /// returned ESRCH); they are shown but left out of medians.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost_races: usize,
    /// The warm-up teardown recorded and discarded before episode 1
    /// (run.json `recording.warmup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn none_set(flags: &[bool]) -> bool {
    !flags.contains(&true)
}

/// A non-zero loss counter, with what it means and what to enlarge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Loss {
    /// Counter name (`Counter::name()`, or a userspace loss name).
    pub counter: String,
    /// How many were lost.
    pub count: u64,
    /// What was lost, e.g. "samples had no stack (KERNEL_STACKS full or collision)".
    pub what: String,
    /// The flag that enlarges the structure that overflowed, if any.
    pub flag: Option<String>,
}

/// The summary table: one row per measurement, one cell per episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Episodes (cells per row).
    pub episodes: usize,
    /// Rows, in the thread's order.
    pub rows: Vec<SummaryRow>,
    /// Per episode: the mrelease caller lost the race (its cells are shown,
    /// but the row statistics leave it out).
    #[serde(default, skip_serializing_if = "none_set")]
    pub lost: Vec<bool>,
}

impl Summary {
    /// Episodes that count toward the statistics (did not lose the race).
    pub fn counted(&self) -> usize {
        self.episodes - self.lost.iter().filter(|&&l| l).count()
    }
}

/// Which measurement a summary row holds. Rows are found by this; their
/// labels are for display only (the rmap row is named after the kernel's
/// function, the PTE rows after the kind of lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowId {
    /// "Total running time".
    Total,
    /// "Time waiting for pte spinlock" (sampled).
    PteLockWait,
    /// "PTE-lock waits traced".
    PteTracedWait,
    /// "PTE-lock wait, exact": the spin slow path's calls from the PTE-lock
    /// call site, timed by function timing.
    PteLockWaitExact,
    /// "<rmap function> time".
    Rmap,
    /// "kill → mrelease done".
    KillToReap,
    /// "kill → exit_mmap done".
    KillToExitMmap,
}

/// One measurement across episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SummaryRow {
    /// Which measurement; not in `--json` (whose rows keep their layout),
    /// so `None` in a row decoded from it.
    #[serde(skip)]
    pub id: Option<RowId>,
    /// Row label, e.g. "Total running time".
    pub label: String,
    /// Label of the split line, e.g. "(exit_mmap + reaper work)"; `None` for
    /// rows that are one number (latencies).
    pub split_label: Option<String>,
    /// One cell per episode, in episode order.
    pub cells: Vec<Cell>,
    /// Median and range over the measured cells of episodes that did not
    /// lose the race (`None` if none measured).
    pub stats: Option<RowStats>,
}

/// One episode's value of a summary row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Cell {
    /// A measured value (possibly 0).
    Measured(Value),
    /// The run could not measure it.
    NotMeasured {
        /// Why, e.g. "lock_wait probe: tracepoint not found".
        why: String,
    },
}

/// A measured summary value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Value {
    /// Total, ms.
    pub total_ms: f64,
    /// (exit_mmap part, reaper-work part), ms, for split rows.
    pub split_ms: Option<(f64, f64)>,
    /// Event count (lock waits), for rows that have one.
    pub count: Option<u64>,
}

/// Median, minimum and maximum of a row's measured cells, each component
/// taken independently.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RowStats {
    /// How many cells were measured.
    pub measured: usize,
    /// Component-wise median.
    pub median: Value,
    /// Component-wise minimum.
    pub min: Value,
    /// Component-wise maximum.
    pub max: Value,
}

/// One context (victim exit, mrelease caller, oom_reaper) over all episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContextReport {
    /// The context (its machine name in `--json`).
    pub context: Context,
    /// Display label, e.g. "victim exit".
    pub label: String,
    /// Episodes the per-episode means are taken over (all episodes of the run).
    pub episodes: usize,
    /// comm of the context's tasks (first seen), "unknown" if none.
    pub comm: String,
    /// Samples over all episodes.
    pub samples: u64,
    /// Sampled CPU time over all episodes, ns.
    pub period_ns: u64,
    /// The "Period (ms)  Symbol" table: anchor and catalog functions.
    pub key_functions: Vec<KeyFunction>,
    /// The "Children  Self  Symbol" table (top N by Children, means).
    pub symbols: Vec<SymbolCost>,
    /// The caller-based call graph, pruned by the options.
    pub call_graph: CallGraph,
    /// Lock waits by stack.
    pub lock_waits: LockWaits,
}

/// A row of the "Period (ms)  Symbol" table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyFunction {
    /// Catalog concept id, or "anchor" for the context's root function.
    pub concept: String,
    /// The frame that stands for it on this kernel; `None`: absent on this kernel.
    pub symbol: Option<String>,
    /// True when `symbol` is the inline fallback (the PTE lock on 6.1).
    pub inline_fallback: bool,
    /// Candidates tried (for absent concepts).
    pub candidates: Vec<String>,
    /// Children period, ms, per-episode mean; `None` when absent.
    pub period_ms: Option<f64>,
}

/// A row of the "Children  Self  Symbol" table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SymbolCost {
    /// Function name.
    pub symbol: String,
    /// Period of samples whose stack contains it (once per stack), ns, mean.
    pub children_ns: u64,
    /// Period of samples where it is the leaf, ns, mean.
    pub self_ns: u64,
}

/// A caller-based call graph: a forest of roots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallGraph {
    /// Total period of the context, ns (percent base of the roots).
    pub total_ns: u64,
    /// Roots (the context's anchor, and own roots of stacks without it),
    /// by period descending; those under the cut-off are dropped.
    pub roots: Vec<CallNode>,
    /// Roots dropped by the cut-off.
    pub hidden_roots: usize,
    /// The percent cut-off applied (relative to the parent node).
    pub percent_limit: f64,
    /// The depth limit applied (root = depth 0).
    pub max_depth: usize,
}

/// A node of the call graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallNode {
    /// Function name.
    pub name: String,
    /// Period of all samples through this node, ns (sum over episodes).
    pub total_ns: u64,
    /// Period of samples that end here, ns.
    pub self_ns: u64,
    /// Callees, by period descending, pruned by the options.
    pub children: Vec<CallNode>,
}

/// Lock waits of a context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockWaits {
    /// `None` when measured; otherwise why not.
    pub not_measured: Option<String>,
    /// Where the waits came from when not from the `lock:contention_*`
    /// tracepoints, e.g. "from fexit native_queued_spin_lock_slowpath".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Top stacks by total wait (per-episode means).
    pub rows: Vec<LockWaitRow>,
    /// Stacks not shown (beyond the top N).
    pub hidden: usize,
}

/// Lock waits that began at one stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockWaitRow {
    /// The innermost frame that is not a lock primitive (the lock's user).
    pub waiter: String,
    /// The waiter's caller, if known.
    pub caller: Option<String>,
    /// True for a spinning waiter (`LCB_F_SPIN`), false for a sleeping one.
    pub spin: bool,
    /// Completed waits, per-episode mean.
    pub count: f64,
    /// Total wait, ms, per-episode mean.
    pub total_ms: f64,
    /// Longest single wait over all episodes, µs.
    pub max_us: f64,
    /// The full stack, outermost caller first.
    pub frames: Vec<String>,
}

/// One episode's timeline, latencies and counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EpisodeReport {
    /// 0-based index.
    pub index: u32,
    /// The victim.
    pub victim: VictimInfo,
    /// True when cut short.
    pub partial: bool,
    /// The mrelease caller lost the race (`process_mrelease`: ESRCH).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost_race: bool,
    /// Events, ordered by time.
    pub timeline: Vec<TimelineEntry>,
    /// Latencies from the timeline.
    pub latencies: Latencies,
    /// Why a latency is missing, when the scenario explains it.
    pub no_mrelease: bool,
    /// Why "kill → mrelease done" (and the call's duration) is not
    /// measured, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrelease_not_measured: Option<String>,
    /// Why "kill → exit_mmap done" is not measured, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_mmap_not_measured: Option<String>,
    /// Every counter (kernel and userspace), in name order.
    pub counters: Vec<CounterLine>,
    /// The frozen-victim outcome, in `record --oom --frozen` runs.
    pub frozen: Option<FrozenOutcome>,
    /// What started the episode (`record --watch`).
    pub trigger: Option<String>,
    /// Memory freed and reclaim throughput per context, or why not measured.
    pub reclaim: Result<ReclaimReport, ReclaimNotMeasured>,
    /// What t = 0 is: "the kill" (reaper's, another process's or the OOM
    /// killer's), or "its exit began" (a process that exited by itself).
    pub t0: TimeZero,
}

/// What t = 0 of an episode's timeline is (`t0` in `report --json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TimeZero {
    /// A kill: reaper's, another process's, or the OOM killer's
    /// `oom:mark_victim`.
    #[serde(rename = "the kill")]
    Kill,
    /// The start of the process's own exit (nothing killed it).
    #[serde(rename = "its exit began")]
    ExitBegan,
}

impl TimeZero {
    /// The words the report prints ("ms since the kill").
    pub const fn words(self) -> &'static str {
        match self {
            Self::Kill => "the kill",
            Self::ExitBegan => "its exit began",
        }
    }
}

impl std::fmt::Display for TimeZero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.words())
    }
}

/// Why a reclaim figure (the whole report, a window's length or a rate) is
/// not measured. Written to JSON as its sentence, as before it was typed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReclaimNotMeasured {
    /// The `kmem:rss_stat` probe did not attach, in the run's words.
    #[error("{0}")]
    ProbeFailed(String),
    /// The run predates reaper's `kmem:rss_stat` tracing.
    #[error("recorded before reaper traced kmem:rss_stat")]
    BeforeRssStat,
    /// No context's end of teardown was seen.
    #[error("no end of the teardown was seen (no exit_mmap, process_mrelease or oom_reaper event)")]
    NoTeardownEnd,
    /// The window has no length to divide by.
    #[error("the window is 0 ns long")]
    EmptyWindow,
    /// The victim's window has no end.
    #[error("no exit_mmap event was seen")]
    NoExitMmap,
    /// The mrelease caller's window has no ends.
    #[error("no process_mrelease entry and return were seen")]
    NoMrelease,
    /// The oom_reaper's window has no ends.
    #[error("no oom_reaper start and finish were seen")]
    NoOomReaping,
}

impl ReclaimNotMeasured {
    /// The reasons written as a fixed sentence (every one but
    /// [`Self::ProbeFailed`], which carries the run's words).
    const FIXED: [Self; 6] = [
        Self::BeforeRssStat,
        Self::NoTeardownEnd,
        Self::EmptyWindow,
        Self::NoExitMmap,
        Self::NoMrelease,
        Self::NoOomReaping,
    ];

    /// The reason a sentence of `--json` names: a fixed reason by its
    /// sentence, otherwise the probe's failure in the run's words.
    pub fn from_sentence(sentence: String) -> Self {
        Self::FIXED
            .into_iter()
            .find(|r| r.to_string() == sentence)
            .unwrap_or(Self::ProbeFailed(sentence))
    }
}

impl Serialize for ReclaimNotMeasured {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReclaimNotMeasured {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from_sentence)
    }
}

crate::string_schema!(ReclaimNotMeasured);

/// Resident memory an episode's teardown freed, per context, and the rates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReclaimReport {
    /// The victim's resident MB (10^6 bytes) at t = 0.
    pub rss_at_start_mb: f64,
    /// One row per context that freed memory, then the whole teardown.
    pub rows: Vec<ReclaimRow>,
}

/// One context's (or the whole teardown's) reclaim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReclaimRow {
    /// The context; `None` for the whole teardown.
    pub context: Option<Context>,
    /// MB (10^6 bytes) freed.
    pub freed_mb: f64,
    /// Share of the RSS at t = 0, percent.
    pub share_percent: Option<f64>,
    /// The window the duration spans, e.g. "t = 0 → exit_mmap done".
    pub window: String,
    /// The window's length, ms; `Err` says why it is unknown.
    pub duration_ms: Result<f64, ReclaimNotMeasured>,
    /// freed / duration, MB/s; `Err` says why it is not measured.
    pub mb_per_s: Result<f64, ReclaimNotMeasured>,
}

/// One counter of an episode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterLine {
    /// Counter name.
    pub name: String,
    /// Value.
    pub value: u64,
    /// `Some` when the value is a non-zero loss.
    pub loss: Option<Loss>,
}

/// The table, or `None` when no episode carries program costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProgramCostReport {
    /// Episodes that carry costs (the medians are over these); 0 when the
    /// figures are the whole recording's (`--watch`, whose episodes
    /// overlap), one "episode" of the run's totals.
    pub episodes: usize,
    /// One row per program, the most expensive first.
    pub rows: Vec<ProgramCostRow>,
    /// Median over episodes of all programs' time, ns.
    pub total_ns_per_episode: u64,
    /// The collision logs' maps and their kernel memory
    /// (`recording.collision_maps`), printed under the table; empty when
    /// the run does not say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collision_maps: Vec<crate::MapMemory>,
}

/// One program's cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProgramCostRow {
    /// What the program probes (`fexit page_remove_rmap`), or its name.
    pub program: String,
    /// Median runs per episode (an episode where it did not run counts 0).
    pub runs_per_episode: u64,
    /// Median kernel time per episode, ns.
    pub ns_per_episode: u64,
    /// Its time over its runs, summed over the episodes: ns per run.
    pub ns_per_run: f64,
    /// Its share of all programs' time summed over the episodes, percent.
    pub share_pct: f64,
}

#[cfg(test)]
mod tests {
    use super::ReclaimNotMeasured;

    /// Every reason reads back from the sentence `--json` writes; an
    /// unknown sentence is a probe failure in the run's own words.
    #[test]
    fn reclaim_reasons_read_back_from_their_sentences() {
        // A new reason stops this match compiling until it joins `FIXED`.
        let fixed = |r: &ReclaimNotMeasured| match r {
            ReclaimNotMeasured::ProbeFailed(_) => false,
            ReclaimNotMeasured::BeforeRssStat
            | ReclaimNotMeasured::NoTeardownEnd
            | ReclaimNotMeasured::EmptyWindow
            | ReclaimNotMeasured::NoExitMmap
            | ReclaimNotMeasured::NoMrelease
            | ReclaimNotMeasured::NoOomReaping => true,
        };
        assert!(ReclaimNotMeasured::FIXED.iter().all(fixed));
        let probe = ReclaimNotMeasured::ProbeFailed("kmem:rss_stat: tracepoint not found".into());
        for reason in ReclaimNotMeasured::FIXED.into_iter().chain([probe]) {
            let json = serde_json::to_string(&reason).unwrap();
            let back: ReclaimNotMeasured = serde_json::from_str(&json).unwrap();
            assert_eq!(back, reason, "{json}");
        }
    }
}
