//! Exact per-function timing, userspace side: which catalog function goes in
//! which program slot, the attach ladder (fentry/fexit, then
//! kprobe/kretprobe, per function), and the per-episode drain of the
//! in-kernel aggregates into the run model.
//!
//! The ladder never guesses from kernel configuration: it loads and attaches
//! for real and keeps the kernel's answer (EPERM, ENOTSUPP 524, ...) for each
//! rung it could not take.

use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::{Array, PerCpuArray, PerCpuValues},
    programs::{FEntry, FExit, KProbe, ProgramError},
};
use reaper_common::{
    context::{CONTEXT_COUNT, Context},
    function_timing::{
        CallRecord, EdgeStats, EntryStack, FN_COUNTER_COUNT, FN_EDGES_ENTRIES, FN_STATS_ENTRIES,
        FN_TOP_CALLS_ENTRIES, FnCounter, FunctionStats, FunctionTimingConfig, MAP_FN_COUNTERS,
        MAP_FN_EDGES, MAP_FN_ENTRY_STACKS, MAP_FN_HITS, MAP_FN_STATS, MAP_FN_TOP_CALLS,
        MAP_FN_VMA_ORDER, PROG_FENTRY, PROG_FEXIT, PROG_KPROBE, PROG_KRETPROBE, SLOT_COUNT,
        SLOT_NONE, TOP_CALLS, TopCalls, VMA_LOG_LEN, VmaOrder,
    },
};

use crate::{
    catalog::{self, BtfFacts, Timing},
    model::{
        AttachMode, CallEdge, FunctionCall, FunctionCalls, FunctionTime, FunctionTiming,
        NotMeasured, ProbeOutcome, ProbeUse, ResolvedConcept, VmaOrderKind, VmaOrderSeen,
        doctor::ProgramKind,
    },
    probes::{
        attach::error_chain,
        kernel_btf::{self, FentryBtf},
        refusal::{FromProgramError as _, Refusal, Step},
    },
};

/// How `reaper record --attach` chooses the mode of each function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachPolicy {
    /// fentry/fexit, else kprobe/kretprobe, else none (per function).
    #[default]
    Auto,
    /// fentry/fexit only; a function it cannot attach is an error.
    Fentry,
    /// kprobe/kretprobe only; a function it cannot attach is an error.
    Kprobe,
    /// No function probes: tracepoints and sampling only.
    Sampling,
}

impl std::str::FromStr for AttachPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown attach mode {s:?}: use auto, fentry, kprobe or sampling")
            })
    }
}

impl AttachPolicy {
    /// Every policy, in `--attach`'s order.
    pub const ALL: [Self; 4] = [Self::Auto, Self::Fentry, Self::Kprobe, Self::Sampling];
    /// The flag values, in [`Self::ALL`]'s order.
    pub const NAMES: [&'static str; 4] = ["auto", "fentry", "kprobe", "sampling"];

    /// The flag value.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A catalog function that will get a program slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotFunction {
    /// Program slot.
    pub slot: u32,
    /// Catalog concept id.
    pub concept: String,
    /// Function (base) name: the BTF name fentry loads against.
    pub symbol: String,
    /// kallsyms name kprobes attach to.
    pub attach_name: String,
    /// Whether BTF has it (`None`: no BTF).
    pub in_btf: Option<bool>,
}

/// Which functions get a slot, and what the others are (absent, not timed).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Functions to attach, in slot order.
    pub functions: Vec<SlotFunction>,
    /// Concepts without a function to time, with the reason.
    pub skipped: Vec<(String, ProbeOutcome)>,
}

