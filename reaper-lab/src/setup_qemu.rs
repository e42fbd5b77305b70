//! Installs qemu (x86_64 and aarch64 system emulators) and a static busybox
//! on the host when they are missing.
//!
//! On Debian 12 the preinstalled `qemu-utils` may come from bookworm-backports,
//! which conflicts with bookworm's own `qemu-system-*`, so the emulators are
//! installed from `<codename>-backports` through a private apt root whose
//! sources are the host's own plus the backports suite on the host's mirror.

use anyhow::{Context, Result};

use crate::apt::{AptRoot, RootSpec, sources};
use crate::host::find_in_path;

/// The emulators the VM harness runs.
pub const QEMU_BINARIES: [&str; 2] = ["qemu-system-x86_64", "qemu-system-aarch64"];
/// Debian packages that provide them (plus the host's static busybox).
pub const PACKAGES: [&str; 3] = ["qemu-system-x86", "qemu-system-arm", "busybox-static"];

/// Makes sure `qemu-system-x86_64` and `qemu-system-aarch64` are on `PATH`,
/// installing them from the host's `<codename>-backports` suite when either is
/// missing. Does nothing (and needs no network) when both are present.
pub fn ensure_qemu() -> Result<()> {
    ensure_qemu_or_explain(false)
}

/// [`ensure_qemu`]; on a host without apt, names the packages to install and
/// fails, or with `keep_going` (`cargo xtask setup`) only warns.
pub fn ensure_qemu_or_explain(keep_going: bool) -> Result<()> {
    let missing: Vec<&str> = QEMU_BINARIES
        .iter()
        .copied()
        .filter(|b| find_in_path(b).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::host::has_apt() {
        let message = format!(
            "{} missing and this host has no apt-get: install qemu's x86_64 and aarch64 \
             system emulators yourself (Debian: {}), then rerun",
            missing.join(", "),
            PACKAGES.join(" ")
        );
        if keep_going {
            eprintln!("reaper-lab: {message}; going on without the VM harness");
            return Ok(());
        }
        anyhow::bail!(message);
    }
    eprintln!(
        "reaper-lab: {} missing; installing Debian packages {} with apt-get from the backports suite, {}",
        missing.join(", "),
        PACKAGES.join(" "),
        crate::host::how()
    );
    let (root, backports) = backports_root()?;
    root.install(&backports, &PACKAGES, false)
        .with_context(|| {
            format!(
                "installing qemu from {backports}; run as root, or install {} yourself",
                PACKAGES.join(" ")
            )
        })?;
    for binary in QEMU_BINARIES {
        find_in_path(binary).with_context(|| {
            format!(
                "{binary} is still not on PATH after installing {}",
                PACKAGES.join(" ")
            )
        })?;
    }
    Ok(())
}

/// A private apt root with the host's sources plus `<codename>-backports`,
/// with fresh lists; returns it and the backports suite's name.
fn backports_root() -> Result<(AptRoot, String)> {
    let codename = sources::host_codename()?;
    let backports = format!("{codename}-backports");
    let dir = crate::paths::cache_dir()?
        .join("apt")
        .join("host-backports");
    let root = AptRoot::create(
        &dir,
        &RootSpec {
            suites: &[backports.as_str()],
            include_host_sources: true,
        },
    )?;
    root.update()?;
    Ok((root, backports))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs network and a Debian host: `cargo test -p reaper-lab -- --ignored`.
    #[test]
    #[ignore = "runs apt-get update against the host's mirror"]
    fn backports_install_plan_takes_qemu_from_backports() {
        let (root, backports) = backports_root().unwrap();
        let plan = root.install(&backports, &PACKAGES, true).unwrap();
        println!("{plan}");
        assert!(
            plan.contains("qemu-system-x86") || plan.contains("already the newest"),
            "{plan}"
        );
    }
}
