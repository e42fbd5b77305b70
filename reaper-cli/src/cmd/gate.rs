//! `reaper gate --baseline B --candidate C`: fail CI when teardown got
//! slower. Exit 0: no gated metric regressed; 1: a regression; 2: usage
//! error, unreadable or incomparable runs, or too few runs. Under GitHub
//! Actions every exit appends to the job summary, 1 and 2 print `::error`
//! lines naming why, recording problems print `::warning` lines, and
//! `--junit` always writes a file (a refusal is an `error` element).
//! `reaper gate --calibrate DIR... -o FILE` measures run-to-run noise from
//! A/A run sets instead; `reaper gate --plan PCT` says how many runs a side
//! would flag a PCT change.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::compare::calibration;
use crate::compare::gate::{
    CalibrationUse, DEFAULT_ALPHA, DEFAULT_MIN_DELTA_MS, GateOptions, check_runs, evaluate,
};
use crate::compare::runlevel::min_runs;
use crate::compare::spec::{self, Gated};
use crate::compare::{self, diff::DiffOptions, gate_render};
use crate::console::{note, note_raw, say, sayln};

/// Arguments of `reaper gate`.
#[derive(Clone, Debug, Args)]
#[command(
    after_help = gate_help(),
    override_usage = "reaper gate --baseline <PATH> --candidate <PATH> [OPTIONS]\n       reaper gate --calibrate <DIR>... [-o <FILE>]"
)]
pub struct GateArgs {
    /// The baseline: a run.json or a directory of runs.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["calibrate", "plan"])]
    pub baseline: Option<PathBuf>,
    /// The candidate: a run.json or a directory of runs.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["calibrate", "plan"])]
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
    /// Instead of gating: how many runs per side flag a change of PCT
    /// percent with 90% power, at the noise of --calibration FILE or of the
    /// --baseline runs (--candidate is not needed).
    #[arg(long, value_name = "PCT", value_parser = super::diff::parse_pct, conflicts_with = "calibrate")]
    pub plan: Option<f64>,
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
    /// Largest share of an episode's samples without a kernel stack, in
    /// percent, for which its sampled metrics are still used (its latencies
    /// are used whatever its stack loss).
    #[arg(long, value_name = "PCT", default_value_t = crate::compare::clean::DEFAULT_MAX_STACK_LOSS_PCT, value_parser = super::diff::parse_pct)]
    pub max_stack_loss: f64,
    /// Equivalence margin, percent of the baseline: a metric whose shift
    /// (Hodges-Lehmann, run medians) has its 95% interval inside ±PCT is
    /// reported as "no change beyond ±PCT%".
    #[arg(long, value_name = "PCT", default_value_t = crate::compare::gate::DEFAULT_EQUIVALENCE_PCT, value_parser = super::diff::parse_pct)]
    pub equivalence: f64,
    /// What may be read.
    #[command(flatten)]
    pub input: super::InputArgs,
}

fn gate_help() -> String {
    format!(
        "{}\n\nThe statistical unit is the run (one run file: one `reaper record` invocation or VM \
boot), summarised by the median of the episodes a metric may use (lost mrelease races and \
partial episodes are left out of every metric, a loss only out of the metrics it can bias: a lost \
stack out of the sampled ones past --max-stack-loss, a full timeline ring out of the latencies). A metric regresses when its candidate median exceeds \
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
fn parse_spec(raw: &str) -> Result<MaxRegression, spec::SpecError> {
    spec::parse(raw).map(MaxRegression)
}

/// A `--min-runs` or `--alpha` value out of its range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GateFlagError {
    /// `--min-runs` below 3 or not a whole number.
    #[error("{raw:?} is not a whole number of at least 3")]
    MinRuns {
        /// The value as given.
        raw: String,
    },
    /// `--alpha` not strictly between 0 and 1.
    #[error("{raw:?} is not a probability between 0 and 1 (exclusive)")]
    Alpha {
        /// The value as given.
        raw: String,
    },
}

/// At least 3: with 2 vs 2 runs the smallest one-sided p is 1/6, so no
/// regression could ever reach significance at a useful level (the level
/// actually used is checked in [`run`]).
fn parse_min_runs(raw: &str) -> Result<usize, GateFlagError> {
    match raw.parse::<usize>() {
        Ok(n) if n >= 3 => Ok(n),
        _ => Err(GateFlagError::MinRuns {
            raw: raw.to_owned(),
        }),
    }
}

fn parse_alpha(raw: &str) -> Result<f64, GateFlagError> {
    match raw.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err(GateFlagError::Alpha {
            raw: raw.to_owned(),
        }),
    }
}

