//! Tracking and draining: tells the kernel side which tasks belong to which
//! context, and after an episode reads (and resets) the in-kernel aggregates,
//! the stacks they reference and the counters.

use std::collections::{BTreeMap, HashMap};

use aya::{
    Ebpf,
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues},
};
use reaper_common::{
    lock_wait::{
        LockWaitKey, LockWaitStats, MAP_LOCK_WAITS, MAP_PENDING_OPEN, MAP_PENDING_WAITS,
        MAP_SPIN_WAITS, PendingWait, PendingWaitKey, SpinWait,
    },
    loss::{COUNTER_COUNT, Counter, MAP_COUNTERS},
    rss::{MAP_RSS_FREED, MAP_RSS_LAST, RssKey, RssLast},
    sampling::{KernelStack, MAP_KERNEL_STACKS, MAP_SAMPLE_COUNTS, SampleCount, SampleKey},
    tracking::{
        MAP_SETTINGS, MAP_TRACKED_TGIDS, MAP_TRACKED_TIDS, SETTING_FOLLOW_MRELEASE, SETTING_WATCH,
        TrackedTask,
    },
};

/// Map access failures (a map missing from the object, or a syscall error).
#[derive(Debug, thiserror::Error)]
#[error("BPF map {map}: {what}")]
pub struct MapAccessError {
    pub(crate) map: &'static str,
    pub(crate) what: String,
}

pub(crate) fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> MapAccessError {
    move |err| MapAccessError {
        map,
        what: crate::model::error_chain(&err),
    }
}

pub(crate) fn map_mut<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut aya::maps::Map, MapAccessError> {
    ebpf.map_mut(name).ok_or(MapAccessError {
        map: name,
        what: "missing from the eBPF object".into(),
    })
}

/// A maker of zero values, one per possible CPU, to reset entries of the
/// per-CPU map `name` (the CPU count is read once).
pub(crate) fn per_cpu_zeros<V: aya::Pod + Copy + Default>(
    name: &'static str,
) -> Result<impl Fn() -> Result<PerCpuValues<V>, MapAccessError>, MapAccessError> {
    let failed = move |e: std::io::Error| MapAccessError {
        map: name,
        what: e.to_string(),
    };
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| failed(e))?;
    Ok(move || PerCpuValues::try_from(vec![V::default(); cpus]).map_err(failed))
}

/// Resets entry `index` of the per-CPU array `name` to zero on every CPU.
pub(crate) fn reset_per_cpu<V: aya::Pod + Copy + Default>(
    ebpf: &mut Ebpf,
    name: &'static str,
    index: u32,
) -> Result<(), MapAccessError> {
    let zeros = per_cpu_zeros::<V>(name)?()?;
    let mut map: PerCpuArray<_, V> = map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
    map.set(index, zeros, 0).map_err(map_err(name))
}

/// Attributes every thread of `tgid` to `context`.
pub fn track_tgid(ebpf: &mut Ebpf, tgid: u32, context: u32) -> Result<(), MapAccessError> {
    track_tgid_armed(ebpf, tgid, context, true)
}

/// Like [`track_tgid`]; an unarmed process counts only once the kernel arms
/// it (at `oom:mark_victim`, or when its own exit begins: `exit_group`,
/// `sched_process_exit`).
pub fn track_tgid_armed(
    ebpf: &mut Ebpf,
    tgid: u32,
    context: u32,
    armed: bool,
) -> Result<(), MapAccessError> {
    track_tgid_owned(ebpf, tgid, context, armed, 0)
}

/// Like [`track_tgid_armed`], with the owner folded into its data's tags
/// (`record --watch` follows processes owned by themselves).
pub fn track_tgid_owned(
    ebpf: &mut Ebpf,
    tgid: u32,
    context: u32,
    armed: bool,
    owner: u32,
) -> Result<(), MapAccessError> {
    let mut map: BpfHashMap<_, u32, TrackedTask> = map_mut(ebpf, MAP_TRACKED_TGIDS)?
        .try_into()
        .map_err(map_err(MAP_TRACKED_TGIDS))?;
    map.insert(
        tgid,
        TrackedTask {
            context,
            armed: u32::from(armed),
            owner,
            _pad: 0,
        },
        0,
    )
    .map_err(map_err(MAP_TRACKED_TGIDS))
}

/// Attributes thread `tid` to `context`.
pub fn track_tid(ebpf: &mut Ebpf, tid: u32, context: u32) -> Result<(), MapAccessError> {
    let mut map: BpfHashMap<_, u32, TrackedTask> = map_mut(ebpf, MAP_TRACKED_TIDS)?
        .try_into()
        .map_err(map_err(MAP_TRACKED_TIDS))?;
    map.insert(
        tid,
        TrackedTask {
            context,
            armed: 1,
            owner: 0,
            _pad: 0,
        },
        0,
    )
    .map_err(map_err(MAP_TRACKED_TIDS))
}

