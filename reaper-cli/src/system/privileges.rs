//! Which capabilities reaper needs, per kind of recording, and an error
//! that names each missing one. Root has them all; the exact sets let reaper
//! run as an unprivileged user holding only these (ambient capabilities via
//! `setpriv`, or `setcap` on the binary): see the README's "Least
//! privilege" section.

use crate::model::ScenarioKind;

/// A capability reaper may need; the discriminant is its bit number
/// (linux/capability.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Cap {
    /// Create reaper's memory and freezer cgroups (`--oom`, `--frozen`).
    DacOverride = 1,
    /// Read tracefs (`/sys/kernel/tracing` is root-only) for tracepoint ids.
    DacReadSearch = 2,
    /// SIGKILL a process of another user (`--pid`).
    Kill = 5,
    /// Read `/proc/PID/maps` and pidfd `fdinfo` of other users' processes
    /// (`--pid`, `--watch`).
    SysPtrace = 19,
    /// Implies CAP_BPF and CAP_PERFMON on every kernel; reaper needs it only
    /// where those two do not exist (before 5.8) or to mount tracefs.
    SysAdmin = 21,
    /// Read kernel addresses in `/proc/kallsyms` (kptr_restrict=1) to
    /// symbolize stacks.
    Syslog = 34,
    /// Open cpu-clock perf events on every CPU, attach tracepoints.
    Perfmon = 38,
    /// Load BPF programs and create maps.
    Bpf = 39,
}

impl Cap {
    /// The name `setcap`/`capsh` and the man pages use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DacOverride => "CAP_DAC_OVERRIDE",
            Self::DacReadSearch => "CAP_DAC_READ_SEARCH",
            Self::Kill => "CAP_KILL",
            Self::SysPtrace => "CAP_SYS_PTRACE",
            Self::SysAdmin => "CAP_SYS_ADMIN",
            Self::Syslog => "CAP_SYSLOG",
            Self::Perfmon => "CAP_PERFMON",
            Self::Bpf => "CAP_BPF",
        }
    }

    /// What reaper does with it.
    pub const fn why(self) -> &'static str {
        match self {
            Self::DacOverride => "create its memory/freezer cgroups",
            Self::DacReadSearch => "read tracefs",
            Self::Kill => "kill another user's process",
            Self::SysPtrace => "read other users' /proc/PID/maps and fdinfo",
            Self::SysAdmin => "mount tracefs",
            Self::Syslog => "read kernel addresses from /proc/kallsyms",
            Self::Perfmon => "open perf events and attach tracepoints",
            Self::Bpf => "load BPF programs",
        }
    }

    const fn bit(self) -> u64 {
        1 << self as u32
    }
}

/// Every recording: load, attach, read tracefs, symbolize.
pub const BASE: &[Cap] = &[Cap::Bpf, Cap::Perfmon, Cap::DacReadSearch, Cap::Syslog];

/// The exact capability set of a recording of `kind`: a synthetic victim
/// (`--victim`) is reaper's own; an OOM kill (`--oom`, with or without
/// `--frozen`) works in reaper's own cgroups; a killed process (`--pid
/// --kill`) may be another user's; a waited-for exit (`--pid`) and a watch
/// read other processes' /proc files and take their pidfds.
pub fn needed(kind: ScenarioKind) -> Vec<Cap> {
    let extra: &[Cap] = match kind {
        ScenarioKind::Victim => &[],
        ScenarioKind::Oom => &[Cap::DacOverride],
        ScenarioKind::Pid => &[Cap::Kill, Cap::SysPtrace],
        ScenarioKind::Watch | ScenarioKind::Exit => &[Cap::SysPtrace],
    };
    BASE.iter().chain(extra).copied().collect()
}

