//! The running kernel's release, architecture, CPU count, clocksource and
//! whether it is PREEMPT_RT.

use crate::model::{HostInfo, RtEvidence};

/// `uname(2)` release and machine, and the online CPU count.
pub fn host_info() -> HostInfo {
    // SAFETY: uname fills a zeroed struct it owns.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::uname(&mut uts) } == 0;
    let field = |raw: &[libc::c_char]| -> String {
        if !ok {
            return "unknown".into();
        }
        let bytes: Vec<u8> = raw
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let kernel_release = field(&uts.release);
    let boot_config =
        std::fs::read_to_string(format!("/boot/config-{kernel_release}")).unwrap_or_default();
    HostInfo {
        preempt_rt: preempt_rt(
            std::fs::read_to_string("/sys/kernel/realtime")
                .ok()
                .as_deref(),
            &field(&uts.version),
            &boot_config,
        ),
        arch: field(&uts.machine),
        cpus: online_cpus().map_or(0, |cpus| cpus.len() as u32),
        clocksource: clocksource(std::fs::read_to_string(CLOCKSOURCE_FILE).ok().as_deref()),
        lockdown: super::policy::lockdown_for_run(&kernel_release),
        kernel_release,
    }
}

/// `uname -r` alone.
pub fn host_info_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_owned())
        .unwrap_or_default()
}

/// Where the kernel names the clocksource in use.
pub const CLOCKSOURCE_FILE: &str =
    "/sys/devices/system/clocksource/clocksource0/current_clocksource";

/// The clocksource from [`CLOCKSOURCE_FILE`]'s contents.
pub fn clocksource(contents: Option<&str>) -> Option<String> {
    contents
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// Whether the kernel is PREEMPT_RT, from `/sys/kernel/realtime` (RT kernels
/// since the patch set), `uname -v`, or the kernel's config, in that order.
pub fn preempt_rt(realtime: Option<&str>, uname_version: &str, config: &str) -> Option<RtEvidence> {
    if realtime.is_some_and(|v| v.trim() == "1") {
        return Some(RtEvidence::SysKernelRealtime);
    }
    if uname_version.split_whitespace().any(|w| w == "PREEMPT_RT") {
        return Some(RtEvidence::UnameVersion);
    }
    config
        .lines()
        .any(|l| l.trim() == "CONFIG_PREEMPT_RT=y")
        .then_some(RtEvidence::BootConfig)
}

/// Online CPU ids, from `/sys/devices/system/cpu/online`.
pub fn online_cpus() -> std::io::Result<Vec<u32>> {
    aya::util::online_cpus().map_err(|(_, err)| err)
}

/// Whether the kernel exposes BTF for itself (needed by fentry and tp_btf).
pub fn has_vmlinux_btf() -> bool {
    std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preempt_rt_is_read_from_realtime_uname_or_config() {
        assert_eq!(
            preempt_rt(Some("1\n"), "", ""),
            Some(RtEvidence::SysKernelRealtime)
        );
        assert_eq!(
            preempt_rt(
                None,
                "#1 SMP PREEMPT_RT Debian 7.3.4-1~bpo13+1 (2026-11-15)",
                ""
            ),
            Some(RtEvidence::UnameVersion)
        );
        assert_eq!(
            preempt_rt(
                None,
                "#1 SMP PREEMPT_DYNAMIC Debian 6.12.57-1",
                "CONFIG_PREEMPT_RT=y\n"
            ),
            Some(RtEvidence::BootConfig)
        );
        assert_eq!(
            preempt_rt(
                Some("0"),
                "#1 SMP PREEMPT_DYNAMIC Debian 6.12.57-1",
                "# CONFIG_PREEMPT_RT is not set\n"
            ),
            None
        );
    }
}
