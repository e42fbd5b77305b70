//! Was a comparison recorded so that drift cancels: how the two sides were
//! placed in time ([`Design`]) and each side's trend against recording time
//! ([`Trend`]), as `reaper diff --json` and `reaper gate --json` write them.
//!
//! reaper-cli's `compare::design` tests and words them; its module doc says
//! why a blocked design or a trend inside a side breaks the run-level test.

use serde::{Deserialize, Serialize};

/// How the two sides were placed in time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Design {
    /// The sides' recording times interleave: drift hits both alike.
    Interleaved,
    /// Every run of one side was recorded before every run of the other.
    Blocked {
        /// Side A (the baseline) came first.
        a_first: bool,
        /// Runs per side.
        runs: (usize, usize),
        /// Time from the first side's last run to the other's first, ms.
        gap_ms: u64,
    },
    /// The times cannot say: both sides' runs share one start time (copies
    /// of the same files), or no run has a start time.
    Unknown {
        /// Why.
        why: String,
    },
}

/// Kendall's rank correlation of `y` against `x`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Kendall {
    /// Concordant minus discordant pairs.
    pub s: i64,
    /// Kendall's tau-b.
    pub tau: f64,
    /// Two-sided p-value of no association.
    pub p: f64,
}

/// A side's runs in time against their values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trend {
    /// Runs with a value of any compared metric.
    pub runs: usize,
    /// Kendall's test of the composite of the run medians against time.
    pub test: Kendall,
    /// `test.p`, Holm-adjusted over the two sides.
    pub p_adjusted: f64,
    /// The metric that moved most with time (largest |tau|), with its first
    /// and last runs' medians in time order, ms.
    pub strongest: Option<MetricMove>,
}

/// One metric's first and last run medians in time order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricMove {
    /// Metric name.
    pub metric: String,
    /// Median of the earliest run, ms.
    pub first_ms: f64,
    /// Median of the latest run, ms.
    pub last_ms: f64,
}

/// The design and both sides' trends, with the warnings a verdict prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DesignCheck {
    /// How the sides were placed in time.
    pub design: Design,
    /// Side A's (the baseline's) trend, when it has 3 runs or more.
    pub trend_a: Option<Trend>,
    /// Side B's (the candidate's).
    pub trend_b: Option<Trend>,
    /// The significance level of the trend warning.
    pub alpha: f64,
}
