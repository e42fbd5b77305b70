//! One episode's drained aggregates turned into the run model: per-function
//! times, call edges, VMA order, probe hits, losses and the longest calls.

use std::collections::BTreeMap;

use reaper_common::{
    context::Context,
    function_timing::{FnCounter, SLOT_COUNT, SLOT_NONE, VMA_LOG_LEN, VmaOrder},
};

use super::{drain::RawFunctionTiming, ladder::LadderReport};
use crate::model::{
    CallEdge, ConceptId, FunctionCall, FunctionCalls, FunctionTime, FunctionTiming, VmaOrderKind,
    VmaOrderSeen,
};

/// The longest calls of each (context, function), on the timeline's clock
/// (ns since the kill at `kill_ns`), with the count of calls left out.
pub fn place_calls(
    raw: &RawFunctionTiming,
    ladder: &LadderReport,
    kill_ns: u64,
) -> Vec<FunctionCalls> {
    let mut out: Vec<FunctionCalls> = raw
        .top_calls
        .iter()
        .filter_map(|(context, slot, calls)| {
            let context = Context::from_id(*context)?;
            // Programs are attached only in the ladder's slots, so the
            // kernel keeps calls of no other slot: none is dropped here.
            let f = ladder.functions.iter().find(|f| f.function.slot == *slot)?;
            let total = raw
                .stats
                .iter()
                .find(|(c, s, _)| *c == context.id() && s == slot)
                .map_or(0, |(_, _, s)| s.calls);
            Some(FunctionCalls {
                context,
                concept: f.function.concept,
                symbol: f.function.symbol.clone(),
                calls: calls
                    .iter()
                    .map(|c| FunctionCall {
                        tid: c.tid,
                        start_ns: since(c.start_ns, kill_ns),
                        duration_ns: c.duration_ns,
                    })
                    .collect(),
                left_out: total.saturating_sub(calls.len() as u64),
            })
        })
        .collect();
    out.sort_by(|a, b| (a.context.name(), &a.symbol).cmp(&(b.context.name(), &b.symbol)));
    out
}

/// `t - origin` as signed ns.
pub(super) fn since(t: u64, origin: u64) -> i64 {
    i64::try_from(i128::from(t) - i128::from(origin)).unwrap_or(i64::MIN)
}

/// Classifies a VMA order from its step counts.
pub fn classify(order: &VmaOrder) -> VmaOrderKind {
    match (order.count, order.forward_steps, order.reverse_steps) {
        (0 | 1, _, _) => VmaOrderKind::Unknown,
        (_, f, 0) if f > 0 => VmaOrderKind::Forward,
        (_, 0, r) if r > 0 => VmaOrderKind::Reverse,
        (_, 0, 0) => VmaOrderKind::Unknown,
        _ => VmaOrderKind::Mixed,
    }
}

/// Turns one episode's raw aggregates into the run model.
pub fn to_model(raw: &RawFunctionTiming, ladder: &LadderReport) -> FunctionTiming {
    let by_slot = |slot: u32| ladder.functions.iter().find(|f| f.function.slot == slot);
    let name_of = |slot: u32| {
        by_slot(slot).map_or_else(|| format!("slot{slot}"), |f| f.function.symbol.clone())
    };
    // The kernel side keys by context id; ids outside the set are never
    // written (the tracking maps hold only known ids), so none is dropped.
    let mut functions: Vec<FunctionTime> = raw
        .stats
        .iter()
        .filter_map(|(context, slot, s)| {
            // As in `place_calls`: only the ladder's slots are counted.
            let f = by_slot(*slot)?;
            let last = s.hist.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
            Some(FunctionTime {
                context: Context::from_id(*context)?,
                concept: f.function.concept,
                symbol: f.function.symbol.clone(),
                mode: f.mode,
                calls: s.calls,
                total_ns: s.total_ns,
                max_ns: s.max_ns,
                hist_log2_ns: s.hist[..last].to_vec(),
            })
        })
        .collect();
    // By context name, as run files have always been ordered.
    functions.sort_by(|a, b| (a.context.name(), b.total_ns).cmp(&(b.context.name(), a.total_ns)));
    let edges = raw
        .edges
        .iter()
        .filter_map(|(context, parent, child, e)| {
            Some(CallEdge {
                context: Context::from_id(*context)?,
                parent: name_of(*parent),
                child: name_of(*child),
                calls: e.calls,
                total_ns: e.total_ns,
            })
        })
        .collect();
    let per_vma = ladder
        .functions
        .iter()
        .find(|f| f.function.concept == ConceptId::PerVmaUnmap)
        .map_or_else(String::new, |f| f.function.symbol.clone());
    let vma_orders = raw
        .orders
        .iter()
        .filter_map(|(context, o)| {
            Some(VmaOrderSeen {
                context: Context::from_id(*context)?,
                function: per_vma.clone(),
                order: classify(o),
                vmas: o.count,
                first: o.first,
                last: o.last,
                forward_steps: o.forward_steps,
                reverse_steps: o.reverse_steps,
                addresses: o.log[..(o.count as usize).min(VMA_LOG_LEN)].to_vec(),
            })
        })
        .collect();
    let probe_hits = raw
        .hits
        .iter()
        .enumerate()
        .filter_map(|(slot, &hits)| {
            by_slot(slot as u32)
                .filter(|f| f.mode != crate::model::AttachMode::None)
                .map(|f| (f.function.symbol.clone(), hits))
        })
        .collect();
    let mut losses: BTreeMap<String, u64> = FnCounter::ALL
        .iter()
        .map(|c| {
            (
                c.name().to_owned(),
                raw.counters.get(*c as usize).copied().unwrap_or(0),
            )
        })
        .collect();
    losses.insert("fn_stacks_open_at_drain".into(), raw.open_stacks);
    FunctionTiming {
        functions,
        edges,
        vma_orders,
        probe_hits,
        losses,
        longest_calls: Vec::new(),
        collisions: None,
    }
}

/// Whether a slot is real (not [`SLOT_NONE`]).
pub fn is_slot(slot: u32) -> bool {
    slot != SLOT_NONE && slot < SLOT_COUNT
}
