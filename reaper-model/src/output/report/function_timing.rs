//! Exact function timing as part of the derived report: the reaper's VMA
//! order, the per-context exact tables, the latency histograms, the probes'
//! hit counts and the calls that could not be timed.
//!
//! Built once from a run by reaper-cli's `report::function_timing::build`;
//! its text renderer prints it (order line under the header, section before
//! the "Not measured" list) and `--json` serializes it. Nothing here is text
//! to be parsed: numbers in the unit their field name says, contexts as
//! [`Context`] (serialized by machine name, read back by
//! [`Context`]'s own decoder).

use reaper_common::context::{CONTEXT_NAMES, Context};
use serde::{Deserialize, Serialize, Serializer};

use crate::{AttachMode, ConceptId, ProbeCost, VmaOrderKind};

/// Serializes a context by its stable machine name ("mrelease_caller").
fn context_name<S: Serializer>(context: &Context, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(context.name())
}

/// The schema of a context as serialized: one of the machine names.
fn context_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Context machine name.",
        "type": "string",
        "enum": CONTEXT_NAMES,
    })
}

/// Everything the function probes measured in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionTimingReport {
    /// The reaper's VMA order (the "reaper order:" header line).
    pub order: ReaperOrder,
    /// Why no episode has function timing; `None` when any episode has it.
    pub not_measured: Option<String>,
    /// One entry per episode, in episode order; empty when `not_measured`.
    pub episodes: Vec<EpisodeTiming>,
}

/// In which order the reaper side (mrelease caller, else oom_reaper) walked
/// the victim's VMAs, over the run's episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReaperOrder {
    /// No episode showed the reaper's per-VMA unmap calls.
    Unknown {
        /// Why not.
        why: OrderUnknown,
    },
    /// Every episode that showed the order agrees.
    Same {
        /// Forward, reverse, mixed or unknown (fewer than 2 calls).
        order: VmaOrderKind,
        /// Episodes that showed the order.
        seen_in: usize,
        /// Episodes in the run.
        episodes: usize,
        /// The first episode's evidence.
        evidence: OrderEvidence,
    },
    /// Episodes disagree.
    Differs {
        /// Each order seen and in how many episodes, by first appearance.
        counts: Vec<OrderCount>,
        /// The first episode's evidence.
        evidence: OrderEvidence,
    },
}

/// Why the reaper order is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderUnknown {
    /// No episode has function timing (no fentry or kprobe attached).
    NoFunctionProbes,
    /// Function timing ran, but the reaper's per-VMA unmap was not seen: it
    /// did no work, or the function did not attach.
    ReaperUnmapNotSeen,
}

/// The calls an order was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderEvidence {
    /// Calls seen (VMAs unmapped).
    pub vmas: u64,
    /// First VMA start address.
    pub first: u64,
    /// Last VMA start address.
    pub last: u64,
    /// The per-VMA unmap function whose argument was read.
    pub function: String,
    /// The context that made the calls.
    #[serde(serialize_with = "context_name")]
    #[schemars(schema_with = "context_schema")]
    pub context: Context,
}

/// How many episodes showed one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderCount {
    /// "forward", "reverse", "mixed" or "unknown".
    pub order: VmaOrderKind,
    /// Episodes.
    pub episodes: usize,
}

/// One episode's function timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EpisodeTiming {
    /// 0-based episode index.
    pub index: u32,
    /// What the probes measured; `None`: nothing recorded in this episode.
    pub exact: Option<EpisodeExact>,
}

/// The measured parts of one episode's function timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EpisodeExact {
    /// One "Exact period (ms)" table per context, in recorded order.
    pub tables: Vec<ExactTable>,
    /// Latency histograms of the PTE-lock and per-VMA unmap functions.
    pub histograms: Vec<Histogram>,
    /// Entry-probe hits per function, all tasks, by symbol.
    pub probe_hits: Vec<ProbeHits>,
    /// Calls that could not be timed, by reason; only non-zero reasons.
    pub calls_not_timed: Vec<CallsNotTimed>,
    /// The probes' estimated share of the exact periods.
    pub probe_overhead: Option<ProbeOverhead>,
}

/// What the function probes add to one episode's exact periods: an
/// estimate from the calibrated cost of one timed call per attach mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeOverhead {
    /// The calibration this estimate uses, per attach mode.
    pub costs: Vec<ProbeCost>,
    /// Why there is no calibration, when `costs` is empty.
    pub not_calibrated: Option<String>,
    /// One row per exact period whose mode has a calibrated cost.
    pub rows: Vec<CorrectedPeriod>,
    /// The episode's tracked samples.
    pub samples: u64,
    /// Their summed periods, ns: the cpu-clock count between samples, or
    /// `None` for a run recorded before periods were counted.
    pub samples_counted_ns: Option<u64>,
    /// Samples × the nominal period, ns: what the periods sum to when no
    /// timer expiry comes late (larger gaps mean skipped periods).
    pub samples_nominal_ns: u64,
}

