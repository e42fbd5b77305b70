//! `reaper-lab ab`: the seed thread's experiment in one command. Decides
//! what A and B are ([`sides`]: one source without and with patches, two
//! revisions of a git tree, or two prebuilt kernels), builds or fetches
//! them, boots each in the VM harness in interleaved batches
//! ([`schedule`], [`batch`]) running the same `reaper record` scenario, as
//! many runs as asked or as planned ([`plan`]), brings the runs back, and
//! compares them with this host's reaper ([`compare`]); writes everything,
//! a paste block ([`mmtests`]) and a `results.md` ([`results`]), into the
//! output directory.

pub mod batch;
pub mod compare;
pub mod episodes;
pub mod mmtests;
pub mod plan;
pub mod results;
pub mod schedule;
pub mod sides;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use reaper_model::VmaOrderKind;

use crate::error::Refused;
use crate::kernel;
use crate::reapers::{ReaperArgs, ReaperSource, Reapers};
use crate::vm::{self, kernel::Flavour};
use batch::{BootKernel, BootSettings};
use episodes::EpisodeLine;
use plan::Runs;
use schedule::{Batch, Side};
use sides::{Experiment, KernelFlags, SideKernel};

/// Episodes per boot: two batches per side for 10 runs (A B B A), so drift
/// is balanced and a crashed boot loses half a side, not all of it.
const DEFAULT_BATCH: u32 = 5;
/// TCG guests are slow; one batch of 5 function-timed episodes takes minutes.
const DEFAULT_TIMEOUT_S: u64 = 1200;
/// `--runs auto`'s defaults: the change to detect, and the most runs a
/// side (30 runs are six boots a side, about an hour under TCG).
const DEFAULT_DETECT_PCT: f64 = 5.0;
const DEFAULT_MAX_RUNS: u32 = 30;

const AFTER_HELP: &str = "\
Examples:
  The seed thread's reverse-order backport on Debian's 6.1 source (A without it, B with it;
  B rebuilds only mm/oom_kill.o in A's tree):
    reaper-lab ab --source 6.1 --patch 0002-oom_kill-reaper-walks-vmas-in-reverse-6.1.patch \\
        --arch x86_64 --runs 10 -- --victim 256M,threads=4

  Your branch against its base in your own git tree, with your .config (reaper's options are
  merged on top and checked); built in the cache with O=, your checkout and index untouched:
    reaper-lab ab --src ~/linux --base origin/master --candidate HEAD --config ~/linux/.config \\
        --runs auto --detect 5% -- --victim 256M,threads=4

  A patch series from your mailbox (git format-patch --stdout, or a b4/lore mbox):
    reaper-lab ab --src ~/linux --base v6.12 --patch series.mbox -- --victim 256M,threads=4

  Two Debian kernels, nothing built: did a stable update change teardown?
    reaper-lab ab --kernel-a bookworm-6.12 --kernel-b trixie --runs auto -- --victim 256M,threads=4

Output (default reaper-lab-out/ab/NAME): results.md, mmtests.txt (the block to paste: A, B,
%change, ±noise, significance per metric, with revisions, config hashes and the command),
diff.txt, flames/ (differential flame graphs), gate.md, gate.junit.xml, and each side's runs.
An arm64 guest (--arch arm64) on an x86_64 host needs --guest-reaper: the reaper of the
aarch64 release tarball.";

/// `reaper-lab ab` arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct AbArgs {
    #[command(flatten)]
    build: kernel::BuildArgs,
    /// With --src DIR, a git tree: A is this revision.
    #[arg(long, value_name = "REV", requires = "src")]
    base: Option<String>,
    /// With --base: B is this revision (with --patch on top, if given)
    /// [default: the base revision, with --patch].
    #[arg(long, value_name = "REV", requires = "base")]
    candidate: Option<String>,
    /// A prebuilt kernel for A, nothing built: an image (bzImage for x86_64,
    /// Image for arm64; a `config` beside it is used) or a Debian kernel by
    /// name (bookworm, bookworm-6.12, trixie, trixie-backports[:VERSION], sid).
    #[arg(
        long,
        value_name = "IMG|NAME",
        requires = "kernel_b",
        conflicts_with_all = ["src", "patches", "base", "config", "fragments"]
    )]
    kernel_a: Option<String>,
    /// The prebuilt kernel for B (as --kernel-a).
    #[arg(long, value_name = "IMG|NAME", requires = "kernel_a")]
    kernel_b: Option<String>,
    /// The Debian flavour of --kernel-a/--kernel-b names.
    #[arg(long, value_enum, default_value_t = Flavour::Cloud)]
    flavour: Flavour,
    /// Runs (episodes) per side, or `auto`: record one batch a side, then
    /// as many as `reaper gate --plan` says flag a --detect change with 90%
    /// power at the noise of each side's first runs, at most --max-runs.
    #[arg(long, value_name = "N|auto", default_value = "10", value_parser = plan::parse_runs)]
    runs: Runs,
    /// With --runs auto: the change to detect [default: 5%]. The gate
    /// flags a change no larger than a metric's threshold (5% for total and
    /// the latencies, 10% for the lock wait and rmap by default) at most
    /// half the time, so such metrics take --max-runs; say 10% or more to
    /// plan for all of them.
    #[arg(long, value_name = "PCT", value_parser = plan::parse_percent)]
    detect: Option<f64>,
    /// With --runs auto: the most runs a side [default: 30].
    #[arg(long, value_name = "N")]
    max_runs: Option<u32>,
    /// Episodes per boot; batches alternate A B B A …
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: u32,
    /// Seconds before one boot is given up.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIMEOUT_S)]
    timeout: u64,
    /// Guest memory, e.g. 2G.
    #[arg(long, default_value = "2G")]
    mem: String,
    /// Output directory (default reaper-lab-out/ab/NAME, after the sides), emptied first.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Fail unless every episode whose reaper order was measured shows A's
    /// order in A and B's in B, e.g. `forward,reverse` for the reverse-order
    /// patch (what CI checks).
    #[arg(long, value_name = "A,B", value_parser = parse_expect_order)]
    expect_order: Option<(VmaOrderKind, VmaOrderKind)>,
    #[command(flatten)]
    reapers: ReaperArgs,
    /// `reaper record` arguments (without --runs and -o, which ab sets).
    #[arg(last = true, value_name = "RECORD_ARGS")]
    record: Vec<String>,
}