/// Assigns slots to every timed concept this kernel has.
pub fn plan(resolved: &[ResolvedConcept]) -> Plan {
    let mut plan = Plan::default();
    for r in resolved {
        let concept = catalog::concept(&r.concept);
        if let Some(Timing::NotTimed(why)) = concept.map(|c| c.timing) {
            plan.skipped.push((
                r.concept.clone(),
                ProbeOutcome::not_attached(format!("not timed: {why}")),
            ));
            continue;
        }
        let Some(symbol) = &r.symbol else {
            let absent = ProbeOutcome::Absent {
                inline_into: concept.and_then(|c| c.inline_fallback).map(str::to_owned),
            };
            plan.skipped.push((r.concept.clone(), absent));
            continue;
        };
        if plan.functions.len() >= SLOT_COUNT as usize {
            plan.skipped.push((
                r.concept.clone(),
                ProbeOutcome::not_attached("no free probe slot"),
            ));
            continue;
        }
        plan.functions.push(SlotFunction {
            slot: plan.functions.len() as u32,
            concept: r.concept.clone(),
            symbol: symbol.clone(),
            attach_name: r.attach_name.clone().unwrap_or_else(|| symbol.clone()),
            in_btf: r.in_btf,
        });
    }
    plan
}

/// The loader global for a plan: the per-VMA unmap function's slot and how
/// to read its VMA start, or why order detection is off; and, when
/// `slowpath_lock_waits` (the kernel has no `lock:contention_*`
/// tracepoints), the spin slow path's slot, whose calls then also record
/// lock waits.
pub fn config_for(
    plan: &Plan,
    btf: Option<&BtfFacts>,
    slowpath_lock_waits: bool,
) -> (FunctionTimingConfig, Option<String>) {
    let lock_slot = plan
        .functions
        .iter()
        .find(|f| f.concept == SLOWPATH_CONCEPT)
        .filter(|_| slowpath_lock_waits)
        .map_or(SLOT_NONE, |f| f.slot);
    let (config, why) = order_config(plan, btf);
    (
        FunctionTimingConfig {
            lock_slot,
            ..config
        },
        why,
    )
}

/// The catalog concept whose calls are lock waits without the tracepoints.
const SLOWPATH_CONCEPT: &str = "spin_slowpath";

/// The order-detection part of [`config_for`].
fn order_config(plan: &Plan, btf: Option<&BtfFacts>) -> (FunctionTimingConfig, Option<String>) {
    let Some(per_vma) = plan.functions.iter().find(|f| f.concept == "per_vma_unmap") else {
        return (
            FunctionTimingConfig::DISABLED,
            Some("this kernel has none of the per-VMA unmap candidates".into()),
        );
    };
    let reaper_work = plan
        .functions
        .iter()
        .find(|f| f.concept == "reaper_work")
        .map_or(SLOT_NONE, |f| f.slot);
    match catalog::vma_source(&per_vma.symbol, btf) {
        Ok(source) => (
            FunctionTimingConfig {
                vma_slot: per_vma.slot,
                vma_arg: source.index,
                vma_arg_kind: source.kind as u32,
                vm_start_offset: source.vm_start_offset,
                vma_parent_slot: reaper_work,
                lock_slot: SLOT_NONE,
            },
            None,
        ),
        Err(why) => (FunctionTimingConfig::DISABLED, Some(why)),
    }
}

/// The kernel's answer to a load or attach, short: what was refused, the
/// errno by name, and the verifier's last words when it spoke.
pub fn kernel_answer(err: &ProgramError) -> String {
    Refusal::from_error(Step::Load, err).to_string()
}

/// One function's outcome on the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionAttach {
    /// The function.
    pub function: SlotFunction,
    /// fentry, kprobe or none.
    pub mode: AttachMode,
    /// Attached, or why each rung failed.
    pub status: ProbeOutcome,
    /// Why fentry/fexit was refused when kprobes were used.
    pub fallback_from: Option<String>,
}

/// What the ladder did for every catalog concept.
#[derive(Clone, Debug, Default)]
pub struct LadderReport {
    /// Functions with a slot, and their mode.
    pub functions: Vec<FunctionAttach>,
    /// Concepts without a function (absent, not timed), with the reason.
    pub skipped: Vec<(String, ProbeOutcome)>,
    /// Why order detection is off, if it is.
    pub order_off: Option<String>,
    /// The attach mode asked for.
    pub mode: AttachPolicy,
    /// Why no function probe was even tried (e.g. watch mode).
    pub disabled: Option<String>,
}

/// A forced mode that failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "--attach {mode}: {function} ({concept}) did not attach: {answer}; use --attach auto to fall back per function, or --attach sampling"
)]
pub struct ForcedModeError {
    mode: AttachMode,
    function: String,
    concept: String,
    answer: String,
}

