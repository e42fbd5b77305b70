//! Building the binaries that go into the guest: reaper as a static musl
//! binary for the guest's architecture.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::arch::Arch;
use super::cache::{target_dir, workspace_root};

/// Builds `reaper` (package reaper-cli) for `arch` and returns its path.
pub fn reaper_binary(arch: Arch) -> Result<PathBuf> {
    let target = arch.rust_target();
    eprintln!("xtask: building reaper for {target}");
    let started = std::time::Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
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
