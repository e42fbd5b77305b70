//! `reaper gate --baseline B --candidate C`: fail CI when teardown got
//! slower (under GitHub Actions also a job summary and `::error` lines). Exit 0: no gated metric regressed; 1: a regression; 2: usage
//! error, unreadable or incomparable runs, or too few runs.
//! `reaper gate --calibrate DIR... -o FILE` measures run-to-run noise from
//! A/A run sets instead.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::compare::calibration::{self, Calibration};
use crate::compare::gate::{
    CalibrationUse, DEFAULT_ALPHA, DEFAULT_MIN_DELTA_MS, GateOptions, check_runs, evaluate,
};
use crate::compare::runlevel::min_runs;
use crate::compare::spec::{self, Gated};
use crate::compare::{self, CompareError, diff::DiffOptions, gate_render};

/// Arguments of `reaper gate`.
#[derive(Clone, Debug, Args)]
#[command(
    after_help = gate_help(),
    override_usage = "reaper gate --baseline <PATH> --candidate <PATH> [OPTIONS]\n       reaper gate --calibrate <DIR>... [-o <FILE>]"
)]
pub struct GateArgs {
    /// The baseline: a run.json or a directory of runs.
    #[arg(long, value_name = "PATH", required_unless_present = "calibrate")]
    pub baseline: Option<PathBuf>,
    /// The candidate: a run.json or a directory of runs.
    #[arg(long, value_name = "PATH", required_unless_present = "calibrate")]
    pub candidate: Option<PathBuf>,
    /// Largest allowed regression per metric, e.g.
    /// total=5%,pte_lock_wait=10%,kill_to_reap=2ms; overrides the defaults
    /// entry by entry, METRIC=off drops one (metrics listed below).
    #[arg(long, value_name = "SPEC", value_parser = parse_spec)]
    pub max_regression: Option<MaxRegression>,
    /// Runs (run files) required on each side for the significance test
    /// [default: the fewest whose complete separation reaches --alpha over
    /// the gated metrics, 5 with the defaults].
    #[arg(long, value_name = "N", value_parser = parse_min_runs)]
    pub min_runs: Option<usize>,
    /// False-alarm rate of the whole gate: the one-sided Mann-Whitney U
    /// p-values of the run medians are Holm-adjusted over the gated metrics.
    #[arg(long, value_name = "P", default_value_t = DEFAULT_ALPHA, value_parser = parse_alpha)]
    pub alpha: f64,
    /// Increases smaller than this are never regressions, ms.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_MIN_DELTA_MS)]
    pub min_delta_ms: f64,
    /// Run-to-run noise measured by --calibrate: each threshold becomes at
    /// least what that noise reaches, and fewer runs per side are accepted.
    #[arg(long, value_name = "FILE", conflicts_with = "calibrate")]
    pub calibration: Option<PathBuf>,
    /// Measure run-to-run noise from A/A run sets (each DIR: runs recorded
    /// without any change) and write a calibration file (-o) instead of
    /// gating.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["baseline", "candidate"])]
    pub calibrate: Vec<PathBuf>,
    /// Where --calibrate writes the calibration file (`-`: stdout)
    /// [default: stdout].
    #[arg(short = 'o', long, value_name = "FILE", requires = "calibrate")]
    pub output: Option<PathBuf>,
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
    /// Label of the baseline in the report [default: kernel release and scenario].
    #[arg(long, value_name = "LABEL")]
    pub label_baseline: Option<String>,
    /// Label of the candidate in the report [default: kernel release and scenario].
    #[arg(long, value_name = "LABEL")]
    pub label_candidate: Option<String>,
}