impl LadderReport {
    /// A report for a recording that attaches no function probe, and why.
    pub fn disabled(plan: &Plan, why: &str) -> Self {
        Self {
            functions: plan
                .functions
                .iter()
                .map(|f| FunctionAttach {
                    function: f.clone(),
                    mode: AttachMode::None,
                    status: ProbeOutcome::not_attached(why),
                    fallback_from: None,
                })
                .collect(),
            skipped: plan.skipped.clone(),
            order_off: None,
            mode: AttachPolicy::Sampling,
            disabled: Some(why.to_owned()),
        }
    }

    /// Functions that got a probe pair.
    pub fn attached(&self) -> impl Iterator<Item = &FunctionAttach> {
        self.functions.iter().filter(|f| f.mode != AttachMode::None)
    }

    /// The run file's `function_probes`, one per concept.
    pub fn function_probes(&self) -> Vec<crate::model::FunctionProbe> {
        let mut out: Vec<crate::model::FunctionProbe> = self
            .functions
            .iter()
            .map(|f| crate::model::FunctionProbe {
                concept: f.function.concept.clone(),
                symbol: Some(f.function.symbol.clone()),
                mode: f.mode,
                status: f.status.clone(),
                fallback_from: f.fallback_from.clone(),
            })
            .collect();
        out.extend(
            self.skipped
                .iter()
                .map(|(concept, why)| crate::model::FunctionProbe {
                    concept: concept.clone(),
                    symbol: None,
                    mode: AttachMode::None,
                    status: why.clone(),
                    fallback_from: None,
                }),
        );
        out
    }

    /// The run file's `recording.probes` entries, one per concept.
    pub fn probe_uses(&self) -> Vec<ProbeUse> {
        let mut uses: Vec<ProbeUse> = self
            .functions
            .iter()
            .map(|f| ProbeUse {
                probe: format!("function:{}", f.function.symbol),
                mode: f.mode,
                status: f.status.clone(),
                fallback_from: None,
            })
            .collect();
        uses.extend(self.skipped.iter().map(|(concept, why)| ProbeUse {
            probe: format!("function:{concept}"),
            mode: AttachMode::None,
            status: why.clone(),
            fallback_from: None,
        }));
        uses
    }

    /// What the run could not measure because of the ladder, with the
    /// kernel's reasons.
    pub fn not_measured(&self) -> Vec<NotMeasured> {
        let mut out = Vec::new();
        let failed: Vec<&FunctionAttach> = self
            .functions
            .iter()
            .filter(|f| f.mode == AttachMode::None)
            .collect();
        if self.attached().next().is_none() {
            let why = match (self.mode, failed.first()) {
                _ if self.disabled.is_some() => self.disabled.clone().unwrap_or_default(),
                (AttachPolicy::Sampling, _) => "disabled by --attach sampling".to_owned(),
                // The kernel's answers are in `recording.probes`, which
                // the header prints once ("Probes NOT attached").
                (_, Some(_)) => {
                    "no function probe attached (the kernel's answers: \"Probes NOT attached\" above)"
                        .to_owned()
                }
                (_, None) => "no catalog function exists on this kernel".to_owned(),
            };
            out.push(NotMeasured {
                subject: "exact per-function timing (calls, inclusive ns, histograms)".into(),
                why: why.clone(),
            });
            out.push(NotMeasured {
                subject: "reaper VMA order".into(),
                why: format!("order: unknown (needs fentry or kprobe): {why}"),
            });
            return out;
        }
        for f in failed {
            out.push(NotMeasured {
                subject: format!(
                    "exact timing of {} ({})",
                    f.function.symbol, f.function.concept
                ),
                why: f.status.to_string(),
            });
        }
        let per_vma_attached = self
            .attached()
            .any(|f| f.function.concept == "per_vma_unmap");
        if let Some(why) = &self.order_off {
            out.push(NotMeasured {
                subject: "reaper VMA order".into(),
                why: why.clone(),
            });
        } else if !per_vma_attached {
            out.push(NotMeasured {
                subject: "reaper VMA order".into(),
                why: "the per-VMA unmap function did not attach".into(),
            });
        }
        out
    }
}