/// How many runs a side, as validated.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RunPlan {
    Fixed(u32),
    Auto { detect: f64, max: u32 },
}

impl RunPlan {
    fn from_args(args: &AbArgs) -> Result<Self> {
        match args.runs {
            Runs::Fixed(n) => {
                if args.detect.is_some() || args.max_runs.is_some() {
                    return Err(
                        Refused("--detect and --max-runs go with --runs auto".into()).into(),
                    );
                }
                Ok(RunPlan::Fixed(n))
            }
            Runs::Auto => {
                let max = args.max_runs.unwrap_or(DEFAULT_MAX_RUNS);
                if max < 2 {
                    return Err(Refused(
                        "--max-runs must be at least 2: the noise needs two runs a side".into(),
                    )
                    .into());
                }
                Ok(RunPlan::Auto {
                    detect: args.detect.unwrap_or(DEFAULT_DETECT_PCT),
                    max,
                })
            }
        }
    }
}

/// The boots of one A/B so far.
struct Session<'a> {
    settings: BootSettings<'a>,
    exp: &'a Experiment,
    kernels: [(&'a SideKernel, String); 2],
    out: &'a Path,
    /// (name, wall time, exit status) per boot, and the releases the guests
    /// reported per side.
    boots: Vec<(String, Duration, i32)>,
    releases: [Option<String>; 2],
}

impl Session<'_> {
    fn side_dir(&self, side: Side) -> PathBuf {
        self.out.join(self.exp.dir(side))
    }

    fn run(&mut self, batches: &[Batch], first: usize, total: usize) -> Result<()> {
        for (i, b) in batches.iter().enumerate() {
            let side = usize::from(b.side == Side::B);
            let (kernel, label) = &self.kernels[side];
            let started = Instant::now();
            let (rc, release) = batch::boot(
                &self.settings,
                &BootKernel {
                    image: &kernel.image,
                    config: kernel.config.as_deref(),
                    label,
                },
                b,
                &self.side_dir(b.side),
                first + i + 1,
                total,
            )?;
            self.releases[side] = self.releases[side].take().or(release);
            self.boots.push((
                format!("{}{}", b.side.name(), b.index),
                started.elapsed(),
                rc,
            ));
        }
        Ok(())
    }
}