fn gate_help() -> String {
    format!(
        "{}\n\nThe statistical unit is the run (one run file: one `reaper record` invocation or VM \
boot), summarised by the median of its clean episodes (lost mrelease races, partial episodes \
and episodes with data loss are left out). A metric regresses when its candidate median exceeds \
the baseline median by more than its threshold (with --calibration: by more than the larger of \
the threshold and the measured noise) and by at least --min-delta-ms, and a one-sided \
Mann-Whitney U test of the run medians, Holm-adjusted over the gated metrics, gives p < --alpha. \
Exit status: 0 pass, 1 regression, 2 usage error, unreadable or incomparable runs, or too few \
runs.",
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

/// At least 3: with 2 vs 2 runs the smallest one-sided p is 1/6, so no
/// regression could ever reach significance at a useful level (the level
/// actually used is checked in [`run`]).
fn parse_min_runs(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if n >= 3 => Ok(n),
        _ => Err(format!("{raw:?} is not a whole number of at least 3")),
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

/// `--calibrate DIR...`: measures the noise and writes the file.
fn calibrate(args: &GateArgs) -> anyhow::Result<i32> {
    let mut raws: Vec<Vec<(PathBuf, serde_json::Value)>> = Vec::new();
    for dir in &args.calibrate {
        let raw = compare::load::read_raw(dir).map_err(|source| CompareError::Load {
            side: "A/A set",
            source,
        })?;
        if let Some(first) = raws.first() {
            compare::comparable::check_schema(first.as_slice(), &raw)?;
        }
        raws.push(raw);
    }
    let mut sets = Vec::new();
    for (dir, raw) in args.calibrate.iter().zip(raws) {
        sets.push(
            compare::load::decode(dir, raw).map_err(|source| CompareError::Load {
                side: "A/A set",
                source,
            })?,
        );
    }
    let cal = calibration::estimate(&sets)?;
    let text = serde_json::to_string_pretty(&cal)? + "\n";
    match &args.output {
        Some(path) if !super::stdout::is_dash(path) => std::fs::write(path, &text)
            .with_context(|| format!("{}: cannot write the calibration file", path.display()))?,
        _ => print!("{text}"),
    }
    eprint!("reaper gate: {}", cal.summary());
    Ok(0)
}

/// The gate's settings from the flags.
fn options(args: &GateArgs) -> anyhow::Result<GateOptions> {
    let gated = match &args.max_regression {
        Some(spec) => spec.0.clone(),
        None => spec::parse("").expect("the default SPEC parses"),
    };
    let calibration = match &args.calibration {
        Some(path) => Some(CalibrationUse {
            path: path.display().to_string(),
            calibration: Calibration::read(path)?,
        }),
        None => None,
    };
    let opts = GateOptions {
        gated,
        min_runs: args.min_runs,
        alpha: args.alpha,
        min_delta_ms: args.min_delta_ms,
        calibration,
    };
    let least = min_runs(opts.level());
    if let Some(n) = args.min_runs.filter(|n| *n < least) {
        anyhow::bail!(
            "--min-runs {n} is too few: with {n} against {n} runs no regression can reach one-sided p < {} over {} gated metrics; use {least} or more",
            opts.alpha,
            opts.gated.len()
        );
    }
    Ok(opts)
}

/// Runs the gate (or the calibration); returns 0 or 1 (errors are exit 2
/// at the binary's edge).
pub fn run(args: &GateArgs) -> anyhow::Result<i32> {
    if !args.calibrate.is_empty() {
        return calibrate(args);
    }
    let (Some(baseline), Some(candidate)) = (&args.baseline, &args.candidate) else {
        anyhow::bail!("--baseline and --candidate are required (or --calibrate DIR...)");
    };
    let opts = options(args)?;
    let pair = compare::load_pair(("baseline", baseline), ("candidate", candidate), args.force)?;
    check_runs(&pair.a, &pair.b, &opts)?;
    let labels = DiffOptions {
        label_a: args.label_baseline.clone(),
        label_b: args.label_candidate.clone(),
        ..DiffOptions::default()
    };
    let header = compare::diff::header(&pair.a, &pair.b, pair.notes, &labels);
    let report = evaluate(&pair.a, &pair.b, header, &opts);
    let markdown = gate_render::markdown(&report);
    if let Some(path) = &args.markdown {
        crate::output::write_file(path, markdown.as_bytes())
            .context("cannot write the markdown summary")?;
    }
    if let Some(path) = &args.junit {
        crate::output::write_file(path, gate_render::junit(&report).as_bytes())
            .context("cannot write the JUnit XML")?;
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
