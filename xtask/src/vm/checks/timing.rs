//! The function-timing assertions of `cargo xtask vm-test` (issue 4), run on
//! `record/run.json` and `doctor.json` from each cell. What each kernel must
//! show (attach mode per arch, VMA order, which concept resolves to which
//! symbol) is the matrix table's ([`table`]); on every kernel the reaper
//! work's exact inclusive time is at least the sum of its probed direct
//! children's in the same context.

use reaper_model::query::InContext as _;
use reaper_model::{AttachMode, ConceptId, Episode, FunctionTiming, ProbeUse, VmaOrderKind};

use super::super::table::{self, Attach};
use super::read_or_fail;
use super::{CellContext, DOCTOR_JSON, RECORD_DIR, Verdict};
use crate::reaper_json::{Context, Diagnosis, Run};

/// The reaper work function on every kernel of the matrix.
const REAPER_WORK: &str = "__oom_reap_task_mm";
/// The synthetic victim's VMA count (`--victim 256M` default `vmas=64`).
const VICTIM_VMAS: u64 = 64;

/// What a cell's kernel must show, read from the table row.
pub(super) struct Expect {
    /// The mode every attached function must have; `None`: any.
    mode: Option<AttachMode>,
    /// Whether every timed function must attach.
    pub(super) must_attach: bool,
    /// Text each kprobe function's status must contain (the fentry refusal).
    fentry_refusal: Option<&'static str>,
    /// The per-VMA unmap function.
    per_vma: &'static str,
    /// The PTE-lock function, if the kernel has one.
    pte_lock: Option<&'static str>,
    /// The reaper order.
    order: VmaOrderKind,
}

pub(super) fn expect(ctx: &CellContext) -> Option<Expect> {
    let row = table::expectation(ctx.guest_release, ctx.arch)?;
    let (mode, must_attach, fentry_refusal) = match row.attach {
        Attach::All(mode) => (Some(mode), true, None),
        Attach::KprobeAfterFentryRefusal(why) => (Some(AttachMode::Kprobe), true, Some(why)),
        Attach::EveryFunction => (None, true, None),
        Attach::Any => (None, false, None),
    };
    Some(Expect {
        mode,
        must_attach,
        fentry_refusal,
        per_vma: row.symbol(ConceptId::PerVmaUnmap).flatten()?,
        pte_lock: row.symbol(ConceptId::PteLock).flatten(),
        order: row.order,
    })
}

