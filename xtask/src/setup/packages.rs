//! Host programs that come from Debian packages (perf, setpriv): installed
//! through apt, with sudo when xtask is not root, after saying which. On a
//! host without apt the packages are named and skipped.

use std::process::Command;

use anyhow::Result;

use crate::setup_qemu::find_in_path;

/// A host program some command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTool {
    /// The reference profiler `cargo xtask bench` compares against.
    Perf,
    /// The host integration tests run `reaper report` as an unprivileged user.
    Setpriv,
}

impl HostTool {
    pub const ALL: [HostTool; 2] = [HostTool::Perf, HostTool::Setpriv];

    /// The program looked up on `PATH`.
    pub fn command(self) -> &'static str {
        match self {
            HostTool::Perf => "perf",
            HostTool::Setpriv => "setpriv",
        }
    }

    /// The Debian package that provides it.
    pub fn package(self) -> &'static str {
        match self {
            HostTool::Perf => "linux-perf",
            HostTool::Setpriv => "util-linux",
        }
    }
}

/// `program` run as root: directly when xtask is root, else through sudo.
pub fn privileged(program: &str) -> Command {
    if crate::run::is_root() {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(program);
        sudo
    }
}

/// How apt runs here, for the message before an install.
pub fn how() -> &'static str {
    if crate::run::is_root() {
        "as root"
    } else {
        "through sudo"
    }
}

/// True when this host has apt (Debian and derivatives).
pub fn has_apt() -> bool {
    find_in_path("apt-get").is_some()
}

/// Installs the packages of the `tools` that are not on `PATH`.
pub fn ensure(tools: &[HostTool]) -> Result<()> {
    let missing: Vec<HostTool> = tools
        .iter()
        .copied()
        .filter(|t| find_in_path(t.command()).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = missing
        .iter()
        .map(|t| format!("{} (for {})", t.package(), t.command()))
        .collect();
    let packages: Vec<&str> = missing.iter().map(|t| t.package()).collect();
    install(&listed, &packages)
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
            "xtask setup: no apt-get on this host; install {} yourself (Debian names). \
             Going on: only the steps that run them will fail",
            listed.join(", ")
        );
        return Ok(());
    }
    eprintln!(
        "xtask setup: installing Debian packages {} with apt-get, {}",
        listed.join(", "),
        how()
    );
    let mut update = privileged("apt-get");
    update.args(["-q", "update"]);
    super::status(update)?;
    let mut install = privileged("apt-get");
    install.args(["-q", "-y", "--no-install-recommends", "install"]);
    install.args(packages);
    super::status(install)
}
