//! Golden tests over the run files in `tests/data/report/`.
//!
//! Each `<name>.run.json` has its text report beside it in
//! `<name>.expected.txt`; `6.18-mrelease` also has its folded files and JSON
//! report. A missing or different golden fails; `REAPER_BLESS=1` rewrites
//! them (and is the only way they are created). The fixtures come from
//! `make_fixtures.py` in the same directory.

use std::path::{Path, PathBuf};

use super::*;
use crate::model::Run;
use reaper_model::golden::{blessing, check_golden};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report")
}

fn fixture(name: &str) -> Run {
    load_run(&data_dir().join(format!("{name}.run.json"))).unwrap()
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            name.strip_suffix(".run.json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn text_reports_match_goldens() {
    let names = fixture_names();
    assert!(names.len() >= 6, "fixtures missing: {names:?}");
    for name in names {
        let text = render_text(&fixture(&name), &ReportOptions::default());
        check_golden(&data_dir().join(format!("{name}.expected.txt")), &text);
    }
}

#[test]
fn json_report_matches_golden() {
    let json = render_json(&fixture("6.18-mrelease"), &ReportOptions::default());
    check_golden(&data_dir().join("6.18-mrelease.expected.json"), &json);
}

/// Issue 25: the waiter × holder table's JSON (`waiter`, `holder`) of a
/// real 7.2 run, and the run read back with the holders named by walker
/// steps instead, as a 6.1 kernel (inline PTE lock) would name them.
#[test]
fn collision_tables_match_goldens() {
    let run = fixture("7.2-collisions");
    let report = analyze(&run, &ReportOptions::default());
    let json = serde_json::to_string_pretty(&report.collisions).unwrap() + "\n";
    check_golden(
        &data_dir().join("7.2-collisions.expected.collisions.json"),
        &json,
    );
    assert!(json.contains("\"waiter\"") && json.contains("\"holder\""));
    let mut inline = run;
    if let Some(setup) = inline.recording.pte_holders.as_mut() {
        setup.last_taker_off = Some("the PTE lock is taken inline on this kernel".into());
    }
    let report = analyze(&inline, &ReportOptions::default());
    let text = super::text::render_collisions(report.collisions.as_ref().unwrap());
    check_golden(
        &data_dir().join("7.2-collisions.expected.walker-in-step.txt"),
        &text,
    );
}

/// Issue 25's "done when": in every episode the table's waits and total
/// equal the exact PTE-lock row's (both are the spin slow path's calls
/// from the PTE-lock call site; the table only names their holders).
#[test]
fn collision_tables_add_up_to_the_exact_pte_lock_row() {
    for name in ["6.1-collisions", "7.2-collisions"] {
        let run = fixture(name);
        let frames = crate::catalog::ConceptFrames::of(&run.symbols);
        let source = super::pte_lock_exact::ExactSource::of(&frames).unwrap();
        let table = super::collision::build(&run).unwrap();
        for (episode, e) in run.episodes.iter().zip(&table.episodes) {
            let (victim, reaper, calls) = source.episode(episode).unwrap();
            let count: u64 = e.rows.iter().map(|r| r.count).sum();
            let total: u64 = e.rows.iter().map(|r| r.total_ns).sum();
            assert_eq!(
                (count, total),
                (calls, victim + reaper),
                "{name} episode {}",
                e.episode
            );
            assert!(
                e.rows
                    .iter()
                    .all(|r| r.holder != super::model::Holder::Unknown)
            );
        }
    }
}

/// Issue 25 on PREEMPT_RT, a real run (sid 7.2.13 rt in the VM matrix,
/// `record --exact-locks`, 2026-12-06): the waits are the sleeping
/// rt_spin_lock waits from the PTE-lock call site that lock:contention_begin
/// saw, each with the lock's owner read from the rt_mutex; in every episode
/// they are exactly the summary's "PTE-lock sleeping waits traced" row
/// (the same tracepoint's waits: the table only names their holders), and
/// every holder is known.
#[test]
fn rt_collision_tables_add_up_to_the_traced_sleeping_row() {
    let run = fixture("7.2-rt-collisions");
    assert!(run.host.preempt_rt.is_some());
    let report = analyze(&run, &ReportOptions::default());
    let table = report.collisions.as_ref().unwrap();
    assert_eq!(table.not_measured, None);
    assert_eq!(table.named_by, super::model::HolderSource::RtOwner);
    let traced = report
        .summary
        .rows
        .iter()
        .find(|r| r.label == "PTE-lock sleeping waits traced (rt_spin_lock)")
        .unwrap();
    let mut waits = 0;
    for (i, cell) in traced.cells.iter().enumerate() {
        let model::Cell::Measured(v) = cell else {
            panic!("episode {}: not measured: {cell:?}", i + 1);
        };
        let rows = table
            .episodes
            .iter()
            .find(|e| e.episode == i + 1)
            .map_or(&[][..], |e| &e.rows[..]);
        let count: u64 = rows.iter().map(|r| r.count).sum();
        let total_ms = rows.iter().map(|r| r.total_ns).sum::<u64>() as f64 / 1e6;
        assert_eq!(Some(count), v.count, "episode {}", i + 1);
        assert!(
            (total_ms - v.total_ms).abs() < 0.05,
            "episode {}: {total_ms} vs {}",
            i + 1,
            v.total_ms
        );
        assert!(
            rows.iter()
                .all(|r| r.holder != super::model::Holder::Unknown)
        );
        waits += count;
    }
    assert!(waits > 0, "the fixture has waits to attribute");
}

/// `report --json` of every fixture reads back into reaper-model's
/// `Report` (what xtask and scripts decode it with) and writes the same
/// bytes again: the decoded types lose nothing the report writes (reclaim
/// reasons, lost races, skipped fields).
#[test]
fn json_reports_decode_into_the_model_and_write_back_the_same() {
    for name in fixture_names() {
        let json = render_json(&fixture(&name), &ReportOptions::default());
        let decoded: reaper_model::output::report::Report = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{name}: report --json does not decode: {e}"));
        assert_eq!(super::json::render(&decoded), json, "{name}");
        assert!(
            decoded.summary.rows.iter().all(|r| r.id.is_none()),
            "{name}: a row id is not written, so none is read"
        );
    }
}

#[test]
fn written_files_match_goldens_and_svgs_parse() {
    let run = fixture("6.18-mrelease");
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(
        &run,
        &crate::output::OutputDir::create(dir.path()).unwrap(),
        &ReportOptions::default(),
    )
    .unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "victim_exit.folded",
            "victim_exit.svg",
            "mrelease_caller.folded",
            "mrelease_caller.svg",
            "combined.folded",
            "combined.svg"
        ]
    );
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        if name.ends_with(".folded") {
            check_golden(
                &data_dir().join(format!("6.18-mrelease.expected.{name}")),
                &text,
            );
            continue;
        }
        assert_svg(&text, &name);
    }
}

