//! One compared quantity as `reaper diff --json` and `reaper gate --json`
//! write it: both sides' medians and ranges over episodes ([`Side`]), the
//! delta, the shift of the run medians with its confidence interval
//! ([`Shift`], [`RunShift`]) and the Mann-Whitney test of the run medians
//! ([`MannWhitney`]).
//!
//! reaper-cli's `compare::quantity`, `compare::shift` and `compare::stats`
//! compute them; the types, and what can be read off them without
//! computing, live here.

use serde::{Deserialize, Serialize};

use super::clean::Coverage;

/// Runs per side below which no significance is claimed: with 3 runs
/// against 3, even complete separation of the run medians is p = 0.1
/// two-sided; 4 against 4 reaches 0.029.
pub const MIN_RUNS_FOR_TEST: usize = 4;

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Side {
    /// Measured in `n` episodes of `runs` runs.
    Measured {
        /// Episodes.
        n: usize,
        /// Runs (the statistical unit).
        runs: usize,
        /// Median, ms.
        median: f64,
        /// Minimum, ms.
        min: f64,
        /// Maximum, ms.
        max: f64,
    },
    /// Not measured, and why.
    NotMeasured {
        /// Why.
        why: String,
    },
}

impl Side {
    /// The median, when measured.
    pub fn median(&self) -> Option<f64> {
        match self {
            Side::Measured { median, .. } => Some(*median),
            Side::NotMeasured { .. } => None,
        }
    }

    /// Episodes measured (0 when not measured).
    pub fn n(&self) -> usize {
        match self {
            Side::Measured { n, .. } => *n,
            Side::NotMeasured { .. } => 0,
        }
    }

    /// Runs measured (0 when not measured).
    pub fn runs(&self) -> usize {
        match self {
            Side::Measured { runs, .. } => *runs,
            Side::NotMeasured { .. } => 0,
        }
    }
}

/// Both sides of one quantity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Comparison {
    /// Side A (diff) or the baseline (gate).
    pub a: Side,
    /// Side B (diff) or the candidate (gate).
    pub b: Side,
    /// median(B) − median(A), ms.
    pub delta_ms: Option<f64>,
    /// The delta relative to median(A), percent; `None` when median(A) is 0.
    pub delta_pct: Option<f64>,
    /// Mann-Whitney U of B's run medians against A's, when both sides
    /// have [`MIN_RUNS_FOR_TEST`] runs or more.
    pub test: Option<MannWhitney>,
    /// How many episodes each side used, and why not the others.
    pub coverage: Coverages,
    /// The Hodges-Lehmann shift of B's run medians against A's, with its
    /// 95% interval when the runs allow one; `None` when a side has no run.
    pub shift: Option<RunShift>,
}

/// The shift of the run medians, in ms and relative to A.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunShift {
    /// Shift and interval, ms.
    pub ms: Shift,
    /// The median of A's run medians, ms: what the percentages are of.
    pub base_ms: f64,
    /// The estimate, percent of `base_ms` (`None` when that is 0).
    pub pct: Option<f64>,
    /// The interval, percent of `base_ms`.
    pub ci_pct: Option<(f64, f64)>,
}

/// Both sides' [`Coverage`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Coverages {
    /// Side A (the baseline).
    pub a: Coverage,
    /// Side B (the candidate).
    pub b: Coverage,
}

impl Comparison {
    /// The same comparison, saying how many episodes each side had and why
    /// some were not used (the values alone only know the used ones).
    pub fn covering(mut self, a: Coverage, b: Coverage) -> Self {
        self.coverage = Coverages { a, b };
        self
    }
}

/// How the p-values were computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact permutation distribution of the rank sum (ties included).
    Exact,
    /// Normal approximation with tie and continuity correction.
    Normal,
}

/// A Mann-Whitney U test of sample A against sample B.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MannWhitney {
    /// U of sample B: the number of (a, b) pairs with b > a, ties counting ½.
    /// `n_a · n_b / 2` when nothing changed; `n_a · n_b` when every B value
    /// exceeds every A value.
    pub u_b: f64,
    /// P(U_B ≥ observed) under the null: small when B is larger (slower).
    pub p_greater: f64,
    /// P(U_B ≤ observed): small when B is smaller (faster).
    pub p_less: f64,
    /// Two-sided p-value, `min(1, 2 · min(p_greater, p_less))`.
    pub p_two_sided: f64,
    /// How the p-values were computed.
    pub method: Method,
}

/// Confidence of the interval shown beside every compared row.
pub const CONFIDENCE: f64 = 0.95;

/// The shift of B against A, in the values' unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shift {
    /// Hodges-Lehmann estimate: the median of all pairwise differences.
    pub estimate: f64,
    /// The confidence interval, when the runs allow one.
    pub ci: Option<(f64, f64)>,
    /// Its exact coverage (`1 − 2·P(U ≤ C)`, at least [`CONFIDENCE`]).
    pub coverage: Option<f64>,
}

impl Shift {
    /// The interval relative to `base` (percent), when both exist and
    /// `base` is not 0.
    pub fn ci_pct(&self, base: f64) -> Option<(f64, f64)> {
        let (lo, hi) = self.ci?;
        (base != 0.0).then(|| (lo / base * 100.0, hi / base * 100.0))
    }

    /// Whether the interval lies inside ±`margin_pct` percent of `base`:
    /// no change beyond the margin, at the interval's confidence.
    pub fn within(&self, base: f64, margin_pct: f64) -> bool {
        self.ci_pct(base)
            .is_some_and(|(lo, hi)| lo >= -margin_pct && hi <= margin_pct)
    }
}
