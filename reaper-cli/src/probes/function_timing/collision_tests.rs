//! Tests of issue 25's slot choice, setup and log model (`collision.rs`,
//! `plan::collision_config`), without a kernel.

use reaper_common::{
    collision::{
        LastTaker, PteWait, TAKER_UNTRACKED, WAIT_LOG_LEN, WAIT_OPEN, WALKER_LOG_LEN, WaitLog,
        WalkerLog, WalkerStep,
    },
    context::Context,
    function_timing::{CollisionConfig, SLOT_NONE, VmaArgKind},
};

use super::collision::{RawCollisions, setup, to_model};
use super::rt_owner::RtOwners;
use super::*;
use crate::model::{AttachMode, ConceptId, ProbeOutcome, ResolvedConcept};

fn resolved(concept: ConceptId, symbol: &str) -> ResolvedConcept {
    ResolvedConcept {
        concept,
        symbol: Some(symbol.into()),
        candidates: vec![],
        attach_name: None,
        in_btf: Some(true),
    }
}

/// Debian sid 7.2's functions (see `xtask/src/vm/table.rs`).
fn plan_7x() -> Plan {
    plan(
        &[
            resolved(ConceptId::ReaperWork, "__oom_reap_task_mm"),
            resolved(ConceptId::VictimUnmap, "unmap_vmas"),
            resolved(ConceptId::PerVmaUnmap, "zap_vma_for_reaping"),
            resolved(ConceptId::VmaZapWorker, "__zap_vma_range"),
            resolved(ConceptId::PteLock, "pte_offset_map_lock"),
            resolved(ConceptId::SpinSlowpath, "native_queued_spin_lock_slowpath"),
        ],
        Exact {
            locks: true,
            ..Exact::default()
        },
    )
}

/// Debian bookworm 6.1's: the PTE lock is inline, no zap worker.
fn plan_61() -> Plan {
    plan(
        &[
            resolved(ConceptId::ReaperWork, "__oom_reap_task_mm"),
            resolved(ConceptId::VictimUnmap, "unmap_vmas"),
            resolved(ConceptId::PerVmaUnmap, "unmap_page_range"),
            resolved(ConceptId::SpinSlowpath, "native_queued_spin_lock_slowpath"),
        ],
        Exact {
            locks: true,
            ..Exact::default()
        },
    )
}

fn slot(p: &Plan, concept: ConceptId) -> u32 {
    p.functions
        .iter()
        .find(|f| f.concept == concept)
        .unwrap()
        .slot
}

#[test]
fn on_7x_both_walkers_step_through_the_zap_worker_and_the_pte_lock_function_names_takers() {
    let p = plan_7x();
    let c = collision_config(&p, None, Holders::Tracked);
    assert_eq!(c.walker_slot, slot(&p, ConceptId::VmaZapWorker));
    assert_eq!(
        (c.walker_arg, c.walker_arg_kind),
        (2, VmaArgKind::Address as u32)
    );
    assert_eq!(
        c.walker_parents,
        [
            slot(&p, ConceptId::VictimUnmap),
            slot(&p, ConceptId::PerVmaUnmap)
        ],
        "the victim's unmap_vmas and the reaper's zap_vma_for_reaping"
    );
    assert_eq!(c.pte_slot, slot(&p, ConceptId::PteLock));
    assert_eq!(c.pte_caller_slot, c.pte_slot);
    assert_eq!(c.wait_slot, slot(&p, ConceptId::SpinSlowpath));
    assert_eq!(c.third_party, 0, "third parties only when asked for");
    assert_eq!(collision_config(&p, None, Holders::All).third_party, 1);
}

