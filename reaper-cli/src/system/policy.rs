//! The kernel's policies that may refuse what reaper loads or attaches:
//! lockdown, the LSMs (SELinux, BPF LSM programs), a seccomp filter on
//! reaper itself, the BPF and perf sysctls, and whether ftrace's function
//! list is readable. Read only: nothing is mounted or changed.
//!
//! Lockdown's level is read from `/sys/kernel/security/lockdown` when
//! securityfs is mounted; otherwise from the kernel command line
//! (`lockdown=`), the kernel's configuration (`/proc/config.gz`,
//! `/boot/config-RELEASE`: `CONFIG_LOCK_DOWN_KERNEL_FORCE_*`) and the kernel
//! log (`/dev/kmsg`: "Kernel is locked down from ...", and "Lockdown: ...
//! is restricted" for each refusal, whose reason names the level). The
//! parsers are pure and tested on the kernel's own wording.

use std::io::Read as _;
use std::path::Path;

use reaper_model::{
    Lockdown, LockdownMode,
    doctor::{KernelPolicy, Unavailable},
};

/// securityfs's lockdown file.
const LOCKDOWN_FILE: &str = "/sys/kernel/security/lockdown";
/// securityfs's list of active LSMs.
const LSM_FILE: &str = "/sys/kernel/security/lsm";
/// Most kernel-log records read (the ring holds a few thousand).
const MAX_LOG_RECORDS: usize = 100_000;

/// Reads every policy this machine shows.
pub fn read(kernel_release: &str) -> KernelPolicy {
    let log = kernel_log();
    let config = kernel_config(kernel_release);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    KernelPolicy {
        lockdown: lockdown(
            std::fs::read_to_string(LOCKDOWN_FILE).ok().as_deref(),
            std::fs::read_to_string("/proc/cmdline").ok().as_deref(),
            config.as_deref(),
            &log,
        ),
        lockdown_log: lockdown_lines(&log),
        lsms: lsms(std::fs::read_to_string(LSM_FILE).ok().as_deref(), &log),
        selinux_enforcing: std::fs::read_to_string("/sys/fs/selinux/enforce")
            .ok()
            .map(|v| v.trim() == "1"),
        bpf_lsm_programs: bpf_lsm_programs(),
        seccomp_filters: seccomp_filters(&status),
        unprivileged_bpf_disabled: sysctl("/proc/sys/kernel/unprivileged_bpf_disabled"),
        perf_event_paranoid: sysctl("/proc/sys/kernel/perf_event_paranoid"),
        ftrace_functions: ftrace_functions(),
    }
}

/// The lockdown of `host_info`: only a level other than none, for run
/// files (cheap: no kernel-log scan unless nothing else tells).
pub fn lockdown_for_run(kernel_release: &str) -> Option<Lockdown> {
    let file = std::fs::read_to_string(LOCKDOWN_FILE).ok();
    let cmdline = std::fs::read_to_string("/proc/cmdline").ok();
    let config = kernel_config(kernel_release);
    let quick = lockdown(file.as_deref(), cmdline.as_deref(), config.as_deref(), &[]);
    let found = match quick {
        Some(l) if l.mode.is_some() => Some(l),
        _ => lockdown(
            file.as_deref(),
            cmdline.as_deref(),
            config.as_deref(),
            &kernel_log(),
        ),
    };
    found.filter(|l| l.mode != Some(LockdownMode::None))
}

