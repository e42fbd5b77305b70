//! What the kernel's policies mean for reaper on this machine: each case
//! that applies (lockdown, a refusal before the verifier with no lockdown,
//! SELinux or a BPF LSM, seccomp, the BPF sysctls without privileges,
//! missing BTF) becomes a [`Finding`]: what was seen, what was refused,
//! what still works, what the user can do, and the README section that
//! explains the case. Built from the diagnosis alone (pure, tested).

use crate::readme;
use reaper_model::{
    LockdownMode,
    doctor::{Diagnosis, KernelPolicy, Outcome, ProgramKind},
};

/// One case, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was seen, e.g. "kernel lockdown: integrity".
    pub title: String,
    /// What it refuses and what was refused here.
    pub refused: Vec<String>,
    /// What reaper can still do.
    pub still_works: String,
    /// What the user can do.
    pub next: String,
    /// The README section that explains the case.
    pub readme: &'static str,
}

/// What lockdown refuses at its level, with the probes a policy refused.
fn lockdown_finding(
    lockdown: &reaper_model::Lockdown,
    d: &Diagnosis,
    policy_refused: &[String],
    still: &str,
) -> Finding {
    let mode = lockdown.mode.map_or("level unknown", LockdownMode::name);
    let mut refused = vec![match lockdown.mode {
        Some(LockdownMode::Confidentiality) => "confidentiality refuses reading kernel memory: BPF programs that call bpf_probe_read_kernel (reaper's raw tracepoints read task_struct.pid that way), kprobes, tracefs and perf's kernel data, besides everything integrity refuses".to_owned(),
        Some(LockdownMode::Integrity) => "integrity refuses changing the running kernel (unsigned modules, kexec, /dev/mem, bpf_probe_write_user); it does not by itself refuse reading it".to_owned(),
        _ => "the level decides what is refused: integrity refuses changing the kernel, confidentiality also refuses reading its memory (BPF's bpf_probe_read_kernel, kprobes, tracefs)".to_owned(),
    }];
    refused.extend(policy_refused.iter().cloned());
    if let Some(Err(why)) = &d.policy.ftrace_functions {
        refused.push(format!(
            "ftrace's function list is refused too ({why}): this kernel restricts ftrace, through which fentry/fexit trampolines attach; the kernel does not say which policy refused"
        ));
    }
    Finding {
        title: format!("kernel lockdown: {mode}"),
        refused,
        still_works: still.to_owned(),
        next: "lockdown cannot be lowered on a running kernel: for exact function timing boot a kernel without it (Secure Boot off, or built without CONFIG_LOCK_DOWN_KERNEL_FORCE_*), or record in a VM (`cargo xtask vm --kernel sid -- reaper record --victim 256M`)".to_owned(),
        readme: readme::LOCKDOWN,
    }
}

/// Every case that applies, most important first.
pub fn findings(d: &Diagnosis) -> Vec<Finding> {
    let mut out = Vec::new();
    let policy_refused = policy_refusals(d);
    let still = still_works(d);
    let p = &d.policy;
    let locked = p
        .lockdown
        .as_ref()
        .filter(|l| l.mode != Some(LockdownMode::None));
    if let Some(lockdown) = locked {
        out.push(lockdown_finding(lockdown, d, &policy_refused, &still));
    } else if !policy_refused.is_empty() {
        out.push(Finding {
            title: "probes refused before the verifier ran, and no lockdown seen".to_owned(),
            refused: policy_refused.clone(),
            still_works: still.clone(),
            next: "an LSM (SELinux, AppArmor, a BPF LSM program) or a seccomp profile refused them: see the findings below, the audit log (`ausearch -m avc`, `journalctl -k`), or run reaper outside the container".to_owned(),
            readme: readme::LSM_SECCOMP,
        });
    }
    out.extend(security_findings(p, &still));
    if d.privileges.is_err() {
        out.extend(privilege_finding(p));
    }
    if !d.btf {
        out.push(Finding {
            title: "no kernel BTF (/sys/kernel/btf/vmlinux)".to_owned(),
            refused: vec!["fentry/fexit and tp_btf need BTF; raw tracepoints whose prototype or struct offset BTF would confirm run as classic tracepoints instead".to_owned()],
            still_works: still,
            next: "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distributions' kernels since 5.x); kprobes time functions without BTF where the kernel has them".to_owned(),
            readme: readme::NO_BTF,
        });
    }
    out
}

