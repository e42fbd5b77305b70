//! Issue 25's per-episode logs, userspace side: how the recording set them
//! up ([`setup`]), their drain ([`drain`]) and the run model built from
//! them ([`to_model`]). See `reaper_common::collision`.

use aya::{
    Ebpf,
    maps::{Array, HashMap, PerCpuArray},
};
use reaper_common::{
    collision::{
        LastTaker, MAP_PTE_LAST_TAKER, MAP_PTE_OPEN_WAITS, MAP_PTE_WAIT_LOG, MAP_RT_PTE_WAITS,
        MAP_WALKER_LOG, OpenWait, PteWait, TAKER_UNTRACKED, WAIT_OPEN, WaitLog, WalkerLog,
    },
    context::{CONTEXT_COUNT, Context},
    function_timing::{CollisionConfig, MAX_NESTING, SLOT_NONE},
    lock_wait::PendingWaitKey,
};

use super::{ladder::LadderReport, model::since, rt_owner::RtOwners};
use crate::model::{
    AttachMode, Collisions, ConceptId, PteHolderSetup, PteWaitSeen, TakerSeen, WalkerStepSeen,
    WalkerSteps,
};
use crate::probes::collect::{MapAccessError, map_err, map_mut, per_cpu_zeros};

/// One episode's logs as the kernel left them.
#[derive(Clone, Debug, Default)]
pub struct RawCollisions {
    /// Per context id with any step, its log.
    pub walkers: Vec<(u32, WalkerLog)>,
    /// Per CPU, its wait log.
    pub waits: Vec<WaitLog>,
    /// PREEMPT_RT waits still open when the episode was drained.
    pub open_rt: Vec<PteWait>,
}

/// Why nothing was logged under `record --no-collision-log`.
pub const LOGS_OFF: &str = "off (record --no-collision-log): the lock path is timed, but no walker \
     step or PTE-lock wait is logged";

/// [`setup`], or the logs switched off by `record --no-collision-log`.
pub fn setup_for(
    log: super::CollisionLog,
    config: &CollisionConfig,
    ladder: &LadderReport,
    rt: &RtOwners,
) -> PteHolderSetup {
    match log {
        super::CollisionLog::On => setup(config, ladder, rt),
        super::CollisionLog::Off => PteHolderSetup {
            waits_off: Some(LOGS_OFF.to_owned()),
            last_taker_off: Some(LOGS_OFF.to_owned()),
            third_party: false,
            rt_owner: false,
        },
    }
}

/// How the walker log, the wait log and last takers were set up on this
/// kernel, from the loader globals and what the ladder attached.
pub fn setup(config: &CollisionConfig, ladder: &LadderReport, rt: &RtOwners) -> PteHolderSetup {
    let rt_on = matches!(rt, RtOwners::On(_));
    let waits_off = waits_off(config, ladder, rt);
    let last_taker_off = match mode(ladder, config.pte_slot) {
        // PREEMPT_RT: the owner, read from the lock, names the holder.
        _ if rt_on => None,
        None => Some(
            "the PTE lock is taken inline on this kernel (pte_offset_map_lock is a macro \
             before 6.5), so its takers cannot be observed"
                .to_owned(),
        ),
        Some((_, AttachMode::Fentry)) => None,
        Some((symbol, AttachMode::Kprobe)) => Some(format!(
            "{symbol} is probed with a kretprobe, which cannot read the lock it returns"
        )),
        Some((symbol, _)) => Some(refused(ladder, symbol)),
    };
    PteHolderSetup {
        rt_owner: rt_on && waits_off.is_none(),
        waits_off,
        last_taker_off,
        third_party: config.third_party != 0,
    }
}

/// Why no PTE-lock wait was logged, or `None`.
fn waits_off(config: &CollisionConfig, ladder: &LadderReport, rt: &RtOwners) -> Option<String> {
    // PREEMPT_RT: the lock tracepoints log the waits (with the owner), so
    // only the walker step's probe is needed here.
    let rt_on = matches!(rt, RtOwners::On(_));
    let needed: &[u32] = if rt_on {
        &[config.walker_slot]
    } else {
        &[config.walker_slot, config.wait_slot, config.pte_caller_slot]
    };
    if let Some(why) = &ladder.disabled {
        Some(why.clone())
    } else if let Some(why) = slow_path_left_to_sampling(ladder) {
        Some(why)
    } else if config.walker_slot == SLOT_NONE {
        Some("no per-VMA zap function whose range reaper can read on this kernel".to_owned())
    } else if let RtOwners::Refused(why) = rt {
        Some(format!("PREEMPT_RT lock owners not readable: {why}"))
    } else if config.wait_slot == SLOT_NONE && !rt_on {
        Some("the spin slow path is not timed on this kernel".to_owned())
    } else {
        needed.iter().find_map(|&slot| match mode(ladder, slot) {
            Some((_, AttachMode::Fentry | AttachMode::Kprobe)) => None,
            Some((symbol, _)) => Some(refused(ladder, symbol)),
            None => Some(format!("no function probe in slot {slot}")),
        })
    }
}

/// The function in `slot` and how it attached.
fn mode(ladder: &LadderReport, slot: u32) -> Option<(&str, AttachMode)> {
    ladder
        .functions
        .iter()
        .find(|f| f.function.slot == slot)
        .map(|f| (f.function.symbol.as_str(), f.mode))
}

