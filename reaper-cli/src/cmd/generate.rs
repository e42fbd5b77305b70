//! `reaper generate` (hidden): writes the man pages and the shell
//! completions of the real command line into a directory. `cargo xtask
//! dist` runs it to fill the release tarballs, since xtask cannot link
//! reaper-cli (aya, and a build script that builds eBPF).
//!
//! Each page is clap_mangen's NAME, DESCRIPTION, OPTIONS and SUBCOMMANDS
//! sections with reaper's own SYNOPSIS (every option with its value, the
//! required ones unbracketed; gate's two forms), NOTES (the command's help
//! text beyond its flags), and EXIT STATUS, ENVIRONMENT, EXAMPLES and SEE
//! ALSO from [`super::help`], the tables `--help` prints too. Completions
//! are generated from the command without its hidden subcommands
//! (`generate`, `__victim`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::ValueEnum as _;
use clap_complete::Shell;
use clap_mangen::{
    Man,
    roff::{Roff, bold, italic, roman},
};

use super::help;

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

/// Runs `reaper generate`; `full` is reaper's whole command line (the
/// dispatcher hands it in, so this module does not depend on it).
pub fn run(args: &GenerateArgs, full: clap::Command) -> Result<i32> {
    match &args.what {
        What::Man { dir } => man_pages(dir, full)?,
        What::Completions { dir } => completions(dir, full)?,
    }
    Ok(0)
}

/// The command line users see: built (global flags propagated), without
/// the hidden subcommands.
fn visible_command(full: clap::Command) -> clap::Command {
    let mut full = full.disable_help_subcommand(true);
    full.build();
    let mut visible = clap::Command::new("reaper")
        .bin_name("reaper")
        .disable_help_subcommand(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .subcommand_required(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if full.get_version().is_some() {
        visible = visible.version(env!("CARGO_PKG_VERSION"));
    }
    if let Some(about) = full.get_about() {
        visible = visible.about(about.clone());
    }
    if let Some(after) = full.get_after_help() {
        visible = visible.after_help(after.clone());
    }
    visible.build();
    visible
}

/// Writes reaper.1 and one reaper-SUBCOMMAND.1 per visible subcommand.
fn man_pages(dir: &Path, full: clap::Command) -> Result<()> {
    let out = OutputDir::create(dir)?;
    let root = visible_command(full);
    let mut pages = vec![(String::new(), root.clone())];
    pages.extend(
        root.get_subcommands()
            .map(|s| (s.get_name().to_owned(), s.clone())),
    );
    for (name, cmd) in pages {
        let file = if name.is_empty() {
            "reaper.1".to_owned()
        } else {
            format!("reaper-{name}.1")
        };
        let mut page = Vec::new();
        render_page(&name, cmd, &mut page).with_context(|| format!("rendering {file}"))?;
        out.write(&file, &page)
            .with_context(|| format!("writing {file} into {}", dir.display()))?;
    }
    Ok(())
}

/// One page: clap_mangen's sections where they are right, reaper's where
/// they are not.
fn render_page(name: &str, cmd: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let man = Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    let mut roff = Roff::default();
    synopsis(&mut roff, &cmd);
    roff.to_writer(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(out)?;
    }
    let mut roff = Roff::default();
    notes(&mut roff, &cmd);
    exit_status(&mut roff, name);
    environment(&mut roff);
    examples(&mut roff, name);
    see_also(&mut roff, name);
    roff.to_writer(out)?;
    if cmd.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// SYNOPSIS: clap's overridden usage (gate's two forms), else every
/// visible option with its value name, bracketed unless required, then the
/// positionals and the subcommand.
fn synopsis(roff: &mut Roff, cmd: &clap::Command) {
    roff.control("SH", ["SYNOPSIS"]);
    if let Some(usage) = cmd.get_overridden_usage() {
        for (i, line) in usage.to_string().lines().enumerate() {
            if i > 0 {
                roff.control("br", []);
            }
            roff.text([roman(line.trim())]);
        }
        return;
    }
    let name = cmd
        .get_bin_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let mut line = vec![bold(name), roman(" ")];
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .filter(|a| a.get_long() != Some("help") && a.get_long() != Some("version"))
    {
        let required = arg.is_required_set();
        if !required {
            line.push(roman("["));
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => continue,
        };
        line.push(bold(flag));
        if arg.get_action().takes_values() {
            let value = arg
                .get_value_names()
                .and_then(|v| v.first())
                .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
            line.push(roman(" "));
            line.push(italic(value));
        }
        if !required {
            line.push(roman("]"));
        }
        line.push(roman(" "));
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
        line.push(italic(value));
        line.push(roman(" "));
    }
    if cmd.has_subcommands() {
        line.push(italic("SUBCOMMAND"));
    }
    roff.text(line);
}

/// NOTES: the command's help text beyond its flags, without the exit
/// statuses (EXIT STATUS has them).
fn notes(roff: &mut Roff, cmd: &clap::Command) {
    let Some(after) = cmd.get_after_help().map(ToString::to_string) else {
        return;
    };
    let notes = after
        .split(help::EXIT_HEADING)
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    if notes.is_empty() {
        return;
    }
    roff.control("SH", ["NOTES"]);
    for paragraph in notes.split("\n\n") {
        roff.text([roman(paragraph.replace('\n', " "))]);
        roff.control("PP", []);
    }
}

fn exit_status(roff: &mut Roff, name: &str) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in help::exit_statuses(name) {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*meaning)]);
    }
}

