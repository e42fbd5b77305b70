//! `cargo xtask ab`: the seed thread's experiment in one command. Builds one
//! kernel source without (A) and with (B) patches ([`crate::kernel`]), boots
//! each in the VM harness in interleaved batches ([`schedule`]) running the
//! same `reaper record` scenario, brings the runs back, and compares them
//! with `reaper diff` and `reaper gate`; writes everything, and a
//! `results.md` ([`results`]), into the output directory.

pub mod episodes;
pub mod results;
pub mod schedule;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::kernel::{self, BuildSpec, Built, patches::Patch};
use crate::vm::{self, VmSpec, arch::Arch, kernel::KernelChoice};
use episodes::EpisodeLine;
use schedule::{Batch, Side};

/// Episodes per boot: two batches per side for 10 runs (A B B A), so drift
/// is balanced and a crashed boot loses half a side, not all of it.
const DEFAULT_BATCH: u32 = 5;
/// TCG guests are slow; one batch of 5 function-timed episodes takes minutes.
const DEFAULT_TIMEOUT_S: u64 = 1200;
/// The column labels of the thread's table.
const LABEL_A: &str = "Without patch";
const LABEL_B: &str = "With patch";

/// `cargo xtask ab` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (the seed thread's patch 2/2):\n  cargo xtask ab --source 6.1 \
--patch patches/0002-oom_kill-reaper-walks-vmas-in-reverse-6.1.patch --arch x86_64 --runs 10 \
-- --victim 256M,threads=4"
)]
pub struct AbArgs {
    #[command(flatten)]
    build: kernel::BuildArgs,
    /// Episodes per side.
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Episodes per boot; batches alternate A B B A …
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: u32,
    /// Seconds before one boot is given up.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIMEOUT_S)]
    timeout: u64,
    /// Guest memory, e.g. 2G.
    #[arg(long, default_value = "2G")]
    mem: String,
    /// Output directory (default target/ab/<source>-<arch>-<patch set>), emptied first.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Fail unless every episode whose reaper order was measured shows A's
    /// order in A and B's in B, e.g. `forward,reverse` for the reverse-order
    /// patch (what CI checks).
    #[arg(long, value_name = "A,B", value_parser = parse_expect_order)]
    expect_order: Option<(String, String)>,
    /// `reaper record` arguments (without --runs and -o, which ab sets).
    #[arg(last = true, value_name = "RECORD_ARGS")]
    record: Vec<String>,
}

