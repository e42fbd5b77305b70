//! `reaper gate --calibrate`'s file: run-to-run noise measured from A/A
//! run sets, kept beside a CI baseline and read by `reaper gate
//! --calibration FILE`. reaper-cli's `compare::calibration` estimates it,
//! reads it (bounded, through the input guard) and says what noise allows;
//! its module doc gives the model.

use serde::{Deserialize, Serialize};

use super::metrics::Metric;

/// The calibration file's format version.
pub const VERSION: u32 = 1;
/// A calibration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// [`VERSION`].
    pub version: u32,
    /// The A/A run sets it was measured from (as given).
    pub sources: Vec<String>,
    /// Run sets.
    pub sets: usize,
    /// Runs over all sets.
    pub runs: usize,
    /// Kernel releases seen (distinct).
    pub kernels: Vec<String>,
    /// Scenario descriptions seen (distinct).
    pub scenarios: Vec<String>,
    /// One entry per metric.
    pub metrics: Vec<MetricNoise>,
}

/// One metric's noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricNoise {
    /// Metric name (as in `--max-regression`).
    pub metric: String,
    /// Median of all run medians, ms.
    pub median_ms: f64,
    /// Spread of run medians within a set, fraction of the median.
    pub run_sd: f64,
    /// Spread of whole sets beyond their runs, fraction of the median.
    pub set_sd: f64,
    /// Runs that measured it.
    pub runs: usize,
    /// Sets that measured it.
    pub sets: usize,
    /// Why it could not be estimated, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_measured: Option<String>,
}

impl Calibration {
    /// The noise of a metric, when calibrated.
    pub fn get(&self, metric: &Metric) -> Option<&MetricNoise> {
        self.metrics.iter().find(|m| m.metric == metric.name)
    }
}