/// Runs every batch of both sides: `--runs N`, or a first round of
/// `--batch` runs, then as many more as the first round's noise asks for.
fn run_all(
    session: &mut Session<'_>,
    runs: RunPlan,
    batch_flag: u32,
    host_reaper: &Path,
) -> Result<String> {
    let (dir_a, dir_b) = (session.side_dir(Side::A), session.side_dir(Side::B));
    Ok(match runs {
        RunPlan::Fixed(n) => {
            let plan = schedule::schedule(n, batch_flag);
            session.run(&plan, 0, plan.len())?;
            format!("{n} a side (--runs {n})")
        }
        RunPlan::Auto { detect, max } => {
            let batch = batch_flag.max(1).min(max);
            let first = schedule::schedule(batch, batch);
            session.run(&first, 0, first.len())?;
            let plans = [
                plan::request(host_reaper, &dir_a, detect)?,
                plan::request(host_reaper, &dir_b, detect)?,
            ];
            let choice = plan::choose(&plans, batch, detect, max);
            println!("{choice}");
            eprintln!("reaper-lab: ab: {choice}");
            let rest = schedule::after_first_round(choice.runs, batch);
            session.run(&rest, first.len(), first.len() + rest.len())?;
            choice.to_string()
        }
    })
}

/// `--expect-order`: whether every measured episode of each side walked
/// the VMAs in the order expected of it.
fn check_expected_order(
    &(want_a, want_b): &(VmaOrderKind, VmaOrderKind),
    lines_a: &[EpisodeLine],
    lines_b: &[EpisodeLine],
) -> ExitCode {
    let problems: Vec<String> = [("A", lines_a, want_a), ("B", lines_b, want_b)]
        .into_iter()
        .filter_map(|(side, lines, want)| {
            episodes::check_order(lines, want)
                .err()
                .map(|e| format!("{side}: {e}"))
        })
        .collect();
    if !problems.is_empty() {
        eprintln!(
            "reaper-lab: ab: --expect-order failed: {}",
            problems.join("; ")
        );
        return ExitCode::FAILURE;
    }
    println!("--expect-order: A {want_a}, B {want_b} in every measured episode");
    ExitCode::SUCCESS
}

/// One side's header in the mmtests block; `booted` is the release the
/// guest reported when the kernel's own is not known.
fn side_header<'a>(
    label: &'a str,
    kernel: &'a SideKernel,
    booted: Option<&'a str>,
    dir: &Path,
) -> mmtests::SideHeader<'a> {
    mmtests::SideHeader {
        label,
        description: &kernel.description,
        release: kernel.release.as_deref().or(booted),
        config_hash: kernel.config_hash.as_deref(),
        runs: episodes::run_files(dir).len(),
    }
}

/// What every boot of the A/B shares.
fn boot_settings<'a>(
    args: &'a AbArgs,
    arch: crate::arch::Arch,
    mem_mib: u32,
    reaper: &'a Path,
) -> BootSettings<'a> {
    BootSettings {
        arch,
        record: &args.record,
        mem_mib,
        timeout: Duration::from_secs(args.timeout),
        reaper,
    }
}

/// The two kernels the flags name.
fn experiment(args: &AbArgs) -> Result<Experiment> {
    Experiment::from_flags(&KernelFlags {
        build: &args.build,
        base: args.base.as_deref(),
        candidate: args.candidate.as_deref(),
        kernel_a: args.kernel_a.as_deref(),
        kernel_b: args.kernel_b.as_deref(),
        flavour: args.flavour,
    })
}

