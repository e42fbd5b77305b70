//! The running kernel's release, architecture and CPU count.

use crate::model::HostInfo;

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
    HostInfo {
        kernel_release: field(&uts.release),
        arch: field(&uts.machine),
        cpus: online_cpus().map_or(0, |cpus| cpus.len() as u32),
    }
}

/// Online CPU ids, from `/sys/devices/system/cpu/online`.
pub fn online_cpus() -> std::io::Result<Vec<u32>> {
    aya::util::online_cpus().map_err(|(_, err)| err)
}

/// Whether the kernel exposes BTF for itself (needed by fentry and tp_btf).
pub fn has_vmlinux_btf() -> bool {
    std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
}