/// "no function probe attached to F (the kernel's answer)".
fn refused(ladder: &LadderReport, symbol: &str) -> String {
    let answer = ladder
        .functions
        .iter()
        .find(|f| f.function.symbol == symbol)
        .map(|f| f.status.to_string())
        .filter(|s| !s.is_empty());
    match answer {
        Some(answer) => format!("no function probe attached to {symbol} ({answer})"),
        None => format!("no function probe attached to {symbol}"),
    }
}

/// Why the waits and steps were not logged when the spin slow path was
/// left to sampling (the default; `record --exact-locks` times it).
fn slow_path_left_to_sampling(ladder: &LadderReport) -> Option<String> {
    ladder
        .skipped
        .iter()
        .any(|(concept, outcome)| *concept == ConceptId::SpinSlowpath && outcome.is_not_timed())
        .then(|| {
            "the spin slow path is left to sampling by default; record --exact-locks logs \
             each PTE-lock wait with its holder and the walkers' steps"
                .to_owned()
        })
}

/// Reads and resets the logs, and forgets every last taker: the next
/// episode's victim has new page tables, whose locks may reuse addresses.
pub fn drain(ebpf: &mut Ebpf) -> Result<RawCollisions, MapAccessError> {
    let mut raw = RawCollisions::default();
    {
        let name = MAP_WALKER_LOG;
        let mut logs: Array<_, WalkerLog> =
            map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
        // A map nothing writes was shrunk to one entry before loading
        // (`probes::collision_maps`): read only the entries it has.
        for context in 0..CONTEXT_COUNT.min(logs.len()) {
            let log = logs.get(&context, 0).map_err(map_err(name))?;
            if log.count > 0 {
                raw.walkers.push((context, log));
                logs.set(context, WalkerLog::default(), 0)
                    .map_err(map_err(name))?;
            }
        }
    }
    {
        let name = MAP_PTE_WAIT_LOG;
        let zeros = per_cpu_zeros::<WaitLog>(name)?;
        let mut logs: PerCpuArray<_, WaitLog> =
            map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
        let values = logs.get(&0, 0).map_err(map_err(name))?;
        raw.waits = values.iter().filter(|l| l.count > 0).copied().collect();
        if !raw.waits.is_empty() {
            logs.set(0, zeros()?, 0).map_err(map_err(name))?;
        }
    }
    {
        let name = MAP_PTE_OPEN_WAITS;
        let zeros = per_cpu_zeros::<OpenWait>(name)?;
        let mut open: PerCpuArray<_, OpenWait> =
            map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
        for depth in 0..(MAX_NESTING as u32).min(open.len()) {
            open.set(depth, zeros()?, 0).map_err(map_err(name))?;
        }
    }
    {
        let name = MAP_RT_PTE_WAITS;
        let mut open: HashMap<_, PendingWaitKey, PteWait> =
            map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
        let keys: Vec<PendingWaitKey> = open.keys().filter_map(Result::ok).collect();
        for key in keys {
            if let Ok(wait) = open.get(&key, 0) {
                raw.open_rt.push(wait);
            }
            let _ = open.remove(&key);
        }
    }
    let name = MAP_PTE_LAST_TAKER;
    let mut takers: HashMap<_, u64, LastTaker> =
        map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
    let locks: Vec<u64> = takers.keys().filter_map(Result::ok).collect();
    for lock in locks {
        let _ = takers.remove(&lock);
    }
    Ok(raw)
}

/// The run model of one episode's logs, times relative to the kill at
/// `kill_ns`; `walker_function` names the step function.
pub fn to_model(raw: &RawCollisions, walker_function: &str, kill_ns: u64) -> Collisions {
    let walkers = raw
        .walkers
        .iter()
        .filter_map(|(context, log)| {
            Some(WalkerSteps {
                context: Context::from_id(*context)?,
                function: walker_function.to_owned(),
                steps: log
                    .kept()
                    .iter()
                    .map(|s| WalkerStepSeen {
                        range_start: s.start,
                        range_end: s.end,
                        tid: s.tid,
                        enter_ns: since(s.enter_ns, kill_ns),
                        exit_ns: (s.exit_ns != 0).then(|| since(s.exit_ns, kill_ns)),
                    })
                    .collect(),
                lost: log.lost(),
            })
        })
        .collect();
    let mut waits: Vec<PteWaitSeen> = raw
        .waits
        .iter()
        .flat_map(WaitLog::kept)
        .chain(&raw.open_rt)
        .filter_map(|w| {
            Some(PteWaitSeen {
                context: Context::from_id(w.context)?,
                tid: w.tid,
                lock: w.lock,
                start_ns: since(w.start_ns, kill_ns),
                duration_ns: (w.duration_ns != WAIT_OPEN).then_some(w.duration_ns),
                taker: (w.found != 0).then(|| taker(&w.holder, kill_ns)),
            })
        })
        .collect();
    waits.sort_by_key(|w| (w.start_ns, w.tid));
    Collisions {
        walkers,
        waits,
        waits_lost: raw.waits.iter().map(WaitLog::lost).sum(),
    }
}

/// A last taker as the run file holds it.
fn taker(t: &LastTaker, kill_ns: u64) -> TakerSeen {
    let len = t.comm.iter().position(|&b| b == 0).unwrap_or(t.comm.len());
    TakerSeen {
        context: (t.context != TAKER_UNTRACKED)
            .then(|| Context::from_id(t.context))
            .flatten(),
        tid: t.tid,
        comm: String::from_utf8_lossy(&t.comm[..len]).into_owned(),
        addr: t.addr,
        taken_ns: since(t.taken_ns, kill_ns),
    }
}