/// When the kernel refused reaper's programs wholesale, the policy most
/// likely behind it, for the error message (`reaper doctor` says more): a
/// seccomp filter on reaper, confidentiality lockdown, or SELinux.
/// `release`: the running kernel's (`uname -r`).
pub fn refusal_hint(release: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(n) = seccomp_filters(&status).filter(|n| *n > 0) {
        return Some(format!(
            "reaper runs under {n} seccomp filter(s): a container's default profile refuses bpf(2) and perf_event_open(2); run it --privileged or with a profile that allows them (README: \"LSMs and seccomp\"; `reaper doctor` says more)"
        ));
    }
    if let Some(l) =
        lockdown_for_run(release).filter(|l| l.mode == Some(LockdownMode::Confidentiality))
    {
        return Some(format!(
            "the kernel is locked down at confidentiality (from {}), which refuses BPF programs that read kernel memory (README: \"Kernel lockdown\"; `reaper doctor` says more)",
            l.source
        ));
    }
    if std::fs::read_to_string("/sys/fs/selinux/enforce").is_ok_and(|v| v.trim() == "1") {
        return Some(
            "SELinux is enforcing and may deny bpf(2) to reaper (README: \"LSMs and seccomp\"; `reaper doctor` says more)"
                .to_owned(),
        );
    }
    None
}

/// The lockdown level from its sources, best first; `None` when no source
/// shows a lockdown LSM at all.
pub fn lockdown(
    securityfs: Option<&str>,
    cmdline: Option<&str>,
    config: Option<&str>,
    log: &[String],
) -> Option<Lockdown> {
    if let Some(mode) = securityfs.and_then(selected_mode) {
        return Some(Lockdown {
            mode: Some(mode),
            source: LOCKDOWN_FILE.to_owned(),
        });
    }
    let from_log = locked_down_from(log);
    let from_cmdline = cmdline.and_then(|c| {
        c.split_whitespace()
            .find_map(|w| w.strip_prefix("lockdown="))
            .and_then(LockdownMode::parse)
    });
    let forced = config.and_then(forced_by_config);
    // A refusal's reason names the level it belongs to.
    let refused_confidentiality = log
        .iter()
        .any(|l| l.contains("Lockdown: ") && CONFIDENTIALITY_REASONS.iter().any(|r| l.contains(r)));
    let logged = |how: String| match &from_log {
        Some(from) => format!("{how}; the kernel log says it was locked down from {from}"),
        None => how,
    };
    let level = configured_level(from_cmdline, forced);
    match level {
        Some((mode, how)) if refused_confidentiality && mode < LockdownMode::Confidentiality => {
            Some(Lockdown {
                mode: Some(LockdownMode::Confidentiality),
                source: logged(format!(
                    "the kernel log's refusals, which only confidentiality makes ({how} forces {})",
                    mode.name()
                )),
            })
        }
        Some((mode, how)) => Some(Lockdown {
            mode: Some(mode),
            source: logged(format!("{how}; securityfs is not mounted, so the current level was not read")),
        }),
        None if refused_confidentiality => Some(Lockdown {
            mode: Some(LockdownMode::Confidentiality),
            source: logged("the kernel log's refusals, which only confidentiality makes".to_owned()),
        }),
        None => from_log.map(|from| Lockdown {
            mode: None,
            source: format!(
                "the kernel log (locked down from {from}; the level was not found: securityfs is not mounted and the kernel configuration is not readable)"
            ),
        }),
    }
}

/// What the kernel log says lockdown came from ("Kernel is locked down
/// from ..."), if it says.
fn locked_down_from(log: &[String]) -> Option<String> {
    log.iter().find_map(|l| {
        l.split("Kernel is locked down from ")
            .nth(1)
            .map(|rest| rest.split(';').next().unwrap_or(rest).trim().to_owned())
    })
}

/// The level the kernel configuration `config` forces, with the line that
/// forces it.
fn forced_by_config(config: &str) -> Option<(&'static str, LockdownMode)> {
    [
        (
            "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY=y",
            LockdownMode::Confidentiality,
        ),
        (
            "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y",
            LockdownMode::Integrity,
        ),
        ("CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE=y", LockdownMode::None),
    ]
    .into_iter()
    .find(|(line, _)| config.lines().any(|l| l.trim() == *line))
}

