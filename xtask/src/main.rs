//! `cargo xtask`: reaper's developer tasks.
//!
//! `main` only turns [`run`]'s result into an exit code; each subcommand lives
//! in its own module and owns its clap arguments. `vm`, `kernel` and `ab`
//! are reaper-lab's commands (its library), with the guest's reaper built
//! from this tree and the cache and outputs kept in `target/`.

mod bench;
mod build;
mod dist;
mod gate_check;
mod house;
mod reaper_json;
mod run;
mod setup;
mod test;
mod vm;
mod workflow_check;
mod workspace;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
// The harness's qemu install, at the path the VM matrix calls it by.
use reaper_lab::setup_qemu;
use setup::Task;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "reaper's developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what every command needs (rust-src, bpf-linker, musl targets, qemu, busybox, perf); each command also installs its own needs.
    Setup,
    /// Set up, build reaper (release) and run it as root: `cargo xtask run -- record --victim 1G -o out/`.
    Run(run::RunArgs),
    /// Benchmark reaper against perf: overhead, time to answer, start-up, capacity, accuracy.
    Bench(bench::BenchArgs),
    /// Measure reaper gate's false-alarm and detection rates on this machine (A/A and regression run sets).
    GateCheck(gate_check::GateCheckArgs),
    /// Set up and run every test: unit, root integration on the host, and the VM kernel matrix.
    Test(test::TestArgs),
    /// `reaper-lab vm` with reaper built from this tree: boot a Debian (or your own) kernel in qemu and run COMMAND in it.
    Vm(reaper_lab::vm::VmArgs),
    /// Run reaper's checks in every kernel/arch cell of the VM matrix.
    VmTest(vm::matrix::VmTestArgs),
    /// Release tarballs: static musl reaper for x86_64 and aarch64, man pages, completions, licences.
    Dist(dist::DistArgs),
    /// `reaper-lab kernel`: build a kernel from source (Debian linux-source or --src) with reaper's config and patches.
    Kernel(reaper_lab::kernel::KernelArgs),
    /// `reaper-lab ab` with reaper built from this tree: A/B two kernels, build, boot, record, diff, gate.
    Ab(Box<reaper_lab::ab::AbArgs>),
    /// Run the example GitHub Actions workflow's steps on this host (root) and check what they leave.
    WorkflowCheck,
    /// Measure what the house keeps small: long files and functions, Result<_, String>, vocabulary literals, import cycles.
    House {
        /// Another checkout to measure (e.g. main, for a before/after).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    reaper_lab::paths::set_layout(workspace::lab_layout());
    match Cli::parse().command {
        Command::Setup => setup::ensure(Task::Setup).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Vm(args) => {
            setup::ensure(Task::Vm)?;
            lab(reaper_lab::cli::Command::Vm(args))
        }
        Command::VmTest(args) => {
            setup::ensure(Task::Vm)?;
            vm::matrix::run_vm_test(args)
        }
        Command::Dist(args) => dist::run(args),
        Command::Kernel(args) => lab(reaper_lab::cli::Command::Kernel(args)),
        Command::Ab(args) => {
            setup::ensure(Task::Vm)?;
            lab(reaper_lab::cli::Command::Ab(args))
        }
        Command::GateCheck(args) => {
            setup::ensure(Task::Run)?;
            gate_check::run(args)
        }
        Command::House { root } => house::run(root),
        Command::WorkflowCheck => {
            setup::ensure(Task::Run)?;
            workflow_check::run()
        }
    }
}

/// A reaper-lab command, its guests running reaper built from this tree.
fn lab(command: reaper_lab::cli::Command) -> Result<ExitCode> {
    reaper_lab::cli::run(command, &vm::build::TreeBuild)
}
