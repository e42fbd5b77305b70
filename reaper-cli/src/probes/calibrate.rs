//! Per-hit cost of the function-timing probes on the kernel at hand.
//!
//! A calibration loop calls a cheap syscall (`getppid`) in batches, first
//! unprobed, then with one spare slot's entry + exit programs attached to
//! the syscall's entry function, from a thread tracked like a teardown task
//! (so the programs take the same path as inside a teardown). The fastest
//! batch of each side, divided by its calls, gives ns per call; the
//! difference is what one timed call (one entry and one exit hit) costs.
//! The whole calibration takes a few milliseconds on hardware (tens under
//! software emulation). Afterwards the slot's aggregates are zeroed, the
//! thread untracked and the sample and lock-wait aggregates drained, so no
//! episode sees the loop.
//!
//! Entry and exit are measured as a pair: an entry probe alone leaves its
//! call open, and the programs then take their overflow path, not the one a
//! teardown takes.

use crate::probes::collect::reset_per_cpu;
use std::time::Instant;

use aya::{Ebpf, maps::HashMap as BpfHashMap};
use reaper_common::{
    context::CONTEXT_MRELEASE_CALLER,
    function_timing::{
        EntryStack, FunctionStats, MAP_FN_ENTRY_STACKS, MAP_FN_HITS, MAP_FN_STATS,
        MAP_FN_TOP_CALLS, SLOT_COUNT, TopCalls,
    },
    tracking::{MAP_TRACKED_TIDS, TrackedTask},
};

use crate::{
    model::{NotMeasured, NotMeasuredSubject, ProbeCost},
    probes::{
        btf::KernelBtf,
        function_probe::{self, AttachError},
        function_timing::{AttachPolicy, LadderReport},
        kernel_btf::FentryBtf,
        refusal::Step,
    },
};

/// The context the calibrating thread is tracked as (any tracked context
/// takes the same path; this one has a thread of reaper's own).
const CALIBRATION_CONTEXT: u32 = CONTEXT_MRELEASE_CALLER;
/// Batches per side; the fastest counts.
const BATCHES: u32 = 5;
/// Aim of one batch's length, so the whole loop stays a few milliseconds.
const BATCH_TARGET_NS: u64 = 1_000_000;
/// Bounds of a batch's call count.
const MIN_CALLS: u64 = 200;
const MAX_CALLS: u64 = 20_000;

/// The attach modes a timed call can use (entry + exit programs).
pub use super::function_probe::Pair as Mode;

/// The functions that may run `getppid`, tried in order: the arch's
/// syscall wrapper (a kprobe takes it; for fentry it is often an alias with
/// no BTF entry of its own, e.g. Debian 6.1), the body the wrapper aliases
/// (`__do_sys_*`, in BTF), and the plain name of kernels without wrappers.
pub fn syscall_candidates() -> &'static [&'static str] {
    if cfg!(target_arch = "aarch64") {
        &["__arm64_sys_getppid", "__do_sys_getppid", "sys_getppid"]
    } else {
        &["__x64_sys_getppid", "__do_sys_getppid", "sys_getppid"]
    }
}

/// The slot calibration uses: the last one, when the plan left it free.
pub fn spare_slot(used_slots: usize) -> Option<usize> {
    (used_slots < SLOT_COUNT as usize).then_some(SLOT_COUNT as usize - 1)
}

fn getppid() {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getppid) };
}