/// The security modules and filters that may refuse reaper: SELinux
/// enforcing, BPF LSM programs, seccomp filters.
fn security_findings(p: &KernelPolicy, still: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    if p.selinux_enforcing == Some(true) {
        found.push(Finding {
            title: "SELinux is enforcing".to_owned(),
            refused: vec!["a policy may deny bpf(2) and perf_event_open(2) to reaper's domain, with EACCES or EPERM and an avc line in the audit log".to_owned()],
            still_works: still.to_owned(),
            next: "look for avc denials (`ausearch -m avc -ts recent`, or logcat on Android); on an Android userdebug build `adb shell setenforce 0` lifts it until the next boot".to_owned(),
            readme: readme::LSM_SECCOMP,
        });
    }
    if !p.bpf_lsm_programs.is_empty() {
        found.push(Finding {
            title: format!("BPF LSM programs are loaded: {}", p.bpf_lsm_programs.join(", ")),
            refused: vec!["a BPF security policy may refuse reaper's bpf(2) calls (often with EPERM, and no verifier output)".to_owned()],
            still_works: still.to_owned(),
            next: "ask whoever loaded them (`bpftool prog show` names their owner) to allow reaper".to_owned(),
            readme: readme::LSM_SECCOMP,
        });
    }
    if p.seccomp_filters.is_some_and(|n| n > 0) {
        found.push(Finding {
            title: format!(
                "reaper runs under {} seccomp filter(s)",
                p.seccomp_filters.unwrap_or(0)
            ),
            refused: vec!["container runtimes' default profiles refuse bpf(2) and perf_event_open(2) with EPERM".to_owned()],
            still_works: still.to_owned(),
            next: "run the container with --privileged, or a seccomp profile that allows bpf and perf_event_open (and CAP_BPF, CAP_PERFMON)".to_owned(),
            readme: readme::LSM_SECCOMP,
        });
    }
    found
}

/// The sysctls that refuse reaper without privileges, when reaper lacks
/// them (none set: no finding).
fn privilege_finding(p: &KernelPolicy) -> Option<Finding> {
    let mut refused = Vec::new();
    if let Some(v) = p.unprivileged_bpf_disabled.filter(|v| *v != 0) {
        refused.push(format!(
            "kernel.unprivileged_bpf_disabled is {v}: bpf(2) needs CAP_BPF (or CAP_SYS_ADMIN){}",
            if v == 1 { " until the next boot" } else { "" }
        ));
    }
    if let Some(v) = p.perf_event_paranoid.filter(|v| *v > 1) {
        refused.push(format!(
            "kernel.perf_event_paranoid is {v}: kernel sampling needs CAP_PERFMON (or CAP_SYS_ADMIN)"
        ));
    }
    (!refused.is_empty()).then(|| Finding {
        title: "reaper lacks privileges these settings require".to_owned(),
        refused,
        still_works: "report, diff and gate need no privilege".to_owned(),
        next: "run reaper as root, or grant it CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH and CAP_SYSLOG (reaper never uses unprivileged BPF, so lowering the sysctls does not help)".to_owned(),
        readme: readme::SYSCTLS,
    })
}

/// "fentry, fexit (22 programs) at load with EPERM before the verifier ran"
/// for every kind whose programs a policy refused: EPERM or EACCES with no
/// verifier output.
fn policy_refusals(d: &Diagnosis) -> Vec<String> {
    let Ok(rows) = &d.programs else {
        return Vec::new();
    };
    let mut kinds: Vec<(ProgramKind, usize, String)> = Vec::new();
    for row in rows {
        let Outcome::Refused(r) = &row.outcome else {
            continue;
        };
        if r.by_verifier() || !matches!(r.errno, Some(1 | 13)) {
            continue;
        }
        let what = format!(
            "at {} with {}",
            match r.step {
                reaper_model::doctor::Step::Load => "load",
                reaper_model::doctor::Step::Attach => "attach",
            },
            reaper_model::doctor::errno_name(r.errno.unwrap_or(0))
        );
        match kinds
            .iter_mut()
            .find(|(k, _, w)| *k == row.kind && *w == what)
        {
            Some((_, n, _)) => *n += 1,
            None => kinds.push((row.kind, 1, what)),
        }
    }
    kinds
        .into_iter()
        .map(|(kind, n, what)| {
            format!(
                "refused here: {} ({n} program{}) {what} before the verifier ran (no verifier output): a policy, not the program",
                kind.name(),
                if n == 1 { "" } else { "s" }
            )
        })
        .collect()
}

