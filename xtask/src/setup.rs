//! `cargo xtask setup`: installs everything reaper needs on a fresh machine.
//! Idempotent and quick when all is present: each step checks first.
//!
//! - the nightly toolchain's rust-src (eBPF is built with -Z build-std=core);
//! - the musl targets of the stable toolchain (static binaries for the VMs);
//! - bpf-linker 0.10.3 (0.11+ needs a system LLVM 23 that is not packaged);
//! - qemu and busybox-static from the machine's own apt mirrors;
//! - linux-perf, the reference profiler the benchmarks compare against.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::setup_qemu;

/// bpf-linker release that links with rustc's own LLVM 22.
const BPF_LINKER_VERSION: &str = "0.10.3";
/// Static userspace targets for the VM guests.
const MUSL_TARGETS: &[&str] = &["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];

/// Runs every setup step.
pub fn run() -> Result<()> {
    ensure_nightly_rust_src()?;
    ensure_musl_targets()?;
    ensure_bpf_linker()?;
    setup_qemu::ensure_qemu()?;
    ensure_apt_packages(&[("perf", "linux-perf"), ("setpriv", "util-linux")])?;
    eprintln!("xtask setup: everything is installed");
    Ok(())
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn status(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("xtask setup: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn ensure_nightly_rust_src() -> Result<()> {
    if output("rustup", &["run", "nightly", "rustc", "--version"]).is_none() {
        status(
            "rustup",
            &[
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ],
        )?;
    }
    let installed = output(
        "rustup",
        &["component", "list", "--installed", "--toolchain", "nightly"],
    )
    .unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        status(
            "rustup",
            &["component", "add", "rust-src", "--toolchain", "nightly"],
        )?;
    }
    Ok(())
}

fn ensure_musl_targets() -> Result<()> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    let missing: Vec<&str> = MUSL_TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        let mut args = vec!["target", "add"];
        args.extend(&missing);
        status("rustup", &args)?;
    }
    Ok(())
}

fn ensure_bpf_linker() -> Result<()> {
    let version = output("bpf-linker", &["--version"]).unwrap_or_default();
    if !version.contains(BPF_LINKER_VERSION) {
        status(
            "cargo",
            &[
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
            ],
        )?;
    }
    Ok(())
}

/// Installs (command, package) pairs whose command is missing.
fn ensure_apt_packages(pairs: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = pairs
        .iter()
        .filter(|(cmd, _)| setup_qemu::find_in_path(cmd).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    status("apt-get", &["update"])?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&missing);
    status("apt-get", &args)
}
