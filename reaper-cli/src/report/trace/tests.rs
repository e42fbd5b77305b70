//! The trace-event file's structure, checked against the trace-event
//! format's required fields (Trace Event Format document: every event has
//! `name`, `ph`, `pid`, `tid`, and, except metadata, `ts`; `X` events have
//! `dur`; instant scopes are `g`, `p` or `t`), and its spans against the
//! run files.

use std::path::Path;

use reaper_common::timeline::TimelineKind;
use serde_json::Value;

use super::*;
use crate::report::load_run;

fn fixture(path: &str) -> Run {
    load_run(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .unwrap()
}

/// The parsed file, after checking every event's required fields.
fn checked(run: &Run) -> Vec<Value> {
    let file: Value = serde_json::from_str(&render(run)).unwrap();
    let events = file["traceEvents"]
        .as_array()
        .expect("traceEvents is an array")
        .clone();
    assert!(!events.is_empty());
    for event in &events {
        let ph = event["ph"].as_str().expect("ph is a string");
        assert!(event["name"].is_string(), "{event}");
        assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
        match ph {
            "M" => {
                let name = event["name"].as_str().unwrap();
                assert!(
                    [
                        "process_name",
                        "thread_name",
                        "process_sort_index",
                        "thread_sort_index"
                    ]
                    .contains(&name),
                    "{event}"
                );
                assert!(event["args"].is_object(), "{event}");
            }
            "X" => {
                assert!(event["ts"].as_f64().unwrap() >= 0.0, "{event}");
                assert!(event["dur"].as_f64().unwrap() >= 0.0, "{event}");
            }
            "i" => {
                assert!(event["ts"].as_f64().unwrap() >= 0.0, "{event}");
                assert!(["g", "p", "t"].contains(&event["s"].as_str().unwrap_or("t")));
            }
            "C" => {
                assert!(event["ts"].as_f64().unwrap() >= 0.0, "{event}");
                let args = event["args"].as_object().expect("counter args");
                assert!(args.values().all(Value::is_number), "{event}");
            }
            "s" | "f" => {
                assert!(event["id"].is_u64(), "{event}");
                assert_eq!(event["bp"].as_str() == Some("e"), ph == "f", "{event}");
            }
            other => panic!("unexpected phase {other}: {event}"),
        }
    }
    events
}

fn spans<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == name)
        .collect()
}

#[test]
fn function_timing_run_has_one_process_per_episode_and_its_spans() {
    let run = fixture("function_timing/sid-x86_64.run.json");
    let events = checked(&run);
    let processes = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .count();
    assert_eq!(processes, run.episodes.len());
    let mrelease = spans(&events, SPAN_MRELEASE);
    let exit_mmap = spans(&events, SPAN_EXIT_MMAP);
    assert_eq!(mrelease.len(), run.episodes.len());
    assert_eq!(exit_mmap.len(), run.episodes.len());
    for (episode, (m, x)) in run.episodes.iter().zip(mrelease.iter().zip(&exit_mmap)) {
        assert_eq!(m["pid"], episode.index + 1);
        let duration = episode.latencies.mrelease_duration_ns.unwrap() as f64 / 1000.0;
        assert!((m["dur"].as_f64().unwrap() - duration).abs() < 1e-6, "{m}");
        let call = episode
            .function_timing
            .as_ref()
            .unwrap()
            .functions
            .iter()
            .find(|f| f.symbol == "exit_mmap")
            .unwrap();
        assert!((x["dur"].as_f64().unwrap() - call.total_ns as f64 / 1000.0).abs() < 1e-6);
        let functions: Vec<&str> = x["args"][FUNCTIONS_ARG]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap())
            .collect();
        // Heaviest first: exit_mmap includes everything else of the victim.
        assert_eq!(functions[0], "exit_mmap");
        assert!(functions.contains(&"unmap_vmas"));
        assert_eq!(x["args"]["functions_left_out"], 0);
        // The victim's track is named by its context.
        let track = events
            .iter()
            .find(|e| e["name"] == "thread_name" && e["pid"] == m["pid"] && e["tid"] == x["tid"])
            .unwrap();
        assert!(
            track["args"]["name"]
                .as_str()
                .unwrap()
                .starts_with("victim_exit: ")
        );
    }
    for kind in ["kill", "process_exit", "process_free", "exit_mmap_done"] {
        assert!(
            events.iter().any(|e| e["ph"] == "i" && e["name"] == kind),
            "no {kind} instant"
        );
    }
}

#[test]
fn oom_run_has_the_reaping_span_and_mark_victim() {
    let run = fixture("report/6.18-oom.run.json");
    let events = checked(&run);
    let reaping = spans(&events, SPAN_OOM_REAPING);
    assert_eq!(reaping.len(), 1);
    let at = |kind: TimelineKind| {
        let t = run.episodes[0]
            .timeline
            .iter()
            .find(|t| t.kind == kind)
            .unwrap();
        t.t_ns as f64 / 1000.0
    };
    let expected = at(TimelineKind::OomFinishReaping) - at(TimelineKind::OomStartReaping);
    assert!((reaping[0]["dur"].as_f64().unwrap() - expected).abs() < 1e-6);
    assert!(events.iter().any(|e| e["name"] == "oom_mark_victim"));
    // Without function timing exit_mmap's start is unknown: no span.
    assert!(spans(&events, SPAN_EXIT_MMAP).is_empty());
    assert_eq!(
        reaping[0]["args"]["function_timing"],
        "not measured in this run"
    );
}