/// "A1 12 s, B1 13 s": each boot's wall time.
fn boot_times(boots: &[(String, Duration, i32)]) -> String {
    boots
        .iter()
        .map(|(n, t, _)| format!("{n} {:.0} s", t.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The output directory (`--out`, else one named after the experiment),
/// emptied or created.
fn out_dir(args: &AbArgs, exp: &Experiment) -> Result<PathBuf> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::paths::out_root().join("ab").join(exp.out_name()));
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    Ok(out)
}

/// Refuses an A/B one of whose sides brought no episode back.
fn check_both_sides(lines_a: &[EpisodeLine], lines_b: &[EpisodeLine]) -> Result<()> {
    if lines_a.is_empty() || lines_b.is_empty() {
        bail!(
            "no episode came back from {} (A: {}, B: {}); see the guests' consoles above",
            if lines_a.is_empty() { "A" } else { "B" },
            lines_a.len(),
            lines_b.len()
        );
    }
    Ok(())
}

/// The A/B on stdout: both sides, their episodes, the diff, the gate and
/// the mmtests block.
fn print_ab(
    subject: &str,
    sides: [(&str, &SideKernel, &[EpisodeLine]); 2],
    compared: &compare::Compared,
    block: &str,
) {
    println!("\n=== A/B: {subject} ===");
    for (side, (label, kernel, _)) in ["A", "B"].into_iter().zip(sides) {
        println!("{side}: {label}: {}", kernel.description);
    }
    print_episodes(&[("A", sides[0].0, sides[0].2), ("B", sides[1].0, sides[1].2)]);
    println!("\n{}", compared.diff_text);
    println!("{}", compared.gate);
    println!("Gate (baseline A, candidate B): {}", compared.verdict);
    for (side, noise) in [("A", &compared.noise.0), ("B", &compared.noise.1)] {
        if let Err(why) = noise {
            println!(
                "Run-to-run noise of {side}: not measured ({})",
                why.with_causes()
            );
        }
    }
    println!("\n{block}");
}

/// `reaper-lab ab`.
pub fn run(args: AbArgs, reaper_source: &dyn ReaperSource) -> Result<ExitCode> {
    let started = Instant::now();
    check_record_args(&args.record)?;
    let runs = RunPlan::from_args(&args)?;
    let exp = experiment(&args)?;
    // Everything that can be refused is, before anything is built or booted.
    let reapers = Reapers::resolve(&args.reapers, reaper_source, exp.arch, true)?;
    let host_reaper = reapers.host()?.to_path_buf();
    if matches!(runs, RunPlan::Auto { .. }) {
        plan::check_supported(&host_reaper)?;
    }
    let mem_mib = vm::parse_mem(&args.mem)?;
    let out = out_dir(&args, &exp)?;

    let (kernel_a, kernel_b) = sides::prepare(&exp)?;
    let (label_a, label_b) = (exp.label(Side::A), exp.label(Side::B));
    let mut session = Session {
        settings: boot_settings(&args, exp.arch, mem_mib, &reapers.guest),
        exp: &exp,
        kernels: [(&kernel_a, label_a.clone()), (&kernel_b, label_b.clone())],
        out: &out,
        boots: Vec::new(),
        releases: [None, None],
    };
    let (dir_a, dir_b) = (session.side_dir(Side::A), session.side_dir(Side::B));
    let runs_note = run_all(&mut session, runs, args.batch, &host_reaper)?;

    let lines = [episodes::read_all(&dir_a)?, episodes::read_all(&dir_b)?];
    check_both_sides(&lines[0], &lines[1])?;
    let compared = compare::compare(&host_reaper, &dir_a, &dir_b, (&label_a, &label_b), &out)?;
    let outcome = Outcome {
        session: &session,
        subject: subject(&exp, &kernel_a, &kernel_b),
        command: command_line(),
        compared,
        dirs: [dir_a, dir_b],
        lines,
    };
    let block = outcome.mmtests_block();
    std::fs::write(out.join("mmtests.txt"), &block).context("writing mmtests.txt")?;
    outcome.print(&block);
    let total = started.elapsed();
    let md = out.join("results.md");
    std::fs::write(&md, outcome.results_md(&runs_note, total, &block))
        .with_context(|| format!("writing {}", md.display()))?;
    println!(
        "{}boots: {}; wall time {:.0} s\nWrote {} (results.md, mmtests.txt, diff.txt, flames/, gate.md, gate.junit.xml)",
        build_times(&kernel_a, &kernel_b),
        boot_times(&session.boots),
        total.as_secs_f64(),
        out.display()
    );
    let [lines_a, lines_b] = &outcome.lines;
    if let Some(want) = &args.expect_order {
        return Ok(check_expected_order(want, lines_a, lines_b));
    }
    Ok(ExitCode::SUCCESS)
}

/// What an A/B's runs produced, gathered for its reports: the session
/// (kernels, labels, releases, boots), both sides' episodes and the
/// comparison.
struct Outcome<'s> {
    session: &'s Session<'s>,
    /// The A/B's title (see [`subject`]).
    subject: String,
    /// The command line that ran the A/B.
    command: String,
    compared: compare::Compared,
    /// Each side's record directory.
    dirs: [PathBuf; 2],
    /// Each side's episodes.
    lines: [Vec<EpisodeLine>; 2],
}

