//! `reaper gate --baseline B --candidate C`: fail CI when teardown got
//! slower (under GitHub Actions also a job summary and `::error` lines). Exit 0: no gated metric regressed; 1: a regression; 2: usage
//! error, unreadable or incomparable runs, or too few runs.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::compare::gate::{
    DEFAULT_ALPHA, DEFAULT_MIN_DELTA_MS, DEFAULT_MIN_RUNS, GateOptions, evaluate,
};
use crate::compare::spec::{self, Gated};
use crate::compare::{self, CompareError, diff::DiffOptions, gate_render};

/// Arguments of `reaper gate`.
#[derive(Clone, Debug, Args)]
#[command(after_help = gate_help())]
pub struct GateArgs {
    /// The baseline: a run.json or a directory of runs.
    #[arg(long, value_name = "PATH")]
    pub baseline: PathBuf,
    /// The candidate: a run.json or a directory of runs.
    #[arg(long, value_name = "PATH")]
    pub candidate: PathBuf,
    /// Largest allowed regression per metric, e.g.
    /// total=5%,pte_lock_wait=10%,kill_to_reap=2ms; overrides the defaults
    /// entry by entry, METRIC=off drops one (metrics listed below).
    #[arg(long, value_name = "SPEC", value_parser = parse_spec)]
    pub max_regression: Option<MaxRegression>,
    /// Complete episodes required on each side (fewer: exit 2).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_RUNS,
          value_parser = parse_min_runs)]
    pub min_runs: usize,
    /// One-sided significance level of the Mann-Whitney U test.
    #[arg(long, value_name = "P", default_value_t = DEFAULT_ALPHA, value_parser = parse_alpha)]
    pub alpha: f64,
    /// Increases smaller than this are never regressions, ms.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_MIN_DELTA_MS)]
    pub min_delta_ms: f64,
    /// Also write the markdown summary to FILE (for CI comments).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write JUnit XML (one testcase per metric) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print the verdicts as JSON instead of markdown.
    #[arg(long)]
    pub json: bool,
    /// Compare even when the victim sizes differ by more than 10%.
    #[arg(long)]
    pub force: bool,
}

fn gate_help() -> String {
    format!(
        "{}\n\nA metric regresses when its candidate median exceeds the baseline median by more \
than its threshold and by at least --min-delta-ms, and a one-sided Mann-Whitney U test gives \
p < --alpha. Exit status: 0 pass, 1 regression, 2 usage error, unreadable or incomparable \
runs, or too few runs.",
        spec::help()
    )
}

/// A parsed `--max-regression` SPEC: the gated metrics and thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxRegression(pub Vec<Gated>);

/// clap value parser: the whole SPEC becomes one list of gated metrics.
fn parse_spec(raw: &str) -> Result<MaxRegression, String> {
    spec::parse(raw)
        .map(MaxRegression)
        .map_err(|e| e.to_string())
}

/// At least 4: with 3 vs 3 episodes the smallest one-sided p is 1/20, so
/// no regression could ever reach significance at the default level.
fn parse_min_runs(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if n >= 4 => Ok(n),
        _ => Err(format!("{raw:?} is not a whole number of at least 4")),
    }
}

fn parse_alpha(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err(format!(
            "{raw:?} is not a probability between 0 and 1 (exclusive)"
        )),
    }
}

/// Runs the gate; returns 0 or 1 (errors are exit 2 at the binary's edge).
pub fn run(args: &GateArgs) -> anyhow::Result<i32> {
    let pair = compare::load_pair(
        ("baseline", &args.baseline),
        ("candidate", &args.candidate),
        args.force,
    )?;
    for (side, set) in [("baseline", &pair.a), ("candidate", &pair.b)] {
        let found = set.complete_episodes();
        if found < args.min_runs {
            return Err(CompareError::TooFewRuns {
                side,
                found,
                required: args.min_runs,
            }
            .into());
        }
    }
    let gated = match &args.max_regression {
        Some(spec) => spec.0.clone(),
        None => spec::parse("").expect("the default SPEC parses"),
    };
    let opts = GateOptions {
        gated,
        min_runs: args.min_runs,
        alpha: args.alpha,
        min_delta_ms: args.min_delta_ms,
    };
    let header = compare::diff::header(&pair.a, &pair.b, pair.notes, &DiffOptions::default());
    let report = evaluate(&pair.a, &pair.b, header, &opts);
    let markdown = gate_render::markdown(&report);
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown)
            .with_context(|| format!("{}: cannot write the markdown summary", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, gate_render::junit(&report))
            .with_context(|| format!("{}: cannot write the JUnit XML", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{markdown}");
    }
    for v in report.regressions() {
        eprintln!("reaper gate: {}", gate_render::regression_line(v));
    }
    let actions = crate::ci::github::Actions::from_env();
    actions.append_summary(&markdown).with_context(
        || "GITHUB_STEP_SUMMARY: cannot append the markdown summary to the job summary file",
    )?;
    for command in actions.error_commands(&report) {
        eprintln!("{command}");
    }
    Ok(report.exit_code())
}