#[test]
fn on_61_the_pte_lock_is_inline_so_waits_come_from_the_per_vma_step() {
    let p = plan_61();
    let c = collision_config(&p, None, Holders::Tracked);
    let per_vma = slot(&p, ConceptId::PerVmaUnmap);
    assert_eq!(c.walker_slot, per_vma);
    assert_eq!(
        c.walker_parents,
        [
            slot(&p, ConceptId::VictimUnmap),
            slot(&p, ConceptId::ReaperWork)
        ]
    );
    assert_eq!(
        c.pte_slot, SLOT_NONE,
        "no PTE-lock function to take a fexit"
    );
    assert_eq!(c.pte_caller_slot, per_vma);
}

fn attached(p: &Plan, mode: AttachMode) -> LadderReport {
    LadderReport {
        functions: p
            .functions
            .iter()
            .map(|f| FunctionAttach {
                function: f.clone(),
                mode,
                status: ProbeOutcome::Attached,
                fallback_from: None,
            })
            .collect(),
        ..LadderReport::default()
    }
}

#[test]
fn setup_says_why_holders_are_not_last_takers_and_why_waits_are_off() {
    let p = plan_7x();
    let c = collision_config(&p, None, Holders::Tracked);
    let fentry = setup(&c, &attached(&p, AttachMode::Fentry), &RtOwners::NotRt);
    assert_eq!((fentry.waits_off, fentry.last_taker_off), (None, None));

    let kprobe = setup(&c, &attached(&p, AttachMode::Kprobe), &RtOwners::NotRt);
    assert_eq!(kprobe.waits_off, None, "kprobes still log the waits");
    assert!(kprobe.last_taker_off.unwrap().contains("kretprobe"));

    let p61 = plan_61();
    let c61 = collision_config(&p61, None, Holders::Tracked);
    let inline = setup(&c61, &attached(&p61, AttachMode::Fentry), &RtOwners::NotRt);
    assert_eq!(inline.waits_off, None);
    assert!(inline.last_taker_off.unwrap().contains("macro before 6.5"));

    let refused = setup(&c, &attached(&p, AttachMode::None), &RtOwners::NotRt);
    assert!(
        refused
            .waits_off
            .unwrap()
            .starts_with("no function probe attached to __zap_vma_range")
    );

    let disabled = LadderReport {
        disabled: Some("watch mode".into()),
        ..attached(&p, AttachMode::Fentry)
    };
    assert_eq!(
        setup(&c, &disabled, &RtOwners::NotRt).waits_off.as_deref(),
        Some("watch mode")
    );
}

/// At the defaults the spin slow path is left to sampling: nothing is
/// logged (no walker-step tax on every recording), and the setup says that
/// `--exact-locks` is what records it, not that the kernel cannot.
#[test]
fn without_exact_locks_nothing_is_logged_and_the_setup_names_the_flag() {
    let default_7x = plan(
        &[
            resolved(ConceptId::ReaperWork, "__oom_reap_task_mm"),
            resolved(ConceptId::VictimUnmap, "unmap_vmas"),
            resolved(ConceptId::PerVmaUnmap, "zap_vma_for_reaping"),
            resolved(ConceptId::VmaZapWorker, "__zap_vma_range"),
            resolved(ConceptId::PteLock, "pte_offset_map_lock"),
            resolved(ConceptId::SpinSlowpath, "native_queued_spin_lock_slowpath"),
        ],
        Exact::default(),
    );
    let c = collision_config(&default_7x, None, Holders::All);
    assert_eq!(c, CollisionConfig::DISABLED);
    let ladder = LadderReport {
        skipped: default_7x.skipped.clone(),
        ..attached(&default_7x, AttachMode::Fentry)
    };
    let off = setup(&c, &ladder, &RtOwners::NotRt).waits_off.unwrap();
    assert!(off.contains("record --exact-locks"), "{off}");
    assert!(!off.contains("on this kernel"), "{off}");
}

fn comm(s: &str) -> [u8; 16] {
    let mut out = [0; 16];
    out[..s.len()].copy_from_slice(s.as_bytes());
    out
}

