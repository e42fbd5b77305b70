//! `cargo xtask`: reaper's developer tasks.
//!
//! `main` only turns [`run`]'s result into an exit code; each subcommand lives
//! in its own module and owns its clap arguments.

mod apt;
mod bench;
mod gate_check;
mod run;
mod setup;
mod setup_qemu;
mod test;
mod vm;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "reaper's developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install everything reaper needs (rust-src, musl targets, bpf-linker, qemu, perf).
    Setup,
    /// Set up, build reaper (release) and run it as root: `cargo xtask run -- record --victim 1G -o out/`.
    Run(run::RunArgs),
    /// Benchmark reaper against perf: overhead, time to answer, start-up, capacity, accuracy.
    Bench(bench::BenchArgs),
    /// Measure reaper gate's false-alarm and detection rates on this machine (A/A and regression run sets).
    GateCheck(gate_check::GateCheckArgs),
    /// Set up and run every test: unit, root integration on the host, and the VM kernel matrix.
    Test(test::TestArgs),
    /// Boot a Debian (or your own) kernel in qemu and run COMMAND in it.
    Vm(vm::VmArgs),
    /// Run reaper's checks in every kernel/arch cell of the VM matrix.
    VmTest(vm::matrix::VmTestArgs),
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
    match Cli::parse().command {
        Command::Setup => setup::run().map(|()| ExitCode::SUCCESS),
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::GateCheck(args) => gate_check::run(args),
        Command::Vm(args) => vm::run_vm(args),
        Command::VmTest(args) => vm::matrix::run_vm_test(args),
    }
}
