//! Tests of the planning, the ladder, the drain and the model.

use std::collections::BTreeMap;

use aya::programs::{KProbe, ProgramError};
use reaper_common::{
    context::Context,
    function_timing::{
        CallRecord, FunctionStats, FunctionTimingConfig, PROG_KPROBE, PROG_KRETPROBE, SLOT_COUNT,
        SLOT_NONE, TOP_CALLS, TopCalls, VmaOrder,
    },
};

use super::*;
use crate::{
    model::{AttachMode, ConceptId, ProbeOutcome, ResolvedConcept, VmaOrderKind, error_chain},
    probes::{
        kernel_btf,
        refusal::{FromProgramError as _, Refusal, Step},
    },
};

fn resolved(concept: ConceptId, symbol: Option<&str>) -> ResolvedConcept {
    ResolvedConcept {
        concept,
        symbol: symbol.map(Into::into),
        candidates: vec![],
        attach_name: None,
        in_btf: Some(true),
    }
}

/// Issue 29: a per-page leaf and a per-batch function are left to sampling
/// unless asked for, each by its own flag, and then get a slot like any
/// timed function.
#[test]
fn per_page_and_per_batch_functions_get_a_slot_only_when_asked() {
    let concepts = [
        resolved(ConceptId::PerVmaUnmap, Some("unmap_page_range")),
        resolved(ConceptId::RmapRemoval, Some("page_remove_rmap")),
        resolved(ConceptId::PageFreeing, Some("free_pages_and_swap_cache")),
        resolved(ConceptId::TlbFlush, Some("tlb_flush_mmu")),
        resolved(ConceptId::TlbFinish, Some("tlb_finish_mmu")),
    ];
    let default = plan(&concepts, Exact::default());
    assert_eq!(symbols(&default), ["unmap_page_range", "tlb_finish_mmu"]);
    assert!(why(&default, ConceptId::RmapRemoval).contains("--exact-leaves"));
    for id in [ConceptId::PageFreeing, ConceptId::TlbFlush] {
        assert!(
            why(&default, id).contains("--exact-batches"),
            "{id:?}: {}",
            why(&default, id)
        );
    }
    let leaves = plan(
        &concepts,
        Exact {
            leaves: true,
            batches: false,
            locks: false,
        },
    );
    assert_eq!(
        symbols(&leaves),
        ["unmap_page_range", "page_remove_rmap", "tlb_finish_mmu"]
    );
    let batches = plan(
        &concepts,
        Exact {
            leaves: false,
            batches: true,
            locks: false,
        },
    );
    assert_eq!(
        symbols(&batches),
        [
            "unmap_page_range",
            "free_pages_and_swap_cache",
            "tlb_flush_mmu",
            "tlb_finish_mmu"
        ]
    );
    let all = plan(&concepts, Exact::ALL);
    assert_eq!(all.functions.len(), 5);
    assert!(all.skipped.is_empty());
}

/// The symbols a plan gives a slot, in slot order.
fn symbols(p: &Plan) -> Vec<String> {
    p.functions.iter().map(|f| f.symbol.clone()).collect()
}

/// What a plan says of a concept it skipped ("" when it has a slot).
fn why(p: &Plan, id: ConceptId) -> String {
    p.skipped
        .iter()
        .find(|s| s.0 == id)
        .map(|s| s.1.to_string())
        .unwrap_or_default()
}

#[test]
fn lock_path_is_timed_only_with_exact_locks() {
    let locks = Exact {
        locks: true,
        ..Exact::default()
    };
    // 7.x: a PTE-lock function; the batch freeing stays with sampling.
    let sid = [
        resolved(ConceptId::VmaZapWorker, Some("__zap_vma_range")),
        resolved(ConceptId::PteLock, Some("pte_offset_map_lock")),
        resolved(ConceptId::TlbFlush, Some("tlb_flush_mmu")),
        resolved(
            ConceptId::SpinSlowpath,
            Some("native_queued_spin_lock_slowpath"),
        ),
    ];
    let default = plan(&sid, Exact::default());
    assert_eq!(symbols(&default), ["__zap_vma_range"]);
    for id in [ConceptId::PteLock, ConceptId::SpinSlowpath] {
        assert!(why(&default, id).contains("--exact-locks"), "{id:?}");
    }
    assert_eq!(
        symbols(&plan(&sid, locks)),
        [
            "__zap_vma_range",
            "pte_offset_map_lock",
            "native_queued_spin_lock_slowpath"
        ]
    );
    // 6.1: the PTE lock is inline (absent, not "not timed"), and the exact
    // PTE-lock wait needs the batch freeing timed to tell its locks apart.
    let bookworm = [
        resolved(ConceptId::PteLock, None),
        resolved(ConceptId::TlbFlush, Some("tlb_flush_mmu")),
        resolved(
            ConceptId::SpinSlowpath,
            Some("native_queued_spin_lock_slowpath"),
        ),
    ];
    let default = plan(&bookworm, Exact::default());
    assert!(symbols(&default).is_empty());
    assert_eq!(
        why(&default, ConceptId::PteLock),
        "absent on this kernel (inline into zap_pte_range)"
    );
    assert_eq!(
        symbols(&plan(&bookworm, locks)),
        ["tlb_flush_mmu", "native_queued_spin_lock_slowpath"]
    );
}