/// Turns the kernel side's own tracking (`record --watch`) on or off.
pub fn set_watch(ebpf: &mut Ebpf, on: bool) -> Result<(), MapAccessError> {
    set_setting(ebpf, SETTING_WATCH, on)
}

/// Turns the kernel side's tracking of every `process_mrelease` caller
/// (for the duration of its call, owned by its tgid) on or off.
pub fn set_follow_mrelease(ebpf: &mut Ebpf, on: bool) -> Result<(), MapAccessError> {
    set_setting(ebpf, SETTING_FOLLOW_MRELEASE, on)
}

fn set_setting(ebpf: &mut Ebpf, setting: u32, on: bool) -> Result<(), MapAccessError> {
    let mut map: aya::maps::Array<_, u32> = map_mut(ebpf, MAP_SETTINGS)?
        .try_into()
        .map_err(map_err(MAP_SETTINGS))?;
    map.set(setting, u32::from(on), 0)
        .map_err(map_err(MAP_SETTINGS))
}

/// Stops tracking one process or thread (watch mode episode finished).
pub fn untrack(ebpf: &mut Ebpf, tgid: u32) -> Result<(), MapAccessError> {
    for name in [MAP_TRACKED_TGIDS, MAP_TRACKED_TIDS] {
        let mut map: BpfHashMap<_, u32, TrackedTask> =
            map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
        let _ = map.remove(&tgid);
    }
    Ok(())
}

/// Stops tracking everything, and forgets the resident counters' last
/// values (the next victim's mm may reuse a finished one's hashed id).
pub fn clear_tracking(ebpf: &mut Ebpf) -> Result<(), MapAccessError> {
    for name in [MAP_TRACKED_TGIDS, MAP_TRACKED_TIDS] {
        let mut map: BpfHashMap<_, u32, TrackedTask> =
            map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
        let keys: Vec<u32> = map.keys().filter_map(Result::ok).collect();
        for key in keys {
            let _ = map.remove(&key);
        }
    }
    let mut last: BpfHashMap<_, RssKey, RssLast> = map_mut(ebpf, MAP_RSS_LAST)?
        .try_into()
        .map_err(map_err(MAP_RSS_LAST))?;
    let keys: Vec<RssKey> = last.keys().filter_map(Result::ok).collect();
    for key in keys {
        let _ = last.remove(&key);
    }
    Ok(())
}

/// What the kernel aggregated during one episode, before symbolization.
#[derive(Clone, Debug, Default)]
pub struct RawEpisode {
    /// Samples per (context, stack), summed over CPUs.
    pub samples: Vec<(SampleKey, SampleCount)>,
    /// Lock waits per (context, stack, flags), summed over CPUs.
    pub waits: Vec<(LockWaitKey, LockWaitStats)>,
    /// Instruction pointers (innermost first) of every stack referenced above.
    pub stacks: HashMap<i32, Vec<u64>>,
    /// Counters by name, summed over CPUs.
    pub counters: BTreeMap<String, u64>,
    /// Waits still open when the episode was drained (discarded).
    pub unfinished_waits: u64,
    /// Resident bytes freed per tag (`kmem:rss_stat`; negative: grew).
    pub freed: Vec<(u32, i64)>,
}

impl RawEpisode {
    /// Keeps only the data tagged with one of `owners`.
    pub fn keep_owners(&mut self, owners: &std::collections::BTreeSet<u32>) {
        let keep = |tag: u32| owners.contains(&reaper_common::tracking::tag_owner(tag));
        self.samples.retain(|(k, _)| keep(k.context));
        self.waits.retain(|(k, _)| keep(k.context));
        self.freed.retain(|(tag, _)| keep(*tag));
    }
}

/// Reads and resets the aggregates, counters and pending waits.
pub fn drain(ebpf: &mut Ebpf) -> Result<RawEpisode, MapAccessError> {
    let mut raw = RawEpisode {
        samples: drain_per_cpu_hash(ebpf, MAP_SAMPLE_COUNTS, |a: &mut SampleCount, b| {
            a.samples += b.samples;
            a.period_ns += b.period_ns;
        })?,
        waits: drain_per_cpu_hash(ebpf, MAP_LOCK_WAITS, |a: &mut LockWaitStats, b| {
            a.count += b.count;
            a.total_ns += b.total_ns;
            a.max_ns = a.max_ns.max(b.max_ns);
        })?,
        counters: drain_counters(ebpf)?,
        ..RawEpisode::default()
    };
    raw.unfinished_waits = drain_pending_waits(ebpf)?;
    raw.freed = drain_freed(ebpf)?;
    let ids: Vec<i32> = raw
        .samples
        .iter()
        .map(|(k, _)| k.stack_id)
        .chain(raw.waits.iter().map(|(k, _)| k.stack_id))
        .filter(|&id| id >= 0)
        .collect();
    let stacks: BpfHashMap<&MapData, u32, KernelStack> = ebpf
        .map(MAP_KERNEL_STACKS)
        .ok_or(MapAccessError {
            map: MAP_KERNEL_STACKS,
            what: "missing".into(),
        })?
        .try_into()
        .map_err(map_err(MAP_KERNEL_STACKS))?;
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(slot) = raw.stacks.entry(id)
            && let Ok(stack) = stacks.get(&(id as u32), 0)
        {
            slot.insert(stack.frames().to_vec());
        }
    }
    Ok(raw)
}