/// A program of the loaded object as its kind, or why not (missing, or
/// the kernel's answer).
pub(crate) fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, String>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| format!("program {name} missing from the object"))?
        .try_into()
        .map_err(|e: ProgramError| kernel_answer(&e))
}

/// What `--attach auto` gave one function: fentry/fexit, else
/// kprobe/kretprobe (saying why fentry was refused), else nothing with both
/// kernel answers. Shared by `record`'s ladder and `doctor`.
pub(crate) struct AutoRung {
    /// The mode used.
    pub mode: AttachMode,
    /// Attached, or both refusals.
    pub status: ProbeOutcome,
    /// Why fentry/fexit was refused when kprobes were used.
    pub fallback_from: Option<String>,
}

/// Climbs the auto ladder: `kprobe` is tried only when `fentry` failed.
pub(crate) fn auto_rung(
    fentry: Result<(), String>,
    kprobe: impl FnOnce() -> Result<(), String>,
) -> AutoRung {
    let (mode, status, fallback_from) = match fentry {
        Ok(()) => (AttachMode::Fentry, ProbeOutcome::Attached, None),
        Err(fentry_why) => match kprobe() {
            Ok(()) => (
                AttachMode::Kprobe,
                ProbeOutcome::Attached,
                Some(format!("fentry/fexit refused: {fentry_why}")),
            ),
            Err(kprobe_why) => (
                AttachMode::None,
                ProbeOutcome::not_attached(format!(
                    "fentry/fexit: {fentry_why}; kprobe/kretprobe: {kprobe_why}"
                )),
                None,
            ),
        },
    };
    AutoRung {
        mode,
        status,
        fallback_from,
    }
}

/// Whether a refused load is the kernel's answer to every fentry program,
/// whatever the function (see [`kernel_btf::refuses_every_function`]).
fn refuses_every_function(err: &ProgramError) -> bool {
    kernel_btf::refuses_every_function(&Refusal::from_error(Step::Load, err))
}

/// What the kernel answered to fentry, decided once per ladder: after a
/// refusal that holds for every function, the other functions get the same
/// answer without one more program load each.
#[derive(Default)]
struct FentryVerdict {
    refused_for_all: Option<String>,
}

fn try_fentry(
    ebpf: &mut Ebpf,
    f: &SlotFunction,
    btf: &FentryBtf,
    verdict: &mut FentryVerdict,
) -> Result<(), String> {
    const NO_BTF: &str = "no kernel BTF (/sys/kernel/btf/vmlinux)";
    if !btf.available() {
        return Err(NO_BTF.into());
    }
    if f.in_btf == Some(false) {
        return Err(format!("{} is not in kernel BTF", f.symbol));
    }
    if let Some(why) = &verdict.refused_for_all {
        return Err(why.clone());
    }
    // Parsed here, on the first load that needs it, and shared.
    let btf = btf.get().ok_or(NO_BTF)?;
    let slot = f.slot as usize;
    let entry = (|| {
        let p: &mut FEntry = program(ebpf, PROG_FENTRY[slot])?;
        p.load(&f.symbol, btf).map_err(|e| {
            let why = format!("fentry load: {}", kernel_answer(&e));
            if refuses_every_function(&e) {
                verdict.refused_for_all = Some(why.clone());
            }
            why
        })?;
        p.attach()
            .map(|_| ())
            .map_err(|e| format!("fentry attach: {}", kernel_answer(&e)))
    })();
    let exit = entry.clone().and_then(|()| {
        let p: &mut FExit = program(ebpf, PROG_FEXIT[slot])?;
        p.load(&f.symbol, btf)
            .map_err(|e| format!("fexit load: {}", kernel_answer(&e)))?;
        p.attach()
            .map(|_| ())
            .map_err(|e| format!("fexit attach: {}", kernel_answer(&e)))
    });
    if exit.is_err() {
        // Half a pair is worse than none: entries without exits.
        if let Ok(p) = program::<FEntry>(ebpf, PROG_FENTRY[slot]) {
            let _ = p.unload();
        }
        if let Ok(p) = program::<FExit>(ebpf, PROG_FEXIT[slot]) {
            let _ = p.unload();
        }
    }
    exit
}

