//! Which catalog function goes in which program slot, and the loader
//! global that tells the kernel side which slot is the per-VMA unmap (order
//! detection) and which the spin slow path (lock waits without the
//! contention tracepoints).

use reaper_common::function_timing::{
    CollisionConfig, FunctionTimingConfig, SLOT_COUNT, SLOT_NONE,
};

use crate::{
    catalog::{self, BtfFacts, ConceptId, Timing},
    model::{ProbeOutcome, ResolvedConcept},
};

/// A catalog function that will get a program slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotFunction {
    /// Program slot.
    pub slot: u32,
    /// Catalog concept id.
    pub concept: ConceptId,
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
    pub skipped: Vec<(ConceptId, ProbeOutcome)>,
}

/// Which costly functions are timed per call rather than left to sampling
/// (the default for all three): the per-page leaves ([`Timing::PerPage`],
/// `record --exact-leaves`), the per-batch functions ([`Timing::PerBatch`],
/// `record --exact-batches`) and the lock path ([`Timing::LockPath`],
/// `record --exact-locks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exact {
    /// Per-page leaves get a slot.
    pub leaves: bool,
    /// Per-batch functions get a slot.
    pub batches: bool,
    /// The spin slow path and the PTE-lock function get a slot.
    pub locks: bool,
}

impl Exact {
    /// Every function record may time (what doctor checks).
    pub const ALL: Self = Self {
        leaves: true,
        batches: true,
        locks: true,
    };

    /// Whether the per-batch functions get a slot: asked for, or needed by
    /// the exact PTE-lock wait. Where the PTE lock is inline (no PTE-lock
    /// function: 6.1, 5.x), that row counts the slow path's calls whose
    /// nearest timed caller is the per-VMA unmap, and the batch freeing
    /// inside the walk (`tlb_flush_mmu` → `free_pages_and_swap_cache` →
    /// lruvec and zone locks) must then be timed too, or its lock waits
    /// would count as PTE-lock waits.
    fn batches_for(self, pte_lock_inline: bool) -> bool {
        self.batches || (self.locks && pte_lock_inline)
    }
}

/// Assigns slots to every timed concept this kernel has; the per-page
/// leaves, the per-batch functions and the lock path only when `exact`
/// asks for them.
pub fn plan(resolved: &[ResolvedConcept], exact: Exact) -> Plan {
    let mut plan = Plan::default();
    let pte_lock_inline = resolved
        .iter()
        .any(|r| r.concept == ConceptId::PteLock && r.symbol.is_none());
    let batches = exact.batches_for(pte_lock_inline);
    for r in resolved {
        let concept = catalog::entry(r.concept);
        let why_not = match concept.timing {
            Timing::NotTimed(why) => Some(why),
            Timing::PerPage if !exact.leaves => Some(catalog::PER_PAGE_LEFT_TO_SAMPLING),
            Timing::PerBatch if !batches => Some(catalog::PER_BATCH_LEFT_TO_SAMPLING),
            // An inline PTE lock stays "absent (inline into ...)".
            Timing::LockPath if !exact.locks && r.symbol.is_some() => {
                Some(catalog::LOCK_PATH_LEFT_TO_SAMPLING)
            }
            _ => None,
        };
        if let Some(why) = why_not {
            plan.skipped.push((r.concept, ProbeOutcome::not_timed(why)));
            continue;
        }
        let Some(symbol) = &r.symbol else {
            let absent = ProbeOutcome::Absent {
                inline_into: concept.inline_fallback.map(str::to_owned),
            };
            plan.skipped.push((r.concept, absent));
            continue;
        };
        if plan.functions.len() >= SLOT_COUNT as usize {
            plan.skipped
                .push((r.concept, ProbeOutcome::not_attached("no free probe slot")));
            continue;
        }
        plan.functions.push(SlotFunction {
            slot: plan.functions.len() as u32,
            concept: r.concept,
            symbol: symbol.clone(),
            attach_name: r.attach_name.clone().unwrap_or_else(|| symbol.clone()),
            in_btf: r.in_btf,
        });
    }
    plan
}

/// Whose PTE-lock takes are remembered as last takers (issue 25).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Holders {
    /// Tracked walkers only: one LRU insert per PMD a tracked context
    /// locks, on a fexit function timing attaches anyway.
    #[default]
    Tracked,
    /// Also every other task taking a lock a tracked walker took before
    /// (`record --pte-holders-all`): one more hash lookup in every task's
    /// PTE-lock call, page faults included.
    All,
}

/// Whether `record --exact-locks` keeps its collision logs (walker steps,
/// PTE-lock waits with their holders): on unless `record
/// --no-collision-log`, which keeps the exact lock path's timing and drops
/// only the logs, so their cost can be measured against it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CollisionLog {
    /// Logged wherever the kernel lets reaper (see [`collision_config`]).
    #[default]
    On,
    /// Not logged: the loader global's part is off and its maps are shrunk.
    Off,
}