/// The level the command line (`lockdown=`) and the configuration set
/// (the stricter of both), and how that was found.
fn configured_level(
    from_cmdline: Option<LockdownMode>,
    forced: Option<(&'static str, LockdownMode)>,
) -> Option<(LockdownMode, String)> {
    match (from_cmdline, forced) {
        (Some(a), Some((line, b))) => Some((
            a.max(b),
            format!(
                "the kernel command line (lockdown={}) and the kernel configuration ({line})",
                a.name()
            ),
        )),
        (Some(a), None) => Some((
            a,
            format!("the kernel command line (lockdown={})", a.name()),
        )),
        (None, Some((line, b))) => Some((b, format!("the kernel configuration ({line})"))),
        (None, None) => None,
    }
}

/// Reasons of the confidentiality level as the kernel logs them
/// (security/lockdown/lockdown.c `lockdown_reasons`).
const CONFIDENTIALITY_REASONS: &[&str] = &[
    "/proc/kcore access",
    "use of kprobes",
    "use of bpf to read kernel RAM",
    "use of perf to access kernel data",
    "use of tracefs",
    "xmon read and write access",
    "xfrm SA secret",
];

/// The bracketed level of `/sys/kernel/security/lockdown`
/// ("none [integrity] confidentiality").
fn selected_mode(text: &str) -> Option<LockdownMode> {
    let open = text.find('[')?;
    let close = text[open..].find(']')? + open;
    LockdownMode::parse(&text[open + 1..close])
}

/// The kernel log's lines about lockdown.
fn lockdown_lines(log: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = log
        .iter()
        .filter(|l| l.contains("Kernel is locked down from") || l.contains("Lockdown: "))
        .cloned()
        .collect();
    lines.dedup();
    lines.truncate(8);
    lines
}

/// Active LSMs: securityfs's list, else the kernel log's
/// "LSM: initializing lsm=...".
fn lsms(securityfs: Option<&str>, log: &[String]) -> Option<(Vec<String>, String)> {
    let split = |s: &str| -> Vec<String> {
        s.trim()
            .split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(list) = securityfs {
        return Some((split(list), LSM_FILE.to_owned()));
    }
    log.iter().find_map(|l| {
        let list = l.split("LSM: initializing lsm=").nth(1)?;
        Some((
            split(list.split_whitespace().next().unwrap_or("")),
            "the kernel log (LSM: initializing lsm=...)".to_owned(),
        ))
    })
}

/// `Seccomp_filters:` of a status file (Linux 5.9+), else 1 when `Seccomp:`
/// is 2 (filter mode) and 0 when it is 0.
fn seccomp_filters(status: &str) -> Option<u32> {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    field("Seccomp_filters:").or_else(|| field("Seccomp:").map(|mode| u32::from(mode == 2)))
}

fn sysctl<T: std::str::FromStr>(path: &str) -> Option<T> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// ftrace's function list could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
struct FtraceListRefused {
    /// `available_filter_functions` under the tracefs root.
    path: std::path::PathBuf,
    /// The kernel's answer.
    #[source]
    source: std::io::Error,
}

/// Whether ftrace's function list is readable (one read of its start).
fn ftrace_functions() -> Option<Result<(), Unavailable>> {
    let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("trace").exists())?;
    let path = root.join("available_filter_functions");
    let result = std::fs::File::open(&path).and_then(|mut f| f.read(&mut [0u8; 64]).map(|_| ()));
    Some(result.map_err(|source| Unavailable::of(&FtraceListRefused { path, source })))
}

/// Names of loaded BPF programs of type LSM.
fn bpf_lsm_programs() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| p.program_type() == aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_LSM)
        .map(|p| p.name_as_str().unwrap_or("?").to_owned())
        .collect()
}

/// The kernel's configuration, from /proc/config.gz or /boot.
fn kernel_config(release: &str) -> Option<String> {
    if let Ok(file) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(text);
        }
    }
    std::fs::read_to_string(format!("/boot/config-{release}")).ok()
}

