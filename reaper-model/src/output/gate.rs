//! `reaper gate --json`: the verdict on each gated metric, the settings and
//! noise floor that judged it, and the sides ([`SideInfo`], shared with
//! `reaper diff`). reaper-cli's `compare::gate` computes it and
//! `compare::gate_render` writes its markdown and JUnit forms.

use serde::{Deserialize, Serialize};

use super::calibration::Calibration;
use super::clean::LossPolicy;
use super::design::DesignCheck;
use super::diff::SideInfo;
use super::metrics::Metric;
use super::quantity::{Comparison, MannWhitney};

/// A calibration and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CalibrationUse {
    /// The file given.
    pub path: String,
    /// Its contents; not in `--json` (the noise floor sums them up), so
    /// empty in a decoded report.
    #[serde(skip)]
    pub calibration: Calibration,
}

/// Gate settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateOptions {
    /// Gated metrics and thresholds.
    pub gated: Vec<Gated>,
    /// Runs required on each side for the significance test; `None`: the
    /// fewest that can reach significance ([`Self::runs_needed`]).
    pub min_runs: Option<usize>,
    /// False-alarm rate of the whole gate.
    pub alpha: f64,
    /// Increases below this are never regressions, ms.
    pub min_delta_ms: f64,
    /// Measured run-to-run noise, when given.
    pub calibration: Option<CalibrationUse>,
    /// Which losses leave an episode out of which metrics.
    pub policy: LossPolicy,
    /// Equivalence margin, percent of the baseline.
    pub equivalence_pct: f64,
}

impl GateOptions {
    /// The per-metric level: `alpha` over the gated metrics.
    pub fn level(&self) -> f64 {
        self.alpha / self.gated.len().max(1) as f64
    }

    /// Runs per side from which complete separation of the run medians is
    /// significant at [`Self::level`] (or `--min-runs`).
    pub fn runs_needed(&self) -> usize {
        self.min_runs.unwrap_or_else(|| min_runs(self.level()))
    }

    /// What judges the noise.
    pub fn noise_floor(&self) -> NoiseFloor {
        match &self.calibration {
            Some(c) => NoiseFloor::Calibrated {
                file: c.path.clone(),
                sets: c.calibration.sets,
                runs: c.calibration.runs,
                min_delta_ms: self.min_delta_ms,
            },
            None => NoiseFloor::BuiltIn {
                min_delta_ms: self.min_delta_ms,
                runs_needed: self.runs_needed(),
            },
        }
    }
}

/// What judges run-to-run noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoiseFloor {
    /// No calibration: the built-in floor, and the sides' own runs.
    BuiltIn {
        /// Increases below this never fail, ms.
        min_delta_ms: f64,
        /// Runs per side the test needs.
        runs_needed: usize,
    },
    /// A calibration file.
    Calibrated {
        /// The file.
        file: String,
        /// A/A run sets it was measured from.
        sets: usize,
        /// Runs over those sets.
        runs: usize,
        /// Increases below this never fail, ms.
        min_delta_ms: f64,
    },
}

impl std::fmt::Display for NoiseFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoiseFloor::BuiltIn {
                min_delta_ms,
                runs_needed,
            } => write!(
                f,
                "built-in (no calibration file): increases under {min_delta_ms} ms never fail, and run-to-run noise is judged from each side's own runs ({runs_needed} or more per side)"
            ),
            NoiseFloor::Calibrated {
                file,
                sets,
                runs,
                min_delta_ms,
            } => write!(
                f,
                "calibration file {file} ({sets} A/A run sets, {runs} runs): each threshold is at least what that noise reaches at the per-metric level; increases under {min_delta_ms} ms never fail"
            ),
        }
    }
}

/// The statistical unit, for reports.
pub const UNIT: &str = "run (one run file: one reaper record invocation or VM boot); each run summarised by the median of the episodes a metric may use (lost races and partial episodes are left out of every metric, a loss only out of the metrics it can bias)";

/// A gated metric's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Within its threshold (or below the floor).
    Pass,
    /// Over its threshold, with significance.
    Regressed,
    /// Over its threshold, but not significantly: within the noise.
    WithinNoise,
    /// Significantly smaller on the candidate.
    Improved,
    /// Not evaluated, and why.
    Skipped {
        /// Why.
        why: String,
    },
}

/// One gated metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verdict {
    /// Metric name.
    pub metric: String,
    /// What it measures.
    pub description: String,
    /// Its threshold.
    pub threshold: Threshold,
    /// The largest allowed increase, ms: the larger of the threshold's and
    /// the calibrated noise's (when the baseline was measured).
    pub allowed_ms: Option<f64>,
    /// What calibrated noise alone reaches, ms (with a calibration).
    pub noise_ms: Option<f64>,
    /// Baseline (a) and candidate (b).
    pub comparison: Comparison,
    /// The one-sided test of the run medians, when both sides were measured.
    pub test: Option<MannWhitney>,
    /// `test.p_greater`, Holm-adjusted over the gated metrics.
    pub p_adjusted: Option<f64>,
    /// The outcome.
    pub status: Status,
    /// The equivalence margin (percent) when the shift's 95% interval lies
    /// inside it: no change beyond ±margin. `None` when it does not, or no
    /// interval exists.
    pub no_change_beyond_pct: Option<f64>,
}

/// The gate's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateReport {
    /// The baseline.
    pub baseline: SideInfo,
    /// The candidate.
    pub candidate: SideInfo,
    /// What differs between the sides (allowed, shown).
    pub differences: Vec<String>,
    /// Comparability notes.
    pub notes: Vec<String>,
    /// Settings used.
    pub options: GateOptions,
    /// The statistical unit ([`UNIT`]).
    pub unit: String,
    /// What judged the noise.
    pub noise_floor: NoiseFloor,
    /// One per gated metric.
    pub verdicts: Vec<Verdict>,
    /// Were the sides recorded so that drift cancels (alternated, no trend
    /// inside a side)?
    pub design: DesignCheck,
    /// The design check's warnings, naming the sides "baseline" and
    /// "candidate" (empty when the recording looks sound).
    pub warnings: Vec<String>,
}

impl GateReport {
    /// The verdicts that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts
            .iter()
            .filter(|v| v.status == Status::Regressed)
    }

    /// 0 when nothing regressed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.regressions().next().is_some())
    }

    /// The drift and design warnings, naming the sides "baseline" and
    /// "candidate".
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// How much a metric may grow.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Threshold {
    /// Percent of the baseline median.
    Percent(f64),
    /// Milliseconds.
    Ms(f64),
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Percent(p) => write!(f, "{p}%"),
            Threshold::Ms(ms) => write!(f, "{ms}ms"),
        }
    }
}

impl Threshold {
    /// The largest allowed increase over `baseline_median`, ms.
    pub fn allowed_ms(self, baseline_median: f64) -> f64 {
        match self {
            Threshold::Percent(p) => p / 100.0 * baseline_median,
            Threshold::Ms(ms) => ms,
        }
    }
}

/// A gated metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gated {
    /// The metric.
    #[serde(deserialize_with = "super::metrics::deserialize_metric")]
    pub metric: &'static Metric,
    /// Its threshold.
    pub threshold: Threshold,
}

/// C(n, k) as a float (exact for the small n used here).
fn choose(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The fewest runs per side (equal sides) for which complete separation of
/// the run medians reaches one-sided p < `level`: the smallest R with
/// `1 / C(2R, R) < level`. 4 at 0.05, 5 at 0.01.
pub fn min_runs(level: f64) -> usize {
    (1..64)
        .find(|&r| 1.0 / choose(2 * r, r) < level)
        .unwrap_or(64)
}
