//! `reaper generate` (hidden): writes the man pages (clap_mangen) and the
//! shell completions (clap_complete) of the real command line into a
//! directory. `cargo xtask dist` runs it to fill the release tarballs, since
//! xtask cannot link reaper-cli (aya, and a build script that builds eBPF).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, ValueEnum as _};
use clap_complete::Shell;

use crate::output::OutputDir;

/// `reaper generate` arguments.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

/// What to generate.
#[derive(Debug, clap::Subcommand)]
enum What {
    /// Man pages: reaper.1 and one reaper-SUBCOMMAND.1 per visible subcommand.
    Man {
        /// Directory to write the pages into (created if missing).
        dir: PathBuf,
    },
    /// Completion scripts for every shell clap_complete knows.
    Completions {
        /// Directory to write the scripts into (created if missing).
        dir: PathBuf,
    },
}

/// Runs `reaper generate`.
pub fn run(args: &GenerateArgs) -> Result<i32> {
    match &args.what {
        What::Man { dir } => man_pages(dir)?,
        What::Completions { dir } => completions(dir)?,
    }
    Ok(0)
}

/// Writes every visible command's page (clap_mangen's own recursion, as
/// in its `generate_to`, but through [`OutputDir`]); hidden ones
/// (`__victim`, this one) are left out.
fn man_pages(dir: &Path) -> Result<()> {
    fn pages(cmd: clap::Command, out: &OutputDir) -> Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            pages(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut page = Vec::new();
        man.render(&mut page)
            .with_context(|| format!("rendering {}", man.get_filename()))?;
        out.write(&man.get_filename(), &page)?;
        Ok(())
    }
    let out = OutputDir::create(dir)?;
    let mut command = crate::cli::Cli::command().disable_help_subcommand(true);
    command.build();
    pages(command, &out).with_context(|| format!("writing man pages into {}", dir.display()))
}

fn completions(dir: &Path) -> Result<()> {
    let out = OutputDir::create(dir)?;
    let mut command = crate::cli::Cli::command();
    for shell in Shell::value_variants() {
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut command, "reaper", &mut script);
        out.write(
            &clap_complete::Generator::file_name(shell, "reaper"),
            &script,
        )
        .with_context(|| {
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

    /// The pages come from the real command line: one per visible subcommand,
    /// none for the hidden ones.
    #[test]
    fn man_pages_cover_visible_subcommands_only() {
        let dir = tempfile::tempdir().unwrap();
        man_pages(dir.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.contains(&"reaper.1".to_string()), "{names:?}");
        assert!(names.contains(&"reaper-record.1".to_string()), "{names:?}");
        assert!(
            !names
                .iter()
                .any(|n| n.contains("victim") || n.contains("generate")),
            "{names:?}"
        );
        let record = std::fs::read_to_string(dir.path().join("reaper-record.1")).unwrap();
        assert!(record.contains("victim"), "the record page lists its flags");
    }

    #[test]
    fn completions_for_every_shell() {
        let dir = tempfile::tempdir().unwrap();
        completions(dir.path()).unwrap();
        let bash = std::fs::read_to_string(dir.path().join("reaper.bash")).unwrap();
        assert!(bash.contains("record"), "bash completes subcommands");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            Shell::value_variants().len()
        );
    }
}
