//! Man pages (clap_mangen) and shell completions (clap_complete) of
//! reaper-lab's real command line, for the release tarball
//! (`cargo xtask dist` calls these in-process).

use std::path::Path;

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, ValueEnum as _};
use clap_complete::Shell;

use crate::cli::Cli;

/// Writes reaper-lab.1 and one reaper-lab-SUBCOMMAND.1 per subcommand.
pub fn man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))
}

/// Writes a completion script for every shell clap_complete knows.
pub fn completions(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut command = Cli::command();
    for shell in Shell::value_variants() {
        clap_complete::generate_to(*shell, &mut command, "reaper-lab", dir).with_context(|| {
            format!(
                "writing the {shell} completion script into {}",
                dir.display()
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions_cover_the_subcommands() {
        let dir = std::env::temp_dir().join(format!("reaper-lab-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        man_pages(&dir.join("man")).unwrap();
        completions(&dir.join("completions")).unwrap();
        for page in [
            "reaper-lab.1",
            "reaper-lab-ab.1",
            "reaper-lab-vm.1",
            "reaper-lab-kernel.1",
        ] {
            assert!(dir.join("man").join(page).is_file(), "{page}");
        }
        let ab = std::fs::read_to_string(dir.join("man/reaper-lab-ab.1")).unwrap();
        assert!(ab.contains("patch"), "the ab page lists its flags");
        let bash = std::fs::read_to_string(dir.join("completions/reaper-lab.bash")).unwrap();
        assert!(bash.contains("kernel"), "bash completes subcommands");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
