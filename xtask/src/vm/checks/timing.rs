//! The function-timing assertions of `cargo xtask vm-test` (issue 4), run on
//! `record/run.json` and `doctor.json` from each cell. What each kernel must
//! show (attach mode per arch, VMA order, which concept resolves to which
//! symbol) is the matrix table's ([`table`]); on every kernel the reaper
//! work's exact inclusive time is at least the sum of its probed direct
//! children's in the same context.

use serde_json::Value;

use super::super::matrix::table::{self, Attach};
use super::{CellContext, DOCTOR_JSON, RECORD_DIR, Verdict};

/// The reaper work function on every kernel of the matrix.
const REAPER_WORK: &str = "__oom_reap_task_mm";
/// The synthetic victim's VMA count (`--victim 256M` default `vmas=64`).
const VICTIM_VMAS: u64 = 64;

/// What a cell's kernel must show, read from the table row.
struct Expect {
    /// The mode every attached function must have; `None`: any.
    mode: Option<&'static str>,
    /// Whether every timed function must attach.
    must_attach: bool,
    /// Text each kprobe function's status must contain (the fentry refusal).
    fentry_refusal: Option<&'static str>,
    /// The per-VMA unmap function.
    per_vma: &'static str,
    /// The PTE-lock function, if the kernel has one.
    pte_lock: Option<&'static str>,
    /// The reaper order.
    order: &'static str,
}

fn expect(ctx: &CellContext) -> Option<Expect> {
    let row = table::expectation(ctx.guest_release, ctx.arch)?;
    let (mode, must_attach, fentry_refusal) = match row.attach {
        Attach::All(mode) => (Some(mode), true, None),
        Attach::KprobeAfterFentryRefusal(why) => (Some("kprobe"), true, Some(why)),
        Attach::EveryFunction => (None, true, None),
        Attach::Any => (None, false, None),
    };
    Some(Expect {
        mode,
        must_attach,
        fentry_refusal,
        per_vma: row.symbol("per_vma_unmap").flatten()?,
        pte_lock: row.symbol("pte_lock").flatten(),
        order: row.order.as_str(),
    })
}

fn no_row(ctx: &CellContext) -> Verdict {
    Verdict::Fail(format!(
        "the matrix table has no row for {} on {}; add one to xtask/src/vm/matrix/table.rs",
        ctx.guest_release, ctx.arch
    ))
}

