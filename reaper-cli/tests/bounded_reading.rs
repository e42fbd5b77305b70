//! Item 3 of issue 23, measured: loading a run file takes at most
//! `MEMORY_PER_BYTE` (3) times its bytes of heap, plus the fixed slack,
//! whatever it holds: real runs (pretty and minified) and runs shaped to
//! amplify (a million empty frame names, map entries, address lists,
//! padding, deep nesting) are either loaded within that or refused while
//! they decode. The heap is counted by this test binary's allocator, so the
//! binary holds one test (nothing else allocates meanwhile).
//!
//! `REAPER_FUZZ_CASES=N` runs N generated files (default 16).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use reaper::input::budget::{MEMORY_PER_BYTE, MEMORY_SLACK};
use reaper::input::{Budget, MaxInput};
use reaper::report::load::{LoadError, load_run_within};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract, forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Fixed costs beyond the model: the reader's buffer, the parser's scratch
/// for one string, error messages.
const FIXED: usize = 4 << 20;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Loads `text` from a file and returns (outcome, peak heap during the
/// load beyond what was live before it).
fn measure(text: &[u8]) -> (Result<(), LoadError>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    std::fs::write(&path, text).unwrap();
    let budget = Budget::new(MaxInput {
        bytes: 1 << 30,
        episodes: u64::MAX,
    });
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let run = load_run_within(&path, &budget);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    (run.map(drop), peak)
}

fn bound(bytes: usize) -> usize {
    bytes * MEMORY_PER_BYTE as usize + MEMORY_SLACK as usize + FIXED
}

/// Ways to make a run file decode into far more memory than its bytes.
#[derive(Clone, Debug)]
enum Shape {
    EmptyFrames(usize),
    Counters(usize),
    Addresses(usize),
    Padding(usize),
    LongString(usize),
    UnknownArray(usize),
    Nesting(usize),
}

fn shape() -> impl Strategy<Value = Shape> {
    let n = 1_000usize..600_000;
    prop_oneof![
        n.clone().prop_map(Shape::EmptyFrames),
        n.clone().prop_map(Shape::Counters),
        n.clone().prop_map(Shape::Addresses),
        n.clone().prop_map(Shape::Padding),
        n.clone().prop_map(Shape::LongString),
        n.prop_map(Shape::UnknownArray),
        (1usize..10_000).prop_map(Shape::Nesting),
    ]
}

/// A real run with one part blown up as `shape` says (minified JSON).
fn shaped(run: &Value, shape: &Shape) -> Vec<u8> {
    let mut run = run.clone();
    let episode = &mut run["episodes"][0];
    match *shape {
        Shape::EmptyFrames(n) => {
            episode["contexts"][0]["stacks"][0]["frames"] = vec![""; n].into();
        }
        Shape::Counters(n) => {
            let map: serde_json::Map<String, Value> =
                (0..n).map(|i| (format!("{i:x}"), Value::from(0))).collect();
            episode["counters"] = map.into();
        }
        Shape::Addresses(n) => {
            episode["function_timing"] = serde_json::json!({
                "functions": [],
                "vma_orders": [{
                    "context": "victim_exit", "function": "f", "order": "forward",
                    "vmas": 1, "first": 0, "last": 0, "forward_steps": 0,
                    "reverse_steps": 0, "addresses": vec![1; n],
                }],
            });
        }
        Shape::Padding(n) => {
            let mut text = serde_json::to_vec(&run).unwrap();
            text.splice(1..1, std::iter::repeat_n(b' ', n * 4));
            return text;
        }
        Shape::LongString(n) => {
            episode["victim"]["comm"] = "x".repeat(n * 4).into();
        }
        Shape::UnknownArray(n) => {
            run["padding"] = vec![0; n].into();
        }
        Shape::Nesting(n) => {
            let mut text = serde_json::to_vec(&run).unwrap();
            let deep = format!("\"deep\": {}0{},", "[".repeat(n), "]".repeat(n));
            text.splice(1..1, deep.into_bytes());
            return text;
        }
    }
    serde_json::to_vec(&run).unwrap()
}

#[test]
fn loading_takes_at_most_three_times_the_bytes_read() {
    // Real runs, as written (pretty) and minified: they load, within the
    // bound.
    for name in [
        "report/6.18-3-episodes.run.json",
        "report/7.3-rt-amd64.run.json",
        "compare/vm-sid-x86_64/run.json",
        "function_timing/sid-x86_64.run.json",
    ] {
        let run = fixture(name);
        for text in [
            serde_json::to_vec_pretty(&run).unwrap(),
            serde_json::to_vec(&run).unwrap(),
        ] {
            let (outcome, peak) = measure(&text);
            outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
            eprintln!(
                "{name}: {} bytes, peak heap {peak} ({:.2}× the bytes, reader buffers included)",
                text.len(),
                peak as f64 / text.len() as f64
            );
            assert!(
                peak <= bound(text.len()),
                "{name}: {peak} > {}",
                bound(text.len())
            );
        }
    }
    // Shaped files: loaded within the bound, or refused while decoding.
    let run = fixture("report/6.18-mrelease.run.json");
    let cases = std::env::var("REAPER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let refused = std::cell::Cell::new(0);
    runner
        .run(&shape(), |shape| {
            let text = shaped(&run, &shape);
            let (outcome, peak) = measure(&text);
            if outcome.is_err() {
                refused.set(refused.get() + 1);
            }
            prop_assert!(
                peak <= bound(text.len()),
                "{shape:?}: {} bytes, peak heap {peak} > {}: {outcome:?}",
                text.len(),
                bound(text.len())
            );
            Ok(())
        })
        .unwrap();
    eprintln!("{} of {cases} shaped files refused", refused.get());
    // And the guard does stop the worst shape rather than just fitting it.
    let text = shaped(&run, &Shape::EmptyFrames(1_500_000));
    let (outcome, peak) = measure(&text);
    let err = outcome.expect_err("4.5 MB of empty frame names decode to 36 MB of slots");
    assert!(
        err.to_string().contains("padding or amplification"),
        "{err}"
    );
    assert!(peak <= bound(text.len()));
}
