//! The command line: clap definitions and dispatch. Raw flags are parsed and
//! validated here, then handed to the commands as validated settings.

use clap::{Parser, Subcommand};

use crate::{
    cmd,
    exit::{self, UsageError},
};

/// Profile Linux memory teardown (exit_mmap racing the OOM reaper and
/// process_mrelease) with eBPF.
#[derive(Debug, Parser)]
#[command(
    name = "reaper",
    version,
    long_about = None,
    after_help = crate::cmd::help::exit_block("")
)]
pub struct Cli {
    /// Subcommand.
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress or informational lines on stderr (warnings and errors
    /// still print).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// reaper's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report what this kernel lets reaper measure (loads and attaches test programs).
    Doctor(cmd::doctor::DoctorArgs),
    /// Profile a teardown: kill a victim and race it with process_mrelease, wait for a process's own exit, or watch every teardown.
    Record(cmd::record::RecordArgs),
    /// Re-render the tables and flamegraphs of a recorded run.json (no root needed).
    Report(cmd::report::ReportArgs),
    /// Compare two runs or run sets: summary table, per-function tables, differential flamegraphs.
    Diff(cmd::diff::DiffArgs),
    /// CI regression gate: exit 1 when a candidate run set is significantly slower than a baseline.
    Gate(cmd::gate::GateArgs),
    /// Internal: man pages and shell completions for `cargo xtask dist`.
    #[command(hide = true)]
    Generate(cmd::generate::GenerateArgs),
    /// Internal: the synthetic victim process.
    #[command(name = "__victim", hide = true)]
    Victim {
        /// Bytes of anonymous memory.
        bytes: u64,
        /// VMAs.
        vmas: u32,
        /// Threads.
        threads: u32,
        /// cgroup.procs files to join first.
        #[arg(long)]
        join: Vec<std::path::PathBuf>,
        /// oom_score_adj to set.
        #[arg(long, allow_hyphen_values = true)]
        oom_score_adj: Option<i32>,
        /// Wait for "go" on stdin before populating.
        #[arg(long)]
        wait_go: bool,
        /// comm of the process.
        #[arg(long)]
        comm: Option<String>,
        /// UID:GID to run as after joining the cgroups (needs root).
        #[arg(long, value_parser = crate::scenario::identity::parse)]
        run_as: Option<crate::output::owner::Owner>,
        /// Once populated, exit by itself at the first line on stdin (the
        /// line is the exit code).
        #[arg(long)]
        exit_on_stdin: bool,
    },
}

/// Parses the command line, exiting as clap does on an error (2) or on
/// `--help`/`--version` (0). A refused `reaper gate` command line still
/// writes the gate's outputs first (`cmd::gate::refuse_unparsed`), so a CI
/// job's summary says why.
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let is_error = err.exit_code() != 0;
            if is_error && args.get(1).is_some_and(|a| a == "gate") {
                let rendered = err.render().to_string();
                let first = rendered.lines().next().unwrap_or_default();
                let reason = first.strip_prefix("error: ").unwrap_or(first);
                cmd::gate::refuse_unparsed(&args, &anyhow::anyhow!("{reason}"));
            }
            err.exit()
        }
    }
}

/// Runs the command and turns the outcome into an exit status, printing
/// the error, if any, to stderr.
pub fn main(cli: Cli) -> i32 {
    let is_gate = matches!(cli.command, Command::Gate(_));
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            crate::console::note!("reaper: {err:#}");
            if is_gate {
                exit::USAGE
            } else {
                exit_code(&err)
            }
        }
    }
}

/// The exit status of an error, from its types (never its text).
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let usage = err.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<crate::report::LoadError>()
            || e.is::<crate::compare::load::SetError>()
            || e.is::<crate::compare::CompareError>()
            || e.is::<crate::system::privileges::MissingPrivileges>()
            || e.downcast_ref::<crate::output::OutputError>()
                .is_some_and(crate::output::OutputError::is_usage)
    });
    if usage { exit::USAGE } else { exit::FAILURE }
}

/// Runs the parsed command; the exit code comes from the result.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    crate::console::set_quiet(cli.quiet);
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format(|buf, record| {
            // Log lines name files and tasks too: through the same guard
            // as every other line reaper prints.
            use std::io::Write as _;
            let line = format!(
                "[{:<5} {}] {}\n",
                record.level(),
                record.target(),
                record.args()
            );
            buf.write_all(crate::sanitize::guard_lines(&line).as_bytes())
        })
        .init();
    match cli.command {
        Command::Doctor(args) => cmd::doctor::run(&args),
        Command::Record(args) => cmd::record::run(&args, cli.verbose, cli.quiet),
        Command::Report(args) => cmd::report::run(&args).map(|()| 0),
        Command::Diff(a) => cmd::diff::run(&a),
        Command::Gate(a) => cmd::gate::run(&a),
        Command::Generate(a) => cmd::generate::run(&a, <Cli as clap::CommandFactory>::command()),
        Command::Victim {
            bytes,
            vmas,
            threads,
            join,
            oom_score_adj,
            wait_go,
            comm,
            run_as,
            exit_on_stdin,
        } => {
            let options = crate::scenario::victim::SpawnOptions {
                join,
                oom_score_adj,
                wait_go,
                comm,
                exit_on_stdin,
            };
            crate::scenario::victim::run_child(bytes, vmas, threads, &options, run_as)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn exit_codes_come_from_error_types() {
        let usage = anyhow::Error::from(UsageError(anyhow::anyhow!("--runs must be ...")));
        assert_eq!(exit_code(&usage), exit::USAGE);
        let not_a_run = Err::<(), _>(crate::report::LoadError::Missing { path: "x".into() })
            .context("loading")
            .unwrap_err();
        assert_eq!(exit_code(&not_a_run), exit::USAGE);
        let io = anyhow::Error::from(std::io::Error::other("disk full")).context("writing");
        assert_eq!(exit_code(&io), exit::FAILURE);
    }
}
