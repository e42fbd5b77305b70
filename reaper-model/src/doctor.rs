//! The findings of `reaper doctor --json` (`doctor.json`): what this kernel
//! lets reaper attach, each program `record` may use loaded for real, and
//! the mode each catalog function gets. Kept here, beside run.json's types,
//! so xtask and the tests read doctor.json with the types reaper writes it
//! with.

use serde::{Deserialize, Serialize};

pub use crate::vocabulary::ProgramKind;
use crate::{AttachMode, HostInfo, ProbeOutcome, ResolvedConcept};

/// One attach kind's verdict.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct AttachKind {
    /// The attach kind checked.
    pub kind: ProgramKind,
    /// Whether a program of this kind loaded and attached.
    pub works: bool,
    /// What was attached, or the kernel's answer.
    pub detail: String,
}

/// What the attach ladder gave one catalog concept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct FunctionMode {
    /// Catalog concept id (`ConceptId`'s name), or "all" when doctor's
    /// programs did not load, or "reaper_order" for why VMA order detection
    /// is off.
    pub concept: String,
    /// The kernel function, if this kernel has one.
    pub symbol: Option<String>,
    /// fentry, kprobe or none.
    pub mode: AttachMode,
    /// Attached, or the kernel's answers (or why the concept has no function).
    pub status: ProbeOutcome,
    /// Why fentry/fexit was refused when kprobes were used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
}

/// Why something doctor checked is unavailable, in the words of the error
/// doctor met (its causes included). doctor.json is a document other
/// programs read back, so the error arrives there as its text: the typed
/// errors live where doctor meets them, and become this at the edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl Unavailable {
    /// The error and its causes, each cause once ("perf_event_open failed:
    /// Permission denied"), as doctor prints them ([`crate::error_chain`]).
    pub fn of(err: &(dyn std::error::Error + 'static)) -> Self {
        Self(crate::error_chain(err))
    }
}

crate::string_schema!(Unavailable);

/// The doctor's findings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diagnosis {
    /// Kernel and machine.
    pub host: HostInfo,
    /// Whether /sys/kernel/btf/vmlinux exists.
    pub btf: bool,
    /// tracefs root, or why it is unavailable.
    pub tracefs: Result<String, Unavailable>,
    /// Whether reaper mounted tracefs itself.
    pub tracefs_mounted_by_reaper: bool,
    /// Missing privileges, if any.
    pub privileges: Result<(), Unavailable>,
    /// Attach kinds, in preference order for function timing.
    pub attach_kinds: Vec<AttachKind>,
    /// Every program `record` may use, loaded and attached for real (or why
    /// the object did not load).
    pub programs: Result<Vec<ProgramCheck>, Unavailable>,
    /// Catalog concepts resolved against /proc/kallsyms and BTF.
    pub probe_targets: Vec<ResolvedConcept>,
    /// The mode `reaper record --attach auto` gives each catalog function,
    /// found by running the attach ladder for real.
    pub function_modes: Vec<FunctionMode>,
    /// Whether process_mrelease(2) exists.
    pub process_mrelease: bool,
    /// The mode `reaper record` will use.
    pub record_mode: String,
    /// What one timed call costs per attach mode on this kernel (the
    /// calibration loop `record` also runs at start-up).
    #[serde(default)]
    pub probe_costs: Vec<crate::ProbeCost>,
    /// Attach modes whose cost could not be measured, and why.
    #[serde(default)]
    pub probe_costs_not_measured: Vec<crate::NotMeasured>,
    /// The kernel's policies that may refuse probes (lockdown, LSMs,
    /// seccomp, sysctls).
    #[serde(default)]
    pub policy: KernelPolicy,
}

/// The kernel's policies that may refuse what reaper loads or attaches,
/// as far as reaper could read them (`None`: could not be read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KernelPolicy {
    /// Lockdown, with where its level came from; `None`: no sign of it.
    pub lockdown: Option<crate::Lockdown>,
    /// The kernel log's lines about lockdown ("Kernel is locked down from
    /// ...", "Lockdown: ...: ... is restricted"), as evidence.
    #[serde(default)]
    pub lockdown_log: Vec<String>,
    /// Active LSMs, in order, and where the list came from.
    pub lsms: Option<(Vec<String>, String)>,
    /// SELinux: enforcing (`Some(true)`), permissive, or not present.
    pub selinux_enforcing: Option<bool>,
    /// Loaded BPF programs of type LSM (a BPF policy may refuse bpf(2)).
    #[serde(default)]
    pub bpf_lsm_programs: Vec<String>,
    /// Seccomp filters on reaper itself (`/proc/self/status`), 0 for none.
    pub seccomp_filters: Option<u32>,
    /// `kernel.unprivileged_bpf_disabled` (0, 1 or 2).
    pub unprivileged_bpf_disabled: Option<u32>,
    /// `kernel.perf_event_paranoid`.
    pub perf_event_paranoid: Option<i32>,
    /// Whether tracefs's `available_filter_functions` (ftrace's function
    /// list, which fentry/fexit trampolines and kprobes rely on) is
    /// readable; `Some(false)`: refused, with the kernel's answer.
    pub ftrace_functions: Option<Result<(), Unavailable>>,
}