#[test]
fn plan_skips_absent_and_untimed_concepts_with_reasons() {
    let p = plan(
        &[
            resolved(ConceptId::ReaperWork, Some("__oom_reap_task_mm")),
            resolved(ConceptId::ReaperKthread, Some("oom_reaper")),
            resolved(ConceptId::PteLock, None),
            resolved(ConceptId::PerVmaUnmap, Some("unmap_page_range")),
        ],
        Exact::default(),
    );
    assert_eq!(p.functions.len(), 2);
    assert_eq!(p.functions[0].slot, 0);
    assert_eq!(p.functions[1].symbol, "unmap_page_range");
    assert_eq!(p.functions[1].slot, 1);
    let skipped: BTreeMap<_, _> = p.skipped.iter().cloned().collect();
    assert!(skipped[&ConceptId::ReaperKthread].is_not_timed());
    assert_eq!(
        skipped[&ConceptId::PteLock],
        ProbeOutcome::Absent {
            inline_into: Some("zap_pte_range".into())
        }
    );
    let (config, off) = config_for(&p, None, false, Holders::Tracked);
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
    assert!(
        nm.iter()
            .any(|n| n.subject.to_string() == "reaper VMA order"
                && n.why.contains("order: unknown (needs fentry or kprobe)"))
    );
    assert!(nm[0].why.contains("--attach sampling"));
}

#[test]
fn a_disabled_ladder_says_why() {
    let p = plan(
        &[resolved(ConceptId::ReaperWork, Some("__oom_reap_task_mm"))],
        Exact::default(),
    );
    let report = LadderReport::disabled(&p, "not recorded in --watch mode");
    assert_eq!(report.attached().count(), 0);
    assert_eq!(
        report.probe_uses()[0].status,
        ProbeOutcome::not_attached("not recorded in --watch mode")
    );
    assert_eq!(report.not_measured()[0].why, "not recorded in --watch mode");
}

/// The verifier of the running kernel accepts every slot's kprobe and
/// kretprobe with order detection and issue 25's logs on (loads only;
/// needs root).
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
        // Issue 25's paths on too, third parties included.
        collision: reaper_common::function_timing::CollisionConfig {
            walker_slot: 4,
            walker_arg: 2,
            walker_arg_kind: reaper_common::function_timing::VmaArgKind::Address as u32,
            walker_parents: [1, 0],
            pte_slot: 5,
            pte_caller_slot: 5,
            wait_slot: 8,
            third_party: 1,
            _pad: 0,
        },
    };
    let offsets = reaper_common::tracepoint_offsets::TracepointOffsets::default();
    let mut ebpf = crate::probes::loader::load_with_timing(&offsets, &Default::default(), &config)
        .expect("object loads");
    for slot in 0..SLOT_COUNT as usize {
        for prog in [PROG_KPROBE[slot], PROG_KRETPROBE[slot]] {
            let p: &mut KProbe = ebpf.program_mut(prog).unwrap().try_into().unwrap();
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
                concept: ConceptId::MreleaseSyscall,
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
        (p.context, p.symbol.as_str(), p.concept.name()),
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
    let fentry = auto_rung(Ok::<(), &str>(()), || -> Result<(), &str> {
        panic!("kprobe tried after fentry attached")
    });
    assert_eq!(
        (fentry.mode, fentry.fallback_from),
        (AttachMode::Fentry, None)
    );
    let kprobe = auto_rung(Err("EPERM"), || Ok::<(), &str>(()));
    assert_eq!(kprobe.mode, AttachMode::Kprobe);
    assert!(kprobe.status.is_attached());
    assert_eq!(
        kprobe.fallback_from.as_deref(),
        Some("fentry/fexit refused: EPERM")
    );
    let none = auto_rung(Err("EPERM"), || Err("no kprobes"));
    assert_eq!(none.mode, AttachMode::None);
    assert_eq!(
        none.status.to_string(),
        "fentry/fexit: EPERM; kprobe/kretprobe: no kprobes"
    );
}

#[test]
fn only_kernel_wide_refusals_are_decided_once() {
    let io = |code| {
        Refusal::from_error(
            Step::Load,
            &ProgramError::IOError(std::io::Error::from_raw_os_error(code)),
        )
    };
    let refuses_every_function = kernel_btf::refuses_every_function;
    assert!(refuses_every_function(&io(1)), "EPERM: a policy");
    assert!(refuses_every_function(&io(524)), "ENOTSUPP: no trampolines");
    assert!(!refuses_every_function(&io(2)), "ENOENT: this function");
    assert!(!refuses_every_function(&io(22)), "EINVAL: this program");
}

#[test]
fn attach_policies_parse_and_are_spelled_as_their_modes() {
    use clap::ValueEnum as _;
    assert_eq!(
        AttachPolicy::from_str("kprobe", false),
        Ok(AttachPolicy::Kprobe)
    );
    assert!(AttachPolicy::from_str("perf", false).is_err());
    let names = AttachPolicy::ALL.map(AttachPolicy::name);
    assert_eq!(names, ["auto", "fentry", "kprobe", "sampling"]);
    assert_eq!(AttachPolicy::Fentry.forced(), Some(AttachMode::Fentry));
}
