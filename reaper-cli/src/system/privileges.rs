//! Whether this process may load BPF programs, open perf events system-wide
//! and read kernel addresses, with an error that names what is missing.

/// Capability bit numbers from linux/capability.h.
const CAP_KILL: u32 = 5;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Missing privileges, named for the user.
#[derive(Debug, thiserror::Error)]
#[error(
    "reaper needs {missing} to load and attach its eBPF probes (it loads BPF programs, opens cpu-clock \
     perf events on every CPU and reads kernel addresses from /proc/kallsyms); run it as root, e.g. \
     `sudo reaper ...`, or grant the capabilities with `setcap cap_bpf,cap_perfmon,cap_sys_admin,cap_kill+ep`"
)]
pub struct MissingPrivileges {
    /// Comma-separated capability names.
    pub missing: String,
}

/// Parses the `CapEff:` hex mask of `/proc/self/status`.
pub fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// Names of the required capabilities missing from `caps`.
pub fn missing_caps(caps: u64) -> Vec<&'static str> {
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_PERFMON");
    }
    if !has(CAP_SYS_ADMIN) {
        missing.push("CAP_SYS_ADMIN");
    }
    if !has(CAP_KILL) {
        missing.push("CAP_KILL");
    }
    missing
}

/// Fails with [`MissingPrivileges`] unless this process has what recording needs.
pub fn require_recording_privileges() -> Result<(), MissingPrivileges> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = effective_caps(&status).unwrap_or(0);
    let missing = missing_caps(caps);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingPrivileges {
            missing: missing.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_everything() {
        let status = "Name:\treaper\nCapEff:\t000001ffffffffff\n";
        assert_eq!(
            missing_caps(effective_caps(status).unwrap()),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn unprivileged_user_misses_all() {
        let status = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing_caps(effective_caps(status).unwrap()),
            ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_KILL"]
        );
    }

    #[test]
    fn bpf_and_perfmon_without_sys_admin() {
        let caps = (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_KILL);
        assert_eq!(missing_caps(caps), ["CAP_SYS_ADMIN"]);
    }
}