impl Diagnosis {
    /// Whether reaper can record anything at all (tracepoints or sampling).
    pub fn can_record(&self) -> bool {
        self.attach_kinds.iter().any(|k| {
            matches!(
                k.kind,
                ProgramKind::Tracepoint | ProgramKind::RawTracepoint | ProgramKind::PerfEvent
            ) && k.works
        })
    }

    /// Whether an attach kind works.
    pub fn works(&self, kind: ProgramKind) -> bool {
        self.attach_kinds.iter().any(|k| k.kind == kind && k.works)
    }
}

/// What happened to one program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Loaded (verified) and attached.
    Attached,
    /// The kernel refused its load or its attach.
    Refused(Refusal),
    /// Not tried on this kernel, and why (no BTF, no kprobes, ...).
    NotTried {
        /// Why.
        why: String,
    },
}

/// One program's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProgramCheck {
    /// Attach kind.
    pub kind: ProgramKind,
    /// Program name in the object.
    pub program: String,
    /// What it attaches to (function, tracepoint, or CPUs).
    pub target: String,
    /// The kernel's verdict (flattened: `outcome`, and for a refusal
    /// `step`, `errno`, `verifier`, `detail`).
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl ProgramCheck {
    /// Whether it loaded and attached.
    pub fn attached(&self) -> bool {
        self.outcome == Outcome::Attached
    }
}

/// The step the kernel refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `BPF_PROG_LOAD` (the verifier, BTF lookup, or a policy).
    Load,
    /// Attaching the loaded program (perf_event_open, BPF_LINK_CREATE, ...).
    Attach,
}

/// A refused load or attach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Refusal {
    /// Which step failed.
    pub step: Step,
    /// The OS error number, when the kernel gave one.
    pub errno: Option<i32>,
    /// The verifier's reason (the last line of its log before the
    /// statistics), when the verifier refused the program.
    pub verifier: Option<String>,
    /// The error as text, for what neither field explains.
    pub detail: String,
}

impl Refusal {
    /// Whether the verifier refused the program.
    pub fn by_verifier(&self) -> bool {
        self.verifier.is_some()
    }
}

impl std::fmt::Display for Refusal {
    /// E.g. "BPF_PROG_LOAD refused (verifier: R1 invalid mem access) [EINVAL 22]".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)?;
        if let Some(reason) = &self.verifier {
            write!(f, " (verifier: {reason})")?;
        }
        if let Some(code) = self.errno {
            write!(f, " [{} {code}]", errno_name(code))?;
        }
        Ok(())
    }
}

/// errno names for the answers loads and attaches commonly get.
pub fn errno_name(code: i32) -> &'static str {
    match code {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        7 => "E2BIG",
        13 => "EACCES",
        16 => "EBUSY",
        17 => "EEXIST",
        22 => "EINVAL",
        95 => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        _ => "errno",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// doctor.json is read back (by xtask's VM checks) with these types: the
    /// flattened program outcome and the `Result` sections survive a round
    /// trip.
    #[test]
    fn a_diagnosis_reads_back_as_written() {
        let refused = Refusal {
            step: Step::Load,
            errno: Some(524),
            verifier: None,
            detail: "BPF_PROG_LOAD refused".into(),
        };
        let diagnosis = Diagnosis {
            host: HostInfo {
                kernel_release: "6.1.0-50-cloud-arm64".into(),
                arch: "aarch64".into(),
                cpus: 2,
                preempt_rt: None,
                clocksource: None,
                lockdown: None,
            },
            btf: true,
            tracefs: Err(Unavailable("not mounted".into())),
            tracefs_mounted_by_reaper: false,
            privileges: Ok(()),
            attach_kinds: vec![AttachKind {
                kind: ProgramKind::Kprobe,
                works: true,
                detail: "attached".into(),
            }],
            programs: Ok(vec![
                ProgramCheck {
                    kind: ProgramKind::Fentry,
                    program: "fn_fentry_0".into(),
                    target: "exit_mmap".into(),
                    outcome: Outcome::Refused(refused.clone()),
                },
                ProgramCheck {
                    kind: ProgramKind::Kprobe,
                    program: "fn_kprobe_0".into(),
                    target: "exit_mmap".into(),
                    outcome: Outcome::NotTried { why: "x".into() },
                },
            ]),
            probe_targets: Vec::new(),
            function_modes: vec![FunctionMode {
                concept: "reaper_work".into(),
                symbol: None,
                mode: AttachMode::None,
                status: ProbeOutcome::parse("absent on this kernel"),
                fallback_from: None,
            }],
            process_mrelease: true,
            record_mode: "kprobe".into(),
            probe_costs: Vec::new(),
            probe_costs_not_measured: Vec::new(),
            policy: KernelPolicy::default(),
        };
        let text = serde_json::to_string(&diagnosis).unwrap();
        assert!(
            text.contains(r#""outcome":"refused","step":"load","errno":524"#),
            "{text}"
        );
        let back: Diagnosis = serde_json::from_str(&text).unwrap();
        assert_eq!(back, diagnosis);
        assert_eq!(refused.to_string(), "BPF_PROG_LOAD refused [ENOTSUPP 524]");
        assert!(back.works(ProgramKind::Kprobe) && !back.can_record());
    }
}