pub(super) fn no_row(ctx: &CellContext) -> Verdict {
    Verdict::Fail(format!(
        "the matrix table has no row for {} on {}; add one to xtask/src/vm/table.rs",
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
    let mut seen = Vec::new();
    for (concept, want) in row.symbols {
        let Some(entry) = doctor
            .function_modes
            .iter()
            .find(|m| m.concept == concept.name())
        else {
            return Verdict::Fail(format!("doctor.json's function_modes lack {concept}"));
        };
        let got = entry.symbol.as_deref();
        if got != *want {
            return Verdict::Fail(format!(
                "{concept} resolved to {got:?}, the table expects {want:?}"
            ));
        }
        seen.push(format!("{concept}={}", want.unwrap_or("absent")));
    }
    Verdict::Pass(seen.join(", "))
}

/// `record/run.json`, decoded, or the verdict explaining why not.
pub(super) fn run_json(ctx: &CellContext) -> Result<Run, Verdict> {
    if !ctx.reaper_ran {
        return Err(Verdict::Skip("reaper not run (--smoke)".into()));
    }
    read_or_fail(&ctx.out_dir.join(RECORD_DIR).join("run.json"))
}

/// The guest's `reaper doctor --json`, or the failing verdict.
fn doctor_json(ctx: &CellContext) -> Result<Diagnosis, Verdict> {
    read_or_fail(&ctx.out_dir.join(DOCTOR_JSON))
}

/// The `function:*` probe entries, with their function names.
fn function_probes(run: &Run) -> Vec<(&str, &ProbeUse)> {
    run.function_probe_uses()
        .filter_map(|p| Some((p.function()?, p)))
        .collect()
}

/// Every episode, with its 1-based number.
fn episodes(run: &Run) -> impl Iterator<Item = (usize, &Episode)> {
    run.episodes.iter().enumerate().map(|(i, e)| (i + 1, e))
}

/// Episodes in which `process_mrelease` returned 0, i.e. the reaper worked.
/// Under TCG the first kill of a fresh guest can lose the race (the kernel
/// paths are translated for the first time): the victim drops its mm before
/// the call arrives and the call fails with ESRCH. Those episodes are named
/// in the verdicts, never counted.
pub(super) fn reaped(run: &Run) -> (Vec<(usize, &Episode)>, Vec<String>) {
    let (ok, lost): (Vec<_>, Vec<_>) = episodes(run).partition(|(_, e)| e.mrelease_succeeded());
    let lost = lost
        .into_iter()
        .map(|(n, e)| {
            format!(
                "episode {n}: process_mrelease returned {:?}",
                e.latencies.mrelease_ret
            )
        })
        .collect();
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
    let attached: Vec<&(&str, &ProbeUse)> =
        probes.iter().filter(|(_, p)| !p.not_attached()).collect();
    if let Err(v) =
        probes_accounted(&probes, &want).and_then(|()| modes_as_expected(&run, &want, &attached))
    {
        return v;
    }
    if attached.is_empty() {
        return nothing_attached(&run, &probes);
    }
    let modes: std::collections::BTreeSet<&str> =
        attached.iter().map(|(_, p)| p.mode.name()).collect();
    Verdict::Pass(format!(
        "{} of {} functions attached ({}); {} and {} present",
        attached.len(),
        probes.len(),
        modes.into_iter().collect::<Vec<_>>().join("+"),
        want.per_vma,
        want.pte_lock.unwrap_or("no PTE-lock function (inline)")
    ))
}

/// Every probe not attached says why, and the functions this kernel must
/// show are listed (and attached where they must be).
fn probes_accounted(probes: &[(&str, &ProbeUse)], want: &Expect) -> Result<(), Verdict> {
    for (name, p) in probes {
        if p.not_attached() && (p.status.to_string().is_empty() || p.attached()) {
            return Err(Verdict::Fail(format!(
                "{name} is not attached but says {:?} instead of a reason",
                p.status
            )));
        }
    }
    let probe_of = |symbol: &str| probes.iter().find(|(n, _)| *n == symbol);
    for symbol in [Some(REAPER_WORK), Some(want.per_vma), want.pte_lock]
        .into_iter()
        .flatten()
    {
        match probe_of(symbol) {
            None => {
                return Err(Verdict::Fail(format!(
                    "{symbol} is not in run.json's probes"
                )));
            }
            Some((_, p)) if p.not_attached() && want.must_attach => {
                return Err(Verdict::Fail(format!(
                    "{symbol} did not attach: {}",
                    p.status
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The attached probes use the expected mode, and where fentry must have
/// been refused, each fallback keeps that refusal as its reason.
fn modes_as_expected(
    run: &Run,
    want: &Expect,
    attached: &[&(&str, &ProbeUse)],
) -> Result<(), Verdict> {
    if let Some(mode) = want.mode
        && let Some((name, p)) = attached.iter().find(|(_, p)| p.mode != mode)
    {
        return Err(Verdict::Fail(format!(
            "{name} attached with {}, expected {mode}",
            p.mode
        )));
    }
    let Some(refusal) = want.fentry_refusal else {
        return Ok(());
    };
    // run.json's function_probes keep why fentry was refused.
    let fallbacks: Vec<(&str, &str)> = run
        .function_probes
        .iter()
        .filter(|p| want.mode == Some(p.mode))
        .map(|p| {
            (
                p.symbol.as_deref().unwrap_or("?"),
                p.fallback_from.as_deref().unwrap_or(""),
            )
        })
        .collect();
    if fallbacks.len() != attached.len() {
        return Err(Verdict::Fail(format!(
            "function_probes lists {} {} functions, recording.probes {} attached",
            fallbacks.len(),
            want.mode.map_or("?", AttachMode::name),
            attached.len()
        )));
    }
    if let Some((name, why)) = fallbacks.iter().find(|(_, why)| !why.contains(refusal)) {
        return Err(Verdict::Fail(format!(
            "{name}: expected the fentry refusal ({refusal}) as its fallback reason, got {why:?}"
        )));
    }
    Ok(())
}

/// The verdict when no function probe attached. sid arm64 may allow
/// nothing; then each function probe carries the kernel's answer (checked
/// before) and the run lists what it lacks.
fn nothing_attached(run: &Run, probes: &[(&str, &ProbeUse)]) -> Verdict {
    let timed = run.episodes.iter().any(|e| e.function_timing.is_some());
    if run.not_measured.is_empty() || timed {
        Verdict::Fail(format!(
            "no function probe attached, yet the run {}",
            if timed {
                "has function timing"
            } else {
                "lists nothing as not measured"
            }
        ))
    } else {
        let (name, p) = probes[0];
        Verdict::Pass(format!(
            "no function probe attaches; each says why (e.g. {name}: {})",
            p.status
        ))
    }
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
    if !run.recording.scenario.mrelease {
        return Verdict::Skip(format!(
            "the scenario races no process_mrelease ({}), so the reaper walks no VMA",
            run.recording.scenario.description
        ));
    }
    if let Some(verdict) = per_vma_unmeasurable(&run, &want) {
        return verdict;
    }
    let (ok, lost) = reaped(&run);
    if ok.is_empty() {
        return Verdict::Fail(format!("the reaper never ran: {}", lost.join("; ")));
    }
    let (mut lines, without_order) = match orders_seen(ok, &want) {
        Ok(seen) => seen,
        Err(v) => return v,
    };
    if lines.is_empty() {
        return Verdict::Fail(format!(
            "no episode showed a {} VMA order: {}",
            Context::MreleaseCaller.name(),
            without_order.join("; ")
        ));
    }
    lines.extend(lost.into_iter().map(|l| format!("{l}, not counted")));
    lines.extend(without_order);
    Verdict::Pass(lines.join("; "))
}

/// The verdict when the per-VMA function is not attached and need not be:
/// its probe entry must carry the kernel's answer. `None` when it attached
/// (or must have).
fn per_vma_unmeasurable(run: &Run, want: &Expect) -> Option<Verdict> {
    let probes = function_probes(run);
    let per_vma = probes.iter().find(|(n, _)| *n == want.per_vma);
    let per_vma_attached = per_vma.is_some_and(|(_, p)| !p.not_attached());
    if per_vma_attached || want.must_attach {
        return None;
    }
    Some(match per_vma {
        Some((name, p)) if !p.status.to_string().is_empty() && !p.attached() => {
            Verdict::Pass(format!("order not measurable here ({name}: {})", p.status))
        }
        _ => Verdict::Fail(format!(
            "{} not attached and run.json's probes give no reason",
            want.per_vma
        )),
    })
}

/// Each reaped episode's VMA order as evidence, checked against `want`,
/// and the episodes whose reaper walked no order. process_mrelease also
/// returns 0 when the exit had already set MMF_OOM_SKIP: the reaper then
/// walks no VMA (or, caught mid-teardown, one), which is a lost race
/// without ESRCH, not a wrong order.
fn orders_seen(
    ok: Vec<(usize, &Episode)>,
    want: &Expect,
) -> Result<(Vec<String>, Vec<String>), Verdict> {
    let mut lines = Vec::new();
    let mut without_order = Vec::new();
    for (n, episode) in ok {
        let order = episode
            .function_timing
            .as_ref()
            .and_then(|t| t.vma_order(Context::MreleaseCaller));
        let Some(order) = order.filter(|o| o.order != VmaOrderKind::Unknown) else {
            without_order.push(format!(
                "episode {n}: process_mrelease returned 0 but the reaper walked {} VMA(s), \
                 no order, not counted",
                order.map_or(0, |o| o.vmas)
            ));
            continue;
        };
        let evidence = format!(
            "episode {n}: {} ({} VMAs, {:#x}→{:#x}) via {}",
            order.order, order.vmas, order.first, order.last, order.function
        );
        if order.function != want.per_vma {
            return Err(Verdict::Fail(format!(
                "order read from the wrong function: {evidence}"
            )));
        }
        if order.vmas < VICTIM_VMAS {
            return Err(Verdict::Fail(format!(
                "fewer VMAs than the victim's {VICTIM_VMAS}: {evidence}"
            )));
        }
        if order.order != want.order {
            return Err(Verdict::Fail(format!(
                "expected {}, got {evidence}",
                want.order
            )));
        }
        lines.push(evidence);
    }
    Ok((lines, without_order))
}

/// Symbols that end the kernel image's sections (text, init, bss): no stack returns
/// into them, so seeing one means an address past the image (a BPF
/// program or trampoline attached after kallsyms was read) took the last
/// image symbol's name.
const IMAGE_END_MARKERS: [&str; 5] = [
    "_etext",
    "_einittext",
    "__init_scratch_end",
    "__bss_stop",
    "_end",
];

/// reaper's own probes in the sampled stacks are folded and labelled: no
/// `bpf_trampoline_*` or `bpf_prog_<tag>_*` frame, no address misnamed after the
/// image's end, and, when function probes ran (under TCG they take a visible
/// share of the reaper's time), at least one `[reaper probe: …]` frame.
pub fn probe_frames_named(ctx: &CellContext) -> Verdict {
    let run = match run_json(ctx) {
        Ok(run) => run,
        Err(v) => return v,
    };
    let frames = || {
        run.episodes
            .iter()
            .flat_map(|e| &e.contexts)
            .flat_map(|c| &c.stacks)
            .flat_map(|s| &s.frames)
    };
    let total = frames().count();
    if total == 0 {
        return Verdict::Fail("run.json holds no sampled stack frame".into());
    }
    let bad: std::collections::BTreeSet<&str> = frames()
        .map(String::as_str)
        .filter(|f| {
            IMAGE_END_MARKERS.contains(f)
                || f.starts_with("bpf_trampoline_")
                || reaper_common::program_name::program_of(f).is_some()
        })
        .collect();
    if !bad.is_empty() {
        return Verdict::Fail(format!(
            "unfolded or misnamed probe frames: {}",
            bad.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let labelled: std::collections::BTreeSet<&str> = frames()
        .map(String::as_str)
        .filter(|f| f.starts_with("[reaper probe: "))
        .collect();
    let timed = function_probes(&run).iter().any(|(_, p)| p.attached());
    match (timed, labelled.len()) {
        (true, 0) => Verdict::Fail(format!(
            "function probes were attached but none of {total} frames is a [reaper probe: …] frame"
        )),
        (_, n) => Verdict::Pass(format!(
            "{n} distinct reaper probe frame(s) of {total} frames, e.g. {}; no trampoline, \
             bpf_prog or image-end frame",
            labelled.iter().next().copied().unwrap_or("none")
        )),
    }
}

/// Every probed parent's inclusive time covers its probed direct children's,
/// per context; the reaper work's children must have been seen.
pub fn parent_covers_children(ctx: &CellContext) -> Verdict {
    let run = match run_json(ctx) {
        Ok(run) => run,
        Err(v) => return v,
    };
    if function_probes(&run).iter().all(|(_, p)| p.not_attached()) {
        return Verdict::Skip("no function probe attached on this kernel".into());
    }
    let (ok, lost) = reaped(&run);
    // Without the race (a kernel without process_mrelease) only the
    // victim's arithmetic is there to check.
    if ok.is_empty() && run.recording.scenario.mrelease {
        return Verdict::Fail(format!("the reaper never ran: {}", lost.join("; ")));
    }
    let mut lines = Vec::new();
    let mut checked = 0;
    for (n, episode) in episodes(&run) {
        let Some(timing) = &episode.function_timing else {
            return Verdict::Fail(format!("episode {n} has no function_timing"));
        };
        // A call whose entry or exit the kernel did not run the probe for
        // (counted, e.g. a recursion guard) leaves a call open, so the
        // call edges after it name a wrong parent: the run reports that
        // loss, and that episode's arithmetic cannot be checked.
        let unmatched: u64 = timing
            .losses
            .iter()
            .filter(|(reason, _)| UNMATCHED_CALLS.contains(&reason.as_str()))
            .map(|(_, n)| n)
            .sum();
        if unmatched > 0 {
            lines.push(format!(
                "episode {n}: not checked ({unmatched} unmatched or open calls counted)"
            ));
            continue;
        }
        checked += 1;
        match covers(timing) {
            Err(why) => return Verdict::Fail(format!("episode {n}: {why:#}")),
            Ok(Some(line)) => lines.push(format!("episode {n}: {line}")),
            Ok(None) if ok.iter().any(|(m, _)| *m == n) => {
                return Verdict::Fail(format!(
                    "episode {n}: the reaper ran but {REAPER_WORK} has no probed children in {}",
                    Context::MreleaseCaller.name()
                ));
            }
            Ok(None) => {}
        }
    }
    if checked == 0 {
        return Verdict::Fail(format!("no episode could be checked: {}", lines.join("; ")));
    }
    if lines.is_empty() {
        lines.push(format!(
            "{checked} episode(s) without reaper work: every probed parent covers its probed children"
        ));
    }
    Verdict::Pass(lines.join("; "))
}

/// Function-timing losses that leave a call open or close the wrong one.
const UNMATCHED_CALLS: &[&str] = &[
    "fn_exit_unmatched",
    "fn_entry_unmatched",
    "fn_stacks_open_at_drain",
];

/// Checks one episode's arithmetic; the reaper work's line when it ran.
fn covers(timing: &FunctionTiming) -> anyhow::Result<Option<String>> {
    let mut reaper_line = None;
    for parent in &timing.functions {
        let (context, symbol) = (&parent.context, &parent.symbol);
        let children: Vec<_> = timing
            .edges
            .iter()
            .filter(|e| e.context == *context && e.parent == *symbol)
            .collect();
        let sum: u64 = children.iter().map(|e| e.total_ns).sum();
        if sum > parent.total_ns {
            anyhow::bail!(
                "{context}: {symbol} {} ns < its probed children's sum {sum} ns",
                parent.total_ns
            );
        }
        for e in &children {
            let child_total = timing
                .function(*context, &e.child)
                .map_or(0, |f| f.total_ns);
            if e.total_ns > child_total {
                anyhow::bail!(
                    "{context}: edge {symbol}→{} has more time than {} in total",
                    e.child,
                    e.child
                );
            }
        }
        if symbol == REAPER_WORK && parent.is_in(Context::MreleaseCaller) && sum > 0 {
            let names: Vec<String> = children
                .iter()
                .map(|e| format!("{} {}", e.child, e.total_ns))
                .collect();
            reaper_line = Some(format!(
                "{REAPER_WORK} {} ns ≥ Σ probed children {sum} ns ({})",
                parent.total_ns,
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
    let modes = &doctor.function_modes;
    let mut left_to_sampling = Vec::new();
    for (name, p) in function_probes(&run) {
        // Record's own choice, not the kernel's answer: a per-page leaf is
        // left to sampling unless --exact-leaves, while doctor checks (and
        // reports the mode of) every function record may time.
        if p.mode == AttachMode::None && p.status.is_not_timed() {
            left_to_sampling.push(name);
            continue;
        }
        let doctor_mode = modes
            .iter()
            .find(|m| m.symbol.as_deref() == Some(name) || m.concept == name)
            .map(|m| m.mode.name());
        if doctor_mode != Some(p.mode.name()) {
            return Verdict::Fail(format!(
                "{name}: record used {}, doctor says {doctor_mode:?}",
                p.mode
            ));
        }
    }
    Verdict::Pass(format!(
        "{} functions, same modes{}",
        modes.len().saturating_sub(left_to_sampling.len()),
        if left_to_sampling.is_empty() {
            String::new()
        } else {
            format!(
                " ({} not timed by record's choice: {})",
                left_to_sampling.len(),
                left_to_sampling.join(", ")
            )
        }
    ))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;

    use super::*;
    use crate::reaper_json::fixtures;
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

    /// A sid x86_64 run as record writes it (compact JSON, so tests can
    /// edit it as text).
    fn sid_run() -> String {
        let probe = |name: &str, mode: &str, status: &str| json!({"probe": format!("function:{name}"), "mode": mode, "status": status});
        let timing = json!({
            "functions": [
                fixtures::function("mrelease_caller", ConceptId::ReaperWork, "__oom_reap_task_mm", 1000),
                fixtures::function("mrelease_caller", ConceptId::PerVmaUnmap, "zap_vma_for_reaping", 900)],
            "edges": [{"context": "mrelease_caller", "parent": "__oom_reap_task_mm",
                       "child": "zap_vma_for_reaping", "calls": 64, "total_ns": 900}],
            "vma_orders": [fixtures::vma_order("mrelease_caller", "zap_vma_for_reaping", "reverse", 70)]
        });
        fixtures::run(json!({
            "recording": {"probes": [
                probe("__oom_reap_task_mm", "fentry", "attached"),
                probe("zap_vma_for_reaping", "fentry", "attached"),
                probe("pte_offset_map_lock", "fentry", "attached"),
                probe("reaper_kthread", "none", "not timed: loop"),
                probe("rmap_removal", "none", "not timed: called per page, so left to sampling by default")]},
            "episodes": [fixtures::episode(7, json!({
                "latencies": {"mrelease_ret": 0}, "function_timing": timing}))]
        }))
        .to_string()
    }

    fn sid_doctor() -> String {
        let mode = |concept: &str, symbol: Option<&str>, mode: &str| json!({"concept": concept, "symbol": symbol, "mode": mode, "status": "attached"});
        fixtures::doctor(json!({"function_modes": [
            mode("reaper_work", Some("__oom_reap_task_mm"), "fentry"),
            mode("per_vma_unmap", Some("zap_vma_for_reaping"), "fentry"),
            mode("pte_lock", Some("pte_offset_map_lock"), "fentry"),
            mode("reaper_kthread", None, "none"),
            // doctor checks the per-page leaf record leaves to sampling.
            mode("rmap_removal", Some("folio_remove_rmap_ptes"), "fentry")]}))
        .to_string()
    }

    #[test]
    fn sid_x86_64_passes_with_reverse_fentry() {
        let out = out_with("sid", &sid_run(), &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
        for (name, v) in [
            ("attach", function_attach(&c)),
            ("order", reaper_order(&c)),
            ("children", parent_covers_children(&c)),
            ("doctor", doctor_agrees(&c)),
        ] {
            assert!(matches!(v, Verdict::Pass(_)), "{name}: {v:?}");
        }
        let Verdict::Pass(agrees) = doctor_agrees(&c) else {
            unreachable!()
        };
        assert!(
            agrees.contains("not timed by record's choice: reaper_kthread, rmap_removal"),
            "{agrees}"
        );
        // The same data is wrong for bookworm: forward order expected.
        let b = cell("6.1.0-50-cloud-amd64", Arch::X86_64, &out);
        assert!(matches!(reaper_order(&b), Verdict::Fail(_)));
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn probe_frames_must_be_folded_and_named() {
        let with_frames = |frames: serde_json::Value| {
            let mut run: serde_json::Value = serde_json::from_str(&sid_run()).unwrap();
            run["episodes"][0]["contexts"] = json!([{
                "context": "mrelease_caller", "tasks": [{"tid": 7, "comm": "reaper"}],
                "stacks": [{"frames": frames, "samples": 3, "period_ns": 750000}],
                "lock_waits": []}]);
            run.to_string()
        };
        let verdict = |name: &str, frames: serde_json::Value| {
            let out = out_with(name, &with_frames(frames), &sid_doctor());
            let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
            let v = probe_frames_named(&c);
            std::fs::remove_dir_all(&out).unwrap();
            v
        };
        let good = verdict(
            "frames-good",
            json!([
                "__oom_reap_task_mm",
                "[reaper probe: fentry unmap_page_range]"
            ]),
        );
        assert!(matches!(good, Verdict::Pass(_)), "{good:?}");
        // A kernel function with the programs' prefix but no tag is not a
        // program frame (seen in a sid x86_64 CI run).
        let counter = verdict(
            "frames-counter",
            json!([
                "__oom_reap_task_mm",
                "[reaper probe: fentry unmap_page_range]",
                "bpf_prog_inc_misses_counter"
            ]),
        );
        assert!(matches!(counter, Verdict::Pass(_)), "{counter:?}");
        for bad in [
            json!(["__oom_reap_task_mm", "_einittext"]),
            json!(["__oom_reap_task_mm", "bpf_prog_9af5d65f957a4f79_memset"]),
            json!(["__oom_reap_task_mm", "bpf_trampoline_6442528412"]),
            // Function probes attached, yet no probe frame.
            json!(["__oom_reap_task_mm", "unmap_page_range"]),
        ] {
            let v = verdict("frames-bad", bad.clone());
            assert!(matches!(v, Verdict::Fail(_)), "{bad}: {v:?}");
        }
    }

    /// process_mrelease returned 0 but the exit had already set
    /// MMF_OOM_SKIP: the reaper walked one VMA or none. Such an episode is
    /// left out, not failed; with no other episode the check fails.
    #[test]
    fn an_episode_without_a_reaper_order_is_left_out_but_not_alone() {
        let with_one = |order: &str, vmas: u64| {
            let mut run: serde_json::Value = serde_json::from_str(&sid_run()).unwrap();
            let mut late = run["episodes"][0].clone();
            late["function_timing"]["vma_orders"] = json!([fixtures::vma_order(
                "mrelease_caller",
                "zap_vma_for_reaping",
                order,
                vmas
            )]);
            run["episodes"].as_array_mut().unwrap().push(late);
            run
        };
        let run = with_one("unknown", 1);
        let out = out_with("late", &run.to_string(), &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
        let v = reaper_order(&c);
        assert!(
            matches!(&v, Verdict::Pass(m) if m.contains("walked 1 VMA(s), no order, not counted")),
            "{v:?}"
        );
        std::fs::remove_dir_all(&out).unwrap();

        let mut run = with_one("unknown", 0);
        run["episodes"].as_array_mut().unwrap().remove(0);
        let out = out_with("late-only", &run.to_string(), &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
        assert!(matches!(reaper_order(&c), Verdict::Fail(_)));
        std::fs::remove_dir_all(&out).unwrap();

        // A wrong order in a counted episode still fails.
        let run = with_one("forward", 70);
        let out = out_with("late-wrong", &run.to_string(), &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
        assert!(matches!(reaper_order(&c), Verdict::Fail(_)));
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
                ("probe-frames-named", probe_frames_named(&c)),
                ("doctor-function-modes", doctor_agrees(&c)),
                (
                    "collision-walkers",
                    super::super::collisions::walkers_and_waits(&c),
                ),
            ] {
                println!("{} {name}: {v:?}", out.display());
            }
        }
    }

    /// sid arm64 may allow no function probe: then each probe entry must
    /// carry the kernel's answer and the run must list what it lacks.
    #[test]
    fn arm64_without_function_probes_passes_only_with_reasons() {
        let refused = "fentry attach: x [ENOTSUPP 524]; kprobe: y [EPERM 1]";
        let probe = |name: &str, status: &str| json!({"probe": format!("function:{name}"), "mode": "none", "status": status});
        let run = |status: &str, not_measured: serde_json::Value| {
            fixtures::run(json!({
                "recording": {"probes": [
                    probe("__oom_reap_task_mm", status),
                    probe("zap_vma_for_reaping", status),
                    probe("pte_offset_map_lock", status)]},
                "not_measured": not_measured,
                "episodes": [fixtures::episode(7, json!({"latencies": {"mrelease_ret": 0}}))]
            }))
            .to_string()
        };
        let said = json!([{"what": "exact per-function timing", "why": refused}]);
        let out = out_with("arm-none", &run(refused, said.clone()), &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-arm64", Arch::Arm64, &out);
        assert!(
            matches!(function_attach(&c), Verdict::Pass(ref m) if m.contains("ENOTSUPP")),
            "{:?}",
            function_attach(&c)
        );
        assert!(
            matches!(reaper_order(&c), Verdict::Pass(_)),
            "{:?}",
            reaper_order(&c)
        );
        assert!(matches!(parent_covers_children(&c), Verdict::Skip(_)));

        let silent = out_with("arm-silent", &run(refused, json!([])), &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-arm64", Arch::Arm64, &silent);
        assert!(matches!(function_attach(&c), Verdict::Fail(_)));

        let no_reason = out_with("arm-no-reason", &run("", said), &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-arm64", Arch::Arm64, &no_reason);
        assert!(matches!(function_attach(&c), Verdict::Fail(_)));
        assert!(matches!(reaper_order(&c), Verdict::Fail(_)));
        for dir in [out, silent, no_reason] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn children_exceeding_the_parent_fail() {
        let bad = sid_run().replace("\"total_ns\":1000", "\"total_ns\":800");
        let out = out_with("bad", &bad, &sid_doctor());
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
    fn an_episode_with_counted_unmatched_calls_is_not_checked_but_one_must_be() {
        // The same broken arithmetic, but the run counted an unmatched exit:
        // that episode is skipped with the reason, and with no other episode
        // the check fails rather than passing on nothing.
        let bad = sid_run()
            .replace("\"total_ns\":1000", "\"total_ns\":800")
            .replace(
                "\"vma_orders\"",
                "\"losses\":{\"fn_exit_unmatched\":1},\"vma_orders\"",
            );
        let out = out_with("unmatched", &bad, &sid_doctor());
        let c = cell("7.2.13+deb14-cloud-amd64", Arch::X86_64, &out);
        let Verdict::Fail(msg) = parent_covers_children(&c) else {
            panic!("must fail: {:?}", parent_covers_children(&c))
        };
        assert!(msg.contains("no episode could be checked"), "{msg}");
        assert!(msg.contains("1 unmatched or open calls counted"), "{msg}");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn bookworm_arm64_needs_the_524_refusal() {
        let run = sid_run()
            .replace("\"mode\":\"fentry\"", "\"mode\":\"kprobe\"")
            .replace(
                "\"not_measured\":[],",
                r#""not_measured": [], "function_probes": [
                  {"concept": "reaper_work", "symbol": "__oom_reap_task_mm", "mode": "kprobe", "status": "attached", "fallback_from": "fentry attach: x [ENOTSUPP 524]"},
                  {"concept": "per_vma_unmap", "symbol": "zap_vma_for_reaping", "mode": "kprobe", "status": "attached", "fallback_from": "fentry attach: x [ENOTSUPP 524]"},
                  {"concept": "pte_lock", "symbol": "pte_offset_map_lock", "mode": "kprobe", "status": "attached", "fallback_from": "fentry attach: x [ENOTSUPP 524]"}],"#,
            );
        let out = out_with(
            "arm",
            &run.replace("zap_vma_for_reaping", "unmap_page_range"),
            &sid_doctor(),
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
            &sid_doctor(),
        );
        let c2 = cell("6.1.0-50-cloud-arm64", Arch::Arm64, &out2);
        assert!(matches!(function_attach(&c2), Verdict::Fail(_)));
        std::fs::remove_dir_all(&out).unwrap();
        std::fs::remove_dir_all(&out2).unwrap();
    }
}
