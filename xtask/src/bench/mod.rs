//! `cargo xtask bench`: reaper's overhead, time to answer, start-up, capacity
//! and accuracy, side by side with `perf`, in one invocation.
//!
//! Every round runs each condition once, in an order rotated by the round
//! number, so machine drift hits all conditions alike. Only ratios between
//! conditions of the same invocation mean much on a noisy machine.

mod collisions;
mod conditions;
mod driver;
mod perf_script;
mod profilers;
mod run_json;
mod sampling_timer;
mod stats;
mod verdict;

use std::path::PathBuf;

pub use conditions::machine_description;

use anyhow::{Context as _, Result, ensure};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Victim size for the overhead, time-to-answer and accuracy episodes
    /// (the capacity scenarios split it over 8 and over 32 victims).
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    pub size: u64,
    /// Rounds; each runs every condition once, interleaved.
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// Timed teardowns per round in each overhead condition (A no profiler,
    /// T the bare sampling timer, B reaper's defaults, C perf, D every probe
    /// kind), one after the other
    /// under the same profiler session; start-up, time to answer and the
    /// other conditions stay one per round. A teardown's time varies by
    /// about 15% from one to the next, so 10 rounds of one gave a ratio
    /// whose 95% interval was ±15%; three per round narrow it by about √3.
    #[arg(long, default_value_t = 3)]
    pub episodes: u32,
    /// cpu-clock sampling frequency of both profilers, Hz.
    #[arg(long, default_value_t = 4000)]
    pub freq: u32,
    /// Where the table, the machine description and the raw figures go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Skip `cargo xtask setup` (perf must already be installed).
    #[arg(long)]
    pub no_setup: bool,
    /// Benchmark this reaper binary instead of a release build of the
    /// workspace (e.g. an earlier build, for a before/after comparison).
    #[arg(long)]
    pub reaper: Option<PathBuf>,
    /// Instead of the host bench: the cost of `record --exact-locks`'
    /// collision logs, measured in a VM of this kernel (named as `vm-test
    /// --only` names a cell, e.g. sid/x86_64): --rounds pairs of one-episode
    /// recordings with the logs on and off (`--no-collision-log`), in one
    /// boot; the table goes to OUT/collisions.md. No root needed.
    #[arg(long, value_name = "KERNEL/ARCH[/FLAVOUR]", conflicts_with_all = ["reaper", "no_setup"])]
    pub collisions_vm: Option<String>,
    /// With --collisions-vm: each recording's victim (`record --victim`).
    #[arg(
        long,
        default_value = "256M",
        value_name = "SPEC",
        requires = "collisions_vm"
    )]
    pub vm_victim: String,
}

/// Parses `2G`, `256M`, `512K` or a byte count (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 30),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 10),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?} is not a size like 2G, 256M or 4096"))?;
    n.checked_shl(shift)
        .filter(|b| *b >> shift == n && *b > 0)
        .ok_or_else(|| anyhow::anyhow!("{text:?} is zero or too large"))
}

/// Set in the release re-execution, so it does not re-execute again.
const RELEASE_ENV: &str = "XTASK_BENCH_RELEASE";

/// `cargo xtask` is a debug build; the perf pipeline's fold + SVG run inside
/// this process (inferno), so time it with optimized code: re-run this same
/// command from a release build of xtask. Returns the child's exit code.
fn reexec_release() -> Result<std::process::ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    eprintln!(
        "xtask bench: re-running from a release build of xtask (inferno's fold is timed in-process)"
    );
    let status = std::process::Command::new(env!("CARGO"))
        .args(["run", "--release", "--quiet", "--package", "xtask", "--"])
        .args(&args)
        .current_dir(crate::workspace::workspace_root())
        .env(RELEASE_ENV, "1")
        .status()
        .context("running cargo run --release -p xtask")?;
    Ok(std::process::ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8,
    ))
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> Result<std::process::ExitCode> {
    if let Some(cell) = &args.collisions_vm {
        ensure!(args.rounds > 0, "--rounds must be at least 1");
        let bench = collisions::VmBench {
            cell,
            pairs: args.rounds,
            victim: &args.vm_victim,
            out: &absolute(&args.out),
        };
        return collisions::run(&bench).map(|()| std::process::ExitCode::SUCCESS);
    }
    if cfg!(debug_assertions) && std::env::var_os(RELEASE_ENV).is_none() {
        return reexec_release();
    }
    run_bench(args).map(|()| std::process::ExitCode::SUCCESS)
}

fn run_bench(args: BenchArgs) -> Result<()> {
    ensure!(
        crate::run::is_root(),
        "cargo xtask bench needs root (BPF, perf -a, process_mrelease); run it with sudo"
    );
    ensure!(args.rounds > 0, "--rounds must be at least 1");
    ensure!(args.episodes > 0, "--episodes must be at least 1");
    if !args.no_setup {
        crate::setup::ensure(crate::setup::Task::Bench)?;
    }
    let reaper = match &args.reaper {
        Some(path) => {
            std::fs::canonicalize(path).with_context(|| format!("--reaper {}", path.display()))?
        }
        None => crate::run::build_reaper()?,
    };
    let out = absolute(&args.out);
    let work = out.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let machine = conditions::machine_description();
    eprintln!("xtask bench: {machine}");
    let config = conditions::Config {
        reaper,
        work,
        size: args.size,
        freq: args.freq,
        episodes: args.episodes,
    };
    let results = conditions::run_rounds(&config, args.rounds)?;
    let rows = results.rows(&config);
    let table = stats::markdown(&rows);
    let verdicts: Vec<&verdict::Verdict> = rows.iter().filter_map(|r| r.verdict.as_ref()).collect();
    let wins = verdicts.iter().filter(|v| v.reaper_wins()).count();
    let doc = format!(
        "# cargo xtask bench\n\n{machine}\n\nCommand: `cargo xtask bench --size {} --rounds {} --episodes {} --freq {}`\n\n{table}\nreaper wins {wins} of the {} rows with a \"reaper vs perf\" verdict (faster or smaller with the whole interval below 1.0; for accuracy, agreement).\n\n{}\n{}",
        human_size(args.size),
        args.rounds,
        args.episodes,
        args.freq,
        verdicts.len(),
        results.program_cost_table(),
        results.notes(&config)
    );
    println!("{doc}");
    std::fs::write(out.join("results.md"), &doc)?;
    std::fs::write(
        out.join("raw.json"),
        serde_json::to_string_pretty(&results.raw_json())?,
    )?;
    eprintln!(
        "xtask bench: wrote {} and raw.json",
        out.join("results.md").display()
    );
    Ok(())
}

/// `path`, relative to the workspace root unless absolute.
fn absolute(path: &std::path::Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        crate::workspace::workspace_root().join(path)
    }
}

/// `2147483648` → `2G`.
pub fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("0").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert_eq!(human_size(256 << 20), "256M");
        assert_eq!(human_size(2 << 30), "2G");
        assert_eq!(human_size(1000), "1000");
    }
}