/// `cargo xtask ab`.
pub fn run(args: AbArgs, reaper_for: vm::ReaperFor) -> Result<ExitCode> {
    let started = Instant::now();
    if args.build.patches.is_empty() {
        bail!("cargo xtask ab needs at least one --patch: B is the kernel with the patches");
    }
    check_record_args(&args.record)?;
    let patches: Vec<Patch> = args
        .build
        .patches
        .iter()
        .map(|p| Patch::read(p))
        .collect::<Result<_>>()?;
    let subject = patches
        .iter()
        .map(|p| p.subject.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let arch = args.build.arch;
    let out = args.out.clone().unwrap_or_else(|| {
        crate::paths::out_root().join("ab").join(format!(
            "{}-{arch}-{}",
            args.build
                .src
                .as_ref()
                .map_or(args.build.source.clone(), |_| "src".into()),
            kernel::patches::set_hash(&patches)
        ))
    });
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    // A first: B is built in A's tree with the patches applied, so make
    // recompiles only what they touch.
    let source = args.build.source_choice();
    let jobs = args.build.jobs.unwrap_or_else(kernel::make::default_jobs);
    let base_config = args
        .build
        .config
        .as_deref()
        .map(kernel::config::BaseConfig::read)
        .transpose()?;
    let a = kernel::build(&BuildSpec {
        source: source.clone(),
        arch,
        patches: Vec::new(),
        base_config: base_config.clone(),
        extra_fragments: args.build.fragments.clone(),
        jobs,
    })?;
    let b = kernel::build(&BuildSpec {
        source,
        arch,
        patches,
        base_config,
        extra_fragments: args.build.fragments.clone(),
        jobs,
    })?;
    let guest_reaper = reaper_for(arch)?;
    let host_reaper = if arch.uname() == std::env::consts::ARCH {
        guest_reaper.clone()
    } else {
        reaper_for(host_arch()?)?
    };

    let mut boots = Vec::new();
    let plan = schedule::schedule(args.runs, args.batch);
    for (n, batch) in plan.iter().enumerate() {
        let built = if batch.side == Side::A { &a } else { &b };
        let t = Instant::now();
        let rc = boot_batch(
            &args,
            arch,
            built,
            &guest_reaper,
            batch,
            &out,
            n + 1,
            plan.len(),
        )?;
        boots.push((
            format!("{}{}", batch.side.name(), batch.index),
            t.elapsed(),
            rc,
        ));
    }

    let (dir_a, dir_b) = (out.join(Side::A.dir()), out.join(Side::B.dir()));
    let lines_a = episodes::read_all(&dir_a)?;
    let lines_b = episodes::read_all(&dir_b)?;
    if lines_a.is_empty() || lines_b.is_empty() {
        bail!(
            "no episode came back from {} (A: {}, B: {}); see the guests' consoles above",
            if lines_a.is_empty() { "A" } else { "B" },
            lines_a.len(),
            lines_b.len()
        );
    }
    let diff = reaper_diff(&host_reaper, &dir_a, &dir_b, &out)?;
    let (gate, gate_verdict) = reaper_gate(&host_reaper, &dir_a, &dir_b, &out)?;

    println!("\n=== A/B: {subject} ===");
    println!(
        "A: {} {} without the patch; B: with it ({})",
        a.source, arch, b.release
    );
    print_episodes(&lines_a, &lines_b);
    println!("\n{diff}");
    println!("{gate}");
    println!("Gate (baseline: without patch, candidate: with patch): {gate_verdict}");
    let total = started.elapsed();
    let res = results::Results {
        date: utc_now(),
        machine: results::machine_line(),
        command: std::env::args()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(&std::env::args().next().unwrap_or_default(), "cargo xtask"),
        subject: &subject,
        a: &a,
        b: &b,
        boots: &boots,
        total,
        lines_a: &lines_a,
        lines_b: &lines_b,
        diff: &diff,
        gate: &gate,
        gate_verdict: &gate_verdict,
    };
    let md = out.join("results.md");
    std::fs::write(&md, results::render(&res))
        .with_context(|| format!("writing {}", md.display()))?;
    println!(
        "Builds: A {:.0} s ({}), B {:.0} s ({}); boots: {}; wall time {:.0} s\nWrote {} (diff.txt, flames/, gate.md, gate.junit.xml, results.md)",
        a.build_seconds,
        if a.incremental {
            "incremental/cached tree"
        } else {
            "first build"
        },
        b.build_seconds,
        if b.incremental {
            "incremental"
        } else {
            "first build"
        },
        boots
            .iter()
            .map(|(n, t, _)| format!("{n} {:.0} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        total.as_secs_f64(),
        out.display()
    );
    if let Some((want_a, want_b)) = &args.expect_order {
        let problems: Vec<String> = [("A", &lines_a, want_a), ("B", &lines_b, want_b)]
            .into_iter()
            .filter_map(|(side, lines, want)| {
                episodes::check_order(lines, want)
                    .err()
                    .map(|e| format!("{side}: {e}"))
            })
            .collect();
        if !problems.is_empty() {
            eprintln!("xtask: ab: --expect-order failed: {}", problems.join("; "));
            return Ok(ExitCode::FAILURE);
        }
        println!("--expect-order: A {want_a}, B {want_b} in every measured episode");
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_expect_order(s: &str) -> Result<(String, String), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: expected A,B, e.g. forward,reverse"))?;
    Ok((a.trim().to_string(), b.trim().to_string()))
}

fn check_record_args(record: &[String]) -> Result<()> {
    if let Some(bad) = record.iter().find(|a| {
        *a == "--runs" || a.starts_with("--runs=") || *a == "-o" || a.starts_with("--output")
    }) {
        bail!(
            "`{bad}` is set by cargo xtask ab (--runs per side, output per batch); drop it from the record arguments"
        );
    }
    Ok(())
}

fn host_arch() -> Result<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(Arch::X86_64),
        "aarch64" => Ok(Arch::Arm64),
        other => bail!("reaper diff/gate run on the host, and {other} hosts are not supported"),
    }
}

/// The guest script of one batch: one `reaper record --runs 1` per episode,
/// each into its own run directory, because `reaper gate` and the p-values
/// of `reaper diff` compare run medians: N episodes are N runs per side. A
/// frozen scenario needs the legacy (v1) freezer next to cgroup v2 memory,
/// as `cargo xtask vm-test` sets it up.
fn guest_command(record: &[String], episodes: u32) -> String {
    let mut script = String::new();
    if record.iter().any(|a| a == "--frozen") {
        script.push_str(
            "umount /sys/fs/cgroup 2>/dev/null; mount -t tmpfs none /sys/fs/cgroup\n\
             mkdir -p /sys/fs/cgroup/unified /sys/fs/cgroup/freezer\n\
             mount -t cgroup2 none /sys/fs/cgroup/unified && echo +memory > /sys/fs/cgroup/unified/cgroup.subtree_control\n\
             mount -t cgroup -o freezer none /sys/fs/cgroup/freezer\n",
        );
    }
    let quoted: Vec<String> = record.iter().map(|a| shell_quote(a)).collect();
    let runs: Vec<String> = (1..=episodes).map(|i| i.to_string()).collect();
    script.push_str(&format!(
        "rc=0\nfor i in {}; do\n    reaper record {} --runs 1 -o /out/run-$i || rc=$?\ndone\nexit $rc\n",
        runs.join(" "),
        quoted.join(" ")
    ));
    script
}

fn shell_quote(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ",._=-+/:".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
fn boot_batch(
    args: &AbArgs,
    arch: Arch,
    built: &Built,
    reaper: &Path,
    batch: &Batch,
    out: &Path,
    n: usize,
    of: usize,
) -> Result<i32> {
    let name = format!("{}{}", batch.side.name(), batch.index);
    eprintln!(
        "xtask: ab: boot {n}/{of}: {name} ({}), {} episode(s)",
        if batch.side == Side::A {
            LABEL_A
        } else {
            LABEL_B
        },
        batch.episodes
    );
    let mut spec = VmSpec::new(
        KernelChoice::Path(built.image.clone()),
        arch,
        vec![guest_command(&args.record, batch.episodes)],
    );
    spec.kernel_config = Some(built.config.clone());
    spec.mem_mib = vm::parse_mem(&args.mem)?;
    spec.timeout = Duration::from_secs(args.timeout);
    spec.out_dir = out
        .join(batch.side.dir())
        .join(format!("batch-{}", batch.index));
    spec.console_prefix = format!("[{name}] ");
    spec.binaries
        .push(("reaper".to_string(), reaper.to_path_buf()));
    let outcome = vm::boot(&spec).with_context(|| format!("boot {name}"))?;
    if outcome.exit_status != 0 {
        eprintln!(
            "xtask: ab: warning: reaper record exited with {} in {name}",
            outcome.exit_status
        );
    }
    Ok(outcome.exit_status)
}

fn reaper_diff(reaper: &Path, a: &Path, b: &Path, out: &Path) -> Result<String> {
    let output = Command::new(reaper)
        .arg("diff")
        .arg(a)
        .arg(b)
        .args(["--label-a", LABEL_A, "--label-b", LABEL_B, "-o"])
        .arg(out.join("flames"))
        .output()
        .context("running reaper diff")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    std::fs::write(out.join("diff.txt"), &text)?;
    if !output.status.success() {
        bail!(
            "reaper diff failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(text)
}

/// Runs the gate; returns its markdown and a one-line verdict.
fn reaper_gate(reaper: &Path, a: &Path, b: &Path, out: &Path) -> Result<(String, String)> {
    let output = Command::new(reaper)
        .arg("gate")
        .arg("--baseline")
        .arg(a)
        .arg("--candidate")
        .arg(b)
        .args(["--label-baseline", LABEL_A, "--label-candidate", LABEL_B])
        .arg("--markdown")
        .arg(out.join("gate.md"))
        .arg("--junit")
        .arg(out.join("gate.junit.xml"))
        .output()
        .context("running reaper gate")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let verdict = match output.status.code() {
        Some(0) => "PASS (no gated metric regressed with the patch)".to_string(),
        Some(1) => format!(
            "FAIL (a gated metric regressed with the patch): {}",
            stderr.trim()
        ),
        _ => format!("not judged (reaper gate: {})", stderr.trim()),
    };
    Ok((text, verdict))
}

fn print_episodes(a: &[EpisodeLine], b: &[EpisodeLine]) {
    for (name, label, lines) in [("A", LABEL_A, a), ("B", LABEL_B, b)] {
        println!("{name} ({label}):");
        for l in lines {
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
    use super::*;

    #[test]
    fn frozen_scenarios_get_the_v1_freezer() {
        let plain = guest_command(&["--victim".into(), "256M,threads=4".into()], 5);
        assert_eq!(
            plain,
            "rc=0\nfor i in 1 2 3 4 5; do\n    reaper record --victim 256M,threads=4 --runs 1 \
             -o /out/run-$i || rc=$?\ndone\nexit $rc\n"
        );
        let frozen = guest_command(&["--oom".into(), "--frozen".into()], 1);
        assert!(frozen.contains("mount -t cgroup -o freezer"));
    }

    #[test]
    fn ab_owns_runs_and_output() {
        assert!(check_record_args(&["--runs".into(), "3".into()]).is_err());
        assert!(check_record_args(&["-o".into(), "x".into()]).is_err());
        assert!(check_record_args(&["--victim".into(), "1G".into()]).is_ok());
    }
}
