//! The `reaper-lab` binary: parse the command line, run, map the result to
//! an exit status.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    reaper_lab::cli::main(reaper_lab::cli::Cli::parse())
}