/// Whether this kernel has the kprobe PMU or the legacy kprobe_events file.
pub fn kprobes_built_in() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || std::path::Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
}

fn try_kprobe(ebpf: &mut Ebpf, f: &SlotFunction, built_in: bool) -> Result<(), String> {
    if !built_in {
        return Err(
            "kprobes are not built into this kernel (no kprobe PMU, no kprobe_events)".into(),
        );
    }
    let slot = f.slot as usize;
    let attach = |ebpf: &mut Ebpf, prog: &str, kind: &str| -> Result<(), String> {
        let p: &mut KProbe = program(ebpf, prog)?;
        p.load()
            .map_err(|e| format!("{kind} load: {}", kernel_answer(&e)))?;
        p.attach(&f.attach_name, 0)
            .map(|_| ())
            .map_err(|e| format!("{kind} attach to {}: {}", f.attach_name, kernel_answer(&e)))
    };
    let result = attach(ebpf, PROG_KPROBE[slot], ProgramKind::Kprobe.name())
        .and_then(|()| attach(ebpf, PROG_KRETPROBE[slot], ProgramKind::Kretprobe.name()));
    if let Err(why) = result {
        for prog in [PROG_KPROBE[slot], PROG_KRETPROBE[slot]] {
            if let Ok(p) = program::<KProbe>(ebpf, prog) {
                let _ = p.unload();
            }
        }
        return Err(why);
    }
    Ok(())
}

/// Runs the ladder for every planned function. A forced mode that fails
/// returns the first failure; `auto` records each failure and goes on.
/// `btf` is parsed only if an fentry load is tried.
pub fn attach_ladder(
    ebpf: &mut Ebpf,
    plan: &Plan,
    mode: AttachPolicy,
    order_off: Option<String>,
    btf: &FentryBtf,
) -> Result<LadderReport, ForcedModeError> {
    // The kernel's capabilities, decided once rather than per function.
    let kprobes = kprobes_built_in();
    let mut fentry = FentryVerdict {
        refused_for_all: btf.refused_for_all(),
    };
    let mut report = LadderReport {
        skipped: plan.skipped.clone(),
        order_off,
        mode,
        ..LadderReport::default()
    };
    for f in &plan.functions {
        let mut fallback_from = None;
        let (used, status) = match mode {
            AttachPolicy::Sampling => (
                AttachMode::None,
                ProbeOutcome::not_attached("disabled by --attach sampling"),
            ),
            AttachPolicy::Fentry => match try_fentry(ebpf, f, btf, &mut fentry) {
                Ok(()) => (AttachMode::Fentry, ProbeOutcome::Attached),
                Err(answer) => {
                    return Err(ForcedModeError {
                        mode: AttachMode::Fentry,
                        function: f.symbol.clone(),
                        concept: f.concept.clone(),
                        answer,
                    });
                }
            },
            AttachPolicy::Kprobe => match try_kprobe(ebpf, f, kprobes) {
                Ok(()) => (AttachMode::Kprobe, ProbeOutcome::Attached),
                Err(answer) => {
                    return Err(ForcedModeError {
                        mode: AttachMode::Kprobe,
                        function: f.attach_name.clone(),
                        concept: f.concept.clone(),
                        answer,
                    });
                }
            },
            AttachPolicy::Auto => {
                let rung = auto_rung(try_fentry(ebpf, f, btf, &mut fentry), || {
                    try_kprobe(ebpf, f, kprobes)
                });
                fallback_from = rung.fallback_from;
                (rung.mode, rung.status)
            }
        };
        log::debug!("function {} ({}): {used}: {status}", f.symbol, f.concept);
        report.functions.push(FunctionAttach {
            function: f.clone(),
            mode: used,
            status,
            fallback_from,
        });
    }
    Ok(report)
}

