//! What this kernel lets reaper do, found by really loading and attaching a
//! trivial program of each attach kind and then every program `record` may
//! use (see [`programs`]), plus BTF, tracefs, the catalog's resolved probe
//! targets, PREEMPT_RT and `process_mrelease`.

pub mod findings;
pub mod programs;

pub use programs::ProgramKind;

use aya::Ebpf;
use reaper_common::capability::{
    PROG_CHECK_FENTRY, PROG_CHECK_FEXIT, PROG_CHECK_KPROBE, PROG_CHECK_KRETPROBE, PROG_CHECK_TP_BTF,
};

use crate::{
    catalog::{self, KernelSymbols},
    model::{AttachMode, ProbeOutcome, ResolvedConcept},
    probes::{
        attach,
        btf::KernelBtf,
        function_probe::{self, AttachError, Pair},
        function_timing, loader,
        refusal::{Refusal, Step},
    },
    scenario::pidfd,
    system::{kernel, privileges, tracefs},
};

pub use reaper_model::doctor::{AttachKind, Diagnosis, FunctionMode, Unavailable};

/// Runs every check. Never fails: each problem becomes part of the diagnosis.
pub fn diagnose() -> Diagnosis {
    let host = kernel::host_info();
    let policy = crate::system::policy::read(&host.kernel_release);
    let privileges =
        privileges::require_recording_privileges().map_err(|e| Unavailable(e.to_string()));
    let (tracefs, mounted) = match tracefs::ensure_mounted() {
        Ok((root, mounted)) => (Ok(root.display().to_string()), mounted),
        Err(err) => (Err(Unavailable(err.to_string())), false),
    };
    let symbols = KernelSymbols::running().unwrap_or_default();
    // One index of the kernel BTF for every check below (under arm64 TCG
    // each index takes 0.27 s), with why there is none.
    let kernel_btf = KernelBtf::from_sys_fs().map_err(|e| crate::model::error_chain(&e));
    let btf = kernel_btf.as_ref().ok().map(catalog::BtfFacts::from_btf);
    let probe_targets = catalog::resolve_all_with_btf(&symbols, btf.as_ref());
    let attach_kinds = match &tracefs {
        Ok(root) => check_attach_kinds(
            std::path::Path::new(root),
            &probe_targets,
            kernel_btf.as_ref(),
        ),
        Err(why) => not_checked(&why.0),
    };
    // Every function record may time (`--exact-leaves` and
    // `--exact-batches` ones included).
    let plan = function_timing::plan(&probe_targets, function_timing::Exact::ALL);
    let programs = match &tracefs {
        Ok(root) => {
            let mut offsets = tracefs::probe_offsets(std::path::Path::new(root));
            let raw = crate::probes::raw_tp::resolve(kernel_btf.as_ref().ok(), &mut offsets);
            let root = std::path::Path::new(root);
            programs::check_all(
                &offsets,
                &raw,
                &plan,
                btf.as_ref(),
                kernel_btf.as_ref(),
                &kernel::online_cpus().unwrap_or_default(),
                !tracefs::has_event(root, "lock", "contention_begin"),
            )
            .map_err(|e| Unavailable::of(&e))
        }
        Err(why) => Err(why.clone()),
    };
    drop(kernel_btf);
    let function_modes = function_modes(&plan, btf.as_ref(), &programs);
    let (probe_costs, probe_costs_not_measured) = match &tracefs {
        Ok(root) => calibrate_all(std::path::Path::new(root)),
        Err(why) => (
            Vec::new(),
            vec![crate::model::NotMeasured {
                subject: "probe cost".into(),
                why: why.0.clone(),
            }],
        ),
    };
    let mut diagnosis = Diagnosis {
        host,
        btf: kernel::has_vmlinux_btf(),
        tracefs,
        tracefs_mounted_by_reaper: mounted,
        privileges,
        attach_kinds,
        programs,
        probe_targets,
        function_modes,
        process_mrelease: pidfd::mrelease_available(),
        record_mode: String::new(),
        probe_costs,
        probe_costs_not_measured,
        policy,
    };
    diagnosis.record_mode = record_mode(&diagnosis);
    diagnosis
}