/// The kernel log's messages, read once without blocking from /dev/kmsg
/// (CAP_SYSLOG when `kernel.dmesg_restrict` is 1, which reaper needs
/// anyway); empty when it cannot be read.
fn kernel_log() -> Vec<String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let Ok(mut kmsg) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    while out.len() < MAX_LOG_RECORDS {
        match kmsg.read(&mut buf) {
            Ok(0) => break,
            // One record per read: "prio,seq,ts,flags;message\n".
            Ok(n) => {
                let record = String::from_utf8_lossy(&buf[..n]);
                let message = record.split_once(';').map_or(&*record, |(_, m)| m);
                out.push(message.lines().next().unwrap_or("").to_owned());
            }
            // EPIPE: the record was overwritten while reading; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn securityfs_names_the_level_when_mounted() {
        let l = lockdown(Some("none [integrity] confidentiality\n"), None, None, &[]).unwrap();
        assert_eq!(l.mode, Some(LockdownMode::Integrity));
        assert_eq!(l.source, LOCKDOWN_FILE);
        let none = lockdown(Some("[none] integrity confidentiality\n"), None, None, &[]).unwrap();
        assert_eq!(none.mode, Some(LockdownMode::None));
    }

    /// The development host: securityfs not mounted, the level forced by
    /// the configuration, and the log's one line.
    #[test]
    fn without_securityfs_the_configuration_and_the_log_tell() {
        let config = "CONFIG_SECURITY_LOCKDOWN_LSM=y\n# CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE is not set\nCONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y\n";
        let kmsg =
            log(&["Kernel is locked down from Kernel configuration; see man kernel_lockdown.7"]);
        let l = lockdown(None, Some("console=ttyS0 quiet"), Some(config), &kmsg).unwrap();
        assert_eq!(l.mode, Some(LockdownMode::Integrity));
        assert!(
            l.source
                .contains("CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y"),
            "{}",
            l.source
        );
        assert!(
            l.source.contains("locked down from Kernel configuration"),
            "{}",
            l.source
        );
        assert_eq!(lockdown_lines(&kmsg).len(), 1);
    }

    #[test]
    fn a_confidentiality_refusal_in_the_log_names_the_level() {
        let kmsg = log(&[
            "Kernel is locked down from EFI Secure Boot mode; see man kernel_lockdown.7",
            "Lockdown: reaper: use of bpf to read kernel RAM is restricted; see man kernel_lockdown.7",
        ]);
        let l = lockdown(None, None, None, &kmsg).unwrap();
        assert_eq!(l.mode, Some(LockdownMode::Confidentiality));
        assert!(l.source.contains("EFI Secure Boot mode"), "{}", l.source);
        let only_locked = lockdown(None, None, None, &kmsg[..1]).unwrap();
        assert_eq!(only_locked.mode, None);
        assert!(only_locked.source.contains("EFI Secure Boot mode"));
    }

    #[test]
    fn the_command_line_can_raise_a_forced_level() {
        let config = "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y\n";
        let l = lockdown(None, Some("ro lockdown=confidentiality"), Some(config), &[]).unwrap();
        assert_eq!(l.mode, Some(LockdownMode::Confidentiality));
        assert!(lockdown(None, Some("ro quiet"), Some("# none\n"), &[]).is_none());
    }

    #[test]
    fn lsms_come_from_securityfs_or_the_log() {
        let kmsg = log(&["LSM: initializing lsm=lockdown,capability,landlock,bpf"]);
        let (list, source) = lsms(None, &kmsg).unwrap();
        assert_eq!(list, ["lockdown", "capability", "landlock", "bpf"]);
        assert!(source.contains("kernel log"));
        let (list, _) = lsms(Some("capability,selinux\n"), &kmsg).unwrap();
        assert_eq!(list, ["capability", "selinux"]);
    }

    #[test]
    fn seccomp_filters_from_status() {
        assert_eq!(
            seccomp_filters("Seccomp:\t2\nSeccomp_filters:\t3\n"),
            Some(3)
        );
        assert_eq!(seccomp_filters("Seccomp:\t2\n"), Some(1));
        assert_eq!(
            seccomp_filters("Seccomp:\t0\nSeccomp_filters:\t0\n"),
            Some(0)
        );
        assert_eq!(seccomp_filters(""), None);
    }
}
