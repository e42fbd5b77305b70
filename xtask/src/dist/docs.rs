//! Man pages and shell completions for a tarball: reaper's written by the
//! hidden `reaper generate` of a reaper binary that runs on this host (they
//! come from reaper's real clap command, which xtask cannot link), and
//! reaper-lab's from its library, which xtask links.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// Where the pages and scripts go inside the tarball.
pub const MAN_DIR: &str = "man/man1";
pub const COMPLETIONS_DIR: &str = "completions";

/// Runs `reaper generate man|completions` into `staging`, and writes
/// reaper-lab's pages and completions beside them.
pub fn generate(host_reaper: &Path, staging: &Path) -> Result<()> {
    reaper_lab::docs::man_pages(&staging.join(MAN_DIR))?;
    reaper_lab::docs::completions(&staging.join(COMPLETIONS_DIR))?;
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