/// Calibrates both function-timing attach modes on a fresh object.
fn calibrate_all(
    tracefs_root: &std::path::Path,
) -> (Vec<crate::model::ProbeCost>, Vec<crate::model::NotMeasured>) {
    use crate::probes::calibrate::{self, Mode};
    match loader::load(
        &tracefs::probe_offsets(tracefs_root),
        &loader::MapSizes::default(),
    ) {
        Ok(mut ebpf) => calibrate::calibrate(
            &mut ebpf,
            &[Mode::Fentry, Mode::Kprobe],
            0,
            &crate::probes::kernel_btf::FentryBtf::lazy(
                std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
            ),
        ),
        Err(err) => (
            Vec::new(),
            vec![crate::model::NotMeasured {
                subject: "probe cost".into(),
                why: crate::model::error_chain(&err),
            }],
        ),
    }
}

/// Why doctor's program rows say a pair would not attach, as the ladder
/// words it.
#[derive(Debug, thiserror::Error)]
enum PairRefused<'a> {
    /// The kernel refused one of its programs.
    #[error("{} {}", .0.name(), .1)]
    Refused(ProgramKind, &'a Refusal),
    /// One of its programs was not tried, and why.
    #[error("{0}")]
    NotTried(&'a str),
    /// doctor has no row for one of its programs.
    #[error("{} not checked", .0.name())]
    NotChecked(ProgramKind),
}

/// The mode `record --attach auto` gives each planned function, read from
/// the programs doctor loaded and attached (the ladder's rule: fentry/fexit
/// when both attach, else kprobe/kretprobe when both attach, else none), so
/// every trampoline is attached once, not once per section.
fn function_modes(
    plan: &crate::probes::function_timing::Plan,
    btf: Option<&catalog::BtfFacts>,
    checked: &Result<Vec<programs::ProgramCheck>, Unavailable>,
) -> Vec<FunctionMode> {
    use programs::Outcome;
    let rows = match checked {
        Ok(rows) => rows,
        Err(why) => {
            return vec![FunctionMode {
                concept: "all".into(),
                symbol: None,
                mode: AttachMode::None,
                status: ProbeOutcome::not_attached(why.0.clone()),
                fallback_from: None,
            }];
        }
    };
    // The first refusal of a pair, as the ladder words it.
    let pair = |pair: Pair, slot: usize| -> Result<(), PairRefused<'_>> {
        for (kind, name) in pair.programs(slot) {
            let outcome = rows
                .iter()
                .find(|r| r.kind == kind && r.program == name)
                .map(|r| &r.outcome);
            match outcome {
                Some(Outcome::Attached) => {}
                Some(Outcome::Refused(refusal)) => return Err(PairRefused::Refused(kind, refusal)),
                Some(Outcome::NotTried { why }) => return Err(PairRefused::NotTried(why)),
                None => return Err(PairRefused::NotChecked(kind)),
            }
        }
        Ok(())
    };
    let mut modes: Vec<FunctionMode> = plan
        .functions
        .iter()
        .map(|f| {
            let slot = f.slot as usize;
            let rung = crate::probes::function_timing::auto_rung(pair(Pair::Fentry, slot), || {
                pair(Pair::Kprobe, slot)
            });
            let (mode, status, fallback_from) = (rung.mode, rung.status, rung.fallback_from);
            FunctionMode {
                concept: f.concept.name().to_owned(),
                symbol: Some(f.symbol.clone()),
                mode,
                status,
                fallback_from,
            }
        })
        .collect();
    modes.extend(plan.skipped.iter().map(|(concept, why)| FunctionMode {
        concept: concept.name().to_owned(),
        symbol: None,
        mode: AttachMode::None,
        status: why.clone(),
        fallback_from: None,
    }));
    if let (_, Some(why)) = crate::probes::function_timing::config_for(
        plan,
        btf,
        false,
        crate::probes::function_timing::Holders::Tracked,
    ) {
        modes.push(FunctionMode {
            concept: "reaper_order".into(),
            symbol: None,
            mode: AttachMode::None,
            status: ProbeOutcome::not_attached(why),
            fallback_from: None,
        });
    }
    modes
}