/// What `record` can still measure, from the attach kinds that work.
fn still_works(d: &Diagnosis) -> String {
    let works: Vec<&str> = d
        .attach_kinds
        .iter()
        .filter(|k| k.works)
        .map(|k| k.kind.name())
        .collect();
    if works.is_empty() {
        return "nothing reaper attaches works here: it cannot record (report, diff and gate still work on run files)".to_owned();
    }
    let sampling = d.works(ProgramKind::PerfEvent);
    let tracepoints = d.works(ProgramKind::Tracepoint) || d.works(ProgramKind::RawTracepoint);
    let timing = d
        .function_modes
        .iter()
        .any(|f| f.mode != reaper_model::AttachMode::None);
    let mut measures = Vec::new();
    if sampling {
        measures.push("sampled periods, call graphs, flame graphs and the PTE-spinlock spin time");
    }
    if tracepoints {
        measures.push("traced lock waits, the timeline and reclaim throughput");
    }
    if timing {
        measures.push("exact function timing");
    }
    format!(
        "{} attach, so `record` still measures {}{}",
        works.join(", "),
        measures.join("; "),
        if timing {
            String::new()
        } else {
            "; exact function timing is not measured".to_owned()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reaper_model::{
        AttachMode, HostInfo, Lockdown, ProbeOutcome,
        doctor::{
            AttachKind, FunctionMode, KernelPolicy, ProgramCheck, Refusal, Step, Unavailable,
        },
    };

    /// The development host: integrity lockdown from the configuration,
    /// fentry/fexit refused with EPERM at load, ftrace's list refused.
    fn locked_host() -> Diagnosis {
        let refused = |program: &str, kind| ProgramCheck {
            kind,
            program: program.into(),
            target: "exit_mmap".into(),
            outcome: Outcome::Refused(Refusal {
                step: Step::Load,
                errno: Some(1),
                verifier: None,
                detail: "BPF_PROG_LOAD refused".into(),
            }),
        };
        let works = |kind, works| AttachKind {
            kind,
            works,
            detail: String::new(),
        };
        Diagnosis {
            host: HostInfo {
                kernel_release: "6.18.44".into(),
                arch: "x86_64".into(),
                cpus: 2,
                preempt_rt: None,
                clocksource: None,
                lockdown: None,
            },
            btf: true,
            tracefs: Ok("/sys/kernel/tracing".into()),
            tracefs_mounted_by_reaper: false,
            privileges: Ok(()),
            attach_kinds: vec![
                works(ProgramKind::Fentry, false),
                works(ProgramKind::Tracepoint, true),
                works(ProgramKind::RawTracepoint, true),
                works(ProgramKind::PerfEvent, true),
            ],
            programs: Ok(vec![
                refused("fn_fentry_0", ProgramKind::Fentry),
                refused("fn_fentry_1", ProgramKind::Fentry),
                refused("fn_fexit_0", ProgramKind::Fexit),
            ]),
            probe_targets: Vec::new(),
            function_modes: vec![FunctionMode {
                concept: "victim_teardown".into(),
                symbol: Some("exit_mmap".into()),
                mode: AttachMode::None,
                status: ProbeOutcome::not_attached("refused"),
                fallback_from: None,
            }],
            process_mrelease: true,
            record_mode: String::new(),
            probe_costs: Vec::new(),
            probe_costs_not_measured: Vec::new(),
            policy: KernelPolicy {
                lockdown: Some(Lockdown {
                    mode: Some(LockdownMode::Integrity),
                    source: "the kernel configuration (CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y)"
                        .into(),
                }),
                ftrace_functions: Some(Err(Unavailable(
                    "available_filter_functions: EPERM".into(),
                ))),
                seccomp_filters: Some(0),
                ..KernelPolicy::default()
            },
        }
    }

    #[test]
    fn a_locked_down_host_names_the_mode_the_refusals_and_what_still_works() {
        let found = findings(&locked_host());
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.title, "kernel lockdown: integrity");
        let refused = f.refused.join("\n");
        assert!(
            refused.contains("fentry (2 programs) at load with EPERM before the verifier ran"),
            "{refused}"
        );
        assert!(refused.contains("fexit (1 program)"), "{refused}");
        assert!(
            refused.contains("ftrace's function list is refused too"),
            "{refused}"
        );
        assert!(
            f.still_works
                .contains("tracepoint, raw_tracepoint, perf_event attach"),
            "{}",
            f.still_works
        );
        assert!(
            f.still_works
                .contains("exact function timing is not measured")
        );
        assert_eq!(f.readme, readme::LOCKDOWN);
    }

    #[test]
    fn without_lockdown_an_eperm_points_at_lsms_and_seccomp() {
        let mut d = locked_host();
        d.policy.lockdown = None;
        d.policy.seccomp_filters = Some(2);
        let found = findings(&d);
        let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "probes refused before the verifier ran, and no lockdown seen",
                "reaper runs under 2 seccomp filter(s)"
            ]
        );
    }

    #[test]
    fn sysctls_matter_only_without_privileges_and_btf_is_named() {
        let mut d = locked_host();
        d.policy.lockdown = None;
        d.programs = Ok(Vec::new());
        d.policy.unprivileged_bpf_disabled = Some(2);
        d.policy.perf_event_paranoid = Some(2);
        assert!(findings(&d).is_empty());
        d.privileges = Err(Unavailable("missing CAP_BPF".into()));
        d.btf = false;
        let found = findings(&d);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].refused[0].contains("unprivileged_bpf_disabled is 2"));
        assert_eq!(found[1].readme, readme::NO_BTF);
    }
}