fn wait(start_ns: u64, duration_ns: u64, tid: u32, holder: Option<LastTaker>) -> PteWait {
    PteWait {
        start_ns,
        duration_ns,
        lock: 0xffff_8880_0000_1000,
        holder: holder.unwrap_or_default(),
        tid,
        context: Context::OomReaper.id(),
        found: u32::from(holder.is_some()),
        _pad: 0,
    }
}

/// A victim walker log 44 steps past full (its second step still open);
/// cpu0 with a wait named by an untracked taker and an open one; cpu1's
/// log 3 waits past full.
fn raw_fixture(kill: u64) -> RawCollisions {
    let mut walker = WalkerLog {
        count: WALKER_LOG_LEN as u64 + 44,
        ..WalkerLog::default()
    };
    walker.steps[0] = WalkerStep {
        start: 0x7f00_0000_0000,
        end: 0x7f00_0400_0000,
        enter_ns: kill + 10,
        exit_ns: kill + 500,
        tid: 7,
        _pad: 0,
    };
    // Still open at the drain: its exit is unknown, not "at the kill".
    walker.steps[1].enter_ns = kill + 600;
    let mut cpu0 = WaitLog {
        count: 2,
        ..WaitLog::default()
    };
    let khugepaged = LastTaker {
        taken_ns: kill - 5,
        addr: 0x7f00_0020_0000,
        tid: 55,
        context: TAKER_UNTRACKED,
        comm: comm("khugepaged"),
    };
    cpu0.waits[0] = wait(kill + 300, 40, 9, Some(khugepaged));
    cpu0.waits[1] = wait(kill + 100, WAIT_OPEN, 9, None);
    // A CPU whose log filled up: 3 more waits than it kept.
    let cpu1 = WaitLog {
        count: WAIT_LOG_LEN as u64 + 3,
        waits: [wait(kill + 200, 10, 11, None); WAIT_LOG_LEN],
    };
    RawCollisions {
        walkers: vec![(Context::VictimExit.id(), walker)],
        waits: vec![cpu0, cpu1],
        open_rt: Vec::new(),
    }
}

#[test]
fn the_model_places_steps_and_waits_on_the_kill_clock_and_counts_what_was_lost() {
    let kill = 1_000_000;
    let m = to_model(&raw_fixture(kill), "__zap_vma_range", kill);
    assert_eq!(m.walkers.len(), 1);
    let w = &m.walkers[0];
    assert_eq!(
        (w.context, w.function.as_str(), w.lost),
        (Context::VictimExit, "__zap_vma_range", 44)
    );
    assert_eq!(w.steps.len(), WALKER_LOG_LEN);
    assert_eq!((w.steps[0].enter_ns, w.steps[0].exit_ns), (10, Some(500)));
    assert_eq!(w.steps[1].exit_ns, None);
    assert_eq!(m.waits_lost, 3);
    // Both CPUs' kept waits, in start order: cpu0's open one, cpu1's,
    // cpu0's named one.
    assert_eq!(m.waits.len(), 2 + WAIT_LOG_LEN);
    let by_start: Vec<i64> = m.waits.iter().map(|w| w.start_ns).collect();
    assert!(by_start.windows(2).all(|p| p[0] <= p[1]));
    assert_eq!((by_start[0], by_start[by_start.len() - 1]), (100, 300));
    let open = m.waits.iter().find(|w| w.start_ns == 100).unwrap();
    assert_eq!((open.duration_ns, open.taker.clone()), (None, None));
    let named = m.waits.iter().find(|w| w.start_ns == 300).unwrap();
    assert_eq!(named.duration_ns, Some(40));
    let taker = named.taker.as_ref().unwrap();
    assert_eq!(
        (taker.context, taker.comm.as_str(), taker.taken_ns),
        (None, "khugepaged", -5)
    );
}

