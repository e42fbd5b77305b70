//! The `reaper` binary: parse the command line, run, map the result to an
//! exit code.

use clap::Parser as _;

fn main() {
    let cli = reaper::cli::Cli::parse();
    match reaper::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("reaper: {err:#}");
            std::process::exit(2);
        }
    }
}
