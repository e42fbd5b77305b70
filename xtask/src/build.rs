//! Building the workspace's shipped binaries as static musl executables for
//! one architecture: `reaper` (the VM guests run it; the tarballs ship it)
//! and `reaper-lab` (shipped beside it).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use reaper_lab::vm::arch::Arch;

use crate::workspace::{target_dir, workspace_root};

/// A binary the release tarball ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shipped {
    /// `reaper`, of package reaper-cli.
    Reaper,
    /// `reaper-lab`, of package reaper-lab.
    ReaperLab,
}

impl Shipped {
    /// The cargo package it is built from.
    pub fn package(self) -> &'static str {
        match self {
            Shipped::Reaper => "reaper-cli",
            Shipped::ReaperLab => "reaper-lab",
        }
    }

    /// The binary's name (in the tarball too).
    pub fn bin(self) -> &'static str {
        match self {
            Shipped::Reaper => "reaper",
            Shipped::ReaperLab => "reaper-lab",
        }
    }
}

/// Builds `binary` for `arch` (release, static musl) and returns its path.
pub fn musl_binary(binary: Shipped, arch: Arch) -> Result<PathBuf> {
    let target = arch.rust_target();
    let name = binary.bin();
    eprintln!("xtask: building {name} for {target}");
    let started = std::time::Instant::now();
    let status = crate::setup::cargo()
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            binary.package(),
            "--bin",
            name,
            "--target",
            target,
        ])
        .status()
        .with_context(|| format!("starting cargo to build {name}"))?;
    if !status.success() {
        bail!(
            "building {name} for {target} failed ({status}); fix the build above, check \
             `rustup target add {target}`, or pass --no-reaper to boot without it"
        );
    }
    let path = target_dir().join(target).join("release").join(name);
    if !path.is_file() {
        bail!(
            "cargo built {name} for {target} but {} is missing",
            path.display()
        );
    }
    eprintln!(
        "xtask: {name} for {target} ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}
