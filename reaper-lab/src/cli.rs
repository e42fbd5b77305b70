//! reaper-lab's command line: one subcommand per job, each owning its clap
//! arguments in its module; [`main`] runs one and turns the result into an
//! exit status (2 for a refused request, as for clap's own usage errors).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Refused;
use crate::reapers::{Beside, ReaperSource};
use crate::{ab, kernel, vm};

/// reaper-lab: the kernel A/B lab around reaper.
#[derive(Debug, Parser)]
#[command(
    name = "reaper-lab",
    version,
    about = "Build, boot and A/B Linux kernels in qemu with reaper recording memory teardown",
    long_about = "Build, boot and A/B Linux kernels in qemu with reaper recording memory \
teardown. Needs qemu (installed with apt when missing) and, to build kernels, the kernel's \
build dependencies (named, and installed with apt where it can); the guest's reaper is the \
one beside reaper-lab unless --reaper or --guest-reaper names another."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// reaper-lab's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a Debian kernel (or your own image) in qemu with reaper in its initramfs, run COMMAND, copy /out back.
    Vm(vm::VmArgs),
    /// Build a kernel from source (Debian linux-source or your tree) with reaper's config fragments.
    Kernel(kernel::KernelArgs),
    /// A/B two kernels: build (or take) A and B, boot each in alternating batches running the same reaper record, compare and gate.
    Ab(Box<ab::AbArgs>),
}

/// Runs `command` with reaper binaries from `source` when no flag names
/// them; the `reaper-lab` binary passes [`Beside`], `cargo xtask` its build.
pub fn run(command: Command, source: &dyn ReaperSource) -> anyhow::Result<ExitCode> {
    match command {
        Command::Vm(args) => vm::run_vm(args, source),
        Command::Kernel(args) => kernel::run(args),
        Command::Ab(args) => ab::run(*args, source),
    }
}

/// The binary's entry: runs the command, prints an error and maps it to
/// the exit status.
pub fn main(cli: Cli) -> ExitCode {
    match run(cli.command, &Beside) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// Prints `err` and returns its exit status: 2 for [`Refused`], 1 else.
pub fn report(err: &anyhow::Error) -> ExitCode {
    eprintln!("reaper-lab: error: {err:#}");
    if err.downcast_ref::<Refused>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn refusals_exit_2_and_failures_1() {
        let refused = anyhow::Error::new(Refused("no".into())).context("ab");
        assert_eq!(report(&refused), ExitCode::from(2));
        assert_eq!(report(&anyhow::anyhow!("boom")), ExitCode::FAILURE);
    }
}
