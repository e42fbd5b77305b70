//! Folding reaper's probes in real recorded stacks (the sid x86_64 VM
//! fixture, recorded with fentry/fexit on every catalog function) and in
//! the kprobe and tracepoint shapes.

use std::path::Path;

use super::*;
use crate::model::Run;

fn fixture(path: &str) -> Run {
    crate::report::load_run(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .unwrap()
}

fn frames(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Every function-timing program of the fixture's slots, named by slot.
fn slots() -> ProbeFrames {
    let programs = (0..12).flat_map(|slot| {
        ["fentry", "fexit", "kprobe", "kretprobe"]
            .into_iter()
            .map(move |mode| (format!("fn_{mode}_{slot}"), format!("{mode} f{slot}")))
    });
    let timeline = [
        "timeline_mrelease_enter",
        "timeline_mrelease_exit",
        "sample_cpu_clock",
    ]
    .map(|p| (p.to_owned(), p.to_owned()));
    ProbeFrames::new(programs.chain(timeline), [(0x136ea, "f6".to_owned())])
}

#[test]
fn trampolines_are_folded_away_and_programs_labelled_in_a_fixture_stack() {
    let run = fixture("function_timing/sid-x86_64.run.json");
    let fold = slots();
    let stacks: Vec<_> = run
        .episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .flat_map(|c| &c.stacks)
        .collect();
    assert!(
        stacks
            .iter()
            .any(|s| s.frames.iter().any(|f| f.starts_with("bpf_trampoline_"))),
        "the fixture has trampoline frames"
    );
    let mut labelled = 0;
    for stack in &stacks {
        let folded = fold.fold(stack.frames.clone());
        assert!(
            !folded.iter().any(|f| f.starts_with("bpf_trampoline_")),
            "{folded:?}"
        );
        assert!(
            !folded
                .iter()
                .any(|f| f.starts_with("bpf_prog_") || f.starts_with("__bpf_prog_enter")),
            "{folded:?}"
        );
        labelled += usize::from(
            folded
                .last()
                .is_some_and(|f| f.starts_with("[reaper probe: ")),
        );
        // Only frames are removed or replaced: what is left is the same
        // kernel path, in order.
        let kept: Vec<&String> = folded.iter().filter(|f| !f.starts_with('[')).collect();
        let mut original = stack.frames.iter();
        assert!(kept.iter().all(|k| original.any(|o| o == *k)), "{folded:?}");
    }
    assert!(labelled > 0);
}

#[test]
fn a_fixture_fentry_stack_becomes_one_probe_frame() {
    let stack = frames(&[
        "__mmput",
        "bpf_trampoline_6442528412",
        "exit_mmap",
        "bpf_trampoline_6442565559",
        "unmap_vmas",
        "bpf_trampoline_6442510458",
        "__zap_vma_range",
        "bpf_trampoline_6442530538",
        "bpf_prog_8599cc0c0431e014_fn_fentry_6",
        "ktime_get_mono_fast_ns",
        "read_hpet",
    ]);
    assert_eq!(
        slots().fold(stack),
        frames(&[
            "__mmput",
            "exit_mmap",
            "unmap_vmas",
            "__zap_vma_range",
            "[reaper probe: fentry f6]"
        ])
    );
    // Sampled inside the trampoline before the program: named by the
    // traced function the key's BTF id resolves to.
    let entering = frames(&[
        "__zap_vma_range",
        "bpf_trampoline_6442530538",
        "__bpf_prog_enter_recur",
    ]);
    assert_eq!(
        slots().fold(entering),
        frames(&["__zap_vma_range", "[reaper probe: trampoline of f6]"])
    );
    let unknown = frames(&["x", "bpf_trampoline_6442450945"]);
    assert_eq!(slots().fold(unknown), frames(&["x", "[bpf trampoline]"]));
}

#[test]
fn kprobe_and_tracepoint_machinery_folds_into_the_program() {
    let kprobe = frames(&[
        "zap_pte_range",
        "page_remove_rmap",
        "kprobe_ftrace_handler",
        "kprobe_perf_func",
        "trace_call_bpf",
        "bpf_prog_0123456789abcdef_fn_kprobe_4",
        "read_hpet",
    ]);
    assert_eq!(
        slots().fold(kprobe),
        frames(&[
            "zap_pte_range",
            "page_remove_rmap",
            "[reaper probe: kprobe f4]"
        ])
    );
    // Without BTF the kernel truncates names to 15 bytes.
    let tracepoint = frames(&[
        "syscall_exit_work",
        "trace_call_bpf",
        "bpf_prog_0123456789abcdef_sample_cpu_cloc",
    ]);
    assert_eq!(
        slots().fold(tracepoint),
        frames(&["syscall_exit_work", "[reaper probe: sample_cpu_clock]"])
    );
    let shared = frames(&["bpf_prog_0123456789abcdef_timeline_mrelea"]);
    assert_eq!(
        slots().fold(shared),
        frames(&["[reaper probe: timeline_mrelea…]"])
    );
    // ftrace's entry code on the way to a trampoline, passing through.
    let direct = frames(&[
        "__mmput",
        "ftrace_trampoline",
        "bpf_trampoline_6442450950",
        "exit_mmap",
        "unmap_vmas",
    ]);
    assert_eq!(
        slots().fold(direct),
        frames(&["__mmput", "exit_mmap", "unmap_vmas"])
    );
    let arm64 = frames(&[
        "unmap_vmas",
        "tlb_finish_mmu",
        "ftrace_caller_direct",
        "tlb_flush_mmu",
    ]);
    assert_eq!(
        slots().fold(arm64),
        frames(&["unmap_vmas", "tlb_finish_mmu", "tlb_flush_mmu"])
    );
    // ...or running reaper's program: part of the probe's frame.
    let running = frames(&[
        "__mmput",
        "ftrace_trampoline",
        "bpf_trampoline_6442450950",
        "bpf_prog_0123456789abcdef_fn_fentry_4",
        "ktime_get_mono_fast_ns",
    ]);
    assert_eq!(
        slots().fold(running),
        frames(&["__mmput", "[reaper probe: fentry f4]"])
    );
    // Another tool's program is kernel code to reaper: left alone.
    let foreign = frames(&["f", "bpf_prog_0123456789abcdef_other"]);
    assert_eq!(slots().fold(foreign.clone()), foreign);
}

#[test]
fn recording_names_slot_programs_by_the_function_their_ladder_attached() {
    use crate::model::{AttachMode, ProbeOutcome};
    use crate::probes::function_timing::{FunctionAttach, LadderReport, SlotFunction};
    let attach = |slot: u32, symbol: &str, mode: AttachMode| FunctionAttach {
        function: SlotFunction {
            slot,
            concept: crate::model::ConceptId::ReaperWork,
            symbol: symbol.into(),
            attach_name: symbol.into(),
            in_btf: Some(true),
        },
        mode,
        status: ProbeOutcome::Attached,
        fallback_from: None,
    };
    let ladder = LadderReport {
        functions: vec![
            attach(4, "page_remove_rmap", AttachMode::Fentry),
            attach(5, "unmap_page_range", AttachMode::Kprobe),
        ],
        ..LadderReport::default()
    };
    let programs = [
        "fn_fexit_4",
        "fn_kretprobe_5",
        "fn_fentry_7",
        "sample_cpu_clock",
    ];
    let btf_ids = |f: &str| (f == "page_remove_rmap").then_some(79_594);
    let fold = ProbeFrames::for_recording(programs, &ladder, btf_ids);
    let tag = "bpf_prog_0123456789abcdef_";
    let one = |frame: String| fold.fold(vec!["caller".to_owned(), frame]);
    assert_eq!(
        one(format!("{tag}fn_fexit_4"))[1],
        "[reaper probe: fexit page_remove_rmap]"
    );
    assert_eq!(
        one(format!("{tag}fn_kretprobe_5"))[1],
        "[reaper probe: kretprobe unmap_page_range]"
    );
    // A slot with no function attached keeps its program name.
    assert_eq!(
        one(format!("{tag}fn_fentry_7"))[1],
        "[reaper probe: fn_fentry_7]"
    );
    assert_eq!(
        one("bpf_trampoline_6442530538".to_owned())[1],
        "[reaper probe: trampoline of page_remove_rmap]"
    );
}

/// bookworm 6.1 arm64 (kprobes; 2026-12-01 vm-test): the unwinder stops at
/// `trace_call_bpf`, with no program frame.
#[test]
fn arm64_kretprobe_dispatch_without_a_program_frame_is_a_probe_when_reaper_used_kprobes() {
    let stack = frames(&[
        "exit_mmap",
        "unmap_vmas",
        "unmap_page_range",
        "__kretprobe_trampoline",
        "trampoline_probe_handler",
        "__kretprobe_trampoline_handler",
        "kretprobe_dispatcher",
        "kretprobe_perf_func",
        "trace_call_bpf",
    ]);
    assert_eq!(
        slots().with_kprobes(true).fold(stack.clone()),
        frames(&[
            "exit_mmap",
            "unmap_vmas",
            "unmap_page_range",
            "[reaper probe: kretprobe]"
        ])
    );
    // Without reaper's kprobes, someone else's: left alone.
    assert_eq!(slots().fold(stack.clone()), stack);
}

/// sid 7.2 arm64 with fentry (recorded 2026-12-01): no trampoline frame, a
/// traced function twice in a row, the trampoline's helpers as leaves.
#[test]
fn arm64_fentry_repeats_collapse_and_trampoline_helpers_become_probe_frames() {
    let traced = [
        "exit_mmap",
        "unmap_vmas",
        "__zap_vma_range",
        "folio_remove_rmap_ptes",
        "tlb_flush_mmu",
        "free_pages_and_swap_cache",
    ];
    let fold = ProbeFrames::new(
        [(
            "fn_fexit_3".to_owned(),
            "fexit folio_remove_rmap_ptes".to_owned(),
        )],
        traced.iter().zip(1..).map(|(f, id)| (id, (*f).to_owned())),
    );
    let head = ["do_exit", "mmput", "__mmput", "exit_mmap", "exit_mmap"];
    let body = [
        "unmap_vmas",
        "unmap_vmas",
        "__zap_vma_range",
        "__zap_vma_range",
    ];
    let stack = |tail: &[&str]| frames(&[&head[..], &body[..], tail].concat());
    let want = |tail: &str| {
        frames(&[
            "do_exit",
            "mmput",
            "__mmput",
            "exit_mmap",
            "unmap_vmas",
            "__zap_vma_range",
            "folio_remove_rmap_ptes",
            tail,
        ])
    };
    for helper in [
        "__bpf_prog_enter_recur",
        "__bpf_prog_exit_recur",
        "__bpf_tramp_enter",
        "__bpf_tramp_exit",
        "bpf_trampoline_put",
    ] {
        assert_eq!(
            fold.fold(stack(&["folio_remove_rmap_ptes", helper])),
            want("[reaper probe: trampoline of folio_remove_rmap_ptes]")
        );
    }
    // A program frame under the helper names the program; an interrupt
    // taken in the helper is part of the probe's cost.
    assert_eq!(
        fold.fold(stack(&[
            "folio_remove_rmap_ptes",
            "__bpf_prog_exit",
            "el1h_64_irq",
            "tcp_orphan_update"
        ])),
        want("[reaper probe: trampoline of folio_remove_rmap_ptes]")
    );
    assert_eq!(
        fold.fold(stack(&[
            "folio_remove_rmap_ptes",
            "bpf_prog_0123456789abcdef_fn_fexit_3",
            "ktime_get_mono_fast_ns"
        ])),
        want("[reaper probe: fexit folio_remove_rmap_ptes]")
    );
    // The traced function's own work keeps one frame per call.
    let work = fold.fold(stack(&[
        "folio_remove_rmap_ptes",
        "folio_remove_rmap_ptes",
        "__lruvec_stat_mod_folio",
    ]));
    assert_eq!(
        work[work.len() - 2..],
        frames(&["folio_remove_rmap_ptes", "__lruvec_stat_mod_folio"])
    );
    assert_eq!(work.iter().filter(|f| *f == "exit_mmap").count(), 1);
    // An untraced function's repeat and a helper under it are left alone.
    assert_eq!(
        fold.fold(frames(&["do_exit", "mmput", "mmput", "__bpf_prog_exit"])),
        frames(&["do_exit", "mmput", "mmput", "__bpf_prog_exit"])
    );
}

#[test]
fn probe_labels_round_trip() {
    assert_eq!(
        probe_label(&label("fexit exit_mmap")),
        Some("fexit exit_mmap")
    );
    assert_eq!(probe_label("exit_mmap"), None);
    assert_eq!(probe_label("[bpf trampoline]"), None);
}

#[test]
fn a_nested_run_the_kernel_skipped_is_probe_machinery_not_a_program() {
    // The recursion guard's counter shares the programs' prefix but has no
    // tag: under a trampoline of reaper's it is that trampoline's cost...
    let trampoline = frames(&[
        "queued_spin_lock_slowpath",
        "bpf_trampoline_6442530538",
        "__bpf_prog_enter_recur",
        "bpf_prog_inc_misses_counter",
    ]);
    assert_eq!(
        slots().fold(trampoline),
        frames(&[
            "queued_spin_lock_slowpath",
            "[reaper probe: trampoline of f6]"
        ])
    );
    // ...also when the unwinder skipped the trampoline (sampled on the
    // counter's first instruction, before it set up its frame)...
    let skipped = frames(&["unmap_vmas", "f6", "bpf_prog_inc_misses_counter"]);
    assert_eq!(
        slots().fold(skipped),
        frames(&["unmap_vmas", "f6", "[reaper probe: trampoline of f6]"])
    );
    // ...and under a raw tracepoint's dispatch, whose program the stack
    // does not name, a skipped run of some BPF probe.
    let raw = frames(&[
        "_raw_spin_lock",
        "queued_spin_lock_slowpath",
        "__traceiter_contention_begin",
        "bpf_trace_run2",
        "bpf_prog_inc_misses_counter",
    ]);
    assert_eq!(
        slots().fold(raw),
        frames(&[
            "_raw_spin_lock",
            "queued_spin_lock_slowpath",
            "__traceiter_contention_begin",
            "[bpf probe: run skipped]"
        ])
    );
}

/// Regression: on Debian bullseye's 5.10 a trampoline is named
/// `bpf_trampoline_<key>_<image>`; taken for a trampoline helper, it cut
/// every stack below the outermost traced function (`exit_mmap;[reaper
/// probe: trampoline of exit_mmap]` for 48 ms of 62 in a victim), and the
/// summary's sampled rows lost their children. A real 5.10 stack (x86_64,
/// fentry/fexit on every catalog function; BTF ids from its kallsyms run).
#[test]
fn trampolines_named_with_their_image_index_pass_through_on_5_10() {
    let programs = [
        ("fn_fentry_4", "fentry page_remove_rmap"),
        ("fn_fexit_4", "fexit page_remove_rmap"),
    ]
    .map(|(p, w)| (p.to_owned(), w.to_owned()));
    let traced = [
        (27446, "exit_mmap"),
        (27325, "unmap_vmas"),
        (27329, "unmap_page_range"),
        (27620, "page_remove_rmap"),
    ]
    .map(|(id, f)| (id, f.to_owned()));
    let fold = ProbeFrames::new(programs, traced);
    let raw = frames(&[
        "do_exit",
        "mmput",
        "exit_mmap",
        "bpf_trampoline_27446_1",
        "exit_mmap",
        "unmap_vmas",
        "bpf_trampoline_27325_1",
        "unmap_vmas",
        "unmap_page_range",
        "bpf_trampoline_27329_1",
        "unmap_page_range",
        "page_remove_rmap",
        "bpf_trampoline_27620_1",
        "bpf_prog_f4e8618523d82897_fn_fentry_4",
    ]);
    assert_eq!(
        fold.fold(raw),
        [
            "do_exit",
            "mmput",
            "exit_mmap",
            "unmap_vmas",
            "unmap_page_range",
            "page_remove_rmap",
            "[reaper probe: fentry page_remove_rmap]",
        ]
    );
    // The kernel's own bpf_trampoline_* functions are no trampolines.
    assert_eq!(fold.trampoline("bpf_trampoline_link_prog"), None);
    assert_eq!(fold.trampoline("bpf_trampoline_27446_x"), None);
    assert_eq!(fold.trampoline("bpf_trampoline_6442528412"), Some(None));
}

/// Regression: on Debian bullseye's arm64 5.10 (kprobes on every timed
/// function) the unwinder leaves a kretprobe's replacement return address
/// in place of each kretprobed function's caller, several in a row; the
/// first was taken for the kretprobe's handler and the whole teardown below
/// it became "[reaper probe: kretprobe]". They are lost callers; the
/// handler itself still folds.
#[test]
fn kretprobe_return_addresses_in_a_stack_are_lost_callers_not_the_handler() {
    let fold = slots().with_kprobes(true);
    let raw = frames(&[
        "do_exit",
        "kretprobe_trampoline",
        "kretprobe_trampoline",
        "unmap_vmas",
        "kretprobe_trampoline",
        "page_remove_rmap",
    ]);
    let lost = crate::model::FRAME_CALLER_LOST;
    assert_eq!(
        fold.fold(raw),
        [
            "do_exit",
            lost,
            lost,
            "unmap_vmas",
            lost,
            "page_remove_rmap"
        ]
    );
    let handler = frames(&[
        "unmap_vmas",
        "kretprobe_trampoline",
        "trampoline_probe_handler",
        "kretprobe_dispatcher",
        "bpf_prog_0123456789abcdef_fn_kretprobe_3",
    ]);
    assert_eq!(
        fold.fold(handler),
        ["unmap_vmas", "[reaper probe: kretprobe f3]"]
    );
}
