//! The host reaper-lab runs on: whether it runs as root, how a program runs
//! as root (sudo otherwise), where a program is on `PATH`, and installing
//! Debian packages with apt after naming them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `program` run as root: directly when this process is root, else through sudo.
pub fn privileged(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(program);
        sudo
    }
}

/// How apt runs here, for the message before an install.
pub fn how() -> &'static str {
    if is_root() { "as root" } else { "through sudo" }
}

/// True when this host has apt (Debian and derivatives).
pub fn has_apt() -> bool {
    find_in_path("apt-get").is_some()
}

/// The full path of `program` if it is an executable on `PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Installs Debian `packages` with apt (through sudo when not root), after
/// naming them (`listed`: how to describe each, e.g. "linux-perf (for perf)").
/// On a host without apt it names them and returns Ok: only the steps that
/// need them will fail.
pub fn install(listed: &[String], packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    if !has_apt() {
        eprintln!(
            "reaper-lab: no apt-get on this host; install {} yourself (Debian names). \
             Going on: only the steps that run them will fail",
            listed.join(", ")
        );
        return Ok(());
    }
    eprintln!(
        "reaper-lab: installing Debian packages {} with apt-get, {}",
        listed.join(", "),
        how()
    );
    let mut update = privileged("apt-get");
    update.args(["-q", "update"]);
    status(update)?;
    let mut install = privileged("apt-get");
    install.args(["-q", "-y", "--no-install-recommends", "install"]);
    install.args(packages);
    status(install)
}

/// Runs `cmd`, printing it first.
pub fn status(cmd: Command) -> Result<()> {
    status_as("reaper-lab", cmd)
}

/// Runs `cmd`, printing it first after `who: `; fails unless it succeeds.
pub fn status_as(who: &str, mut cmd: Command) -> Result<()> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("{who}: {shown}");
    let status = cmd.status().with_context(|| format!("running {shown}"))?;
    if !status.success() {
        bail!("`{shown}` failed with {status}");
    }
    Ok(())
}
