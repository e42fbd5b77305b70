//! Host programs that come from Debian packages (perf, setpriv): installed
//! through apt, with sudo when xtask is not root, after saying which. On a
//! host without apt the packages are named and skipped.

use anyhow::Result;

use reaper_lab::host::{find_in_path, install};

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
