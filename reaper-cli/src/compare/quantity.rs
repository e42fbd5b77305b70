//! One compared quantity: both sides' medians and ranges over episodes, the
//! delta, the shift of the run medians with its 95% confidence interval
//! ([`super::shift`]), and the significance test with the run as the unit
//! ([`super::runlevel`]) when both sides have enough runs.

use serde::Serialize;

use super::clean::Coverage;
use super::runlevel::{self, Grouped};
use super::shift::Shift;
use super::stats::{self, MannWhitney};

/// Runs per side below which no significance is claimed: with 3 runs
/// against 3, even complete separation of the run medians is p = 0.1
/// two-sided; 4 against 4 reaches 0.029.
pub const MIN_RUNS_FOR_TEST: usize = 4;

/// Two-sided significance level of `reaper diff`'s significance column.
pub const DIFF_ALPHA: f64 = 0.05;

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
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
    /// Summarises a side's runs; `why` is used when it has no value.
    pub fn of(runs: &Grouped, why: impl FnOnce() -> String) -> Self {
        let values = runlevel::flatten(runs);
        let values = values.as_slice();
        match (
            stats::median(values),
            stats::min(values),
            stats::max(values),
        ) {
            (Some(median), Some(min), Some(max)) => Side::Measured {
                n: values.len(),
                runs: runlevel::count(runs),
                median,
                min,
                max,
            },
            _ => Side::NotMeasured { why: why() },
        }
    }

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
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Coverages {
    /// Side A (the baseline).
    pub a: Coverage,
    /// Side B (the candidate).
    pub b: Coverage,
}

impl Comparison {
    /// Compares two sides' values (ms), grouped by run.
    pub fn new(
        a: &Grouped,
        b: &Grouped,
        why_a: impl FnOnce() -> String,
        why_b: impl FnOnce() -> String,
    ) -> Self {
        let (side_a, side_b) = (Side::of(a, why_a), Side::of(b, why_b));
        let delta_ms = side_a.median().zip(side_b.median()).map(|(a, b)| b - a);
        let delta_pct = side_a
            .median()
            .zip(delta_ms)
            .filter(|(a, _)| *a != 0.0)
            .map(|(a, d)| d / a * 100.0);
        let enough =
            runlevel::count(a) >= MIN_RUNS_FOR_TEST && runlevel::count(b) >= MIN_RUNS_FOR_TEST;
        let coverage = Coverages {
            a: Coverage::all(side_a.n()),
            b: Coverage::all(side_b.n()),
        };
        let (ma, mb) = (runlevel::run_medians(a), runlevel::run_medians(b));
        let shift = Shift::of(&ma, &mb)
            .zip(stats::median(&ma))
            .map(|(ms, base_ms)| RunShift {
                ms,
                base_ms,
                pct: (base_ms != 0.0).then(|| ms.estimate / base_ms * 100.0),
                ci_pct: ms.ci_pct(base_ms),
            });
        Comparison {
            a: side_a,
            b: side_b,
            delta_ms,
            delta_pct,
            test: if enough { runlevel::test(a, b) } else { None },
            coverage,
            shift,
        }
    }

    /// The same comparison, saying how many episodes each side had and why
    /// some were not used (the values alone only know the used ones).
    pub fn covering(mut self, a: Coverage, b: Coverage) -> Self {
        self.coverage = Coverages { a, b };
        self
    }

    /// The significance column's text.
    pub fn significance(&self) -> String {
        match (&self.test, self.delta_ms) {
            (_, None) => String::new(),
            (None, Some(_)) => format!("n/a (runs<{MIN_RUNS_FOR_TEST})"),
            (Some(t), Some(_)) if t.p_two_sided < DIFF_ALPHA => {
                let way = if t.p_greater < t.p_less {
                    "slower"
                } else {
                    "faster"
                };
                format!("significant: B {way} ({})", p_text(t.p_two_sided))
            }
            (Some(t), Some(_)) => {
                format!("no significant change ({})", p_text(t.p_two_sided))
            }
        }
    }
}

/// "p=0.04", or "p<0.001" for tiny values.
pub fn p_text(p: f64) -> String {
    let v = format_p(p);
    if v.starts_with('<') {
        format!("p{v}")
    } else {
        format!("p={v}")
    }
}

/// A p-value with two significant digits, or "<0.001".
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_owned()
    } else if p < 0.01 {
        format!("{p:.3}")
    } else {
        format!("{p:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value per run.
    fn runs(values: &[f64]) -> Vec<Vec<f64>> {
        values.iter().map(|v| vec![*v]).collect()
    }

    #[test]
    fn deltas_and_missing_sides() {
        let c = Comparison::new(&[vec![10.0, 12.0]], &[vec![15.0]], String::new, String::new);
        assert_eq!(c.delta_ms, Some(4.0));
        assert_eq!(c.delta_pct, Some(4.0 / 11.0 * 100.0));
        assert_eq!(c.test, None);
        assert_eq!(c.significance(), "n/a (runs<4)");
        assert_eq!((c.a.n(), c.a.runs()), (2, 1));
        let c = Comparison::new(&[], &[vec![1.0]], || "no lock probe".into(), String::new);
        assert_eq!(
            c.a,
            Side::NotMeasured {
                why: "no lock probe".into()
            }
        );
        assert_eq!(c.delta_ms, None);
        assert_eq!(c.significance(), "");
        let c = Comparison::new(&[vec![0.0]], &[vec![1.0]], String::new, String::new);
        assert_eq!((c.delta_ms, c.delta_pct), (Some(1.0), None));
    }

    #[test]
    fn significance_text() {
        let a = runs(&[10.0, 11.0, 12.0, 13.0, 14.0]);
        let b = runs(&[20.0, 21.0, 22.0, 23.0, 24.0]);
        let c = Comparison::new(&a, &b, String::new, String::new);
        assert_eq!(c.significance(), "significant: B slower (p=0.008)");
        let c = Comparison::new(&b, &a, String::new, String::new);
        assert_eq!(c.significance(), "significant: B faster (p=0.008)");
        let noisy = runs(&[13.0, 10.0, 14.0, 11.0, 12.0]);
        let c = Comparison::new(&a, &noisy, String::new, String::new);
        assert_eq!(c.significance(), "no significant change (p=1.00)");
    }

    #[test]
    fn significance_is_judged_between_runs_not_episodes() {
        // Five tight episodes in each of one run per side: no test at all.
        let a = vec![vec![10.0, 10.1, 10.2, 10.3, 10.4]];
        let b = vec![vec![20.0, 20.1, 20.2, 20.3, 20.4]];
        let c = Comparison::new(&a, &b, String::new, String::new);
        assert_eq!(c.test, None);
        assert_eq!(c.significance(), "n/a (runs<4)");
    }

    #[test]
    fn p_formatting() {
        assert_eq!(format_p(0.0001), "<0.001");
        assert_eq!(format_p(0.0079), "0.008");
        assert_eq!(format_p(0.4234), "0.42");
        assert_eq!(p_text(0.0001), "p<0.001");
        assert_eq!(p_text(0.04), "p=0.04");
    }
}