/// Map access failures.
#[derive(Debug, thiserror::Error)]
#[error("BPF map {map}: {what}")]
pub struct DrainError {
    map: &'static str,
    what: String,
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> DrainError {
    move |e| DrainError {
        map,
        what: error_chain(&e),
    }
}

fn map_mut<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut aya::maps::Map, DrainError> {
    ebpf.map_mut(name).ok_or(DrainError {
        map: name,
        what: "missing from the eBPF object".into(),
    })
}

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
) -> Result<Vec<(u32, V)>, DrainError>
where
    V: aya::Pod + Copy + Default,
{
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| DrainError {
        map: name,
        what: e.to_string(),
    })?;
    let mut map: PerCpuArray<_, V> = map_mut(ebpf, name)?.try_into().map_err(map_err(name))?;
    let mut out = Vec::new();
    for index in 0..entries {
        let values = map.get(&index, 0).map_err(map_err(name))?;
        let mut total = V::default();
        for v in values.iter() {
            merge(&mut total, v);
        }
        if !is_zero(&total) {
            let zeros =
                PerCpuValues::try_from(vec![V::default(); cpus]).map_err(|e| DrainError {
                    map: name,
                    what: e.to_string(),
                })?;
            map.set(index, zeros, 0).map_err(map_err(name))?;
            out.push((index, total));
        }
    }
    Ok(out)
}