/// A PREEMPT_RT wait still asleep when the episode was drained is kept,
/// open (no duration), with its owner.
#[test]
fn an_rt_wait_open_at_the_drain_is_kept_open() {
    let kill = 1_000_000;
    let mut raw = raw_fixture(kill);
    let owner = LastTaker {
        tid: 77,
        context: Context::MreleaseCaller.id(),
        ..LastTaker::default()
    };
    raw.open_rt = vec![wait(kill + 900, WAIT_OPEN, 9, Some(owner))];
    let m = to_model(&raw, "__zap_vma_range", kill);
    let open = m.waits.iter().find(|w| w.start_ns == 900).unwrap();
    assert_eq!(open.duration_ns, None);
    assert_eq!(
        open.taker.as_ref().unwrap().context,
        Some(Context::MreleaseCaller)
    );
}

/// sid 7.2 rt's plan and collision config (its BTF: `spinlock_t` is an
/// `rt_mutex_base`), and owners read at offset 24.
fn rt_7x() -> (Plan, CollisionConfig, RtOwners) {
    let p = plan_7x();
    let rt_btf =
        crate::catalog::BtfFacts::from_fixture("vm_start_offset 0\nrt_lock 24 2856 2860 3400\n");
    let c = collision_config(&p, Some(&rt_btf), Holders::Tracked);
    let on = RtOwners::On(reaper_common::collision::RtOwnerConfig {
        owner_offset: 24,
        ..reaper_common::collision::RtOwnerConfig::DISABLED
    });
    (p, c, on)
}

/// PREEMPT_RT (sid 7.2 rt's BTF: `spinlock_t` is an `rt_mutex_base`): the
/// walker steps stay, the spin slow path's calls are not PTE-lock waits
/// (they are rt_spin_lock's own wait_lock), and the lock tracepoints log
/// the waits with the owner, so no last taker is needed.
#[test]
fn on_preempt_rt_the_owner_names_the_holder_and_the_slow_path_logs_nothing() {
    let (p, c, on) = rt_7x();
    assert_ne!(c.walker_slot, SLOT_NONE);
    assert_eq!(
        (c.wait_slot, c.pte_slot, c.pte_caller_slot),
        (SLOT_NONE, SLOT_NONE, SLOT_NONE)
    );
    let s = setup(&c, &attached(&p, AttachMode::Fentry), &on);
    assert_eq!(
        (s.waits_off, s.last_taker_off, s.rt_owner),
        (None, None, true)
    );
    let refused = RtOwners::Refused("rt_spin_lock is not in /proc/kallsyms".into());
    let s = setup(&c, &attached(&p, AttachMode::Fentry), &refused);
    assert!(s.waits_off.unwrap().contains("rt_spin_lock is not in"));
    assert!(!s.rt_owner);
    let s = setup(&c, &attached(&p, AttachMode::None), &on);
    assert!(
        s.waits_off
            .unwrap()
            .starts_with("no function probe attached to __zap_vma_range")
    );
    assert!(!s.rt_owner, "no walker steps, no owners claimed");
}

#[test]
fn on_preempt_rt_without_the_lock_tracepoints_the_waits_are_not_measured() {
    // A 5.10 rt kernel (no lock:contention_*) or one that refused both
    // attach forms: the owners are read at those tracepoints, so the
    // table must say why, not "no PTE-lock wait".
    let (p, c, on) = rt_7x();
    let answer = "tracepoint lock/contention_begin: No such file or directory";
    let owners = on.clone().after_lock_tracepoints(Some(answer.to_owned()));
    let s = setup(&c, &attached(&p, AttachMode::Fentry), &owners);
    let why = s.waits_off.expect("waits must be off");
    assert!(
        why.contains("(lock:contention_begin/end) did not attach"),
        "{why}"
    );
    assert!(why.contains(answer), "{why}");
    assert!(!s.rt_owner);
    assert_eq!(on.clone().after_lock_tracepoints(None), on);
    assert_eq!(
        RtOwners::NotRt.after_lock_tracepoints(Some(answer.into())),
        RtOwners::NotRt
    );
}
