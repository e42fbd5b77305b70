//! One compared quantity: both sides' medians and ranges, the delta, and the
//! significance test when both sides have enough episodes.

use serde::Serialize;

use super::stats::{self, MannWhitney};

/// Episodes per side below which no significance is claimed: with fewer
/// than 5 vs 5, even complete separation cannot reach p < 0.01 two-sided.
pub const MIN_EPISODES_FOR_TEST: usize = 5;

/// Two-sided significance level of `reaper diff`'s significance column.
pub const DIFF_ALPHA: f64 = 0.05;

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Side {
    /// Measured in `n` episodes.
    Measured {
        /// Episodes.
        n: usize,
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
    /// Summarises a sample; `why` is used when it is empty.
    pub fn of(values: &[f64], why: impl FnOnce() -> String) -> Self {
        match (
            stats::median(values),
            stats::min(values),
            stats::max(values),
        ) {
            (Some(median), Some(min), Some(max)) => Side::Measured {
                n: values.len(),
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
    /// Mann-Whitney U of B against A, when both sides have
    /// [`MIN_EPISODES_FOR_TEST`] episodes or more.
    pub test: Option<MannWhitney>,
}

impl Comparison {
    /// Compares two samples (ms).
    pub fn new(
        a: &[f64],
        b: &[f64],
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
        let enough = a.len() >= MIN_EPISODES_FOR_TEST && b.len() >= MIN_EPISODES_FOR_TEST;
        Comparison {
            a: side_a,
            b: side_b,
            delta_ms,
            delta_pct,
            test: if enough {
                stats::mann_whitney(a, b)
            } else {
                None
            },
        }
    }

    /// The significance column's text.
    pub fn significance(&self) -> String {
        match (&self.test, self.delta_ms) {
            (_, None) => String::new(),
            (None, Some(_)) => format!("n/a (N<{MIN_EPISODES_FOR_TEST})"),
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

    #[test]
    fn deltas_and_missing_sides() {
        let c = Comparison::new(&[10.0, 12.0], &[15.0], String::new, String::new);
        assert_eq!(c.delta_ms, Some(4.0));
        assert_eq!(c.delta_pct, Some(4.0 / 11.0 * 100.0));
        assert_eq!(c.test, None);
        assert_eq!(c.significance(), "n/a (N<5)");
        let c = Comparison::new(&[], &[1.0], || "no lock probe".into(), String::new);
        assert_eq!(
            c.a,
            Side::NotMeasured {
                why: "no lock probe".into()
            }
        );
        assert_eq!(c.delta_ms, None);
        assert_eq!(c.significance(), "");
        let c = Comparison::new(&[0.0], &[1.0], String::new, String::new);
        assert_eq!((c.delta_ms, c.delta_pct), (Some(1.0), None));
    }

    #[test]
    fn significance_text() {
        let a = [10.0, 11.0, 12.0, 13.0, 14.0];
        let b = [20.0, 21.0, 22.0, 23.0, 24.0];
        let c = Comparison::new(&a, &b, String::new, String::new);
        assert_eq!(c.significance(), "significant: B slower (p=0.008)");
        let c = Comparison::new(&b, &a, String::new, String::new);
        assert_eq!(c.significance(), "significant: B faster (p=0.008)");
        let noisy = [13.0, 10.0, 14.0, 11.0, 12.0];
        let c = Comparison::new(&a, &noisy, String::new, String::new);
        assert_eq!(c.significance(), "no significant change (p=1.00)");
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
