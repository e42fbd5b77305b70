//! Small but complete run.json and doctor.json documents for xtask's tests:
//! a base that decodes with reaper-model's types, and a deep merge to set
//! what a test is about.

use reaper_model::{AttachMode, ConceptId, ScenarioKind};
use serde_json::{Value, json};

/// Merges `patch` into `base`: objects key by key, anything else replaced.
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

/// A run with no probes and no episodes, then `patch`.
pub fn run(patch: Value) -> Value {
    let mut run = json!({
        "schema_version": 1,
        "tool": {"name": "reaper", "version": "0.1.0"},
        "host": {"kernel_release": "7.2.13+deb14-cloud-amd64", "arch": "x86_64", "cpus": 2},
        "recording": {
            "started_unix": 0, "freq_hz": 4000, "sample_period_ns": 250000, "probes": [],
            "scenario": {"kind": ScenarioKind::Victim, "description": "victim 256M", "mrelease": true, "runs": 1}
        },
        "symbols": [], "episodes": [], "not_measured": [], "partial": false
    });
    merge(&mut run, patch);
    run
}

/// An episode of victim `pid` with nothing recorded, then `patch`.
pub fn episode(pid: u32, patch: Value) -> Value {
    let mut episode = json!({
        "index": 0,
        "victim": {"pid": pid, "comm": "victim", "rss_bytes": 268435456, "threads": 1, "vmas": 64},
        "contexts": [], "timeline": [], "latencies": {}, "counters": {}, "partial": false
    });
    merge(&mut episode, patch);
    episode
}

/// One fentry-timed function's row of `function_timing.functions`.
pub fn function(context: &str, concept: ConceptId, symbol: &str, total_ns: u64) -> Value {
    json!({
        "context": context, "concept": concept, "symbol": symbol, "mode": AttachMode::Fentry,
        "calls": 1, "total_ns": total_ns, "max_ns": total_ns, "hist_log2_ns": []
    })
}

/// A `function_timing.vma_orders` entry.
pub fn vma_order(context: &str, function: &str, order: &str, vmas: u64) -> Value {
    json!({
        "context": context, "function": function, "order": order, "vmas": vmas,
        "first": 140000000000000u64, "last": 94000000000000u64,
        "forward_steps": 0, "reverse_steps": vmas.saturating_sub(1)
    })
}

/// A doctor.json of a kernel where nothing was checked, then `patch`.
pub fn doctor(patch: Value) -> Value {
    let mut doctor = json!({
        "host": {"kernel_release": "7.2.13+deb14-cloud-amd64", "arch": "x86_64", "cpus": 2},
        "btf": true, "tracefs": {"Ok": "/sys/kernel/tracing"}, "tracefs_mounted_by_reaper": false,
        "privileges": {"Ok": null}, "attach_kinds": [], "programs": {"Ok": []},
        "probe_targets": [], "function_modes": [], "process_mrelease": true, "record_mode": "tracepoints + cpu-clock sampling"
    });
    merge(&mut doctor, patch);
    doctor
}

#[test]
fn the_bases_decode() {
    let run = run(json!({"episodes": [episode(1, json!({"function_timing": {
        "functions": [function("mrelease_caller", ConceptId::ReaperWork, "f", 1)],
        "vma_orders": [vma_order("mrelease_caller", "f", "reverse", 64)]}}))]}));
    let run: reaper_model::Run = serde_json::from_value(run).unwrap();
    assert_eq!(run.episodes[0].victim.pid, 1);
    let _: reaper_model::doctor::Diagnosis = serde_json::from_value(doctor(json!({}))).unwrap();
}