#[test]
fn many_functions_are_cut_with_the_count_left_out() {
    let mut run = fixture("function_timing/sid-x86_64.run.json");
    let timing = run.episodes[0].function_timing.as_mut().unwrap();
    let template = timing
        .functions
        .iter()
        .find(|f| f.context == Context::VictimExit)
        .unwrap()
        .clone();
    for i in 0..MAX_FUNCTIONS {
        let mut extra = template.clone();
        extra.symbol = format!("extra_{i}");
        timing.functions.push(extra);
    }
    let victim_rows = timing
        .functions
        .iter()
        .filter(|f| f.context == Context::VictimExit)
        .count();
    let events = checked(&run);
    let x = spans(&events, SPAN_EXIT_MMAP)[0];
    assert_eq!(x["args"]["functions_left_out"], victim_rows - MAX_FUNCTIONS);
}

#[test]
fn kept_calls_are_spans_on_their_threads_with_the_count_left_out() {
    use crate::model::{FunctionCall, FunctionCalls};
    let mut run = fixture("function_timing/sid-x86_64.run.json");
    let victim = run.episodes[0].contexts[0].tasks[0].clone();
    let timing = run.episodes[0].function_timing.as_mut().unwrap();
    timing.longest_calls = vec![
        FunctionCalls {
            context: crate::model::Context::VictimExit,
            concept: crate::model::ConceptId::VictimTeardown,
            symbol: "exit_mmap".into(),
            calls: vec![FunctionCall {
                tid: victim.tid,
                start_ns: -5_000,
                duration_ns: 9_000_000,
            }],
            left_out: 0,
        },
        FunctionCalls {
            context: crate::model::Context::VictimExit,
            concept: crate::model::ConceptId::PerVmaUnmap,
            symbol: "unmap_page_range".into(),
            calls: vec![
                FunctionCall {
                    tid: victim.tid,
                    start_ns: 1_000_000,
                    duration_ns: 2_000_000,
                },
                FunctionCall {
                    tid: 4_000_001,
                    start_ns: 4_000_000,
                    duration_ns: 1_000_000,
                },
            ],
            left_out: 62,
        },
    ];
    let events = checked(&run);
    let calls: Vec<&Value> = events
        .iter()
        .filter(|e| e["cat"] == CAT_FUNCTION && e["pid"] == 1)
        .collect();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c["ph"] == "X"));
    let exit_mmap = calls.iter().find(|c| c["name"] == "exit_mmap").unwrap();
    assert_eq!(exit_mmap["dur"].as_f64().unwrap(), 9_000.0);
    assert_eq!(exit_mmap["tid"], victim.tid);
    let unmap: Vec<&&Value> = calls
        .iter()
        .filter(|c| c["name"] == "unmap_page_range")
        .collect();
    assert_eq!(unmap.len(), 2);
    assert!(unmap.iter().all(|c| c["args"][LEFT_OUT_ARG] == 62));
    // The kill is the origin shift: a call before the kill still has ts >= 0
    // (checked() asserts it) and lies 5 µs before the kill instant.
    let kill = events
        .iter()
        .find(|e| e["name"] == "kill" && e["pid"] == 1)
        .unwrap();
    let before = kill["ts"].as_f64().unwrap() - exit_mmap["ts"].as_f64().unwrap();
    assert!((before - 5.0).abs() < 1e-6, "{before}");
    // With kept calls the aggregate-derived exit_mmap span is not drawn
    // (the real call is).
    assert!(
        spans(&events, SPAN_EXIT_MMAP)
            .iter()
            .all(|s| s["pid"] != 1 || s["cat"] == CAT_FUNCTION)
    );
    // A thread seen only through its calls gets a named track.
    let track = events
        .iter()
        .find(|e| e["name"] == "thread_name" && e["pid"] == 1 && e["tid"] == 4_000_001)
        .unwrap();
    assert_eq!(track["args"]["name"], "victim_exit: ?[4000001]");
}