fn record_mode(d: &Diagnosis) -> String {
    let sampling = d.works(ProgramKind::PerfEvent);
    let tracepoints = d.works(ProgramKind::Tracepoint) || d.works(ProgramKind::RawTracepoint);
    let timed = d
        .function_modes
        .iter()
        .filter(|f| f.mode != AttachMode::None)
        .count();
    let functions = if timed == 0 {
        "; exact function timing: not measured (no function probe attaches)".to_owned()
    } else {
        let modes: std::collections::BTreeSet<&str> = d
            .function_modes
            .iter()
            .filter(|f| f.mode != AttachMode::None)
            .map(|f| f.mode.name())
            .collect();
        format!(
            "; exact function timing: {timed} functions ({})",
            modes.into_iter().collect::<Vec<_>>().join(" + ")
        )
    };
    let base: String = match (sampling, tracepoints) {
        (true, true) => "tracepoints + cpu-clock sampling".into(),
        (true, false) => {
            "cpu-clock sampling only (no lock-wait or timeline: tracepoints do not attach)".into()
        }
        (false, true) => {
            "tracepoints only (no sampled profiles: perf_event sampling does not attach)".into()
        }
        (false, false) => "nothing: neither tracepoints nor perf_event sampling attach".into(),
    };
    // `record` checks the same before acting (recorder::preflight).
    let modes = if d.process_mrelease {
        ""
    } else {
        "; no process_mrelease: `record` refuses its default --victim mode, use --no-mrelease, --oom or --watch (or --degrade)"
    };
    base + &functions + modes
}

/// The function fentry/kprobe checks target: the reaper's work function when
/// this kernel has it, else a function every kernel has.
fn check_target(targets: &[ResolvedConcept]) -> String {
    catalog::frame_for(targets, catalog::ConceptId::ReaperWork)
        .unwrap_or("do_exit")
        .to_owned()
}

/// The attach kinds doctor checks, in preference order for function timing.
const CHECKED_KINDS: [ProgramKind; 8] = [
    ProgramKind::Fentry,
    ProgramKind::Fexit,
    ProgramKind::Kprobe,
    ProgramKind::Kretprobe,
    ProgramKind::Tracepoint,
    ProgramKind::RawTracepoint,
    ProgramKind::TpBtf,
    ProgramKind::PerfEvent,
];

/// Every attach kind, unchecked for one reason.
fn not_checked(why: &str) -> Vec<AttachKind> {
    CHECKED_KINDS
        .into_iter()
        .map(|kind| AttachKind {
            kind,
            works: false,
            detail: why.to_owned(),
        })
        .collect()
}

