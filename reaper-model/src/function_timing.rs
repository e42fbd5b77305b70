//! The run file's exact per-function timing of one episode (`reaper record`
//! with fentry or kprobe pairs): times per context and function, call
//! edges, the longest calls and the order the reaper walked the VMAs in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AttachMode, ConceptId, Context, VmaOrderKind};

/// Exact per-function timing of one episode, aggregated in the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionTiming {
    /// Per context × function, calls > 0 only (an attached function with no
    /// row was not called in that context).
    pub functions: Vec<FunctionTime>,
    /// Direct probed parent → child calls (no probed function between).
    #[serde(default)]
    pub edges: Vec<CallEdge>,
    /// VMA start addresses of the per-VMA unmap function, per context.
    #[serde(default)]
    pub vma_orders: Vec<VmaOrderSeen>,
    /// Entry-probe hits per function, all tasks (the probes' overhead).
    #[serde(default)]
    pub probe_hits: BTreeMap<String, u64>,
    /// Calls that could not be timed, by reason (`fn_*`).
    #[serde(default)]
    pub losses: BTreeMap<String, u64>,
    /// Per context × function, its longest calls placed in time (bounded:
    /// see [`FunctionCalls::left_out`]); empty in runs recorded before reaper
    /// kept individual calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub longest_calls: Vec<FunctionCalls>,
    /// Walker steps and PTE-lock waits (issue 25); absent in runs recorded
    /// before reaper logged them, or when this kernel could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collisions: Option<crate::Collisions>,
}

/// The longest calls of one function in one context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionCalls {
    /// The context that made the calls.
    pub context: Context,
    /// Catalog concept id.
    pub concept: ConceptId,
    /// Kernel function.
    pub symbol: String,
    /// The kept calls, longest first.
    pub calls: Vec<FunctionCall>,
    /// Completed calls of this function in this context that are not in
    /// `calls` (shorter ones; the kernel keeps a bounded number per CPU).
    pub left_out: u64,
}

/// One call of a probed function, on the timeline's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionCall {
    /// Thread that made the call.
    pub tid: u32,
    /// Entry, ns since the kill (negative: before it), like
    /// [`TimelineEntry::t_ns`].
    pub start_ns: i64,
    /// Inclusive duration, ns.
    pub duration_ns: u64,
}

impl FunctionCall {
    /// Return, ns since the kill.
    pub fn end_ns(&self) -> i64 {
        self.start_ns
            .saturating_add(i64::try_from(self.duration_ns).unwrap_or(i64::MAX))
    }
}

/// One function in one context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionTime {
    /// The context.
    pub context: Context,
    /// Catalog concept id.
    pub concept: ConceptId,
    /// Kernel function.
    pub symbol: String,
    /// fentry or kprobe.
    pub mode: AttachMode,
    /// Completed calls.
    pub calls: u64,
    /// Inclusive time, ns.
    pub total_ns: u64,
    /// Longest call, ns.
    pub max_ns: u64,
    /// Calls per log2 bucket: index i counts durations in [2^i, 2^(i+1)) ns
    /// (index 0 also 0 ns); trailing empty buckets are cut.
    pub hist_log2_ns: Vec<u64>,
}

/// Calls of `child` made directly from `parent` in one context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallEdge {
    /// The context.
    pub context: Context,
    /// Calling probed function.
    pub parent: String,
    /// Called probed function.
    pub child: String,
    /// Calls.
    pub calls: u64,
    /// The child's inclusive time in these calls, ns.
    pub total_ns: u64,
}

/// The order in which one context's per-VMA unmap calls visited VMAs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VmaOrderSeen {
    /// The context.
    pub context: Context,
    /// The per-VMA unmap function whose argument was read.
    pub function: String,
    /// Forward, reverse, mixed or unknown (fewer than 2 calls).
    pub order: VmaOrderKind,
    /// Calls seen (VMAs unmapped).
    pub vmas: u64,
    /// First VMA start address.
    pub first: u64,
    /// Last VMA start address.
    pub last: u64,
    /// Calls at a higher address than the previous call.
    pub forward_steps: u64,
    /// Calls at a lower address than the previous call.
    pub reverse_steps: u64,
    /// The first addresses, in call order (bounded).
    #[serde(default)]
    pub addresses: Vec<u64>,
}