fn assert_svg(svg: &str, name: &str) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut elements = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => {
                elements += 1
            }
            Ok(_) => {}
            Err(e) => panic!("{name}: not XML at {}: {e}", reader.buffer_position()),
        }
    }
    assert!(elements > 10, "{name}: only {elements} elements");
    let expect: &[&str] = match name {
        "victim_exit.svg" => &[
            "exit_mmap",
            "__pte_offset_map_lock",
            "reaper: victim exit — 6.18",
        ],
        "mrelease_caller.svg" => &["__oom_reap_task_mm", "__x64_sys_process_mrelease"],
        _ => &[
            "victim_exit",
            "mrelease_caller",
            "exit_mmap",
            "__oom_reap_task_mm",
        ],
    };
    for frame in expect {
        assert!(svg.contains(frame), "{name} lacks {frame}");
    }
    assert!(svg.contains(super::svg::COUNT_NAME), "{name}: count name");
}

/// `1234567` as inferno prints counts: `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The flame graphs weigh stacks like the tables: a context's folded lines
/// add up to its "Event count" (summed over the episodes), and its SVG's
/// root frame shows the per-episode mean in µs, in every fixture.
#[test]
fn flame_graph_totals_equal_the_tables() {
    for name in fixture_names() {
        let run = fixture(&name);
        let report = analyze(&run, &ReportOptions::default());
        let n = run.episodes.len().max(1) as u64;
        for context in &report.contexts {
            let lines = super::folded::context_lines(&run, context.context);
            assert_eq!(
                super::folded::total(&lines),
                context.period_ns,
                "{name} {}",
                context.context
            );
            if lines.is_empty() {
                continue;
            }
            let svg = super::svg::flamegraph(&run, context.label.as_str(), &lines).unwrap();
            let svg = String::from_utf8(svg).unwrap();
            let mean_us = (context.period_ns as f64 / n as f64 / 1000.0).round() as u64;
            let root = format!(
                "all ({} {}, 100%)",
                thousands(mean_us),
                super::svg::COUNT_NAME
            );
            assert!(
                svg.contains(&root),
                "{name} {}: no {root:?}",
                context.context
            );
        }
    }
}

#[test]
fn run_round_trips_through_json() {
    for name in fixture_names() {
        let run = fixture(&name);
        let text = serde_json::to_string_pretty(&run).unwrap();
        let back = super::load::parse_run(&text, Path::new("mem")).unwrap();
        assert_eq!(back, run, "{name}");
    }
}

#[test]
fn a_directory_means_its_run_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_dir().join("6.18-mrelease.run.json"),
        dir.path().join("run.json"),
    )
    .unwrap();
    assert_eq!(load_run(dir.path()).unwrap(), fixture("6.18-mrelease"));
}

fn load_bad(name: &str) -> LoadError {
    load_run(&data_dir().join(name)).expect_err(name)
}

#[test]
fn missing_file_is_missing() {
    let err = load_bad("does-not-exist.run.json");
    assert!(matches!(err, LoadError::Missing { .. }), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    let err = load_run(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::Missing { ref path } if path.ends_with("run.json")));
}

