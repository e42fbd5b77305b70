//! `cargo xtask run -- ARGS...`: install what building reaper needs (nightly
//! rust-src, bpf-linker; nothing else), build reaper in release mode, and run
//! it as root (through sudo when not already root).

use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result};

/// Arguments of `cargo xtask run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Skip installing rust-src and bpf-linker.
    #[arg(long)]
    pub no_setup: bool,
    /// Arguments for `reaper`, e.g. `record --victim 1G -o out/`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Builds `reaper` (release) and returns the binary's path.
pub fn build_reaper() -> Result<std::path::PathBuf> {
    let status = crate::setup::cargo()
        .current_dir(crate::workspace::workspace_root())
        .args([
            "build",
            "--release",
            "--package",
            "reaper-cli",
            "--bin",
            "reaper",
        ])
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(
        status.success(),
        "cargo build --release -p reaper-cli failed"
    );
    Ok(crate::workspace::workspace_root().join("target/release/reaper"))
}

pub use reaper_lab::host::is_root;

/// Runs reaper with `args`, as root.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    if !args.no_setup {
        crate::setup::ensure(crate::setup::Task::Run)?;
    }
    let reaper = build_reaper()?;
    let mut cmd = if is_root() {
        Command::new(&reaper)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(&reaper);
        sudo
    };
    let status = cmd
        .args(&args.args)
        .status()
        .with_context(|| format!("running {}", reaper.display()))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