/// `--calibrate DIR...`: measures the noise and writes the file.
fn calibrate(args: &GateArgs) -> anyhow::Result<i32> {
    let sides: Vec<(&'static str, &Path)> = args
        .calibrate
        .iter()
        .map(|dir| ("A/A set", dir.as_path()))
        .collect();
    let sets = compare::load_sets(&sides, &args.input.budget())?;
    let cal = calibration::estimate(&sets, &policy(args))?;
    let text = serde_json::to_string_pretty(&cal)? + "\n";
    match &args.output {
        Some(path) if !super::stdout::is_dash(path) => {
            crate::output::write_file(path, text.as_bytes())
                .context("cannot write the calibration file")?;
        }
        _ => say!("{text}"),
    }
    note_raw!("reaper gate: {}", calibration::summary(&cal));
    Ok(0)
}

/// Which losses leave an episode out of which metrics.
fn policy(args: &GateArgs) -> crate::compare::clean::LossPolicy {
    crate::compare::clean::LossPolicy {
        max_stack_loss_pct: args.max_stack_loss,
    }
}

/// The gate's settings from the flags.
fn options(args: &GateArgs) -> anyhow::Result<GateOptions> {
    let gated = match &args.max_regression {
        Some(spec) => spec.0.clone(),
        None => spec::defaults(),
    };
    let calibration = match &args.calibration {
        Some(path) => Some(CalibrationUse {
            path: path.display().to_string(),
            calibration: calibration::read(path)?,
        }),
        None => None,
    };
    let opts = GateOptions {
        gated,
        min_runs: args.min_runs,
        alpha: args.alpha,
        min_delta_ms: args.min_delta_ms,
        calibration,
        policy: policy(args),
        equivalence_pct: args.equivalence,
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

/// `--plan PCT`: the runs per side that flag a PCT change.
fn plan(args: &GateArgs, change_pct: f64) -> anyhow::Result<i32> {
    let opts = options(args)?;
    let baseline = match (&args.baseline, &opts.calibration) {
        (Some(path), _) => Some(compare::load_set("baseline", path, &args.input.budget())?),
        (None, Some(_)) => None,
        (None, None) => anyhow::bail!(
            "--plan needs the noise: a --baseline of 3 or more runs, or --calibration FILE"
        ),
    };
    let plan = compare::plan::plan(baseline.as_ref(), &opts, change_pct);
    if args.json {
        sayln!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        say!("{}", compare::plan::markdown(&plan));
    }
    Ok(0)
}

/// Runs the gate, the calibration or the plan; returns 0 or 1 (errors are
/// exit 2 at the binary's edge). A gate that cannot judge still writes its
/// outputs, saying why.
pub fn run(args: &GateArgs) -> anyhow::Result<i32> {
    if !args.calibrate.is_empty() {
        return calibrate(args);
    }
    let actions = crate::ci::github::Actions::from_env();
    let outcome = match args.plan {
        Some(change) => plan(args, change),
        None => gate(args, &actions),
    };
    if let Err(err) = &outcome {
        refuse(args, &actions, err);
    }
    outcome
}

/// The outputs of a gate that could not judge: `--markdown`, `--junit`,
/// the job summary and an `::error` line, each saying why. A failure to
/// write one is reported and does not hide the refusal.
fn refuse(args: &GateArgs, actions: &crate::ci::github::Actions, err: &anyhow::Error) {
    let refusal = gate_render::Refusal {
        reason: format!("{err:#}"),
        baseline: args.baseline.as_ref().map(|p| p.display().to_string()),
        candidate: args.candidate.as_ref().map(|p| p.display().to_string()),
    };
    let markdown = gate_render::refusal_markdown(&refusal);
    let mut problems = Vec::new();
    if let Some(path) = &args.markdown
        && let Err(e) = crate::output::write_file(path, markdown.as_bytes())
    {
        problems.push(format!("cannot write the markdown summary: {e:#}"));
    }
    if let Some(path) = &args.junit
        && let Err(e) =
            crate::output::write_file(path, gate_render::refusal_junit(&refusal).as_bytes())
    {
        problems.push(format!("cannot write the JUnit XML: {e:#}"));
    }
    if let Err(e) = actions.append_summary(&markdown) {
        problems.push(format!(
            "GITHUB_STEP_SUMMARY: cannot append the summary: {e}"
        ));
    }
    if let Some(command) = actions.refusal_command(&refusal.reason) {
        actions.write_commands(&[command]);
    }
    for problem in problems {
        note!("reaper gate: {problem}");
    }
}

/// The value of `--NAME VALUE` or `--NAME=VALUE` in raw arguments.
fn raw_flag(args: &[std::ffi::OsString], name: &str) -> Option<PathBuf> {
    let long = format!("--{name}");
    let with_eq = format!("{long}=");
    let mut it = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = it.next() {
        if arg == long {
            return it.next().map(|v| PathBuf::from(v.as_ref()));
        }
        if let Some(v) = arg.strip_prefix(&with_eq) {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// A `reaper gate` command line clap refused (exit 2): its outputs still
/// say so, as [`run`]'s refusals do (`--junit`/`--markdown` found in the raw
/// arguments, the job summary, an `::error` line).
pub fn refuse_unparsed(args: &[std::ffi::OsString], err: &anyhow::Error) {
    let parsed = GateArgs {
        baseline: raw_flag(args, "baseline"),
        candidate: raw_flag(args, "candidate"),
        max_regression: None,
        min_runs: None,
        alpha: DEFAULT_ALPHA,
        min_delta_ms: DEFAULT_MIN_DELTA_MS,
        calibration: None,
        calibrate: Vec::new(),
        output: None,
        plan: None,
        markdown: raw_flag(args, "markdown"),
        junit: raw_flag(args, "junit"),
        json: false,
        force: false,
        label_baseline: None,
        label_candidate: None,
        max_stack_loss: crate::compare::clean::DEFAULT_MAX_STACK_LOSS_PCT,
        equivalence: crate::compare::gate::DEFAULT_EQUIVALENCE_PCT,
        input: super::InputArgs {
            max_input: crate::input::MaxInput::default(),
        },
    };
    refuse(&parsed, &crate::ci::github::Actions::from_env(), err);
}

/// The gate proper.
fn gate(args: &GateArgs, actions: &crate::ci::github::Actions) -> anyhow::Result<i32> {
    let (Some(baseline), Some(candidate)) = (&args.baseline, &args.candidate) else {
        anyhow::bail!("--baseline and --candidate are required (or --calibrate DIR...)");
    };
    let opts = options(args)?;
    let pair = compare::load_pair_within(
        ("baseline", baseline),
        ("candidate", candidate),
        args.force,
        &args.input.budget(),
    )?;
    check_runs(&pair.a, &pair.b, &opts)?;
    let labels = DiffOptions {
        label_a: args.label_baseline.clone(),
        label_b: args.label_candidate.clone(),
        policy: opts.policy,
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
        say!("{}", gate_render::json(&report)?);
    } else {
        say!("{markdown}");
    }
    for v in report.regressions() {
        note!("reaper gate: {}", gate_render::regression_line(v));
    }
    let warnings = report.warnings();
    for w in &warnings {
        note!("reaper gate: warning: {w}");
    }
    actions.append_summary(&markdown).with_context(
        || "GITHUB_STEP_SUMMARY: cannot append the markdown summary to the job summary file",
    )?;
    for command in actions
        .error_commands(&report)
        .into_iter()
        .chain(actions.warning_commands(&warnings))
    {
        actions.write_commands(&[command]);
    }
    Ok(report.exit_code())
}
