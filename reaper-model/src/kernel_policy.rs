//! The recorded kernel's policies the run file names: its lockdown level
//! and where reaper saw that it is PREEMPT_RT (`host` in [`crate::Run`]).

use serde::{Deserialize, Serialize};

/// Kernel lockdown (security/lockdown, `man kernel_lockdown.7`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lockdown {
    /// The level, when reaper could tell it.
    pub mode: Option<LockdownMode>,
    /// Where the level (or only the fact) came from, e.g. "the kernel
    /// configuration (CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y)".
    pub source: String,
}

/// A lockdown level. Integrity refuses changing the running kernel
/// (unsigned modules, kexec, /dev/mem, `bpf_probe_write_user`, ...);
/// confidentiality also refuses reading kernel memory (BPF's
/// `bpf_probe_read_kernel`, kprobes, perf's kernel data, tracefs, ...).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LockdownMode {
    /// Not locked down.
    None,
    /// Integrity.
    Integrity,
    /// Confidentiality.
    Confidentiality,
}

impl LockdownMode {
    /// The name the kernel uses (`/sys/kernel/security/lockdown`).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Integrity => "integrity",
            Self::Confidentiality => "confidentiality",
        }
    }

    /// Parses the kernel's name.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            "none" => Some(Self::None),
            "integrity" => Some(Self::Integrity),
            "confidentiality" => Some(Self::Confidentiality),
            _ => None,
        }
    }
}

/// Where reaper saw that a kernel is PREEMPT_RT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RtEvidence {
    /// `/sys/kernel/realtime` reads 1.
    SysKernelRealtime,
    /// `uname -v` names PREEMPT_RT (e.g. "#1 SMP PREEMPT_RT Debian 7.3.4-1").
    UnameVersion,
    /// `/boot/config-$(uname -r)` has CONFIG_PREEMPT_RT=y.
    BootConfig,
}

impl RtEvidence {
    /// Where it was seen, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::SysKernelRealtime => "/sys/kernel/realtime is 1",
            Self::UnameVersion => "uname -v says PREEMPT_RT",
            Self::BootConfig => "CONFIG_PREEMPT_RT=y in /boot/config",
        }
    }
}