/// One exact period with its estimated probe overhead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CorrectedPeriod {
    /// The context of the calls.
    #[serde(serialize_with = "context_name")]
    #[schemars(schema_with = "context_schema")]
    pub context: Context,
    /// Kernel function.
    pub symbol: String,
    /// Attach mode of the function's own probes.
    pub mode: AttachMode,
    /// Sampled inclusive period, ns (`None`: the context was not profiled).
    pub sampled_period_ns: Option<u64>,
    /// The exact (inclusive) period, ns.
    pub exact_ns: u64,
    /// Timed calls made inside the function's calls (all depths), plus half
    /// of its own calls for its own probes' share.
    pub probe_hits: f64,
    /// Estimated probe time inside the period, ns.
    pub overhead_ns: f64,
    /// `exact_ns - overhead_ns`; `None` when the estimated probe time
    /// reaches the whole period (a function shorter than its probes: no
    /// estimate, rather than a made-up 0).
    pub corrected_ns: Option<f64>,
    /// Sampled period of reaper's probe frames (`[reaper probe: …]`) under
    /// the function, ns: the probes' on-CPU cost there, measured in situ
    /// (`None`: the context was not profiled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_probe_ns: Option<u64>,
    /// `sampled_period_ns - sampled_probe_ns`: the sampled period without
    /// the probes, what `corrected_ns` compares with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_without_probes_ns: Option<u64>,
}

impl CorrectedPeriod {
    /// `corrected_ns / sampled_without_probes_ns`: how far exact minus the
    /// probes is from the sampled period without them (1.0 = agreement).
    pub fn ratio(&self) -> Option<f64> {
        let sampled = self.sampled_without_probes_ns.filter(|&ns| ns > 0)?;
        Some(self.corrected_ns? / sampled as f64)
    }

    /// The exact period minus the probes' sampled frames under it: the
    /// correction with the probes' cost measured in situ rather than
    /// calibrated in a loop. `None` when the frames reach the whole exact
    /// period: part of a probe's work lies outside the timestamps it takes,
    /// so for a function shorter than its probes (a per-page leaf) the
    /// subtraction has no meaning.
    pub fn corrected_in_situ_ns(&self) -> Option<f64> {
        let frames = self.sampled_probe_ns? as f64;
        let exact = self.exact_ns as f64;
        (frames < exact).then_some(exact - frames)
    }

    /// `corrected_in_situ_ns / sampled_without_probes_ns`.
    pub fn ratio_in_situ(&self) -> Option<f64> {
        let sampled = self.sampled_without_probes_ns.filter(|&ns| ns > 0)?;
        Some(self.corrected_in_situ_ns()? / sampled as f64)
    }

    /// The probes' sampled cost per probe hit, ns (in situ, on-CPU).
    pub fn sampled_per_hit_ns(&self) -> Option<f64> {
        (self.probe_hits >= 1.0).then_some(self.sampled_probe_ns? as f64 / self.probe_hits)
    }
}

/// The exact table of one context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExactTable {
    /// The context.
    #[serde(serialize_with = "context_name")]
    #[schemars(schema_with = "context_schema")]
    pub context: Context,
    /// One row per timed function, in recorded order.
    pub rows: Vec<ExactRow>,
}

/// One function of an exact table. A new column is a new field here and one
/// entry in the text renderer's column list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExactRow {
    /// Kernel function.
    pub symbol: String,
    /// Catalog concept id.
    pub concept: ConceptId,
    /// How it was probed: "fentry" or "kprobe".
    pub mode: AttachMode,
    /// Sampled inclusive period of the function in this context, ns;
    /// `None` when the episode has no samples of the context.
    pub sampled_period_ns: Option<u64>,
    /// Inclusive time measured by the probes, ns.
    pub exact_period_ns: u64,
    /// Completed calls.
    pub calls: u64,
    /// Mean call, ns (integer division; 0 when no calls).
    pub mean_ns: u64,
    /// Longest call, ns.
    pub max_ns: u64,
}

/// A log2 latency histogram of one function in one context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Histogram {
    /// The context.
    #[serde(serialize_with = "context_name")]
    #[schemars(schema_with = "context_schema")]
    pub context: Context,
    /// Kernel function.
    pub symbol: String,
    /// Catalog concept id.
    pub concept: ConceptId,
    /// "fentry" or "kprobe".
    pub mode: AttachMode,
    /// Completed calls.
    pub calls: u64,
    /// Buckets from the first non-empty one to the last recorded one.
    pub buckets: Vec<Bucket>,
}

/// Calls whose duration fell in `[low_ns, high_ns]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Bucket {
    /// Lowest duration, ns (0 for the first bucket).
    pub low_ns: u64,
    /// Highest duration, ns.
    pub high_ns: u64,
    /// Calls.
    pub count: u64,
}

/// Entry-probe hits of one function, all tasks (the probes' overhead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeHits {
    /// Kernel function.
    pub symbol: String,
    /// Entries seen.
    pub hits: u64,
}

/// Calls that could not be timed for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallsNotTimed {
    /// The loss counter (`fn_*`).
    pub reason: String,
    /// Calls.
    pub calls: u64,
}