fn environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    for (var, what) in help::ENVIRONMENT {
        roff.control("TP", []);
        roff.text([bold(*var)]);
        roff.text([roman(*what)]);
    }
}

fn examples(roff: &mut Roff, name: &str) {
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in help::examples(name) {
        roff.control("TP", []);
        roff.text([bold(*command)]);
        roff.text([roman(*what)]);
    }
}

fn see_also(roff: &mut Roff, name: &str) {
    roff.control("SH", ["SEE ALSO"]);
    let pages = help::see_also(name);
    let mut line = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        match page.split_once('(') {
            Some((name, section)) => {
                line.push(bold(name.to_owned()));
                line.push(roman(format!("({section}")));
            }
            None => line.push(roman(page.clone())),
        }
    }
    roff.text(line);
}

fn completions(dir: &Path, full: clap::Command) -> Result<()> {
    let out = OutputDir::create(dir)?;
    let mut command = visible_command(full);
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

    fn pages() -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        man_pages(
            dir.path(),
            <crate::cli::Cli as clap::CommandFactory>::command(),
        )
        .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        (dir, names)
    }

    /// The pages come from the real command line: one per visible subcommand,
    /// none for the hidden ones.
    #[test]
    fn man_pages_cover_visible_subcommands_only() {
        let (dir, names) = pages();
        assert_eq!(
            names,
            [
                "reaper-diff.1",
                "reaper-doctor.1",
                "reaper-gate.1",
                "reaper-record.1",
                "reaper-report.1",
                "reaper.1"
            ]
        );
        let record = std::fs::read_to_string(dir.path().join("reaper-record.1")).unwrap();
        assert!(record.contains("victim"), "the record page lists its flags");
    }

    /// Every page has the sections a man page reader expects, a NAME line
    /// that does not repeat the program's name, and required options with
    /// their values.
    #[test]
    fn man_pages_have_exit_status_environment_examples_and_see_also() {
        let (dir, names) = pages();
        for name in &names {
            let page = std::fs::read_to_string(dir.path().join(name)).unwrap();
            for section in [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH OPTIONS",
                ".SH \"EXIT STATUS\"",
                ".SH ENVIRONMENT",
                ".SH EXAMPLES",
                ".SH \"SEE ALSO\"",
            ] {
                assert!(page.contains(section), "{name} lacks {section}");
            }
            for var in [
                "GITHUB_STEP_SUMMARY",
                "GITHUB_ACTIONS",
                "RUST_LOG",
                "REAPER_RUNS_DIR",
            ] {
                assert!(page.contains(var), "{name} lacks {var}");
            }
            assert!(
                !page.contains("reaper \\- reaper:"),
                "{name}: NAME repeats reaper"
            );
        }
        let gate = std::fs::read_to_string(dir.path().join("reaper-gate.1")).unwrap();
        assert!(
            gate.contains("\\-\\-baseline <PATH>"),
            "gate's synopsis names values"
        );
        assert!(gate.contains("regressed"), "gate's own exit statuses");
        let record = std::fs::read_to_string(dir.path().join("reaper-record.1")).unwrap();
        assert!(
            record.contains("\\fI\\-\\-victim\\fR")
                || record.contains("\\fB\\-\\-victim\\fR \\fISPEC\\fR"),
            "{record}"
        );
        assert!(record.contains("130"), "record's interrupt status");
    }

    #[test]
    fn completions_for_every_shell_without_hidden_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        completions(
            dir.path(),
            <crate::cli::Cli as clap::CommandFactory>::command(),
        )
        .unwrap();
        let bash = std::fs::read_to_string(dir.path().join("reaper.bash")).unwrap();
        assert!(bash.contains("record"), "bash completes subcommands");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            Shell::value_variants().len()
        );
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let script = std::fs::read_to_string(&path).unwrap();
            assert!(
                !script.contains("__victim") && !script.contains("generate"),
                "{} offers a hidden subcommand",
                path.display()
            );
            assert!(script.contains("quiet"), "{}: global -q", path.display());
        }
    }
}