impl Outcome<'_> {
    /// The mmtests-style comparison block (mmtests.txt).
    fn mmtests_block(&self) -> String {
        let [(kernel_a, label_a), (kernel_b, label_b)] = &self.session.kernels;
        let [release_a, release_b] = &self.session.releases;
        mmtests::render(&mmtests::Block {
            title: &self.subject,
            a: side_header(label_a, kernel_a, release_a.as_deref(), &self.dirs[0]),
            b: side_header(label_b, kernel_b, release_b.as_deref(), &self.dirs[1]),
            command: &self.command,
            diff: &self.compared.diff,
            noise: (
                self.compared.noise.0.as_ref().ok(),
                self.compared.noise.1.as_ref().ok(),
            ),
            verdict: &self.compared.verdict,
        })
    }

    /// Prints the A/B's episodes, diff, gate and `block` to stdout.
    fn print(&self, block: &str) {
        let [(kernel_a, label_a), (kernel_b, label_b)] = &self.session.kernels;
        print_ab(
            &self.subject,
            [
                (label_a, kernel_a, &self.lines[0]),
                (label_b, kernel_b, &self.lines[1]),
            ],
            &self.compared,
            block,
        );
    }

    /// results.md, after `total` wall time with `runs_note` saying how the
    /// runs were set.
    fn results_md(&self, runs_note: &str, total: Duration, block: &str) -> String {
        let [(kernel_a, label_a), (kernel_b, label_b)] = &self.session.kernels;
        let [release_a, release_b] = &self.session.releases;
        results::render(&results::Results {
            date: utc_now(),
            machine: results::machine_line(),
            command: self.command.clone(),
            subject: &self.subject,
            a: results::SideResult {
                label: label_a,
                kernel: kernel_a,
                guest_release: release_a.as_deref(),
                lines: &self.lines[0],
            },
            b: results::SideResult {
                label: label_b,
                kernel: kernel_b,
                guest_release: release_b.as_deref(),
                lines: &self.lines[1],
            },
            runs: runs_note,
            boots: &self.session.boots,
            total,
            block,
            diff: &self.compared.diff_text,
            gate: &self.compared.gate,
            gate_verdict: &self.compared.verdict,
        })
    }
}

/// The A/B's title: the patches' subjects, the candidate's subject, or the
/// two kernels.
fn subject(exp: &Experiment, a: &SideKernel, b: &SideKernel) -> String {
    let patches: Vec<&str> = exp.patches().iter().map(|p| p.subject.as_str()).collect();
    match &exp.design {
        sides::Design::Patch { .. } => patches.join("; "),
        sides::Design::Revisions {
            base, candidate, ..
        } => {
            let mut s = format!("{base}..{candidate}");
            if !patches.is_empty() {
                s.push_str(&format!(" + {}", patches.join("; ")));
            }
            s
        }
        sides::Design::Prebuilt { .. } => {
            format!(
                "{} vs {}",
                a.release.as_deref().unwrap_or(&a.description),
                b.release.as_deref().unwrap_or(&b.description)
            )
        }
    }
}

/// "Builds: A 266 s (first build), B 14 s (incremental); " when built.
fn build_times(a: &SideKernel, b: &SideKernel) -> String {
    match (&a.build, &b.build) {
        (Some(a), Some(b)) => {
            let how = |b: &kernel::Built| match (b.cached, b.incremental) {
                (true, true) => "incremental, found in the cache",
                (true, false) => "first build, found in the cache",
                (false, true) => "incremental",
                (false, false) => "first build",
            };
            format!(
                "Builds: A {:.0} s ({}), B {:.0} s ({}); ",
                a.build_seconds,
                how(a),
                b.build_seconds,
                how(b)
            )
        }
        _ => String::new(),
    }
}