/// doctor.json resolved each concept the table names to the table's symbol.
pub fn concept_symbols(ctx: &CellContext) -> Verdict {
    if !ctx.reaper_ran {
        return Verdict::Skip("reaper not run (--smoke)".into());
    }
    let Some(row) = table::expectation(ctx.guest_release, ctx.arch) else {
        return no_row(ctx);
    };
    let doctor = match doctor_json(ctx) {
        Ok(doctor) => doctor,
        Err(v) => return v,
    };
    let modes = doctor["function_modes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut seen = Vec::new();
    for (concept, want) in row.symbols {
        let Some(entry) = modes.iter().find(|m| m["concept"] == *concept) else {
            return Verdict::Fail(format!("doctor.json's function_modes lack {concept}"));
        };
        let got = entry["symbol"].as_str();
        if got != *want {
            return Verdict::Fail(format!(
                "{concept} resolved to {got:?}, the table expects {want:?}"
            ));
        }
        seen.push(format!("{concept}={}", want.unwrap_or("absent")));
    }
    Verdict::Pass(seen.join(", "))
}

/// `record/run.json`, parsed, or the verdict explaining why not.
fn run_json(ctx: &CellContext) -> Result<Value, Verdict> {
    if !ctx.reaper_ran {
        return Err(Verdict::Skip("reaper not run (--smoke)".into()));
    }
    let path = ctx.out_dir.join(RECORD_DIR).join("run.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Verdict::Fail(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Verdict::Fail(format!("{} is not JSON: {e}", path.display())))
}

/// The guest's `reaper doctor --json`, or the failing verdict.
fn doctor_json(ctx: &CellContext) -> Result<Value, Verdict> {
    let path = ctx.out_dir.join(DOCTOR_JSON);
    std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        .map_err(|e| Verdict::Fail(format!("cannot read {}: {e}", path.display())))
}

/// `(probe, mode, status)` of the `function:*` probe entries.
fn function_probes(run: &Value) -> Vec<(String, String, String)> {
    let s = |p: &Value, k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    run["recording"]["probes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| s(p, "probe").starts_with("function:"))
        .map(|p| {
            (
                s(p, "probe").trim_start_matches("function:").to_owned(),
                s(p, "mode"),
                s(p, "status"),
            )
        })
        .collect()
}

/// Every episode, with its 1-based number.
fn episodes(run: &Value) -> Vec<(usize, &Value)> {
    run["episodes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, e)| (i + 1, e))
        .collect()
}

/// Episodes in which `process_mrelease` returned 0, i.e. the reaper worked.
/// Under TCG the first kill of a fresh guest can lose the race (the kernel
/// paths are translated for the first time): the victim drops its mm before
/// the call arrives and the call fails with ESRCH. Those episodes are named
/// in the verdicts, never counted.
fn reaped(run: &Value) -> (Vec<(usize, &Value)>, Vec<String>) {
    let mut lost = Vec::new();
    let mut ok = Vec::new();
    for (n, e) in episodes(run) {
        match e["latencies"]["mrelease_ret"].as_i64() {
            Some(0) => ok.push((n, e)),
            other => lost.push(format!("episode {n}: process_mrelease returned {other:?}")),
        }
    }
    (ok, lost)
}

/// The attach modes and symbol names this kernel must show.
pub fn function_attach(ctx: &CellContext) -> Verdict {
    let run = match run_json(ctx) {
        Ok(run) => run,
        Err(v) => return v,
    };
    let Some(want) = expect(ctx) else {
        return no_row(ctx);
    };
    let probes = function_probes(&run);
    if probes.is_empty() {
        return Verdict::Fail("run.json lists no function:* probes".into());
    }
    let attached: Vec<&(String, String, String)> =
        probes.iter().filter(|(_, m, _)| m != "none").collect();
    for (name, mode, status) in &probes {
        if mode == "none" && (status.is_empty() || status == "attached") {
            return Verdict::Fail(format!(
                "{name} is not attached but says {status:?} instead of a reason"
            ));
        }
    }
    let mode_of = |symbol: &str| probes.iter().find(|(n, _, _)| n == symbol);
    for symbol in [Some(REAPER_WORK), Some(want.per_vma), want.pte_lock]
        .into_iter()
        .flatten()
    {
        match mode_of(symbol) {
            None => return Verdict::Fail(format!("{symbol} is not in run.json's probes")),
            Some((_, mode, status)) if mode == "none" && want.must_attach => {
                return Verdict::Fail(format!("{symbol} did not attach: {status}"));
            }
            _ => {}
        }
    }
    if let Some(mode) = want.mode
        && let Some((name, m, _)) = attached.iter().find(|(_, m, _)| m != mode)
    {
        return Verdict::Fail(format!("{name} attached with {m}, expected {mode}"));
    }
    if let Some(refusal) = want.fentry_refusal {
        // run.json's function_probes keep why fentry was refused.
        let fallbacks: Vec<(String, String)> = run["function_probes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["mode"] == "kprobe")
            .map(|p| {
                (
                    p["symbol"].as_str().unwrap_or("?").to_owned(),
                    p["fallback_from"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if fallbacks.len() != attached.len() {
            return Verdict::Fail(format!(
                "function_probes lists {} kprobe functions, recording.probes {} attached",
                fallbacks.len(),
                attached.len()
            ));
        }
        if let Some((name, why)) = fallbacks.iter().find(|(_, why)| !why.contains(refusal)) {
            return Verdict::Fail(format!(
                "{name}: expected the fentry refusal ({refusal}) as its fallback reason, got {why:?}"
            ));
        }
    }
    if attached.is_empty() {
        // sid arm64 may allow nothing; then the run must say why.
        let said = run["not_measured"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| {
                n["what"]
                    .as_str()
                    .is_some_and(|w| w.contains("exact per-function timing"))
            });
        return if said {
            Verdict::Pass("no function probe attaches; run.json says why".into())
        } else {
            Verdict::Fail("no function probe attached and not_measured does not say why".into())
        };
    }
    let modes: std::collections::BTreeSet<&str> =
        attached.iter().map(|(_, m, _)| m.as_str()).collect();
    Verdict::Pass(format!(
        "{} of {} functions attached ({}); {} and {} present",
        attached.len(),
        probes.len(),
        modes.into_iter().collect::<Vec<_>>().join("+"),
        want.per_vma,
        want.pte_lock.unwrap_or("no PTE-lock function (inline)")
    ))
}

/// The reaper's VMA order.
pub fn reaper_order(ctx: &CellContext) -> Verdict {
    let run = match run_json(ctx) {
        Ok(run) => run,
        Err(v) => return v,
    };
    let Some(want) = expect(ctx) else {
        return no_row(ctx);
    };
    let per_vma_attached = function_probes(&run)
        .iter()
        .any(|(n, m, _)| n == want.per_vma && m != "none");
    if !per_vma_attached && !want.must_attach {
        let said = run["not_measured"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["what"] == "reaper VMA order");
        return if said {
            Verdict::Pass("order not measurable here; run.json says why".into())
        } else {
            Verdict::Fail("per-VMA function not attached and no reason for the order".into())
        };
    }
    let (ok, lost) = reaped(&run);
    if ok.is_empty() {
        return Verdict::Fail(format!("the reaper never ran: {}", lost.join("; ")));
    }
    let mut lines = Vec::new();
    for (n, episode) in ok {
        let Some(order) = episode["function_timing"]["vma_orders"]
            .as_array()
            .and_then(|orders| orders.iter().find(|o| o["context"] == "mrelease_caller"))
        else {
            return Verdict::Fail(format!(
                "episode {n}: the reaper ran but no mrelease_caller VMA order was recorded"
            ));
        };
        let seen = order["order"].as_str().unwrap_or("?");
        let vmas = order["vmas"].as_u64().unwrap_or(0);
        let (first, last) = (
            order["first"].as_u64().unwrap_or(0),
            order["last"].as_u64().unwrap_or(0),
        );
        let evidence = format!(
            "episode {n}: {seen} ({vmas} VMAs, {first:#x}→{last:#x}) via {}",
            order["function"].as_str().unwrap_or("?")
        );
        if order["function"] != want.per_vma {
            return Verdict::Fail(format!("order read from the wrong function: {evidence}"));
        }
        if vmas < VICTIM_VMAS {
            return Verdict::Fail(format!(
                "fewer VMAs than the victim's {VICTIM_VMAS}: {evidence}"
            ));
        }
        if seen != want.order {
            return Verdict::Fail(format!("expected {}, got {evidence}", want.order));
        }
        lines.push(evidence);
    }
    lines.extend(lost.into_iter().map(|l| format!("{l}, not counted")));
    Verdict::Pass(lines.join("; "))
}

/// Every probed parent's inclusive time covers its probed direct children's,
/// per context; the reaper work's children must have been seen.
pub fn parent_covers_children(ctx: &CellContext) -> Verdict {
    let run = match run_json(ctx) {
        Ok(run) => run,
        Err(v) => return v,
    };
    if function_probes(&run).iter().all(|(_, m, _)| m == "none") {
        return Verdict::Skip("no function probe attached on this kernel".into());
    }
    let (ok, lost) = reaped(&run);
    if ok.is_empty() {
        return Verdict::Fail(format!("the reaper never ran: {}", lost.join("; ")));
    }
    let mut lines = Vec::new();
    for (n, episode) in episodes(&run) {
        let Some(timing) = episode.get("function_timing") else {
            return Verdict::Fail(format!("episode {n} has no function_timing"));
        };
        match covers(timing) {
            Err(why) => return Verdict::Fail(format!("episode {n}: {why}")),
            Ok(Some(line)) => lines.push(format!("episode {n}: {line}")),
            Ok(None) if ok.iter().any(|(m, _)| *m == n) => {
                return Verdict::Fail(format!(
                    "episode {n}: the reaper ran but {REAPER_WORK} has no probed children in mrelease_caller"
                ));
            }
            Ok(None) => {}
        }
    }
    Verdict::Pass(lines.join("; "))
}

/// Checks one episode's arithmetic; the reaper work's line when it ran.
fn covers(timing: &Value) -> Result<Option<String>, String> {
    let functions = timing["functions"].as_array().cloned().unwrap_or_default();
    let edges = timing["edges"].as_array().cloned().unwrap_or_default();
    let total = |context: &Value, symbol: &Value| -> u64 {
        functions
            .iter()
            .find(|f| &f["context"] == context && &f["symbol"] == symbol)
            .and_then(|f| f["total_ns"].as_u64())
            .unwrap_or(0)
    };
    let mut reaper_line = None;
    for parent in &functions {
        let (context, symbol) = (&parent["context"], &parent["symbol"]);
        let parent_ns = parent["total_ns"].as_u64().unwrap_or(0);
        let children: Vec<&Value> = edges
            .iter()
            .filter(|e| &e["context"] == context && &e["parent"] == symbol)
            .collect();
        let sum: u64 = children.iter().filter_map(|e| e["total_ns"].as_u64()).sum();
        if sum > parent_ns {
            return Err(format!(
                "{context}: {symbol} {parent_ns} ns < its probed children's sum {sum} ns"
            ));
        }
        for e in &children {
            if e["total_ns"].as_u64().unwrap_or(0) > total(context, &e["child"]) {
                return Err(format!(
                    "{context}: edge {symbol}→{} has more time than {} in total",
                    e["child"], e["child"]
                ));
            }
        }
        if symbol == REAPER_WORK && context == "mrelease_caller" && sum > 0 {
            let names: Vec<String> = children
                .iter()
                .map(|e| format!("{} {}", e["child"].as_str().unwrap_or("?"), e["total_ns"]))
                .collect();
            reaper_line = Some(format!(
                "{REAPER_WORK} {parent_ns} ns ≥ Σ probed children {sum} ns ({})",
                names.join(" + ")
            ));
        }
    }
    Ok(reaper_line)
}

/// doctor.json's per-function modes agree with what record used.
pub fn doctor_agrees(ctx: &CellContext) -> Verdict {
    let run = match run_json(ctx) {
        Ok(run) => run,
        Err(v) => return v,
    };
    let doctor = match doctor_json(ctx) {
        Ok(doctor) => doctor,
        Err(v) => return v,
    };
    let Some(modes) = doctor["function_modes"].as_array() else {
        return Verdict::Fail("doctor.json has no function_modes".into());
    };
    for (name, mode, _) in function_probes(&run) {
        let doctor_mode = modes
            .iter()
            .find(|m| m["symbol"] == name.as_str() || m["concept"] == name.as_str())
            .and_then(|m| m["mode"].as_str());
        if doctor_mode != Some(mode.as_str()) {
            return Verdict::Fail(format!(
                "{name}: record used {mode}, doctor says {doctor_mode:?}"
            ));
        }
    }
    Verdict::Pass(format!("{} functions, same modes", modes.len()))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::vm::arch::Arch;
    use crate::vm::kernel::{DebianKernel, Flavour, Line};

    /// The line is not what the timing checks look at: the release is.
    const ANY_LINE: &DebianKernel = &DebianKernel {
        line: Line::Sid,
        version: None,
        flavour: Flavour::Cloud,
    };

    fn cell<'a>(release: &'a str, arch: Arch, out: &'a Path) -> CellContext<'a> {
        CellContext {
            kernel: ANY_LINE,
            arch,
            out_dir: out,
            guest_release: release,
            guest_machine: "x",
            reaper_ran: true,
        }
    }

    fn out_with(name: &str, run: &str, doctor: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-timing-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(RECORD_DIR)).unwrap();
        std::fs::write(dir.join(RECORD_DIR).join("run.json"), run).unwrap();
        std::fs::write(dir.join(super::DOCTOR_JSON), doctor).unwrap();
        dir
    }

    const SID_RUN: &str = r#"{
      "recording": {"probes": [
        {"probe": "function:__oom_reap_task_mm", "mode": "fentry", "status": "attached"},
        {"probe": "function:zap_vma_for_reaping", "mode": "fentry", "status": "attached"},
        {"probe": "function:pte_offset_map_lock", "mode": "fentry", "status": "attached"},
        {"probe": "function:reaper_kthread", "mode": "none", "status": "not timed: loop"}]},
      "not_measured": [],
      "episodes": [{"latencies": {"mrelease_ret": 0}, "function_timing": {
        "functions": [
          {"context": "mrelease_caller", "symbol": "__oom_reap_task_mm", "total_ns": 1000},
          {"context": "mrelease_caller", "symbol": "zap_vma_for_reaping", "total_ns": 900}],
        "edges": [{"context": "mrelease_caller", "parent": "__oom_reap_task_mm",
                   "child": "zap_vma_for_reaping", "calls": 64, "total_ns": 900}],
        "vma_orders": [{"context": "mrelease_caller", "function": "zap_vma_for_reaping",
          "order": "reverse", "vmas": 70, "first": 140000000000000, "last": 94000000000000}]}}]
    }"#;

    const SID_DOCTOR: &str = r#"{"function_modes": [
        {"concept": "reaper_work", "symbol": "__oom_reap_task_mm", "mode": "fentry"},
        {"concept": "per_vma_unmap", "symbol": "zap_vma_for_reaping", "mode": "fentry"},
        {"concept": "pte_lock", "symbol": "pte_offset_map_lock", "mode": "fentry"},
        {"concept": "reaper_kthread", "symbol": null, "mode": "none"}]}"#;

    #[test]
    fn sid_x86_64_passes_with_reverse_fentry() {
        let out = out_with("sid", SID_RUN, SID_DOCTOR);
        let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
        for (name, v) in [
            ("attach", function_attach(&c)),
            ("order", reaper_order(&c)),
            ("children", parent_covers_children(&c)),
            ("doctor", doctor_agrees(&c)),
        ] {
            assert!(matches!(v, Verdict::Pass(_)), "{name}: {v:?}");
        }
        // The same data is wrong for bookworm: forward order expected.
        let b = cell("6.1.0-50-cloud-amd64", Arch::X86_64, &out);
        assert!(matches!(reaper_order(&b), Verdict::Fail(_)));
        std::fs::remove_dir_all(&out).unwrap();
    }

    /// Prints every timing verdict for the cells of a finished `vm-test`
    /// (`XTASK_VM_TEST_OUT=target/vm-test cargo test -p xtask verdicts -- --ignored --nocapture`).
    #[test]
    #[ignore = "reads the output of a real vm-test run"]
    fn verdicts_of_a_vm_test_run() {
        let root = PathBuf::from(std::env::var("XTASK_VM_TEST_OUT").expect("XTASK_VM_TEST_OUT"));
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            let out = entry.path();
            let Ok(release) = std::fs::read_to_string(out.join(super::super::UNAME_R_FILE)) else {
                continue;
            };
            let release = release.trim();
            let arch = if release.ends_with("arm64") {
                Arch::Arm64
            } else {
                Arch::X86_64
            };
            let c = cell(release, arch, &out);
            for (name, v) in [
                ("function-attach", function_attach(&c)),
                ("reaper-order", reaper_order(&c)),
                ("reaper-time-covers-children", parent_covers_children(&c)),
                ("doctor-function-modes", doctor_agrees(&c)),
            ] {
                println!("{} {name}: {v:?}", out.display());
            }
        }
    }

    #[test]
    fn children_exceeding_the_parent_fail() {
        let bad = SID_RUN.replace("\"total_ns\": 1000", "\"total_ns\": 800");
        let out = out_with("bad", &bad, SID_DOCTOR);
        let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
        let Verdict::Fail(msg) = parent_covers_children(&c) else {
            panic!("must fail")
        };
        assert!(
            msg.contains("800 ns < its probed children's sum 900 ns"),
            "{msg}"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn bookworm_arm64_needs_the_524_refusal() {
        let run = SID_RUN
            .replace("\"mode\": \"fentry\"", "\"mode\": \"kprobe\"")
            .replace(
                "\"not_measured\": [],",
                r#""not_measured": [], "function_probes": [
                  {"concept": "reaper_work", "symbol": "__oom_reap_task_mm", "mode": "kprobe", "status": "attached", "fallback_from": "fentry attach: x [ENOTSUPP 524]"},
                  {"concept": "per_vma_unmap", "symbol": "zap_vma_for_reaping", "mode": "kprobe", "status": "attached", "fallback_from": "fentry attach: x [ENOTSUPP 524]"},
                  {"concept": "pte_lock", "symbol": "pte_offset_map_lock", "mode": "kprobe", "status": "attached", "fallback_from": "fentry attach: x [ENOTSUPP 524]"}],"#,
            );
        let out = out_with(
            "arm",
            &run.replace("zap_vma_for_reaping", "unmap_page_range"),
            SID_DOCTOR,
        );
        let c = cell("6.1.0-50-cloud-arm64", Arch::Arm64, &out);
        assert!(
            matches!(function_attach(&c), Verdict::Pass(_)),
            "{:?}",
            function_attach(&c)
        );
        let no_refusal = run.replace("524", "1");
        let out2 = out_with(
            "arm2",
            &no_refusal.replace("zap_vma_for_reaping", "unmap_page_range"),
            SID_DOCTOR,
        );
        let c2 = cell("6.1.0-50-cloud-arm64", Arch::Arm64, &out2);
        assert!(matches!(function_attach(&c2), Verdict::Fail(_)));
        std::fs::remove_dir_all(&out).unwrap();
        std::fs::remove_dir_all(&out2).unwrap();
    }
}