/// ns per call of the fastest of `BATCHES` batches of `calls` calls.
fn fastest(calls: u64) -> f64 {
    (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                getppid();
            }
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Calls per batch so a batch takes about [`BATCH_TARGET_NS`].
fn batch_size() -> u64 {
    let probe = fastest(MIN_CALLS).max(1.0);
    ((BATCH_TARGET_NS as f64 / probe) as u64).clamp(MIN_CALLS, MAX_CALLS)
}

/// Why one mode could not be calibrated.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// No candidate function took the pair: each one's answer.
    #[error("{}", refusals(.0))]
    Refused(Vec<(&'static str, AttachError)>),
    /// fentry needs the kernel's BTF.
    #[error(transparent)]
    NoBtf(AttachError),
    /// A map of the object is missing.
    #[error("map {0} missing")]
    MissingMap(&'static str),
    /// A map refused a read or write.
    #[error("map {map}: {why}")]
    Map {
        /// The map.
        map: &'static str,
        /// aya's error with its causes.
        why: String,
    },
    /// A per-CPU map could not be reset.
    #[error(transparent)]
    MapAccess(#[from] crate::probes::collect::MapAccessError),
    /// The calibrating thread was tracked already.
    #[error("thread {0} is already tracked")]
    AlreadyTracked(u32),
    /// The CPU count or a per-CPU value could not be had.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// "F: fentry load: ...; kprobe attach to G: ..." (an attach refusal names
/// its function already).
fn refusals(refused: &[(&'static str, AttachError)]) -> String {
    refused
        .iter()
        .map(|(function, why)| match why.refusal() {
            Some(r) if r.step == Step::Attach => why.to_string(),
            _ => format!("{function}: {why}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Attaches `mode`'s pair of `slot` to the first candidate that takes it;
/// returns the function used, or every candidate's refusal.
fn attach(
    ebpf: &mut Ebpf,
    mode: Mode,
    slot: usize,
    btf: Option<&KernelBtf>,
) -> Result<String, CalibrationError> {
    let mut refused = Vec::new();
    for &function in syscall_candidates() {
        match function_probe::attach_pair(ebpf, mode, slot, function, btf) {
            Ok(()) => return Ok(function.to_owned()),
            Err(e @ AttachError::NoBtf) => return Err(CalibrationError::NoBtf(e)),
            Err(why) => refused.push((function, why)),
        }
    }
    Err(CalibrationError::Refused(refused))
}

fn map_error(map: &'static str) -> impl Fn(aya::maps::MapError) -> CalibrationError {
    move |e| CalibrationError::Map {
        map,
        why: crate::model::error_chain(&e),
    }
}

/// Tracks (or untracks) the calling thread as [`CALIBRATION_CONTEXT`].
fn track_self(ebpf: &mut Ebpf, tid: u32, on: bool) -> Result<(), CalibrationError> {
    let map = ebpf
        .map_mut(MAP_TRACKED_TIDS)
        .ok_or(CalibrationError::MissingMap(MAP_TRACKED_TIDS))?;
    let mut map: BpfHashMap<_, u32, TrackedTask> =
        map.try_into().map_err(map_error(MAP_TRACKED_TIDS))?;
    if on {
        if map.get(&tid, 0).is_ok() {
            return Err(CalibrationError::AlreadyTracked(tid));
        }
        let task = TrackedTask {
            context: CALIBRATION_CONTEXT,
            armed: 1,
            owner: 0,
            _pad: 0,
        };
        map.insert(tid, task, 0)
            .map_err(map_error(MAP_TRACKED_TIDS))
    } else {
        map.remove(&tid).map_err(map_error(MAP_TRACKED_TIDS))
    }
}

/// Zeroes what the loop left in `slot`'s aggregates and the thread's entry
/// stack, so the first episode starts clean.
fn scrub(ebpf: &mut Ebpf, slot: usize, tid: u32) -> Result<(), CalibrationError> {
    let stats_index = CALIBRATION_CONTEXT * SLOT_COUNT + slot as u32;
    reset_per_cpu::<FunctionStats>(ebpf, MAP_FN_STATS, stats_index)?;
    reset_per_cpu::<u64>(ebpf, MAP_FN_HITS, slot as u32)?;
    // The loop's calls are the longest the slot has seen; left in place they
    // would show up as the first episode's calls of the function attached to
    // this slot afterwards.
    reset_per_cpu::<TopCalls>(ebpf, MAP_FN_TOP_CALLS, stats_index)?;
    let map = ebpf
        .map_mut(MAP_FN_ENTRY_STACKS)
        .ok_or(CalibrationError::MissingMap(MAP_FN_ENTRY_STACKS))?;
    let mut stacks: BpfHashMap<_, u32, EntryStack> =
        map.try_into().map_err(map_error(MAP_FN_ENTRY_STACKS))?;
    let _ = stacks.remove(&tid);
    Ok(())
}

/// Measures one mode on `slot` of a loaded object. The slot's programs are
/// unloaded afterwards whatever happened.
pub fn measure(
    ebpf: &mut Ebpf,
    mode: Mode,
    slot: usize,
    btf: Option<&KernelBtf>,
) -> Result<ProbeCost, CalibrationError> {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    track_self(ebpf, tid, true)?;
    let result = (|| -> Result<ProbeCost, CalibrationError> {
        let calls = batch_size();
        let unprobed_ns = fastest(calls);
        let function = attach(ebpf, mode, slot, btf)?;
        let probed_ns = fastest(calls);
        Ok(ProbeCost {
            mode: mode.attach_mode(),
            function,
            calls_per_batch: calls,
            batches: BATCHES,
            unprobed_ns,
            probed_ns,
            per_call_ns: (probed_ns - unprobed_ns).max(0.0),
        })
    })();
    function_probe::unload_pair(ebpf, mode, slot);
    let untracked = track_self(ebpf, tid, false);
    let scrubbed = scrub(ebpf, slot, tid);
    let cost = result?;
    untracked?;
    scrubbed?;
    Ok(cost)
}

/// What could not be calibrated, as a run's `not_measured` entry.
fn not_measured(mode: Mode, why: String) -> NotMeasured {
    NotMeasured {
        subject: NotMeasuredSubject::ProbeCost(mode.attach_mode()),
        why,
    }
}

/// Calibrates `modes` on the spare slot of a loaded object; what fails is
/// returned as `not_measured`, never as a cost of 0.
pub fn calibrate(
    ebpf: &mut Ebpf,
    modes: &[Mode],
    used_slots: usize,
    btf: &FentryBtf,
) -> (Vec<ProbeCost>, Vec<NotMeasured>) {
    let mut costs = Vec::new();
    let mut missing = Vec::new();
    let Some(slot) = spare_slot(used_slots) else {
        missing.extend(
            modes
                .iter()
                .map(|&m| not_measured(m, "every function-timing slot is in use".to_owned())),
        );
        return (costs, missing);
    };
    for &mode in modes {
        // A kernel that refuses every fentry load: no loop, no BTF parse.
        if let Some(why) = btf.refused_for_all().filter(|_| mode == Mode::Fentry) {
            missing.push(not_measured(mode, why.to_string()));
            continue;
        }
        let btf = if mode == Mode::Fentry {
            btf.get()
        } else {
            None
        };
        match measure(ebpf, mode, slot, btf) {
            Ok(cost) => {
                log::debug!(
                    "probe cost {}: {:.0} ns per timed call ({} x {} calls of {}: {:.0} vs {:.0} ns)",
                    cost.mode,
                    cost.per_call_ns,
                    cost.batches,
                    cost.calls_per_batch,
                    cost.function,
                    cost.probed_ns,
                    cost.unprobed_ns
                );
                costs.push(cost);
            }
            Err(why) => missing.push(not_measured(mode, why.to_string())),
        }
    }
    // The tracked loop was also sampled (and may have waited on a lock):
    // drop those aggregates so the first episode does not count them.
    if let Err(err) = crate::probes::collect::drain(ebpf) {
        log::warn!("clearing the calibration loop's samples: {err}");
    }
    (costs, missing)
}

/// `record`'s calibration before the attach ladder, on the last slot while
/// every slot is still free (the ladder then loads that slot's programs
/// again for its own function): fentry for `--attach auto` (kprobe only if
/// fentry is refused), or the forced mode.
pub fn before_ladder(
    ebpf: &mut Ebpf,
    attach: AttachPolicy,
    btf: &FentryBtf,
) -> (Vec<ProbeCost>, Vec<NotMeasured>) {
    match attach {
        AttachPolicy::Sampling => (Vec::new(), Vec::new()),
        AttachPolicy::Fentry => calibrate(ebpf, &[Mode::Fentry], 0, btf),
        AttachPolicy::Kprobe => calibrate_kprobe(ebpf),
        AttachPolicy::Auto => {
            let (costs, mut missing) = calibrate(ebpf, &[Mode::Fentry], 0, btf);
            if !costs.is_empty() {
                return (costs, missing);
            }
            let (costs, more) = calibrate_kprobe(ebpf);
            missing.extend(more);
            (costs, missing)
        }
    }
}

fn calibrate_kprobe(ebpf: &mut Ebpf) -> (Vec<ProbeCost>, Vec<NotMeasured>) {
    if crate::probes::function_timing::kprobes_built_in() {
        calibrate(ebpf, &[Mode::Kprobe], 0, &FentryBtf::default())
    } else {
        let why = "kprobes are not built into this kernel".to_owned();
        (Vec::new(), vec![not_measured(Mode::Kprobe, why)])
    }
}

/// `record`'s calibration after the ladder: keeps the costs of the modes
/// its function probes use, measures a used mode not measured yet (when a
/// slot is spare), and reports as not measured only modes in use.
pub fn for_record(
    ebpf: &mut Ebpf,
    ladder: &LadderReport,
    before: (Vec<ProbeCost>, Vec<NotMeasured>),
    btf: &FentryBtf,
) -> (Vec<ProbeCost>, Vec<NotMeasured>) {
    let mut used: Vec<Mode> = ladder
        .attached()
        .filter_map(|f| Mode::from_attach_mode(f.mode))
        .collect();
    used.sort_by_key(|m| m.name());
    used.dedup();
    let (mut costs, earlier) = before;
    costs.retain(|c| used.iter().any(|m| m.attach_mode() == c.mode));
    let todo: Vec<Mode> = used
        .iter()
        .copied()
        .filter(|m| !costs.iter().any(|c| c.mode == m.attach_mode()))
        .collect();
    if todo.is_empty() {
        return (costs, Vec::new());
    }
    let (more, mut missing) = calibrate(ebpf, &todo, ladder.functions.len(), btf);
    costs.extend(more);
    // Earlier refusals of a mode still missing say more than "no slot".
    for m in &todo {
        if !costs.iter().any(|c| c.mode == m.attach_mode()) {
            let what = not_measured(*m, String::new()).subject;
            missing.extend(earlier.iter().filter(|n| n.subject == what).cloned());
        }
    }
    (costs, missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttachMode;

    #[test]
    fn modes_round_trip_and_the_spare_slot_is_the_last_free_one() {
        for m in [Mode::Fentry, Mode::Kprobe] {
            assert_eq!(Mode::from_attach_mode(m.attach_mode()), Some(m));
        }
        assert_eq!(Mode::from_attach_mode(AttachMode::None), None);
        assert_eq!(spare_slot(3), Some(SLOT_COUNT as usize - 1));
        assert_eq!(spare_slot(SLOT_COUNT as usize), None);
        assert!(
            syscall_candidates()
                .iter()
                .all(|f| f.ends_with("sys_getppid"))
        );
    }
}