/// The command as typed, for results.md and the paste block: the program's
/// name (`cargo xtask` for the alias) and the arguments, quoted for sh.
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_default();
    let name = Path::new(&program)
        .file_name()
        .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
    let name = if name == "xtask" {
        "cargo xtask".to_string()
    } else {
        name
    };
    std::iter::once(name)
        .chain(args.map(|a| batch::shell_quote(&a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An `--expect-order` value that is not two orders.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum ExpectOrderError {
    /// No comma.
    #[error("`{0}`: expected A,B, e.g. forward,reverse")]
    NotAPair(String),
    /// A side that is no order (`unknown` is what a run says when it saw
    /// none: never expected).
    #[error("`{0}`: an order is forward, reverse or mixed")]
    NotAnOrder(String),
}

fn parse_expect_order(s: &str) -> Result<(VmaOrderKind, VmaOrderKind), ExpectOrderError> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| ExpectOrderError::NotAPair(s.to_owned()))?;
    let order = |word: &str| {
        VmaOrderKind::from_name(word.trim())
            .filter(|o| *o != VmaOrderKind::Unknown)
            .ok_or_else(|| ExpectOrderError::NotAnOrder(word.trim().to_owned()))
    };
    Ok((order(a)?, order(b)?))
}

fn check_record_args(record: &[String]) -> Result<()> {
    if let Some(bad) = record.iter().find(|a| {
        *a == "--runs" || a.starts_with("--runs=") || *a == "-o" || a.starts_with("--output")
    }) {
        return Err(Refused(format!(
            "`{bad}` is set by reaper-lab ab (--runs per side, output per batch); drop it from \
             the record arguments"
        ))
        .into());
    }
    Ok(())
}

fn print_episodes(sides: &[(&str, &str, &[EpisodeLine])]) {
    for (name, label, lines) in sides {
        println!("{name} ({label}):");
        for l in *lines {
            println!("  {l}");
        }
        println!("  => {}", episodes::summary(lines));
    }
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn ab_owns_runs_and_output() {
        assert!(check_record_args(&["--runs".into(), "3".into()]).is_err());
        assert!(check_record_args(&["-o".into(), "x".into()]).is_err());
        assert!(check_record_args(&["--victim".into(), "1G".into()]).is_ok());
    }

    #[derive(clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        ab: AbArgs,
    }

    fn parse(args: &[&str]) -> Result<AbArgs, clap::Error> {
        Cmd::try_parse_from(std::iter::once("ab").chain(args.iter().copied())).map(|c| c.ab)
    }

    #[test]
    fn flags_that_do_not_go_together_are_refused() {
        assert!(
            parse(&["--kernel-a", "bookworm"]).is_err(),
            "needs --kernel-b"
        );
        assert!(parse(&["--kernel-a", "x", "--kernel-b", "y", "--patch", "p"]).is_err());
        assert!(parse(&["--base", "HEAD"]).is_err(), "--base needs --src");
        assert!(parse(&["--src", "d", "--candidate", "HEAD"]).is_err());
        // The defaulted --source does not conflict with --kernel-a/-b.
        let ab = parse(&[
            "--kernel-a",
            "bookworm-6.12",
            "--kernel-b",
            "trixie",
            "--runs",
            "auto",
        ])
        .unwrap();
        assert_eq!(
            RunPlan::from_args(&ab).unwrap(),
            RunPlan::Auto {
                detect: DEFAULT_DETECT_PCT,
                max: DEFAULT_MAX_RUNS
            }
        );
        let fixed = parse(&["--patch", "p", "--detect", "3%"]).unwrap();
        let err = RunPlan::from_args(&fixed).unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:#}");
    }

    #[test]
    fn expected_orders_are_vma_orders() {
        assert_eq!(
            parse_expect_order("forward, reverse"),
            Ok((VmaOrderKind::Forward, VmaOrderKind::Reverse))
        );
        assert!(parse_expect_order("forward,reverze").is_err(), "a typo");
        assert!(parse_expect_order("forward,unknown").is_err(), "no order");
        assert!(parse_expect_order("forward").is_err());
    }
}