/// Reads and resets every function-timing map.
pub fn drain(ebpf: &mut Ebpf) -> Result<RawFunctionTiming, DrainError> {
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
fn drain_top_calls(ebpf: &mut Ebpf) -> Result<Vec<(u32, u32, Vec<CallRecord>)>, DrainError> {
    let name = MAP_FN_TOP_CALLS;
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| DrainError {
        map: name,
        what: e.to_string(),
    })?;
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
        let zeros =
            PerCpuValues::try_from(vec![TopCalls::default(); cpus]).map_err(|e| DrainError {
                map: name,
                what: e.to_string(),
            })?;
        map.set(index, zeros, 0).map_err(map_err(name))?;
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
            let f = ladder.functions.iter().find(|f| f.function.slot == *slot);
            let total = raw
                .stats
                .iter()
                .find(|(c, s, _)| *c == context.id() && s == slot)
                .map_or(0, |(_, _, s)| s.calls);
            Some(FunctionCalls {
                context,
                concept: f.map_or_else(String::new, |f| f.function.concept.clone()),
                symbol: f.map_or_else(|| format!("slot{slot}"), |f| f.function.symbol.clone()),
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
fn since(t: u64, origin: u64) -> i64 {
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
            let f = by_slot(*slot);
            let last = s.hist.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
            Some(FunctionTime {
                context: Context::from_id(*context)?,
                concept: f.map_or_else(String::new, |f| f.function.concept.clone()),
                symbol: name_of(*slot),
                mode: f.map_or(AttachMode::None, |f| f.mode),
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
        .find(|f| f.function.concept == "per_vma_unmap")
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
                .filter(|f| f.mode != AttachMode::None)
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
    }
}

/// Whether a slot is real (not [`SLOT_NONE`]).
pub fn is_slot(slot: u32) -> bool {
    slot != SLOT_NONE && slot < SLOT_COUNT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(concept: &str, symbol: Option<&str>) -> ResolvedConcept {
        ResolvedConcept {
            concept: concept.into(),
            symbol: symbol.map(Into::into),
            candidates: vec![],
            attach_name: None,
            in_btf: Some(true),
        }
    }

    #[test]
    fn plan_skips_absent_and_untimed_concepts_with_reasons() {
        let p = plan(&[
            resolved("reaper_work", Some("__oom_reap_task_mm")),
            resolved("reaper_kthread", Some("oom_reaper")),
            resolved("pte_lock", None),
            resolved("per_vma_unmap", Some("unmap_page_range")),
        ]);
        assert_eq!(p.functions.len(), 2);
        assert_eq!(p.functions[0].slot, 0);
        assert_eq!(p.functions[1].symbol, "unmap_page_range");
        assert_eq!(p.functions[1].slot, 1);
        let skipped: BTreeMap<_, _> = p.skipped.iter().cloned().collect();
        assert!(
            skipped["reaper_kthread"]
                .to_string()
                .starts_with("not timed")
        );
        assert_eq!(
            skipped["pte_lock"],
            ProbeOutcome::Absent {
                inline_into: Some("zap_pte_range".into())
            }
        );
        let (config, off) = config_for(&p, None, false);
        assert_eq!(off, None);
        assert_eq!(
            config.lock_slot, SLOT_NONE,
            "the contention tracepoints exist"
        );
        assert_eq!(config.vma_slot, 1);
        assert_eq!(config.vma_arg, 2);
        assert_eq!(config.vma_parent_slot, 0, "only calls from the reaper work");
    }

    #[test]
    fn order_is_classified_from_steps() {
        let mut o = VmaOrder {
            count: 64,
            forward_steps: 63,
            ..VmaOrder::default()
        };
        assert_eq!(classify(&o), VmaOrderKind::Forward);
        o.forward_steps = 0;
        o.reverse_steps = 63;
        assert_eq!(classify(&o), VmaOrderKind::Reverse);
        o.forward_steps = 1;
        assert_eq!(classify(&o), VmaOrderKind::Mixed);
        o.count = 1;
        assert_eq!(classify(&o), VmaOrderKind::Unknown);
    }

    #[test]
    fn sampling_mode_reports_not_measured_with_the_reason() {
        let report = LadderReport {
            mode: AttachPolicy::Sampling,
            ..LadderReport::default()
        };
        let nm = report.not_measured();
        assert!(nm.iter().any(|n| n.subject == "reaper VMA order"
            && n.why.contains("order: unknown (needs fentry or kprobe)")));
        assert!(nm[0].why.contains("--attach sampling"));
    }

    #[test]
    fn a_disabled_ladder_says_why() {
        let p = plan(&[resolved("reaper_work", Some("__oom_reap_task_mm"))]);
        let report = LadderReport::disabled(&p, "not recorded in --watch mode");
        assert_eq!(report.attached().count(), 0);
        assert_eq!(
            report.probe_uses()[0].status,
            ProbeOutcome::not_attached("not recorded in --watch mode")
        );
        assert_eq!(report.not_measured()[0].why, "not recorded in --watch mode");
    }

    #[test]
    fn errno_names_the_common_answers() {
        let err = ProgramError::IOError(std::io::Error::from_raw_os_error(524));
        assert!(
            kernel_answer(&err).contains("ENOTSUPP 524"),
            "{}",
            kernel_answer(&err)
        );
        let err = ProgramError::IOError(std::io::Error::from_raw_os_error(1));
        assert!(kernel_answer(&err).contains("EPERM 1"));
    }

    /// The verifier of the running kernel accepts every slot's kprobe and
    /// kretprobe with order detection on (loads only; needs root).
    #[test]
    fn kprobe_programs_pass_the_verifier() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to load BPF programs");
            return;
        }
        let config = FunctionTimingConfig {
            vma_slot: 3,
            vma_arg: 0,
            vma_arg_kind: reaper_common::function_timing::VmaArgKind::VmaPointer as u32,
            vm_start_offset: 0,
            vma_parent_slot: 0,
            lock_slot: 8,
        };
        let offsets = reaper_common::tracepoint_offsets::TracepointOffsets::default();
        let mut ebpf =
            crate::probes::loader::load_with_timing(&offsets, &Default::default(), &config)
                .expect("object loads");
        for slot in 0..SLOT_COUNT as usize {
            for prog in [PROG_KPROBE[slot], PROG_KRETPROBE[slot]] {
                let p: &mut KProbe = program(&mut ebpf, prog).unwrap();
                if let Err(e) = p.load() {
                    panic!("{prog}: {}", error_chain(&e));
                }
            }
        }
    }

    fn call(start_ns: u64, duration_ns: u64) -> CallRecord {
        CallRecord {
            start_ns,
            duration_ns,
            tid: 7,
            _pad: 0,
        }
    }

    fn top(calls: &[CallRecord]) -> TopCalls {
        let mut t = TopCalls {
            kept: calls.len() as u32,
            ..TopCalls::default()
        };
        t.calls[..calls.len()].copy_from_slice(calls);
        t
    }

    #[test]
    fn top_calls_merge_keeps_the_longest_over_all_cpus() {
        let many: Vec<CallRecord> = (0..TOP_CALLS as u64).map(|i| call(100 + i, i)).collect();
        let merged = merge_top_calls(&[top(&many), top(&[call(5, 1000), call(6, 2)])]);
        assert_eq!(merged.len(), TOP_CALLS);
        assert_eq!(merged[0], call(5, 1000));
        let durations: Vec<u64> = merged.iter().map(|c| c.duration_ns).collect();
        let mut sorted = durations.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(durations, sorted, "longest first");
        assert_eq!(*durations.last().unwrap(), 2, "the shortest ones are cut");
        // A CPU's unused entries (past `kept`) are not calls.
        assert!(merge_top_calls(&[TopCalls::default()]).is_empty());
    }

    #[test]
    fn placed_calls_are_relative_to_the_kill_and_count_the_rest() {
        let ladder = LadderReport {
            functions: vec![FunctionAttach {
                function: SlotFunction {
                    slot: 2,
                    concept: "mrelease_syscall".into(),
                    symbol: "__x64_sys_process_mrelease".into(),
                    attach_name: "__x64_sys_process_mrelease".into(),
                    in_btf: Some(true),
                },
                mode: AttachMode::Fentry,
                status: ProbeOutcome::Attached,
                fallback_from: None,
            }],
            ..LadderReport::default()
        };
        let raw = RawFunctionTiming {
            stats: vec![(
                Context::MreleaseCaller.id(),
                2,
                FunctionStats {
                    calls: 3,
                    ..FunctionStats::default()
                },
            )],
            top_calls: vec![(
                Context::MreleaseCaller.id(),
                2,
                vec![call(1_500, 300), call(900, 50)],
            )],
            ..RawFunctionTiming::default()
        };
        let placed = place_calls(&raw, &ladder, 1_000);
        assert_eq!(placed.len(), 1);
        let p = &placed[0];
        assert_eq!(
            (p.context, p.symbol.as_str(), p.concept.as_str()),
            (
                Context::MreleaseCaller,
                "__x64_sys_process_mrelease",
                "mrelease_syscall"
            )
        );
        assert_eq!(p.calls[0].start_ns, 500);
        assert_eq!(p.calls[0].end_ns(), 800);
        assert_eq!(p.calls[1].start_ns, -100, "before the kill");
        assert_eq!(p.left_out, 1);
    }

    #[test]
    fn the_auto_ladder_tries_kprobes_only_after_fentry_fails_and_keeps_both_answers() {
        let fentry = auto_rung(Ok(()), || panic!("kprobe tried after fentry attached"));
        assert_eq!(
            (fentry.mode, fentry.fallback_from),
            (AttachMode::Fentry, None)
        );
        let kprobe = auto_rung(Err("EPERM".into()), || Ok(()));
        assert_eq!(kprobe.mode, AttachMode::Kprobe);
        assert!(kprobe.status.is_attached());
        assert_eq!(
            kprobe.fallback_from.as_deref(),
            Some("fentry/fexit refused: EPERM")
        );
        let none = auto_rung(Err("EPERM".into()), || Err("no kprobes".into()));
        assert_eq!(none.mode, AttachMode::None);
        assert_eq!(
            none.status.to_string(),
            "fentry/fexit: EPERM; kprobe/kretprobe: no kprobes"
        );
    }

    #[test]
    fn only_kernel_wide_refusals_are_decided_once() {
        let io = |code| ProgramError::IOError(std::io::Error::from_raw_os_error(code));
        assert!(refuses_every_function(&io(1)), "EPERM: a policy");
        assert!(refuses_every_function(&io(524)), "ENOTSUPP: no trampolines");
        assert!(!refuses_every_function(&io(2)), "ENOENT: this function");
        assert!(!refuses_every_function(&io(22)), "EINVAL: this program");
    }

    #[test]
    fn attach_mode_parses() {
        assert_eq!("kprobe".parse::<AttachPolicy>(), Ok(AttachPolicy::Kprobe));
        assert!("perf".parse::<AttachPolicy>().is_err());
    }
}