/// A real VM episode with kept calls: every kept call is drawn on its
/// thread, the spans of one track nest (Perfetto needs slices of a track to
/// nest or be disjoint), and the syscall function's span lies inside the
/// `process_mrelease` tracepoint span.
#[test]
fn recorded_calls_nest_on_their_tracks() {
    let run = fixture("function_timing/sid-x86_64-calls.run.json");
    let timing = run.episodes[0].function_timing.as_ref().unwrap();
    let kept: usize = timing.longest_calls.iter().map(|f| f.calls.len()).sum();
    assert!(kept > 100, "{kept}");
    let events = checked(&run);
    let calls: Vec<&Value> = events.iter().filter(|e| e["cat"] == CAT_FUNCTION).collect();
    assert_eq!(calls.len(), kept);
    let mut tracks: std::collections::BTreeMap<(u64, u64), Vec<(f64, f64)>> = Default::default();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        tracks
            .entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
            .or_default()
            .push((ts, ts + dur));
    }
    for spans in tracks.values_mut() {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<f64> = Vec::new();
        for &(start, end) in spans.iter() {
            while open.last().is_some_and(|&e| e <= start) {
                open.pop();
            }
            if let Some(&outer) = open.last() {
                assert!(end <= outer + 1e-3, "a span overlaps its parent's end");
            }
            open.push(end);
        }
    }
    let mrelease = spans(&events, SPAN_MRELEASE)[0];
    let syscall = calls
        .iter()
        .find(|c| c["args"]["concept"] == "mrelease_syscall")
        .unwrap();
    let (m0, m1) = (
        mrelease["ts"].as_f64().unwrap(),
        mrelease["ts"].as_f64().unwrap() + mrelease["dur"].as_f64().unwrap(),
    );
    let (s0, s1) = (
        syscall["ts"].as_f64().unwrap(),
        syscall["ts"].as_f64().unwrap() + syscall["dur"].as_f64().unwrap(),
    );
    assert!(m0 <= s0 && s1 <= m1, "[{m0}, {m1}] ⊇ [{s0}, {s1}]");
    assert_eq!(syscall["tid"], mrelease["tid"]);
}

/// Each victim gets its own RSS counter track, one sample per point, on its
/// episode's process; a run without reclaim data draws none.
#[test]
fn each_victim_has_an_rss_counter_track() {
    let mut run = fixture("report/6.18-3-episodes.run.json");
    assert!(
        checked(&run).iter().all(|e| e["ph"] != "C"),
        "no reclaim, no counter"
    );
    for (i, episode) in run.episodes.iter_mut().enumerate() {
        episode.reclaim = Some(crate::model::Reclaim {
            rss_at_start_bytes: 1 << 30,
            freed_bytes: Default::default(),
            rss_track: vec![
                crate::model::RssPoint {
                    t_ns: 0,
                    bytes: 1 << 30,
                },
                crate::model::RssPoint {
                    t_ns: 1_000_000 * (i as i64 + 1),
                    bytes: 0,
                },
            ],
        });
    }
    let events = checked(&run);
    for episode in &run.episodes {
        let name = format!(
            "{RSS_COUNTER} {}[{}]",
            episode.victim.comm, episode.victim.pid
        );
        let samples: Vec<&Value> = events
            .iter()
            .filter(|e| e["ph"] == "C" && e["name"] == name.as_str())
            .collect();
        assert_eq!(samples.len(), 2, "{name}");
        assert!(samples.iter().all(|e| e["pid"] == episode.index + 1));
        assert_eq!(samples[0]["args"][RSS_COUNTER_ARG], 1u64 << 30);
        assert_eq!(samples[1]["args"][RSS_COUNTER_ARG], 0);
    }
}

/// Issue 25 in Perfetto: a counter per walker through its kept steps, a
/// span per PTE-lock wait on the waiter's thread, and a flow to each from a
/// holder span on the holder's thread, starting no later than the wait;
/// on 6.1 (inline PTE lock) holders come from the other walker's step.
#[test]
fn collision_runs_have_walker_counters_wait_spans_and_flows_from_holders() {
    use super::collision::{SPAN_PTE_HOLDER, SPAN_PTE_WAIT, WALKER_COUNTER};
    for name in ["7.2-collisions", "6.1-collisions"] {
        let run = fixture(&format!("report/{name}.run.json"));
        let events = checked(&run);
        let waits: usize = run
            .episodes
            .iter()
            .filter_map(|e| e.function_timing.as_ref()?.collisions.as_ref())
            .map(|c| c.waits.iter().filter(|w| w.duration_ns.is_some()).count())
            .sum();
        assert!(waits > 0, "{name}");
        assert_eq!(spans(&events, SPAN_PTE_WAIT).len(), waits, "{name}");
        let holders = spans(&events, SPAN_PTE_HOLDER);
        assert_eq!(holders.len(), waits, "{name}: every wait has a holder here");
        let counters: std::collections::BTreeSet<&str> = events
            .iter()
            .filter(|e| e["ph"] == "C" && e["cat"] == "collision")
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        let expected = [
            format!("{WALKER_COUNTER}: mrelease caller"),
            format!("{WALKER_COUNTER}: victim exit"),
        ];
        assert_eq!(
            counters.into_iter().collect::<Vec<_>>(),
            expected.iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}"
        );
        let flows = |ph: &str| -> Vec<&Value> { events.iter().filter(|e| e["ph"] == ph).collect() };
        let (starts, ends) = (flows("s"), flows("f"));
        assert_eq!((starts.len(), ends.len()), (waits, waits), "{name}");
        for (s, f) in starts.iter().zip(&ends) {
            assert_eq!(s["id"], f["id"], "{name}");
            assert!(s["ts"].as_f64() <= f["ts"].as_f64(), "{name}: {s} {f}");
            assert_ne!(s["tid"], f["tid"], "{name}: a holder is another thread");
        }
    }
}
