//! Man pages and shell completions for a tarball, written by the hidden
//! `reaper generate` of a reaper binary that runs on this host: they come
//! from reaper's real clap command, which xtask cannot link.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// Where the pages and scripts go inside the tarball.
pub const MAN_DIR: &str = "man/man1";
pub const COMPLETIONS_DIR: &str = "completions";

/// Runs `reaper generate man|completions` into `staging`.
pub fn generate(host_reaper: &Path, staging: &Path) -> Result<()> {
    for (what, dir) in [("man", MAN_DIR), ("completions", COMPLETIONS_DIR)] {
        let status = Command::new(host_reaper)
            .args(["generate", what])
            .arg(staging.join(dir))
            .status()
            .with_context(|| format!("running {} generate {what}", host_reaper.display()))?;
        if !status.success() {
            bail!(
                "`{} generate {what}` failed ({status})",
                host_reaper.display()
            );
        }
    }
    Ok(())
}
