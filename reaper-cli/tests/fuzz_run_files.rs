//! Property test of everything that reads a run file (issue 14): the
//! loader, every renderer, `report -o` file writing, and `diff`/`gate`,
//! fed arbitrary JSON and real runs with random parts replaced. The
//! property: no panic, and every file written lands inside the output
//! directory. A loader error is a fine outcome; a crash is not.
//!
//! Bounded for CI: `REAPER_FUZZ_CASES` cases per property (default 128, four
//! properties: about 15 s of CPU in a debug build, under 90 s of wall time
//! on a busy 2-CPU machine). Failures are printed with the
//! shrunk input; nothing is persisted.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

use reaper::compare::{self, diff::DiffOptions, flame, gate, gate_render, text};
use reaper::output::OutputDir;
use reaper::report::{self, ReportOptions};

fn cases() -> u32 {
    std::env::var("REAPER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report/6.18-3-episodes.run.json")
}

fn fixture() -> &'static Value {
    static RUN: OnceLock<Value> = OnceLock::new();
    RUN.get_or_init(|| serde_json::from_slice(&std::fs::read(fixture_path()).unwrap()).unwrap())
}

/// JSON pointers of every node of the fixture.
fn pointers() -> &'static [String] {
    static POINTERS: OnceLock<Vec<String>> = OnceLock::new();
    POINTERS.get_or_init(|| {
        fn walk(v: &Value, at: String, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    for (k, child) in map {
                        walk(
                            child,
                            format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                            out,
                        );
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        walk(child, format!("{at}/{i}"), out);
                    }
                }
                _ => {}
            }
            out.push(at);
        }
        let mut out = Vec::new();
        walk(fixture(), String::new(), &mut out);
        out
    })
}

/// Strings a hostile file would use: traversal, known names, noise.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("../../trav-pwned".to_owned()),
        Just("/etc/passwd".to_owned()),
        Just("victim_exit".to_owned()),
        Just("mrelease_caller".to_owned()),
        Just("oom_reaper".to_owned()),
        Just("combined".to_owned()),
        Just(String::new()),
        Just("a\0b".to_owned()),
        "\\PC{0,24}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Plausible magnitudes, so edited runs still load and reach the
        // renderers' arithmetic.
        (0u64..1 << 40).prop_map(Value::from),
        (-(1i64 << 40)..1 << 40).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(0)),
        (-1e300f64..1e300).prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        hostile_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(hostile_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Pointers of the fixture's numeric leaves.
fn numeric_pointers() -> &'static [String] {
    static POINTERS: OnceLock<Vec<String>> = OnceLock::new();
    POINTERS.get_or_init(|| {
        pointers()
            .iter()
            .filter(|p| fixture().pointer(p).is_some_and(Value::is_number))
            .cloned()
            .collect()
    })
}

/// Runs that loaded and were rendered (`REAPER_FUZZ_STATS=1` prints it).
static LOADED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Loads `text` as a run and as side B of a diff and gate against the
/// fixture, renders everything, writes every file; panics are the failure.
fn exercise(text_of_run: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("b.json");
    std::fs::write(&file, text_of_run).unwrap();
    let out_dir = scratch.path().join("out");
    let opts = ReportOptions::default();
    if let Ok(run) = report::load::parse_run(text_of_run, &file) {
        let n = LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if std::env::var_os("REAPER_FUZZ_STATS").is_some() {
            eprintln!("fuzz: {n} runs loaded and rendered so far");
        }
        let _ = report::render_text(&run, &opts);
        let _ = report::render_json(&run, &opts);
        let out = OutputDir::create(&out_dir).unwrap();
        if let Ok(files) = report::write_files(&run, &out, &opts) {
            for f in files {
                assert_eq!(f.parent(), Some(out_dir.as_path()), "{}", f.display());
            }
        }
    }
    if let Ok(pair) = compare::load_pair(("A", &fixture_path()), ("B", &file), true) {
        let d = compare::diff::diff(
            &pair.a,
            &pair.b,
            pair.notes.clone(),
            &DiffOptions::default(),
        );
        let _ = text::render(&d);
        let _ = serde_json::to_string(&d).unwrap();
        let header = compare::diff::header(&pair.a, &pair.b, pair.notes, &DiffOptions::default());
        let gate_opts = gate::GateOptions {
            min_runs: Some(1),
            ..gate::default_options()
        };
        let report = gate::evaluate(&pair.a, &pair.b, header, &gate_opts);
        let _ = gate_render::markdown(&report);
        let _ = gate_render::junit(&report);
        let flames = scratch.path().join("flames");
        let out = OutputDir::create(&flames).unwrap();
        if let Ok(files) = flame::write_all(&pair.a, &pair.b, ("a", "b"), &Default::default(), &out)
        {
            for f in files {
                assert_eq!(f.parent(), Some(flames.as_path()), "{}", f.display());
            }
        }
    }
    // Nothing outside the scratch directory's known entries.
    for entry in std::fs::read_dir(scratch.path()).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            ["b.json", "out", "flames"].contains(&name.to_str().unwrap()),
            "{name:?}"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json_never_panics(v in json()) {
        exercise(&v.to_string());
    }

    #[test]
    fn real_runs_with_parts_replaced_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), json()), 1..4)
    ) {
        let mut run = fixture().clone();
        for (at, value) in edits {
            let pointer = at.get(pointers());
            if let Some(slot) = run.pointer_mut(pointer) {
                *slot = value;
            }
        }
        exercise(&run.to_string());
    }

    #[test]
    fn real_runs_with_numbers_replaced_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), number()), 1..6)
    ) {
        let mut run = fixture().clone();
        for (at, value) in edits {
            if let Some(slot) = run.pointer_mut(at.get(numeric_pointers()).as_str()) {
                *slot = value;
            }
        }
        exercise(&run.to_string());
    }

    #[test]
    fn real_runs_with_one_field_removed_never_panic(at in any::<prop::sample::Index>()) {
        let mut run = fixture().clone();
        let pointer = at.get(pointers()).clone();
        if let Some((parent, key)) = pointer.rsplit_once('/')
            && let Some(Value::Object(map)) = run.pointer_mut(parent)
        {
            map.remove(&key.replace("~1", "/").replace("~0", "~"));
        }
        exercise(&run.to_string());
    }
}
