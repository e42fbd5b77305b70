//! Reads and resets the in-kernel function-timing aggregates of one
//! episode (stats, edges, hits, loss counters, VMA order, longest calls).

use aya::{
    Ebpf,
    maps::{Array, PerCpuArray},
};
use reaper_common::{
    context::CONTEXT_COUNT,
    function_timing::{
        CallRecord, EdgeStats, EntryStack, FN_COUNTER_COUNT, FN_EDGES_ENTRIES, FN_STATS_ENTRIES,
        FN_TOP_CALLS_ENTRIES, FunctionStats, MAP_FN_COUNTERS, MAP_FN_EDGES, MAP_FN_ENTRY_STACKS,
        MAP_FN_HITS, MAP_FN_STATS, MAP_FN_TOP_CALLS, MAP_FN_VMA_ORDER, SLOT_COUNT, TOP_CALLS,
        TopCalls, VmaOrder,
    },
};

use crate::probes::collect::MapAccessError;
use crate::probes::collect::{map_err, map_mut, per_cpu_zeros};

/// What the kernel aggregated for function timing during one episode.
#[derive(Clone, Debug, Default)]
pub struct RawFunctionTiming {
    /// (context, slot) → stats, summed over CPUs.
    pub stats: Vec<(u32, u32, FunctionStats)>,
    /// (context, parent slot, child slot) → edge, summed over CPUs.
    pub edges: Vec<(u32, u32, u32, EdgeStats)>,
    /// Entry hits per slot.
    pub hits: Vec<u64>,
    /// Loss counters by `FnCounter` index.
    pub counters: Vec<u64>,
    /// Per-context VMA order.
    pub orders: Vec<(u32, VmaOrder)>,
    /// Tasks whose entry stack was still open at the drain.
    pub open_stacks: u64,
    /// (context, slot) → its longest calls over all CPUs, longest first
    /// (at most [`TOP_CALLS`]).
    pub top_calls: Vec<(u32, u32, Vec<CallRecord>)>,
}

fn drain_per_cpu<V>(
    ebpf: &mut Ebpf,
    name: &'static str,
    entries: u32,
    merge: impl Fn(&mut V, &V),
    is_zero: impl Fn(&V) -> bool,
) -> Result<Vec<(u32, V)>, MapAccessError>
where
    V: aya::Pod + Copy + Default,
{
    let zeros = per_cpu_zeros::<V>(name)?;
    let mut map: PerCpuArray<_, V> = map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
    let mut out = Vec::new();
    for index in 0..entries {
        let values = map.get(&index, 0).map_err(map_err(name))?;
        let mut total = V::default();
        for v in values.iter() {
            merge(&mut total, v);
        }
        if !is_zero(&total) {
            map.set(index, zeros()?, 0).map_err(map_err(name))?;
            out.push((index, total));
        }
    }
    Ok(out)
}

/// Reads and resets every function-timing map.
pub fn drain(ebpf: &mut Ebpf) -> Result<RawFunctionTiming, MapAccessError> {
    let stats = drain_per_cpu(
        ebpf,
        MAP_FN_STATS,
        FN_STATS_ENTRIES,
        FunctionStats::merge,
        |s| s.calls == 0,
    )?;
    let edges = drain_per_cpu(
        ebpf,
        MAP_FN_EDGES,
        FN_EDGES_ENTRIES,
        |a: &mut EdgeStats, b| {
            a.calls += b.calls;
            a.total_ns += b.total_ns;
        },
        |e| e.calls == 0,
    )?;
    let hits = drain_per_cpu(
        ebpf,
        MAP_FN_HITS,
        SLOT_COUNT,
        |a: &mut u64, b| *a += b,
        |v| *v == 0,
    )?;
    let counters = drain_per_cpu(
        ebpf,
        MAP_FN_COUNTERS,
        FN_COUNTER_COUNT,
        |a: &mut u64, b| *a += b,
        |v| *v == 0,
    )?;
    let mut raw = RawFunctionTiming {
        stats: stats
            .into_iter()
            .map(|(i, s)| (i / SLOT_COUNT, i % SLOT_COUNT, s))
            .collect(),
        edges: edges
            .into_iter()
            .map(|(i, e)| {
                let child = i % SLOT_COUNT;
                let parent = (i / SLOT_COUNT) % SLOT_COUNT;
                (i / (SLOT_COUNT * SLOT_COUNT), parent, child, e)
            })
            .collect(),
        hits: vec![0; SLOT_COUNT as usize],
        counters: vec![0; FN_COUNTER_COUNT as usize],
        ..RawFunctionTiming::default()
    };
    for (i, v) in hits {
        raw.hits[i as usize] = v;
    }
    for (i, v) in counters {
        raw.counters[i as usize] = v;
    }
    {
        let mut orders: Array<_, VmaOrder> = map_mut(ebpf, MAP_FN_VMA_ORDER)?
            .try_into()
            .map_err(map_err(MAP_FN_VMA_ORDER))?;
        for context in 0..CONTEXT_COUNT {
            let order = orders.get(&context, 0).map_err(map_err(MAP_FN_VMA_ORDER))?;
            if order.count > 0 {
                raw.orders.push((context, order));
                orders
                    .set(context, VmaOrder::default(), 0)
                    .map_err(map_err(MAP_FN_VMA_ORDER))?;
            }
        }
    }
    raw.top_calls = drain_top_calls(ebpf)?;
    let mut stacks: aya::maps::HashMap<_, u32, EntryStack> = map_mut(ebpf, MAP_FN_ENTRY_STACKS)?
        .try_into()
        .map_err(map_err(MAP_FN_ENTRY_STACKS))?;
    let tids: Vec<u32> = stacks.keys().filter_map(Result::ok).collect();
    for tid in &tids {
        if let Ok(stack) = stacks.get(tid, 0) {
            raw.open_stacks += u64::from(stack.depth > 0);
        }
        let _ = stacks.remove(tid);
    }
    Ok(raw)
}

/// Reads and resets the per-CPU longest calls, merged per (context, slot).
fn drain_top_calls(ebpf: &mut Ebpf) -> Result<Vec<(u32, u32, Vec<CallRecord>)>, MapAccessError> {
    let name = MAP_FN_TOP_CALLS;
    let zeros = per_cpu_zeros::<TopCalls>(name)?;
    let mut map: PerCpuArray<_, TopCalls> =
        map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
    let mut out = Vec::new();
    for index in 0..FN_TOP_CALLS_ENTRIES {
        let values = map.get(&index, 0).map_err(map_err(name))?;
        let per_cpu: Vec<TopCalls> = values.iter().copied().collect();
        let calls = merge_top_calls(&per_cpu);
        if calls.is_empty() {
            continue;
        }
        map.set(index, zeros()?, 0).map_err(map_err(name))?;
        out.push((index / SLOT_COUNT, index % SLOT_COUNT, calls));
    }
    Ok(out)
}

/// The [`TOP_CALLS`] longest of every CPU's kept calls, longest first (ties:
/// earlier start first).
pub fn merge_top_calls(per_cpu: &[TopCalls]) -> Vec<CallRecord> {
    let mut calls: Vec<CallRecord> = per_cpu.iter().flat_map(|t| t.kept()).copied().collect();
    calls.sort_by(|a, b| {
        b.duration_ns
            .cmp(&a.duration_ns)
            .then(a.start_ns.cmp(&b.start_ns))
    });
    calls.truncate(TOP_CALLS);
    calls
}