fn check_attach_kinds(
    tracefs_root: &std::path::Path,
    targets: &[ResolvedConcept],
    btf: Result<&KernelBtf, &String>,
) -> Vec<AttachKind> {
    let offsets = tracefs::probe_offsets(tracefs_root);
    let mut ebpf = match loader::load(&offsets, &loader::MapSizes::default()) {
        Ok(ebpf) => ebpf,
        Err(err) => {
            let why = crate::model::error_chain(&err);
            return not_checked(&format!("eBPF object did not load: {why}"));
        }
    };
    let function = check_target(targets);
    let cpus = kernel::online_cpus().unwrap_or_default();
    // fentry, fexit, kprobe, kretprobe on one function; tp_btf on
    // sched_process_exit: each through the attach layer.
    let mut kinds: Vec<AttachKind> = [
        (ProgramKind::Fentry, PROG_CHECK_FENTRY),
        (ProgramKind::Fexit, PROG_CHECK_FEXIT),
        (ProgramKind::Kprobe, PROG_CHECK_KPROBE),
        (ProgramKind::Kretprobe, PROG_CHECK_KRETPROBE),
    ]
    .into_iter()
    .map(|(kind, program)| {
        let result = check_function_kind(&mut ebpf, kind, program, &function, btf);
        verdict(kind, format!("attached to {function}"), result)
    })
    .collect();
    let exit_tp = "sched_process_exit";
    kinds.extend([
        verdict(
            ProgramKind::Tracepoint,
            format!("attached to sched:{exit_tp}"),
            attach::attach_tracepoint(
                &mut ebpf,
                reaper_common::timeline::PROG_PROCESS_EXIT,
                "sched",
                exit_tp,
            ),
        ),
        verdict(
            ProgramKind::RawTracepoint,
            format!("attached to {exit_tp}"),
            attach::attach_raw_tracepoint(
                &mut ebpf,
                reaper_common::timeline::PROG_RAW_PROCESS_EXIT,
                exit_tp,
            ),
        ),
        verdict(
            ProgramKind::TpBtf,
            format!("attached to {exit_tp}"),
            check_function_kind(
                &mut ebpf,
                ProgramKind::TpBtf,
                PROG_CHECK_TP_BTF,
                exit_tp,
                btf,
            ),
        ),
        verdict(
            ProgramKind::PerfEvent,
            format!("cpu-clock attached on {} CPUs", cpus.len()),
            attach::attach_sampling(&mut ebpf, &cpus, 1_000_000),
        ),
    ]);
    kinds
    // Dropping `ebpf` detaches everything.
}

/// A refused load, as doctor says it: the typed refusal (errno, the
/// verifier's reason), and, when the verifier never spoke, that a policy
/// refused it.
fn load_refused(refusal: &Refusal) -> String {
    let policy = !refusal.by_verifier() && matches!(refusal.errno, Some(1 | 13));
    format!(
        "load refused: {refusal}{}",
        if policy {
            ", before the verifier ran (no verifier output): a policy, not the program (see \"kernel policy\")"
        } else {
            ""
        }
    )
}

/// Why one attach kind's trivial program is not attached, in doctor's words.
#[derive(Debug, thiserror::Error)]
enum KindRefused {
    /// fentry, fexit and tp_btf need the kernel's BTF.
    #[error("no kernel BTF: {0}")]
    NoBtf(String),
    /// The kernel refused the load.
    #[error("{}", load_refused(.0))]
    Load(Refusal),
    /// The kernel refused the attach.
    #[error("attach refused: {0}")]
    Attach(Refusal),
    /// The object's program is missing or of another kind.
    #[error(transparent)]
    Object(AttachError),
}

/// One trivial program of `kind` loaded and attached through the attach
/// layer.
fn check_function_kind(
    ebpf: &mut Ebpf,
    kind: ProgramKind,
    program: &str,
    target: &str,
    btf: Result<&KernelBtf, &String>,
) -> Result<(), KindRefused> {
    let btf = match btf {
        Ok(btf) => Some(btf),
        Err(why) if !matches!(kind, ProgramKind::Kprobe | ProgramKind::Kretprobe) => {
            return Err(KindRefused::NoBtf(why.clone()));
        }
        Err(_) => None,
    };
    function_probe::attach(ebpf, kind, program, target, btf).map_err(|e| match e {
        AttachError::Refused { refusal, .. } if refusal.step == Step::Load => {
            KindRefused::Load(refusal)
        }
        AttachError::Refused { refusal, .. } => KindRefused::Attach(refusal),
        other => KindRefused::Object(other),
    })
}

/// One attach kind's verdict: what was attached, or the refusal.
fn verdict<E: std::fmt::Display>(
    kind: ProgramKind,
    what: String,
    result: Result<(), E>,
) -> AttachKind {
    AttachKind {
        kind,
        works: result.is_ok(),
        detail: result.map_or_else(|e| e.to_string(), |()| what),
    }
}

