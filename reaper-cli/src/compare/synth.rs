//! Synthetic run files for the comparison tests and fixtures.
//!
//! A run is built as JSON (not as model structs), so fields added to the
//! model later with serde defaults do not break it. Each episode scales one
//! base teardown profile (victim exit_mmap and a process_mrelease caller on
//! 6.18, or the 6.1 variant without the PTE-lock function and lock probe)
//! by a factor: the set's shift times deterministic noise.

use serde_json::{Value, json};

use crate::model::{
    AttachMode, ConceptId, Context, ProbeGroup, ProbeOutcome, ScenarioKind, TimelineEventKind,
};

/// cpu-clock period at 4 kHz, ns.
const PERIOD_NS: u64 = 250_000;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `uname -r`.
    pub kernel: &'static str,
    /// 6.1-style symbols and no lock-wait probe.
    pub old_kernel: bool,
    /// Per-episode factors applied to the base profile.
    pub factors: Vec<f64>,
    /// Victim size, bytes.
    pub victim_bytes: u64,
    /// `schema_version`.
    pub schema: u32,
}

impl Spec {
    /// A 6.18 run of 1G with the given factors.
    pub fn new(factors: Vec<f64>) -> Self {
        Self {
            kernel: "6.18.0-1-amd64",
            old_kernel: false,
            factors,
            victim_bytes: 1 << 30,
            schema: 1,
        }
    }
}

/// `n` factors of `shift` times noise uniformly within ±`noise`, from
/// SplitMix64 seeded by `seed` (fixed, so fixtures are reproducible).
pub fn factors(n: usize, shift: f64, noise: f64, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
            let f = shift * (1.0 + noise * (2.0 * unit - 1.0));
            (f * 1000.0).round() / 1000.0
        })
        .collect()
}

fn frames(s: &str) -> Vec<&str> {
    s.split(';').collect()
}

fn stack(path: &str, samples: f64) -> Value {
    let samples = samples.round() as u64;
    json!({ "frames": frames(path), "samples": samples, "period_ns": samples * PERIOD_NS })
}

fn wait(path: &str, count: f64, total_ms: f64) -> Value {
    let total_ns = (total_ms * 1e6).round() as u64;
    let count = count.round() as u64;
    json!({
        "frames": frames(path), "flags": 1, "count": count,
        "total_ns": total_ns, "max_ns": total_ns / count.max(1) * 4
    })
}

/// The victim's exit path above the PTE-level zap.
const VICTIM_ABOVE_PTE: &str = "do_exit;mmput;exit_mmap;unmap_vmas;unmap_page_range";
/// The mrelease caller's path above the PTE-level zap.
const REAPER_ABOVE_PTE: &str =
    "entry_SYSCALL_64;do_syscall_64;__x64_sys_process_mrelease;__oom_reap_task_mm;unmap_page_range";
/// The spinlock's slow path.
const SPIN: &str = "_raw_spin_lock;native_queued_spin_lock_slowpath";

fn episode(spec: &Spec, index: usize, f: f64) -> Value {
    json!({
        "index": index,
        "victim": { "pid": 1000 + index, "comm": "reaper-victim", "rss_bytes": spec.victim_bytes,
                    "threads": 1, "vmas": 64 },
        "contexts": [victim_context(spec, index, f), reaper_context(spec, f)],
        "timeline": [
            { "t_ns": 0, "kind": TimelineEventKind::Kill, "tid": 900, "tgid": 900, "comm": "reaper", "arg": 9 }
        ],
        "latencies": {
            "kill_to_mrelease_done_ns": (80e6 * f).round() as u64,
            "kill_to_exit_mmap_done_ns": (90e6 * f).round() as u64,
            "mrelease_duration_ns": (79e6 * f).round() as u64,
            "mrelease_ret": 0
        },
        "counters": {},
        "partial": false
    })
}

/// The rmap-removal function and the PTE lock's frames on the synthetic
/// kernel (6.1's inline PTE lock, or 6.18's).
fn kernel_names(spec: &Spec) -> (&'static str, &'static str) {
    if spec.old_kernel {
        ("page_remove_rmap", "zap_pte_range")
    } else {
        (
            "folio_remove_rmap_ptes",
            "zap_pte_range;__pte_offset_map_lock",
        )
    }
}

/// One lock-wait stack at `path` scaled by `f`, or none on the old kernel
/// (no contention tracepoints there).
fn lock_waits(spec: &Spec, path: &str, count: f64, ms: f64, f: f64) -> Value {
    if spec.old_kernel {
        json!([])
    } else {
        json!([wait(path, count * f, ms * f)])
    }
}

