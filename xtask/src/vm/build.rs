//! Building the binaries that go into the guest: reaper as a static musl
//! binary for the guest's architecture. The arm64 guest runs the binary
//! unpacked from the `cargo xtask dist` tarball, so what is shipped is what
//! is tested; `REAPER_VM_REAPER=tree|dist` overrides that for any arch.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::arch::Arch;
use super::cache::{target_dir, workspace_root};

/// Chooses the guest binary's source (`tree` or `dist`).
const SOURCE_ENV: &str = "REAPER_VM_REAPER";

/// Where the guest's reaper comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The in-tree musl build.
    Tree,
    /// Unpacked from the release tarball.
    Dist,
}

impl Source {
    fn for_arch(arch: Arch) -> Result<Source> {
        match std::env::var(SOURCE_ENV).ok().as_deref() {
            Some("tree") => Ok(Source::Tree),
            Some("dist") => Ok(Source::Dist),
            Some(other) => bail!("{SOURCE_ENV}={other:?}: expected tree or dist"),
            None if arch == Arch::Arm64 => Ok(Source::Dist),
            None => Ok(Source::Tree),
        }
    }
}

/// The `reaper` the guest runs for `arch` (see the module doc).
pub fn reaper_binary(arch: Arch) -> Result<PathBuf> {
    match Source::for_arch(arch)? {
        Source::Tree => musl_binary(arch),
        Source::Dist => crate::dist::unpacked_binary(arch),
    }
}

/// Builds `reaper` (package reaper-cli) for `arch` and returns its path.
pub fn musl_binary(arch: Arch) -> Result<PathBuf> {
    let target = arch.rust_target();
    eprintln!("xtask: building reaper for {target}");
    let started = std::time::Instant::now();
    let status = crate::setup::cargo()
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            "reaper-cli",
            "--bin",
            "reaper",
            "--target",
            target,
        ])
        .status()
        .context("starting cargo to build reaper")?;
    if !status.success() {
        bail!(
            "building reaper for {target} failed ({status}); fix the build above, check \
             `rustup target add {target}`, or pass --no-reaper to boot without it"
        );
    }
    let binary = target_dir().join(target).join("release").join("reaper");
    if !binary.is_file() {
        bail!(
            "cargo built reaper for {target} but {} is missing",
            binary.display()
        );
    }
    eprintln!(
        "xtask: reaper for {target} ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(binary)
}