/// Each catalog function's mode; functions refused for the same reason
/// share one line, so a kernel that refuses every function probe says it
/// once.
fn render_function_modes(modes: &[reaper_model::doctor::FunctionMode], out: &mut String) {
    use std::fmt::Write as _;
    let status_of = |f: &reaper_model::doctor::FunctionMode| match (&f.status, &f.fallback_from) {
        (ProbeOutcome::Attached, Some(fallback)) => Some(format!("attached ({fallback})")),
        (ProbeOutcome::Attached, None) if f.mode != AttachMode::None => None,
        (status, _) => Some(status.to_string()),
    };
    let mut shared: Vec<(String, Vec<&reaper_model::doctor::FunctionMode>)> = Vec::new();
    for f in modes {
        match status_of(f) {
            Some(status) if f.symbol.is_some() && f.mode == AttachMode::None => {
                match shared.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, fs)) => fs.push(f),
                    None => shared.push((status, vec![f])),
                }
            }
            Some(status) => {
                let name = f.symbol.as_deref().unwrap_or("-");
                let _ = writeln!(
                    out,
                    "  {:<17} {:<34} {:<6} {status}",
                    f.concept,
                    name,
                    f.mode.name()
                );
            }
            None => {
                let name = f.symbol.as_deref().unwrap_or("-");
                let _ = writeln!(out, "  {:<17} {:<34} {}", f.concept, name, f.mode);
            }
        }
    }
    for (status, fs) in shared {
        let names: Vec<&str> = fs.iter().filter_map(|f| f.symbol.as_deref()).collect();
        let _ = writeln!(
            out,
            "  {} function{} ({}): none: {status}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    }
}

/// The kernel's policies, then what they mean here (one block per case,
/// with its README section).
fn policy(d: &Diagnosis, out: &mut String) {
    use std::fmt::Write as _;
    let p = &d.policy;
    let _ = writeln!(out, "\nkernel policy:");
    let _ = writeln!(
        out,
        "  lockdown    {}",
        match &p.lockdown {
            Some(l) => format!(
                "{} (from {})",
                l.mode.map_or("locked, level unknown", |m| m.name()),
                l.source
            ),
            None => "none seen (no lockdown LSM, or nothing shows it)".to_owned(),
        }
    );
    for line in &p.lockdown_log {
        let _ = writeln!(out, "              kernel log: {line}");
    }
    let _ = writeln!(
        out,
        "  LSMs        {}{}",
        p.lsms.as_ref().map_or_else(
            || "not readable".to_owned(),
            |(l, from)| format!("{} ({from})", l.join(","))
        ),
        match (p.selinux_enforcing, p.bpf_lsm_programs.is_empty()) {
            (Some(true), _) => "; SELinux enforcing".to_owned(),
            (Some(false), _) => "; SELinux permissive".to_owned(),
            (None, false) => format!("; BPF LSM programs: {}", p.bpf_lsm_programs.join(", ")),
            (None, true) => "; no BPF LSM program loaded".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "  seccomp     {}",
        match p.seccomp_filters {
            Some(0) => "no filter on reaper".to_owned(),
            Some(n) => format!("{n} filter(s) on reaper"),
            None => "not readable".to_owned(),
        }
    );
    let sysctl = |v: Option<String>| v.unwrap_or_else(|| "?".to_owned());
    let _ = writeln!(
        out,
        "  sysctls     kernel.unprivileged_bpf_disabled {}, kernel.perf_event_paranoid {}{}",
        sysctl(p.unprivileged_bpf_disabled.map(|v| v.to_string())),
        sysctl(p.perf_event_paranoid.map(|v| v.to_string())),
        if d.privileges.is_ok() {
            " (reaper holds CAP_BPF/CAP_PERFMON: they do not apply)"
        } else {
            ""
        }
    );
    if let Some(ftrace) = &p.ftrace_functions {
        let _ = writeln!(
            out,
            "  ftrace      {}",
            match ftrace {
                Ok(()) => "function list readable".to_owned(),
                Err(why) => format!("function list refused: {why}"),
            }
        );
    }
    let found = findings::findings(d);
    if found.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nwhat this means here:");
    for f in found {
        let _ = writeln!(out, "  * {} [README: \"{}\"]", f.title, f.readme);
        for r in &f.refused {
            let _ = writeln!(out, "    - {r}");
        }
        let _ = writeln!(out, "    still works: {}", f.still_works);
        let _ = writeln!(out, "    what you can do: {}", f.next);
    }
}

/// Kernel, PREEMPT_RT, BTF, tracefs, privileges and process_mrelease.
fn render_host(d: &Diagnosis, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "  kernel      {} ({}, {} CPUs)",
        d.host.kernel_release, d.host.arch, d.host.cpus
    );
    let _ = writeln!(
        out,
        "  PREEMPT_RT  {}",
        match d.host.preempt_rt {
            Some(evidence) => format!(
                "yes ({}): spinlocks are sleeping rt_spin_locks; the PTE-lock rows count sleeping waits",
                evidence.describe()
            ),
            None => "no".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "  BTF         {}",
        if d.btf {
            "yes (/sys/kernel/btf/vmlinux)"
        } else {
            "no (fentry/fexit and tp_btf need it)"
        }
    );
    let _ = writeln!(
        out,
        "  tracefs     {}",
        match &d.tracefs {
            Ok(root) if d.tracefs_mounted_by_reaper => format!("{root} (mounted by reaper)"),
            Ok(root) => root.clone(),
            Err(why) => format!("unavailable: {why}"),
        }
    );
    let _ = writeln!(
        out,
        "  privileges  {}",
        d.privileges
            .as_ref()
            .map_or_else(|e| e.0.clone(), |()| "ok".into())
    );
    let _ = writeln!(
        out,
        "  process_mrelease  {}",
        if d.process_mrelease {
            "available"
        } else {
            "missing (ENOSYS; needs Linux 5.15+)"
        }
    );
}

/// What one timed call costs per mode, or why it was not measured.
fn render_probe_costs(d: &Diagnosis, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "\nprobe cost per timed call (entry + exit hit, getppid calibration loop):"
    );
    for c in &d.probe_costs {
        let _ = writeln!(
            out,
            "  {:<11} {:.0} ns ({} x {} calls of {}: {:.0} ns probed vs {:.0} ns unprobed)",
            c.mode,
            c.per_call_ns,
            c.batches,
            c.calls_per_batch,
            c.function,
            c.probed_ns,
            c.unprobed_ns
        );
    }
    for n in &d.probe_costs_not_measured {
        let _ = writeln!(out, "  {}: not measured ({})", n.subject, n.why);
    }
}

/// Human-readable report.
pub fn render(d: &Diagnosis) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "reaper doctor");
    render_host(d, &mut out);
    policy(d, &mut out);
    render_probe_costs(d, &mut out);
    let _ = writeln!(out, "\nattach kinds (loaded and attached for real):");
    for k in &d.attach_kinds {
        let _ = writeln!(
            out,
            "  {:<11} {:<4} {}",
            k.kind.name(),
            if k.works { "yes" } else { "NO" },
            k.detail
        );
    }
    let _ = writeln!(
        out,
        "\nprograms record uses (each loaded and attached for real):"
    );
    match &d.programs {
        Ok(rows) => programs::render(rows, &mut out),
        Err(why) => {
            let _ = writeln!(out, "  none checked: {why}");
        }
    }
    let _ = writeln!(out, "\nprobe targets (from /proc/kallsyms):");
    for t in &d.probe_targets {
        let symbol = match (&t.symbol, catalog::entry(t.concept).inline_fallback) {
            (Some(s), _) => s.clone(),
            (None, Some(fallback)) => {
                format!("absent on this kernel (inline; attributed through {fallback})")
            }
            (None, None) => "absent on this kernel".into(),
        };
        let _ = writeln!(out, "  {:<17} {}", t.concept, symbol);
    }
    let _ = writeln!(
        out,
        "\nfunction timing (attach ladder: fentry/fexit, then kprobe/kretprobe):"
    );
    render_function_modes(&d.function_modes, &mut out);
    let _ = writeln!(out, "\nrecord mode: {}", d.record_mode);
    out
}