/// The victim's exit context of episode `index`, its periods scaled by `f`.
fn victim_context(spec: &Spec, index: usize, f: f64) -> Value {
    let (rmap, pte) = kernel_names(spec);
    let victim = format!("{VICTIM_ABOVE_PTE};zap_pte_range");
    json!({
        "context": Context::VictimExit,
        "tasks": [{ "tid": 1000 + index, "comm": "reaper-victim" }],
        "stacks": [
            stack(&format!("{victim};{rmap}"), 80.0 * f),
            stack(&format!("{VICTIM_ABOVE_PTE};{pte};{SPIN}"), 40.0 * f),
            stack(&format!("{victim};tlb_flush_mmu;free_pages_and_swap_cache"), 120.0 * f),
            stack("do_exit;mmput;exit_mmap;free_pgtables", 20.0 * f),
        ],
        "lock_waits": lock_waits(spec, &format!("{VICTIM_ABOVE_PTE};{pte};_raw_spin_lock"), 400.0, 10.0, f),
    })
}

/// The process_mrelease caller's context, its periods scaled by `f`.
fn reaper_context(spec: &Spec, f: f64) -> Value {
    let (rmap, pte) = kernel_names(spec);
    let reaper = format!("{REAPER_ABOVE_PTE};zap_pte_range");
    json!({
        "context": Context::MreleaseCaller,
        "tasks": [{ "tid": 900, "comm": "reaper" }],
        "stacks": [
            stack(&format!("{reaper};{rmap}"), 100.0 * f),
            stack(&format!("{reaper};tlb_flush_mmu;free_pages_and_swap_cache"), 140.0 * f),
            stack(&format!("{REAPER_ABOVE_PTE};{pte};{SPIN}"), 40.0 * f),
        ],
        "lock_waits": lock_waits(spec, &format!("{REAPER_ABOVE_PTE};{pte};_raw_spin_lock"), 800.0, 20.0, f),
    })
}

fn symbols(old_kernel: bool) -> Value {
    let pte = if old_kernel {
        json!({ "concept": ConceptId::PteLock, "candidates": ["__pte_offset_map_lock", "pte_offset_map_lock"] })
    } else {
        json!({ "concept": ConceptId::PteLock, "candidates": ["__pte_offset_map_lock", "pte_offset_map_lock"],
                "symbol": "__pte_offset_map_lock" })
    };
    let rmap = if old_kernel {
        "page_remove_rmap"
    } else {
        "folio_remove_rmap_ptes"
    };
    let one = |concept: ConceptId, symbol: &str| json!({ "concept": concept, "candidates": [symbol], "symbol": symbol });
    json!([
        one(ConceptId::ReaperWork, "__oom_reap_task_mm"),
        one(ConceptId::VictimTeardown, "exit_mmap"),
        one(ConceptId::VictimUnmap, "unmap_vmas"),
        one(ConceptId::PerVmaUnmap, "unmap_page_range"),
        pte,
        { "concept": ConceptId::RmapRemoval, "candidates": ["folio_remove_rmap_ptes", "page_remove_rmap"], "symbol": rmap },
        one(ConceptId::TlbFlush, "tlb_flush_mmu"),
        one(ConceptId::PageFreeing, "free_pages_and_swap_cache"),
        one(ConceptId::SpinSlowpath, "native_queued_spin_lock_slowpath"),
        one(ConceptId::MreleaseSyscall, "__x64_sys_process_mrelease"),
    ])
}

/// A whole run file.
pub fn run(spec: &Spec) -> Value {
    let mut probes = vec![
        json!({ "probe": ProbeGroup::Sampling.name(), "mode": AttachMode::PerfEvent, "status": ProbeOutcome::Attached }),
    ];
    if spec.old_kernel {
        probes.push(json!({ "probe": ProbeGroup::LockWait.name(), "mode": AttachMode::None, "status": "tracepoint lock:contention_begin not found" }));
    } else {
        probes.push(json!({ "probe": ProbeGroup::LockWait.name(), "mode": AttachMode::Tracepoint, "status": ProbeOutcome::Attached }));
    }
    let size = super::comparable::format_bytes(spec.victim_bytes);
    json!({
        "schema_version": spec.schema,
        "tool": { "name": "reaper", "version": "0.1.0" },
        "host": { "kernel_release": spec.kernel, "arch": "x86_64", "cpus": 8 },
        "recording": {
            "started_unix": 1_764_100_000u64,
            "freq_hz": 4000,
            "sample_period_ns": PERIOD_NS,
            "probes": probes,
            "scenario": {
                "kind": ScenarioKind::Victim,
                "description": format!("victim {size},vmas=64,threads=1 + process_mrelease"),
                "victim_bytes": spec.victim_bytes,
                "vmas": 64, "threads": 1, "mrelease": true,
                "runs": spec.factors.len()
            }
        },
        "symbols": symbols(spec.old_kernel),
        "episodes": spec.factors.iter().enumerate().map(|(i, f)| episode(spec, i, *f)).collect::<Vec<_>>(),
        "not_measured": if spec.old_kernel {
            json!([{ "what": "lock wait", "why": "lock:contention_begin tracepoint not found" }])
        } else {
            json!([])
        },
        "partial": false
    })
}

/// Pretty JSON text of a run, as fixtures are stored.
pub fn text(spec: &Spec) -> String {
    serde_json::to_string_pretty(&run(spec)).expect("JSON") + "\n"
}
