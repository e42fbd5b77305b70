//! One compared quantity: both sides' medians and ranges over episodes, the
//! delta, the shift of the run medians with its 95% confidence interval
//! ([`super::shift`]), and the significance test with the run as the unit
//! ([`super::runlevel`]) when both sides have enough runs. The types are
//! reaper-model's ([`reaper_model::output::quantity`]); this module fills
//! them.

use super::clean::Coverage;
use super::runlevel::{self, Grouped};
use super::{shift, stats};

pub use reaper_model::output::quantity::{
    Comparison, Coverages, MIN_RUNS_FOR_TEST, RunShift, Side,
};

/// Two-sided significance level of `reaper diff`'s significance column.
pub const DIFF_ALPHA: f64 = 0.05;

/// Summarises a side's runs; `why` is used when it has no value.
pub fn side(runs: &Grouped, why: impl FnOnce() -> String) -> Side {
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

/// Compares two sides' values (ms), grouped by run.
pub fn comparison(
    a: &Grouped,
    b: &Grouped,
    why_a: impl FnOnce() -> String,
    why_b: impl FnOnce() -> String,
) -> Comparison {
    let (side_a, side_b) = (side(a, why_a), side(b, why_b));
    let delta_ms = side_a.median().zip(side_b.median()).map(|(a, b)| b - a);
    let delta_pct = side_a
        .median()
        .zip(delta_ms)
        .filter(|(a, _)| *a != 0.0)
        .map(|(a, d)| d / a * 100.0);
    let enough = runlevel::count(a) >= MIN_RUNS_FOR_TEST && runlevel::count(b) >= MIN_RUNS_FOR_TEST;
    let coverage = Coverages {
        a: Coverage::all(side_a.n()),
        b: Coverage::all(side_b.n()),
    };
    let (ma, mb) = (runlevel::run_medians(a), runlevel::run_medians(b));
    let shift = shift::of(&ma, &mb)
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

/// The significance column's text.
pub fn significance(c: &Comparison) -> String {
    match (&c.test, c.delta_ms) {
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
        let c = comparison(&[vec![10.0, 12.0]], &[vec![15.0]], String::new, String::new);
        assert_eq!(c.delta_ms, Some(4.0));
        assert_eq!(c.delta_pct, Some(4.0 / 11.0 * 100.0));
        assert_eq!(c.test, None);
        assert_eq!(significance(&c), "n/a (runs<4)");
        assert_eq!((c.a.n(), c.a.runs()), (2, 1));
        let c = comparison(&[], &[vec![1.0]], || "no lock probe".into(), String::new);
        assert_eq!(
            c.a,
            Side::NotMeasured {
                why: "no lock probe".into()
            }
        );
        assert_eq!(c.delta_ms, None);
        assert_eq!(significance(&c), "");
        let c = comparison(&[vec![0.0]], &[vec![1.0]], String::new, String::new);
        assert_eq!((c.delta_ms, c.delta_pct), (Some(1.0), None));
    }

    #[test]
    fn significance_text() {
        let a = runs(&[10.0, 11.0, 12.0, 13.0, 14.0]);
        let b = runs(&[20.0, 21.0, 22.0, 23.0, 24.0]);
        let c = comparison(&a, &b, String::new, String::new);
        assert_eq!(significance(&c), "significant: B slower (p=0.008)");
        let c = comparison(&b, &a, String::new, String::new);
        assert_eq!(significance(&c), "significant: B faster (p=0.008)");
        let noisy = runs(&[13.0, 10.0, 14.0, 11.0, 12.0]);
        let c = comparison(&a, &noisy, String::new, String::new);
        assert_eq!(significance(&c), "no significant change (p=1.00)");
    }

    #[test]
    fn significance_is_judged_between_runs_not_episodes() {
        // Five tight episodes in each of one run per side: no test at all.
        let a = vec![vec![10.0, 10.1, 10.2, 10.3, 10.4]];
        let b = vec![vec![20.0, 20.1, 20.2, 20.3, 20.4]];
        let c = comparison(&a, &b, String::new, String::new);
        assert_eq!(c.test, None);
        assert_eq!(significance(&c), "n/a (runs<4)");
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
