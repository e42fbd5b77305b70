//! The `reaper` binary: parse the command line, run, map the result to an
//! exit code.

fn main() {
    std::process::exit(reaper::cli::main(reaper::cli::parse()));
}