fn drain_per_cpu_hash<K, V>(
    ebpf: &mut Ebpf,
    name: &'static str,
    add: impl Fn(&mut V, &V),
) -> Result<Vec<(K, V)>, MapAccessError>
where
    K: aya::Pod + Copy,
    V: aya::Pod + Copy + Default,
{
    let mut map: PerCpuHashMap<_, K, V> = map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
    let mut out = Vec::new();
    for entry in map.iter() {
        let (key, per_cpu) = entry.map_err(map_err(name))?;
        let mut total = V::default();
        for value in per_cpu.iter() {
            add(&mut total, value);
        }
        out.push((key, total));
    }
    for (key, _) in &out {
        let _ = map.remove(key);
    }
    Ok(out)
}

fn drain_counters(ebpf: &mut Ebpf) -> Result<BTreeMap<String, u64>, MapAccessError> {
    let zeros = per_cpu_zeros::<u64>(MAP_COUNTERS)?;
    let mut map: PerCpuArray<_, u64> = map_mut(ebpf, MAP_COUNTERS)?
        .try_into()
        .map_err(map_err(MAP_COUNTERS))?;
    let mut counters = BTreeMap::new();
    for counter in Counter::ALL {
        let values = map
            .get(&(counter as u32), 0)
            .map_err(map_err(MAP_COUNTERS))?;
        counters.insert(counter.name().to_owned(), values.iter().sum());
        map.set(counter as u32, zeros()?, 0)
            .map_err(map_err(MAP_COUNTERS))?;
    }
    debug_assert_eq!(counters.len(), COUNTER_COUNT as usize);
    Ok(counters)
}

/// Reads and removes the freed-bytes totals (two's complement in a u64).
fn drain_freed(ebpf: &mut Ebpf) -> Result<Vec<(u32, i64)>, MapAccessError> {
    let mut map: BpfHashMap<_, u32, u64> = map_mut(ebpf, MAP_RSS_FREED)?
        .try_into()
        .map_err(map_err(MAP_RSS_FREED))?;
    let entries: Vec<(u32, u64)> = map.iter().filter_map(Result::ok).collect();
    for (tag, _) in &entries {
        let _ = map.remove(tag);
    }
    Ok(entries
        .into_iter()
        .map(|(tag, bytes)| (tag, bytes as i64))
        .collect())
}

/// Counts and removes the waits still open: the pending map's entries and
/// the CPUs' spin slots. The pending map's open count is reset with them (a
/// wait opened meanwhile then stays unclosed, counted at the next drain).
fn drain_pending_waits(ebpf: &mut Ebpf) -> Result<u64, MapAccessError> {
    let mut map: BpfHashMap<_, PendingWaitKey, PendingWait> = map_mut(ebpf, MAP_PENDING_WAITS)?
        .try_into()
        .map_err(map_err(MAP_PENDING_WAITS))?;
    let keys: Vec<PendingWaitKey> = map.keys().filter_map(Result::ok).collect();
    for key in &keys {
        let _ = map.remove(key);
    }
    let mut open: Array<_, u64> = map_mut(ebpf, MAP_PENDING_OPEN)?
        .try_into()
        .map_err(map_err(MAP_PENDING_OPEN))?;
    open.set(0, 0, 0).map_err(map_err(MAP_PENDING_OPEN))?;
    let spinning = {
        let slots: PerCpuArray<_, SpinWait> = map_mut(ebpf, MAP_SPIN_WAITS)?
            .try_into()
            .map_err(map_err(MAP_SPIN_WAITS))?;
        let values = slots.get(&0, 0).map_err(map_err(MAP_SPIN_WAITS))?;
        values.iter().filter(|slot| slot.lock != 0).count()
    };
    if spinning > 0 {
        reset_per_cpu::<SpinWait>(ebpf, MAP_SPIN_WAITS, 0)?;
    }
    Ok((keys.len() + spinning) as u64)
}