impl CollisionLog {
    /// `config` as this choice leaves it.
    pub fn apply(self, config: CollisionConfig) -> CollisionConfig {
        match self {
            Self::On => config,
            Self::Off => CollisionConfig::DISABLED,
        }
    }
}

/// The loader global for a plan: the per-VMA unmap function's slot and how
/// to read its VMA start, or why order detection is off; and, when
/// `slowpath_lock_waits` (the kernel has no `lock:contention_*`
/// tracepoints), the spin slow path's slot, whose calls then also record
/// lock waits; and the walker log's and PTE-lock waits' slots
/// ([`collision_config`]).
pub fn config_for(
    plan: &Plan,
    btf: Option<&BtfFacts>,
    slowpath_lock_waits: bool,
    holders: Holders,
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
            collision: collision_config(plan, btf, holders),
            ..config
        },
        why,
    )
}

/// The slot of a concept in the plan, or [`SLOT_NONE`].
fn slot_of(plan: &Plan, concept: ConceptId) -> u32 {
    plan.functions
        .iter()
        .find(|f| f.concept == concept)
        .map_or(SLOT_NONE, |f| f.slot)
}

/// Which slots log walker steps and PTE-lock waits. The walker step is the
/// per-VMA zap both contexts call (`__zap_vma_range` on 7.x, where the
/// reaper's per-VMA function `zap_vma_for_reaping` calls it; else
/// `unmap_page_range`), logged when called from the victim's `unmap_vmas`
/// or the reaper's per-VMA function or work. PTE-lock waits are the spin
/// slow path's calls made from the PTE-lock function, or from the walker
/// step where that is inlined (6.1). Off where a part is missing, and so
/// unless `record --exact-locks` gave the slow path a slot.
pub fn collision_config(plan: &Plan, btf: Option<&BtfFacts>, holders: Holders) -> CollisionConfig {
    let worker = slot_of(plan, ConceptId::VmaZapWorker);
    let per_vma = slot_of(plan, ConceptId::PerVmaUnmap);
    let (walker_concept, reaper_parent) = if worker != SLOT_NONE {
        (ConceptId::VmaZapWorker, per_vma)
    } else {
        (ConceptId::PerVmaUnmap, slot_of(plan, ConceptId::ReaperWork))
    };
    let walker = plan.functions.iter().find(|f| f.concept == walker_concept);
    let source = walker.and_then(|f| catalog::vma_source(&f.symbol, btf).ok());
    let wait_slot = slot_of(plan, SLOWPATH_CONCEPT);
    // Without the slow path (left to sampling unless `--exact-locks`) no
    // wait can be logged, and walker steps alone would tax every default
    // recording for a map without its collisions.
    let (Some(walker), Some(source), true) = (walker, source, wait_slot != SLOT_NONE) else {
        return CollisionConfig::DISABLED;
    };
    // PREEMPT_RT: the PTE lock sleeps in rt_spin_lock, whose waits the
    // lock tracepoints log with the lock's owner (`super::rt_owner`); the
    // slow path's calls below the PTE-lock site are then rt_spin_lock's
    // own wait_lock, not PTE-lock waits, and last takers are not needed.
    let rt = btf.is_some_and(|b| b.rt_lock.is_some());
    let pte = if rt {
        SLOT_NONE
    } else {
        slot_of(plan, ConceptId::PteLock)
    };
    CollisionConfig {
        walker_slot: walker.slot,
        walker_arg: source.index,
        walker_arg_kind: source.kind as u32,
        walker_parents: [slot_of(plan, ConceptId::VictimUnmap), reaper_parent],
        pte_slot: pte,
        pte_caller_slot: match (rt, pte != SLOT_NONE) {
            (true, _) => SLOT_NONE,
            (false, true) => pte,
            (false, false) => walker.slot,
        },
        wait_slot: if rt { SLOT_NONE } else { wait_slot },
        third_party: u32::from(holders == Holders::All),
        _pad: 0,
    }
}

/// The catalog concept whose calls are lock waits without the tracepoints.
const SLOWPATH_CONCEPT: ConceptId = ConceptId::SpinSlowpath;

/// The order-detection part of [`config_for`].
fn order_config(plan: &Plan, btf: Option<&BtfFacts>) -> (FunctionTimingConfig, Option<String>) {
    let Some(per_vma) = plan
        .functions
        .iter()
        .find(|f| f.concept == ConceptId::PerVmaUnmap)
    else {
        return (
            FunctionTimingConfig::DISABLED,
            Some("this kernel has none of the per-VMA unmap candidates".into()),
        );
    };
    let reaper_work = plan
        .functions
        .iter()
        .find(|f| f.concept == ConceptId::ReaperWork)
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
                collision: CollisionConfig::DISABLED,
            },
            None,
        ),
        Err(why) => (FunctionTimingConfig::DISABLED, Some(why.to_string())),
    }
}