#[test]
fn truncated_file_says_where() {
    let err = load_bad("bad-truncated.json");
    let LoadError::Corrupt { line, column, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(*line > 100 && *column > 0, "{line}:{column}");
    let message = err.to_string();
    assert!(
        message.contains("truncated or corrupt JSON at line"),
        "{message}"
    );
}

#[test]
fn corrupt_file_says_where() {
    let err = load_bad("bad-corrupt.json");
    assert!(matches!(err, LoadError::Corrupt { line: 4, .. }), "{err:?}");
    assert!(err.to_string().contains("at line 4 column"), "{err}");
}

#[test]
fn other_json_is_not_a_run() {
    let err = load_bad("bad-not-a-run.json");
    assert!(matches!(err, LoadError::NotARun { .. }), "{err:?}");
    let err = load_bad("bad-no-schema.json");
    assert!(matches!(err, LoadError::NotARun { .. }), "{err:?}");
    assert!(err.to_string().contains("not a reaper run file"), "{err}");
}

/// A run file with one value outside reaper's vocabulary, set by `edit`.
fn run_with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Run, LoadError> {
    let text = std::fs::read_to_string(data_dir().join("6.18-mrelease.run.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut value);
    super::load::parse_run(&value.to_string(), Path::new("edited.json"))
}

/// Changes one value of a run file's JSON.
type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn values_outside_the_vocabulary_are_refused_naming_the_field() {
    let cases: [(&str, Edit); 4] = [
        (
            "unknown context \"../../x\"; reaper writes only victim_exit, mrelease_caller, oom_reaper",
            Box::new(|v| v["episodes"][0]["contexts"][0]["context"] = "../../x".into()),
        ),
        (
            "unknown context \"Victim_exit\"",
            Box::new(|v| {
                let t = v["episodes"][0]["timeline"].as_array_mut().unwrap();
                let tracked = t.iter_mut().find(|e| e.get("context").is_some()).unwrap();
                tracked["context"] = "Victim_exit".into();
            }),
        ),
        (
            "unknown attach mode \"uprobe\"; reaper writes only perf_event, tracepoint, raw_tracepoint, fentry, kprobe, none",
            Box::new(|v| v["recording"]["probes"][0]["mode"] = "uprobe".into()),
        ),
        (
            "unknown VMA order \"sideways\"",
            Box::new(|v| {
                v["episodes"][0]["function_timing"] = serde_json::json!({
                    "functions": [],
                    "vma_orders": [{"context": "mrelease_caller", "function": "f",
                        "order": "sideways", "vmas": 2, "first": 1, "last": 2,
                        "forward_steps": 1, "reverse_steps": 0}]
                });
            }),
        ),
    ];
    for (expected, edit) in cases {
        let err = run_with(edit).unwrap_err();
        assert!(matches!(err, LoadError::NotARun { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("not a reaper run file") && message.contains(expected),
            "{message}"
        );
    }
}

#[test]
fn probe_outcomes_round_trip_byte_for_byte() {
    for name in fixture_names() {
        let path = data_dir().join(format!("{name}.run.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        let run = load_run(&path).unwrap();
        let typed = serde_json::to_value(&run).unwrap();
        assert_eq!(
            raw["recording"]["probes"], typed["recording"]["probes"],
            "{name}"
        );
        for (a, b) in raw["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .zip(typed["episodes"].as_array().unwrap())
        {
            assert_eq!(
                a["contexts"].as_array().map(Vec::len),
                b["contexts"].as_array().map(Vec::len)
            );
            for (ca, cb) in a["contexts"]
                .as_array()
                .unwrap()
                .iter()
                .zip(b["contexts"].as_array().unwrap())
            {
                assert_eq!(ca["context"], cb["context"], "{name}");
            }
        }
    }
}

#[test]
fn unknown_schema_names_both_versions() {
    let err = load_bad("bad-wrong-schema.json");
    assert!(
        matches!(
            err,
            LoadError::UnknownSchema {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("schema version 7") && message.contains("reads version 1"));
}

#[test]
fn lock_waits_not_measured_are_never_zero() {
    let report = analyze(&fixture("6.1-no-lock-probe"), &ReportOptions::default());
    let row = &report.summary.rows[2];
    assert_eq!(
        row.label,
        "PTE-lock waits traced (queued only, not pending-bit spins)"
    );
    assert!(
        matches!(&row.cells[0], model::Cell::NotMeasured { why } if why.contains("lock:contention_begin/end did not attach")),
        "{:?}",
        row.cells
    );
    assert!(report.contexts[0].lock_waits.not_measured.is_some());
    let text = render_text(&fixture("6.1-no-lock-probe"), &ReportOptions::default());
    assert!(text.contains("not measured (lock:contention_begin/end did not attach"));
}

/// Where the contention tracepoints are missing and record left the spin
/// slow path to sampling, the lock-wait rows name the flag that gives them.
#[test]
fn lock_waits_without_tracepoints_name_exact_locks() {
    let mut run = fixture("6.1-no-lock-probe");
    run.function_probes.push(crate::model::FunctionProbe {
        concept: crate::catalog::ConceptId::SpinSlowpath,
        // As the recorder writes a concept it chose not to time: no symbol
        // (the first version of this check required one and never fired
        // on a real bullseye run).
        symbol: None,
        mode: crate::model::AttachMode::None,
        status: crate::model::ProbeOutcome::not_timed(crate::catalog::LOCK_PATH_LEFT_TO_SAMPLING),
        fallback_from: None,
    });
    let report = analyze(&run, &ReportOptions::default());
    let row = &report.summary.rows[2];
    assert!(
        matches!(&row.cells[0], model::Cell::NotMeasured { why }
            if why.contains("did not attach") && why.contains("; record --exact-locks times the spin slow path")),
        "{:?}",
        row.cells
    );
}

#[test]
fn summary_figures_of_the_6_18_fixture() {
    let report = analyze(&fixture("6.18-mrelease"), &ReportOptions::default());
    let rows = &report.summary.rows;
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Total running time",
            "Time waiting for pte spinlock",
            "PTE-lock waits traced (queued only, not pending-bit spins)",
            "PTE-lock wait, exact (slow path from __pte_offset_map_lock)",
            "folio_remove_rmap_ptes time",
            "kill → mrelease done",
            "kill → exit_mmap done"
        ]
    );
    let model::Cell::Measured(total) = rows[0].cells[0] else {
        panic!()
    };
    let (victim, reaper) = total.split_ms.unwrap();
    assert!((total.total_ms - victim - reaper).abs() < 1e-9);
    assert!(victim > 0.0 && reaper > 0.0);
    // Sampled spin time under __pte_offset_map_lock, split by side.
    let model::Cell::Measured(pte) = rows[1].cells[0] else {
        panic!()
    };
    let (victim, reaper) = pte.split_ms.unwrap();
    assert!(victim > 0.0 && reaper > 0.0 && pte.count.is_none());
    let model::Cell::Measured(traced) = rows[2].cells[0] else {
        panic!()
    };
    assert!(traced.count.unwrap() > 0);
}

#[test]
fn pte_spin_time_counts_only_spinlocks_called_by_the_pte_lock_function() {
    let frames = |s: &str| s.split(';').map(str::to_owned).collect::<Vec<_>>();
    let spin = ["_raw_spin_lock", "native_queued_spin_lock_slowpath"];
    let pte = ["__pte_offset_map_lock"];
    assert!(super::pte_lock::spins_for_pte_lock(
        &frames(
            "exit_mmap;unmap_vmas;__pte_offset_map_lock;_raw_spin_lock;native_queued_spin_lock_slowpath"
        ),
        &pte,
        &spin
    ));
    // A spinlock taken elsewhere under the same caller does not count.
    assert!(!super::pte_lock::spins_for_pte_lock(
        &frames("exit_mmap;__pte_offset_map_lock;folio_lruvec_lock;_raw_spin_lock"),
        &pte,
        &spin
    ));
    // 6.1 x86_64 inlines the PTE lock into unmap_page_range; fentry trampolines are skipped.
    let inlined = ["zap_pte_range", "zap_pmd_range", "unmap_page_range"];
    assert!(super::pte_lock::spins_for_pte_lock(
        &frames("__oom_reap_task_mm;bpf_trampoline_64;unmap_page_range;_raw_spin_lock"),
        &inlined,
        &spin
    ));
}

/// Regression: on the arm64 6.1 kernel `cargo xtask kernel build` makes, the
/// sampled PTE-lock row read 0.5 ms while `queued_spin_lock_slowpath` had
/// 43 ms, because `spin_lock()` is the out-of-line `__raw_spin_lock` there.
/// The stacks are the three shapes of that run's reaper (root first).
#[test]
fn arm64_6_1_out_of_line_raw_spin_lock_is_pte_spinning() {
    let frames = |s: &str| s.split(';').map(str::to_owned).collect::<Vec<_>>();
    let concepts = crate::catalog::ConceptFrames::default();
    let spin = super::pte_lock::spin_frames(&concepts);
    let callers = super::pte_lock::pte_callers(&concepts);
    let reaper = "__arm64_sys_process_mrelease;__oom_reap_task_mm;unmap_page_range";
    for leaf in [
        "__raw_spin_lock;queued_spin_lock_slowpath",
        // __cmpwait_case_32 is a leaf without a frame record: the unwinder
        // skips its caller, queued_spin_lock_slowpath.
        "__raw_spin_lock;__cmpwait_case_32",
        // Sampled in the slow path before it saved its frame record: the
        // unwinder skips __raw_spin_lock.
        "queued_spin_lock_slowpath",
    ] {
        let stack = frames(&format!("{reaper};{leaf}"));
        assert!(
            super::pte_lock::spins_for_pte_lock(&stack, &callers, &spin),
            "{leaf}"
        );
    }
    // The same out-of-line lock taken for page freeing is not the PTE lock.
    let other = frames(&format!(
        "{reaper};tlb_flush_mmu;release_pages;__raw_spin_lock;queued_spin_lock_slowpath"
    ));
    assert!(!super::pte_lock::spins_for_pte_lock(
        &other, &callers, &spin
    ));
}

/// The real arm64 6.1 run: the sampled row sees the spinning under the
/// out-of-line `__raw_spin_lock`, the traced row sees only the queued
/// waiters (once the inline PTE lock stopped hiding them all), and the
/// exact row sums the slow path's calls from `unmap_page_range`.
#[test]
fn arm64_6_1_pte_lock_rows_from_a_real_run() {
    let run = fixture("6.1-arm64-built");
    let report = analyze(&run, &ReportOptions::default());
    let rows = &report.summary.rows;
    let cell = |id: model::RowId, episode: usize| {
        let row = rows.iter().find(|r| r.id == Some(id)).unwrap();
        match row.cells[episode] {
            model::Cell::Measured(v) => (row.label.clone(), v),
            ref other => panic!("{}: {other:?}", row.label),
        }
    };
    let (_, sampled) = cell(model::RowId::PteLockWait, 0);
    let reaper_spin = run.episodes[0]
        .context(crate::model::Context::MreleaseCaller)
        .unwrap()
        .under("queued_spin_lock_slowpath")
        .1 as f64
        / 1e6;
    // Before the fix the reaper part was 1.2 ms of 52.5 ms of slow path.
    assert!(sampled.split_ms.unwrap().1 >= reaper_spin, "{sampled:?}");
    let (label, traced) = cell(model::RowId::PteTracedWait, 0);
    assert!(label.contains("not pending-bit"), "{label}");
    assert_eq!(traced.count, Some(123));
    let (label, exact) = cell(model::RowId::PteLockWaitExact, 0);
    assert_eq!(
        label,
        "PTE-lock wait, exact (slow path from unmap_page_range)"
    );
    // Edges unmap_page_range -> queued_spin_lock_slowpath: 100 victim calls
    // (2391.3 ms) and 174 reaper calls (7779.9 ms); tlb_flush_mmu's and
    // exit_mmap's calls are other locks.
    assert_eq!(exact.count, Some(274));
    let (victim, reaper) = exact.split_ms.unwrap();
    assert_eq!((victim.round(), reaper.round()), (2391.0, 7780.0));
}

/// The exact row never reads 0 when the slow path was not timed: it says
/// which function had no probe.
#[test]
fn exact_pte_lock_wait_without_a_timed_slow_path_is_not_measured() {
    let mut run = fixture("6.1-arm64-built");
    for p in &mut run.recording.probes {
        if p.function() == Some("queued_spin_lock_slowpath") {
            p.status = crate::model::ProbeOutcome::not_attached("kprobe: ENOENT");
        }
    }
    let report = analyze(&run, &ReportOptions::default());
    let row = report
        .summary
        .rows
        .iter()
        .find(|r| r.id == Some(model::RowId::PteLockWaitExact))
        .unwrap();
    assert!(
        row.cells.iter().all(|c| matches!(
            c,
            model::Cell::NotMeasured { why } if why.contains("queued_spin_lock_slowpath was not timed")
        )),
        "{:?}",
        row.cells
    );
}

/// Marks a function of a run as left to sampling by record's choice, as a
/// run recorded without the flag that times it says.
fn left_to_sampling(run: &mut Run, concept: &str, symbol: &str, why: &str) {
    for p in &mut run.recording.probes {
        if p.function() == Some(symbol) {
            p.probe = format!("function:{concept}");
            p.mode = crate::model::AttachMode::None;
            p.status = crate::model::ProbeOutcome::not_timed(why);
        }
    }
    for p in &mut run.function_probes {
        if p.concept.name() == concept {
            p.mode = crate::model::AttachMode::None;
            p.status = crate::model::ProbeOutcome::not_timed(why);
        }
    }
}

fn exact_row_cells(run: &Run) -> Vec<model::Cell> {
    let report = analyze(run, &ReportOptions::default());
    report
        .summary
        .rows
        .iter()
        .find(|r| r.id == Some(model::RowId::PteLockWaitExact))
        .unwrap()
        .cells
        .clone()
}

/// Without `--exact-locks` the slow path is not timed, and the exact row
/// says so and how to time it.
#[test]
fn exact_pte_lock_wait_left_to_sampling_names_exact_locks() {
    let mut run = fixture("6.1-arm64-built");
    left_to_sampling(
        &mut run,
        "spin_slowpath",
        "queued_spin_lock_slowpath",
        crate::catalog::LOCK_PATH_LEFT_TO_SAMPLING,
    );
    let cells = exact_row_cells(&run);
    assert!(
        cells.iter().all(|c| matches!(
            c,
            model::Cell::NotMeasured { why }
                if why.starts_with("queued_spin_lock_slowpath not timed: on the path of every contended lock")
                    && why.contains("record --exact-locks")
        )),
        "{cells:?}"
    );
}

/// Regression (issue 29): with the PTE lock inline (6.1), the slow path's
/// calls whose nearest timed caller is unmap_page_range include the lruvec
/// and zone lock waits of the batch freeing inside the walk once
/// tlb_flush_mmu is no longer timed; the row must not sum them as PTE-lock
/// waits.
#[test]
fn exact_pte_lock_wait_on_an_inline_pte_lock_needs_the_batch_freeing_timed() {
    let mut run = fixture("6.1-arm64-built");
    left_to_sampling(
        &mut run,
        "tlb_flush",
        "tlb_flush_mmu",
        crate::catalog::PER_BATCH_LEFT_TO_SAMPLING,
    );
    let cells = exact_row_cells(&run);
    assert!(
        cells.iter().all(|c| matches!(
            c,
            model::Cell::NotMeasured { why }
                if why.starts_with("the PTE lock is inline on this kernel")
                    && why.contains("tlb_flush_mmu not timed")
        )),
        "{cells:?}"
    );
}

#[test]
fn many_episodes_get_median_and_range_columns() {
    let text = render_text(&fixture("7.2-arm64-6-episodes"), &ReportOptions::default());
    assert!(text.contains("median of 6"), "{text}");
    assert!(text.contains("min–max"));
    assert!(!text.contains("episode 6 "));
}

#[test]
fn losses_and_partial_are_announced_first() {
    let text = render_text(&fixture("6.18-losses"), &ReportOptions::default());
    assert!(text.starts_with("LOSSES:"), "{text}");
    assert!(text.contains(
        "LOST: 12 samples had no stack (KERNEL_STACKS full or collision) — enlarge with --stack-map-size"
    ));
    assert!(text.contains("— enlarge with --ringbuf-size"));
    let text = render_text(&fixture("6.18-partial"), &ReportOptions::default());
    assert!(text.starts_with("PARTIAL: interrupted by Ctrl-C"), "{text}");
}

#[test]
fn probe_runs_the_kernel_skipped_are_announced_as_losses() {
    let mut run = fixture("6.18-mrelease");
    let quiet = render_text(&run, &ReportOptions::default());
    assert!(!quiet.contains("LOSSES:"), "{quiet}");
    run.episodes[0]
        .skipped_probe_runs
        .insert("raw_contention_begin".into(), 3);
    let text = render_text(&run, &ReportOptions::default());
    assert!(text.starts_with("LOSSES:"), "{text}");
    assert!(
        text.contains("LOST: 3 runs of raw_contention_begin skipped by the kernel"),
        "{text}"
    );
    assert!(
        text.contains("skipped:raw_contention_begin"),
        "the episode's counters name it: {text}"
    );
}

#[test]
fn a_watch_names_the_probe_runs_the_kernel_skipped_while_watching() {
    let mut run = fixture("6.18-mrelease");
    run.watch = Some(crate::model::WatchSummary {
        watched_s: 30,
        episodes_seen: 1,
        episodes_evicted: 0,
        plain_kills_ignored: 0,
        filtered_out: 4,
        skipped_probe_runs: [("raw_process_exit".to_owned(), 2)].into(),
    });
    let text = render_text(&run, &ReportOptions::default());
    assert!(
        text.contains("LOST: 2 runs of raw_process_exit skipped by the kernel"),
        "{text}"
    );
    assert!(text.contains("4 left out by --comm/--min-rss"), "{text}");
}

#[test]
fn absent_concepts_are_listed_not_zero() {
    let report = analyze(&fixture("6.1-no-lock-probe"), &ReportOptions::default());
    let victim = &report.contexts[0];
    let pte = victim
        .key_functions
        .iter()
        .find(|k| k.concept == "pte_lock")
        .unwrap();
    assert_eq!(pte.symbol.as_deref(), Some("zap_pte_range"));
    assert!(pte.inline_fallback);
    let mut run = fixture("6.18-mrelease");
    for r in &mut run.symbols {
        if r.concept == crate::model::ConceptId::TlbFlush {
            r.symbol = None;
        }
    }
    let report = analyze(&run, &ReportOptions::default());
    let tlb = report.contexts[0]
        .key_functions
        .iter()
        .find(|k| k.concept == "tlb_flush")
        .unwrap();
    assert_eq!((tlb.symbol.as_ref(), tlb.period_ms), (None, None));
    assert!(
        render_text(&run, &ReportOptions::default())
            .contains("absent on this kernel  tlb_flush (none of tlb_flush_mmu)")
    );
}

#[test]
fn measured_zero_lock_wait_is_zero_with_a_count() {
    let mut run = fixture("6.18-mrelease");
    for ctx in run.episodes.iter_mut().flat_map(|e| &mut e.contexts) {
        ctx.lock_waits.clear();
    }
    let report = analyze(&run, &ReportOptions::default());
    assert_eq!(
        report.summary.rows[2].cells[0],
        model::Cell::Measured(model::Value {
            total_ms: 0.0,
            split_ms: Some((0.0, 0.0)),
            count: Some(0)
        })
    );
    let text = render_text(&run, &ReportOptions::default());
    assert!(
        text.contains("| 0.0 (0 waits) |") || text.contains(" 0.0 (0 waits) "),
        "{text}"
    );
    assert!(text.contains("Lock waits: none (measured: 0 waits)"));
}

#[test]
fn a_run_cut_short_before_any_episode_still_renders() {
    let mut run = fixture("6.18-partial");
    run.episodes.clear();
    let text = render_text(&run, &ReportOptions::default());
    assert!(text.starts_with("PARTIAL: "), "{text}");
    assert!(text.contains("(no episodes recorded)"));
    assert!(text.contains("0 episodes of 5 requested"));
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(
        &run,
        &crate::output::OutputDir::create(dir.path()).unwrap(),
        &ReportOptions::default(),
    )
    .unwrap();
    assert_eq!(files, [dir.path().join("combined.folded")]);
}

#[test]
fn options_change_the_tables() {
    let run = fixture("6.18-mrelease");
    let opts = ReportOptions {
        top: 3,
        percent_limit: 20.0,
        max_depth: 1,
        lock_top: 1,
    };
    let report = analyze(&run, &opts);
    let victim = &report.contexts[0];
    assert_eq!(victim.symbols.len(), 3);
    assert_eq!(victim.lock_waits.rows.len(), 1);
    assert_eq!(victim.lock_waits.hidden, 1);
    let root = &victim.call_graph.roots[0];
    assert_eq!(root.name, "do_exit");
    assert_eq!(root.children.len(), 1, "depth 1 keeps exit_mm only");
    assert!(root.children[0].children.is_empty());
}

#[test]
fn a_missing_golden_fails_and_is_not_created() {
    if blessing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let golden = dir.path().join("new.expected.txt");
    let result = std::panic::catch_unwind(|| check_golden(&golden, "text\n"));
    assert!(result.is_err());
    assert!(!golden.exists());
}

#[test]
fn lost_races_are_named_and_left_out_of_the_median() {
    let mut run = fixture("7.2-arm64-6-episodes");
    let all = render_text(&run, &ReportOptions::default());
    assert!(!all.contains("lost race"), "{all}");
    run.episodes[0].marked_lost_race = true;
    run.episodes[3].marked_lost_race = true;
    let text = render_text(&run, &ReportOptions::default());
    assert!(text.contains("Lost races: 2 of 6 episodes"), "{text}");
    assert!(text.contains("median of 4"), "{text}");
    assert!(text.contains("lost race: 2 of 6 episodes"), "{text}");
    assert!(text.contains("== Episode 1: "));
    assert!(text.contains("Lost race: process_mrelease returned ESRCH"));
    let report = analyze(&run, &ReportOptions::default());
    assert_eq!(report.header.lost_races, 2);
    assert!(
        report
            .summary
            .rows
            .iter()
            .all(|r| r.stats.as_ref().is_none_or(|s| s.measured <= 4))
    );

    run.episodes.truncate(3);
    let text = render_text(&run, &ReportOptions::default());
    assert!(text.contains("episode 1 (lost race)"), "{text}");
    assert!(!text.contains("episode 2 (lost race)"), "{text}");
}

/// Regression (issue 22): a run file recorded before `lost_race` existed
/// (bookworm 6.1 VM, 2026-11-25) whose first two episodes' process_mrelease
/// returned ESRCH: `diff` left them out as lost races while `report` showed
/// them as ordinary episodes ("Total 242.5 = 242.5 + 0.0"). Both now read
/// `Episode::lost_race`, and the open formats mark them too.
#[test]
fn an_old_file_with_esrch_is_a_lost_race_in_the_report_too() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/compare/vm-bookworm-x86_64/run.json");
    let run = load_run(&path).unwrap();
    assert!(run.episodes.iter().all(|e| !e.marked_lost_race));
    let text = render_text(&run, &ReportOptions::default());
    assert!(text.contains("Lost races: 2 of 5 episodes"), "{text}");
    assert!(text.contains("Lost race: process_mrelease returned ESRCH"));
    let report = analyze(&run, &ReportOptions::default());
    assert_eq!(report.header.lost_races, 2);
    let lost: Vec<bool> = report.episodes.iter().map(|e| e.lost_race).collect();
    assert_eq!(lost, [true, true, false, false, false]);
    let speedscope = speedscope::file(&run);
    assert!(
        speedscope.profiles[0]
            .name
            .ends_with("(mrelease lost the race)")
    );
    assert!(!speedscope.profiles.last().unwrap().name.contains("lost"));
}

/// A real run (not hand-made) on Debian's 7.3.4 PREEMPT_RT kernel in the VM
/// harness: the PTE lock is a sleeping `rt_spin_lock`, and both episodes'
/// stacks show waits on it under `pte_offset_map_lock`. The summary must
/// count them (never 0) and say they are sleeping waits, sampled and traced
/// apart; `rt_spin_lock` waits on other locks (lruvec, zone) stay out.
#[test]
fn rt_kernel_pte_lock_waits_are_sleeping_waits_and_never_zero() {
    let run = fixture("7.3-rt-amd64");
    assert_eq!(
        run.host.preempt_rt,
        Some(crate::model::RtEvidence::UnameVersion)
    );
    let report = analyze(&run, &ReportOptions::default());
    let rows = &report.summary.rows;
    assert_eq!(
        rows[1].label,
        "Time waiting for pte lock (sleeping rt_spin_lock, on-CPU samples)"
    );
    assert_eq!(
        rows[2].label,
        "PTE-lock sleeping waits traced (rt_spin_lock)"
    );
    let measured = |cell: &model::Cell| match cell {
        model::Cell::Measured(v) => *v,
        other => panic!("not measured: {other:?}"),
    };
    for cell in &rows[1].cells {
        assert!(measured(cell).total_ms > 0.0, "{:?}", rows[1].cells);
    }
    // Episode 1: the victim's unmap waited 3 times in rtlock_slowlock_locked
    // under pte_offset_map_lock; episode 2: the reaper's zap_vma_for_reaping once.
    let (first, second) = (measured(&rows[2].cells[0]), measured(&rows[2].cells[1]));
    assert_eq!((first.count, second.count), (Some(3), Some(1)));
    assert!(first.split_ms.unwrap().0 > 0.0 && second.split_ms.unwrap().1 > 0.0);
    // Every traced rt_spin_lock wait of the episode is more than the PTE-lock ones.
    let all_rt: u64 = run.episodes[0]
        .contexts
        .iter()
        .flat_map(|c| &c.lock_waits)
        .filter(|w| w.frames.iter().any(|f| f == "rt_spin_lock"))
        .map(|w| w.count)
        .sum();
    assert!(all_rt > 3, "{all_rt}");
}

#[test]
fn rt_waits_count_only_rt_spin_lock_called_by_the_pte_lock_function() {
    let frames = |s: &str| s.split(';').map(str::to_owned).collect::<Vec<_>>();
    let pte = ["pte_offset_map_lock"];
    // Stacks from the 7.3.4 rt fixture.
    assert!(super::pte_lock::sleeps_for_pte_lock(
        &frames(
            "unmap_vmas;bpf_trampoline_6442514376;__zap_vma_range;bpf_trampoline_6442557722;pte_offset_map_lock;rt_spin_lock;rtlock_slowlock_locked"
        ),
        &pte
    ));
    assert!(!super::pte_lock::sleeps_for_pte_lock(
        &frames(
            "free_pages_and_swap_cache;folios_put_refs;__page_cache_release;folio_lruvec_lock_irqsave;rt_spin_lock;rtlock_slowlock_locked"
        ),
        &pte
    ));
}

/// Regression (issue 26): on Debian bullseye's 5.10 `record` printed "kill →
/// exit_mmap done: not measured (event not seen)" although exit_mmap was
/// timed, and no lock wait at all. A real `record --no-mrelease --victim
/// 256M,threads=4 --runs 3` there (x86_64 TCG guest, fentry/fexit, the
/// `vm-test` bullseye cell of 2026-12-04): every summary row is measured or
/// says why, each stand-in is named in its label, and the sampled rows see
/// the teardown (the 5.10 trampoline names no longer cut the stacks).
#[test]
fn a_5_10_run_measures_from_named_stand_ins_or_says_why() {
    let run = fixture("5.10-no-mrelease");
    let report = analyze(&run, &ReportOptions::default());
    let rows = &report.summary.rows;
    let label = |id: model::RowId| {
        rows.iter()
            .find(|r| r.id == Some(id))
            .unwrap()
            .label
            .clone()
    };
    assert_eq!(
        label(model::RowId::KillToExitMmap),
        "kill → exit_mmap done (from fexit exit_mmap)"
    );
    assert_eq!(
        label(model::RowId::PteTracedWait),
        "PTE-lock waits (from fexit native_queued_spin_lock_slowpath)"
    );
    for row in rows {
        for cell in &row.cells {
            match cell {
                model::Cell::NotMeasured { why } => {
                    assert_ne!(why, "event not seen", "{}", row.label);
                    assert_eq!(
                        row.id,
                        Some(model::RowId::KillToReap),
                        "{}: {why}",
                        row.label
                    );
                }
                model::Cell::Measured(v) if row.id == Some(model::RowId::Total) => {
                    assert!(v.total_ms > 100.0, "the teardown is seen: {v:?}");
                }
                model::Cell::Measured(_) => {}
            }
        }
    }
}

/// The arm64 side of 5.10 (kprobes only, and an unwinder that leaves a
/// kretprobe's return address in place of the probed function's caller): a
/// real `record --oom --victim 256M,threads=4` in the bullseye arm64 TCG
/// guest (2026-12-04), where the victim's exit_mmap outlasted the
/// oom_reaper's 2 s timer and the two tore the mm down side by side. The
/// rows that classify by stack say why they cannot; the exact PTE-lock row
/// (slow-path calls by their probed caller) and the stand-ins measure.
#[test]
fn a_5_10_arm64_run_with_lost_callers_says_why_and_keeps_the_exact_rows() {
    let run = fixture("5.10-arm64-oom");
    let report = analyze(&run, &ReportOptions::default());
    let row = |id: model::RowId| {
        report
            .summary
            .rows
            .iter()
            .find(|r| r.id == Some(id))
            .unwrap()
            .clone()
    };
    for id in [
        model::RowId::Total,
        model::RowId::PteLockWait,
        model::RowId::Rmap,
        model::RowId::PteTracedWait,
    ] {
        let row = row(id);
        let model::Cell::NotMeasured { why } = &row.cells[0] else {
            panic!(
                "{} is measured from stacks that lost their callers",
                row.label
            )
        };
        assert!(why.contains("kretprobe"), "{}: {why}", row.label);
    }
    let model::Cell::Measured(exact) = row(model::RowId::PteLockWaitExact).cells[0] else {
        panic!("the exact PTE-lock row needs no stack")
    };
    let (victim, reaper) = exact.split_ms.unwrap();
    assert!(victim > 0.0 && reaper > 0.0, "{exact:?}");
    assert_eq!(
        row(model::RowId::KillToExitMmap).label,
        "kill → exit_mmap done (from kretprobe exit_mmap)"
    );
    assert!(
        run.episodes[0]
            .latencies
            .oom_reaper_verdict
            .as_deref()
            .is_some_and(|v| v.starts_with("reaped"))
    );
}

/// The PTE-lock race on 5.10 x86_64 without `lock:contention_*`: a real
/// `record --oom --victim 5G,threads=4` in the bullseye guest (8 GiB,
/// 2026-12-05) whose exit_mmap (which on 5.10 reaps the OOM victim's mm
/// itself) outlasted the oom_reaper's 2 s timer, so both walked the page
/// tables at once. The spin slow path's probe gives the PTE-lock waits with
/// their stacks, on both sides, named as such.
#[test]
fn a_5_10_oom_race_measures_pte_lock_waits_from_the_slow_path() {
    let run = fixture("5.10-oom-race");
    let report = analyze(&run, &ReportOptions::default());
    let row = report
        .summary
        .rows
        .iter()
        .find(|r| r.id == Some(model::RowId::PteTracedWait))
        .unwrap();
    assert_eq!(
        row.label,
        "PTE-lock waits (from fexit native_queued_spin_lock_slowpath)"
    );
    let model::Cell::Measured(waits) = row.cells[0] else {
        panic!("{:?}", row.cells[0])
    };
    let (victim, reaper) = waits.split_ms.unwrap();
    assert!(
        waits.count.unwrap() > 0 && victim > 0.0 && reaper > 0.0,
        "{waits:?}"
    );
    assert!(
        report
            .contexts
            .iter()
            .all(|c| c.lock_waits.source.as_deref()
                == Some("from fexit native_queued_spin_lock_slowpath")),
        "every context's lock waits name their source"
    );
}

/// Issue 25's collision maps of the two real runs: on sid 7.2 (the reaper
/// walks in reverse since 6.18) the victim's exit walks up the address
/// space and the mrelease caller down, and they meet once; on bookworm's
/// 6.1 both walk up together. Every wait is placed on the map, and the
/// mrelease caller's two steps after process_mrelease returned (its own
/// thread's teardown) are left out and counted.
#[test]
fn collision_maps_show_each_walkers_direction_and_place_every_wait() {
    use super::collision_map::{build, direction};
    use crate::model::Context;
    for (name, mrelease_up) in [("7.2-collisions", false), ("6.1-collisions", true)] {
        let run = fixture(name);
        let maps = build(&run);
        assert_eq!(maps.len(), run.episodes.len(), "{name}");
        for map in &maps {
            let line = |context| map.walkers.iter().find(|w| w.context == context).unwrap();
            let at = format!("{name} episode {}", map.episode);
            assert_eq!(direction(line(Context::VictimExit)), Some(true), "{at}");
            assert_eq!(
                direction(line(Context::MreleaseCaller)),
                Some(mrelease_up),
                "{at}"
            );
            assert_eq!(line(Context::MreleaseCaller).left_out, 2, "{at}");
            assert_eq!(map.unplaced_waits, 0, "{at}");
            let table = super::collision::build(&run).unwrap();
            let waits: u64 = table.episodes[map.episode - 1]
                .rows
                .iter()
                .map(|r| r.count)
                .sum();
            assert_eq!(map.waits.len() as u64, waits, "{at}: the table's waits");
        }
    }
}

/// The maps are written by `report -o` as `collision_map_episode_<n>.svg`,
/// parse as XML, and match their golden; a run without logged steps gets
/// none (see `written_files_match_goldens_and_svgs_parse`).
#[test]
fn collision_map_svgs_are_written_per_episode_and_match_goldens() {
    let run = fixture("7.2-collisions");
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(
        &run,
        &crate::output::OutputDir::create(dir.path()).unwrap(),
        &ReportOptions::default(),
    )
    .unwrap();
    let maps: Vec<_> = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("collision"))
        .collect();
    assert_eq!(maps.len(), 2);
    for (i, file) in maps.iter().enumerate() {
        let name = format!("collision_map_episode_{}.svg", i + 1);
        assert_eq!(file.file_name().unwrap().to_string_lossy(), name);
        let svg = std::fs::read_to_string(file).unwrap();
        assert_svg_parses(&svg, &name);
        assert!(svg.contains("victim exit: 92 steps, upward"), "{name}");
        check_golden(
            &data_dir().join(format!("7.2-collisions.expected.{name}")),
            &svg,
        );
    }
}

/// Run-file text in a map (the scenario, a third party's comm) is escaped:
/// it cannot open an element, end the document or smuggle a control byte.
#[test]
fn collision_map_text_from_the_run_file_is_escaped() {
    let mut run = fixture("7.2-collisions");
    run.recording.scenario.description = "</text><script>alert(1)</script>\u{1b}[2J".into();
    let maps = super::collision_map::build(&run);
    let svg = super::collision_svg::render(&run, &maps[0]);
    assert!(!svg.contains("<script>"));
    assert!(svg.contains("&lt;/text&gt;&lt;script&gt;"));
    assert!(!svg.contains('\u{1b}'));
    assert_svg_parses(&svg, "hostile");
}

fn assert_svg_parses(svg: &str, name: &str) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e)) => {
                depth += 1;
                assert_ne!(e.name().as_ref(), b"script", "{name}");
            }
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(_) => {}
            Err(e) => panic!("{name}: not XML at {}: {e}", reader.buffer_position()),
        }
    }
    assert_eq!(depth, 0, "{name}: unbalanced");
}

/// On PREEMPT_RT the PTE lock sleeps in rt_spin_lock: a run recorded
/// without the lock owners (before reaper read them, or without BTF)
/// says so instead of "no wait", and no map is drawn without its waits;
/// one recorded with them has the table, holders named by the owner.
#[test]
fn collision_table_and_maps_on_preempt_rt_need_the_owners() {
    let mut run = fixture("7.2-collisions");
    run.host.preempt_rt = Some(crate::model::RtEvidence::UnameVersion);
    let table = super::collision::build(&run).unwrap();
    assert!(table.not_measured.unwrap().starts_with("PREEMPT_RT"));
    assert!(super::collision_map::build(&run).is_empty());
    run.recording.pte_holders.as_mut().unwrap().rt_owner = true;
    let table = super::collision::build(&run).unwrap();
    assert_eq!(table.not_measured, None);
    assert_eq!(table.named_by, crate::report::model::HolderSource::RtOwner);
    assert!(!super::collision_map::build(&run).is_empty());
}