/// Missing privileges, named for the user.
#[derive(Debug, thiserror::Error)]
#[error(
    "reaper is missing {}: it needs them to {}; run it as root (`sudo reaper ...`), or grant exactly \
     these to an unprivileged user, e.g. `setpriv --inh-caps={caps} --ambient-caps={caps} reaper ...` \
     (see the README's \"Least privilege\" section)",
    names(missing), whys(missing), caps = setpriv_list(needed)
)]
pub struct MissingPrivileges {
    /// The capabilities missing.
    pub missing: Vec<Cap>,
    /// The whole set the command needs.
    pub needed: Vec<Cap>,
}

fn names(caps: &[Cap]) -> String {
    caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

fn whys(caps: &[Cap]) -> String {
    caps.iter().map(|c| c.why()).collect::<Vec<_>>().join(", ")
}

/// `+bpf,+perfmon,...` for setpriv.
pub fn setpriv_list(caps: &[Cap]) -> String {
    caps.iter()
        .map(|c| format!("+{}", c.name().trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the `CapEff:` hex mask of `/proc/self/status`.
pub fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// The capabilities of `needed` missing from `caps`. CAP_SYS_ADMIN stands
/// in for CAP_BPF and CAP_PERFMON (the kernel's `bpf_capable()` and
/// `perfmon_capable()`); CAP_SYSLOG is not needed when kallsyms already
/// shows addresses (kptr_restrict=0).
pub fn missing_caps(caps: u64, needed: &[Cap], kallsyms_visible: bool) -> Vec<Cap> {
    let has = |cap: Cap| caps & cap.bit() != 0;
    needed
        .iter()
        .copied()
        .filter(|&cap| match cap {
            Cap::Bpf | Cap::Perfmon => !has(cap) && !has(Cap::SysAdmin),
            Cap::Syslog => !has(cap) && !kallsyms_visible,
            _ => !has(cap),
        })
        .collect()
}

/// Fails with [`MissingPrivileges`] unless this process holds `needed`.
pub fn require(needed: &[Cap]) -> Result<(), MissingPrivileges> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = effective_caps(&status).unwrap_or(0);
    let visible = crate::symbolize::kallsyms_visible();
    let missing = missing_caps(caps, needed, visible);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingPrivileges {
            missing,
            needed: needed.to_vec(),
        })
    }
}

/// [`require`] for what every recording needs.
pub fn require_recording_privileges() -> Result<(), MissingPrivileges> {
    require(BASE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_everything() {
        let status = "Name:\treaper\nCapEff:\t000001ffffffffff\n";
        let caps = effective_caps(status).unwrap();
        for kind in ScenarioKind::ALL {
            assert_eq!(missing_caps(caps, &needed(kind), false), []);
        }
    }

    #[test]
    fn unprivileged_user_misses_the_whole_set_by_name() {
        let caps = effective_caps("CapEff:\t0000000000000000\n").unwrap();
        assert_eq!(
            missing_caps(caps, &needed(ScenarioKind::Victim), false),
            [Cap::Bpf, Cap::Perfmon, Cap::DacReadSearch, Cap::Syslog]
        );
        let err = MissingPrivileges {
            missing: vec![Cap::Syslog],
            needed: needed(ScenarioKind::Victim),
        };
        let text = err.to_string();
        assert!(text.contains("missing CAP_SYSLOG"), "{text}");
        assert!(
            text.contains("--ambient-caps=+bpf,+perfmon,+dac_read_search,+syslog"),
            "{text}"
        );
    }

    #[test]
    fn sys_admin_stands_in_for_bpf_and_perfmon_and_visible_kallsyms_for_syslog() {
        let caps = Cap::SysAdmin.bit() | Cap::DacReadSearch.bit();
        assert_eq!(missing_caps(caps, BASE, true), []);
        assert_eq!(missing_caps(caps, BASE, false), [Cap::Syslog]);
        assert_eq!(
            missing_caps(caps, &needed(ScenarioKind::Oom), true),
            [Cap::DacOverride]
        );
    }
}
