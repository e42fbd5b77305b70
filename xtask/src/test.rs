//! `cargo xtask test`: everything CI checks, in order: set up, unit tests,
//! root integration tests on the host kernel, then the VM kernel matrix.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Parser as _;

/// Arguments of `cargo xtask test`.
#[derive(clap::Args)]
pub struct TestArgs {
    /// Skip installing what the tests need (`cargo xtask setup` did).
    #[arg(long)]
    pub no_setup: bool,
    /// Skip the VM kernel matrix (unit and host tests only).
    #[arg(long)]
    pub no_vm: bool,
}

fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("xtask test: cargo {}", args.join(" "));
    let status = crate::setup::cargo()
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}

/// Runs the whole suite.
pub fn run(args: TestArgs) -> Result<ExitCode> {
    if !args.no_setup {
        crate::setup::ensure(crate::setup::Task::Test { vm: !args.no_vm })?;
    }
    // Unit tests and the host integration tests (they run for real as root
    // and print why they skip otherwise). One test thread: the host tests
    // kill processes and attach probes, and must not race each other.
    cargo(&[
        "test",
        "--workspace",
        "--exclude",
        "reaper-ebpf",
        "--",
        "--test-threads=1",
    ])?;
    if !crate::run::is_root() {
        eprintln!(
            "xtask test: not root: the host integration tests above were skipped; run as root (sudo -E cargo xtask test) to run them"
        );
    }
    // The example workflow's steps (build, alternating recordings, gate):
    // it must keep working as written (says why and skips without root).
    crate::workflow_check::run()?;
    if args.no_vm {
        eprintln!("xtask test: --no-vm: skipping the VM kernel matrix");
        return Ok(ExitCode::SUCCESS);
    }
    crate::vm::matrix::run_vm_test(DefaultVmTest::parse_from(["vm-test"]).args)
}

/// The matrix with its default arguments.
#[derive(clap::Parser)]
struct DefaultVmTest {
    #[command(flatten)]
    args: crate::vm::matrix::VmTestArgs,
}
