//! The comparison, done by this host's reaper: `reaper diff` (the text
//! tables, differential flame graphs, and its JSON for the paste block),
//! `reaper gate` (the verdict), and `reaper gate --calibrate` on each side
//! alone (each side's run-to-run noise). reaper-lab reads their JSON with
//! the few fields it shows ([`DiffJson`], [`Noise`]) and computes no
//! statistic of its own.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

/// The parts of `reaper diff --json` the paste block shows.
#[derive(Debug, Clone, Deserialize)]
pub struct DiffJson {
    pub metrics: Vec<MetricRow>,
    pub exact: Exact,
}

/// A summary metric.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricRow {
    /// Name, as in `reaper gate --max-regression` (and the calibration).
    pub metric: String,
    pub label: String,
    /// Which part of its summary row.
    pub part: Part,
    pub comparison: Comparison,
}

/// The part of a summary row a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Total,
    ExitMmap,
    Reaper,
    /// A part this reaper-lab does not know yet.
    #[serde(other)]
    Other,
}

impl MetricRow {
    /// The row's label, with the part for the exit_mmap and reaper parts.
    pub fn display(&self) -> String {
        match self.part {
            Part::Total => self.label.clone(),
            Part::ExitMmap => format!("{}: exit_mmap", self.label),
            Part::Reaper => format!("{}: reaper", self.label),
            Part::Other => format!("{} ({})", self.label, self.metric),
        }
    }
}

/// Exact function timing.
#[derive(Debug, Clone, Deserialize)]
pub struct Exact {
    #[serde(default)]
    pub not_measured: Option<String>,
    #[serde(default)]
    pub rows: Vec<ExactRow>,
}

/// One (context, function) timed exactly on both sides.
#[derive(Debug, Clone, Deserialize)]
pub struct ExactRow {
    pub context: String,
    pub function: String,
    pub comparison: Comparison,
}

/// Both sides of a quantity.
#[derive(Debug, Clone, Deserialize)]
pub struct Comparison {
    pub a: SideValue,
    pub b: SideValue,
    #[serde(default)]
    pub delta_pct: Option<f64>,
    #[serde(default)]
    pub test: Option<Test>,
}

/// One side's value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SideValue {
    /// Median over episodes, ms.
    Measured {
        median: f64,
        runs: usize,
    },
    NotMeasured {
        why: String,
    },
}

/// The significance test of the run medians.
#[derive(Debug, Clone, Deserialize)]
pub struct Test {
    pub p_two_sided: f64,
}

/// The parts of a `reaper gate --calibrate` file the block shows.
#[derive(Debug, Clone, Deserialize)]
pub struct Noise {
    pub metrics: Vec<MetricNoise>,
}

/// One metric's run-to-run noise on one side.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricNoise {
    pub metric: String,
    /// Median of the run medians, ms.
    pub median_ms: f64,
    /// Spread of run medians, fraction of the median.
    pub run_sd: f64,
    #[serde(default)]
    pub not_measured: Option<String>,
}

impl Noise {
    /// `metric`'s run-to-run noise in ms (the sd of its run medians), when
    /// measured.
    pub fn sd_ms(&self, metric: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.metric == metric && m.not_measured.is_none())
            .map(|m| m.run_sd * m.median_ms)
    }
}

/// Everything the comparison produced.
pub struct Compared {
    /// `reaper diff`'s tables.
    pub diff_text: String,
    pub diff: DiffJson,
    /// `reaper gate`'s markdown and one-line verdict.
    pub gate: String,
    pub verdict: String,
    /// Each side's noise, or why it is not known.
    pub noise: (Result<Noise, NoiseError>, Result<Noise, NoiseError>),
}

/// Runs the comparison of `a` against `b` with `reaper`, writing
/// diff.txt, flames/, gate.md and gate.junit.xml into `out`.
pub fn compare(
    reaper: &Path,
    a: &Path,
    b: &Path,
    labels: (&str, &str),
    out: &Path,
) -> Result<Compared> {
    let diff_text = run(
        Command::new(reaper)
            .arg("diff")
            .arg(a)
            .arg(b)
            .args(["--label-a", labels.0, "--label-b", labels.1, "-o"])
            .arg(out.join("flames")),
        "reaper diff",
    )?;
    std::fs::write(out.join("diff.txt"), &diff_text).context("writing diff.txt")?;
    let json = run(
        Command::new(reaper).arg("diff").arg(a).arg(b).arg("--json"),
        "reaper diff --json",
    )?;
    let diff: DiffJson = serde_json::from_str(&json)
        .context("reading reaper diff --json (fields reaper-lab shows)")?;
    let (gate, verdict) = gate(reaper, a, b, labels, out)?;
    let noise = (calibrate(reaper, a), calibrate(reaper, b));
    Ok(Compared {
        diff_text,
        diff,
        gate,
        verdict,
        noise,
    })
}

/// Runs `cmd`; its stdout, or an error with its stderr.
fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let output = cmd.output().with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs the gate; returns its markdown and a one-line verdict.
fn gate(
    reaper: &Path,
    a: &Path,
    b: &Path,
    labels: (&str, &str),
    out: &Path,
) -> Result<(String, String)> {
    let output = Command::new(reaper)
        .arg("gate")
        .arg("--baseline")
        .arg(a)
        .arg("--candidate")
        .arg(b)
        .args(["--label-baseline", labels.0, "--label-candidate", labels.1])
        .arg("--markdown")
        .arg(out.join("gate.md"))
        .arg("--junit")
        .arg(out.join("gate.junit.xml"))
        .output()
        .context("running reaper gate")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let verdict = match output.status.code() {
        Some(0) => format!(
            "PASS (no gated metric regressed from {} to {})",
            labels.0, labels.1
        ),
        Some(1) => format!(
            "FAIL (a gated metric regressed from {} to {}): {}",
            labels.0,
            labels.1,
            stderr.trim()
        ),
        _ => format!("not judged (reaper gate: {})", stderr.trim()),
    };
    Ok((text, verdict))
}

/// One side's run-to-run noise (`reaper gate --calibrate DIR`: its runs as
/// one A/A set), or why it is not known.
fn calibrate(reaper: &Path, side: &Path) -> Result<Noise, NoiseError> {
    let json = run(
        Command::new(reaper).args(["gate", "--calibrate"]).arg(side),
        "reaper gate --calibrate",
    )
    .map_err(NoiseError::Calibrate)?;
    serde_json::from_str(&json).map_err(NoiseError::Read)
}

/// Why a side's run-to-run noise is not known (the report says so and goes
/// on).
#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    /// `reaper gate --calibrate` failed; the error, with its causes.
    #[error("{0:#}")]
    Calibrate(anyhow::Error),
    /// Its output is not the calibration reaper-lab reads.
    #[error("reading reaper gate --calibrate")]
    Read(#[source] serde_json::Error),
}

impl NoiseError {
    /// The error and its causes on one line, as the report prints it.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}
