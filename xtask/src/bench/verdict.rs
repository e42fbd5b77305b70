//! "reaper vs perf": who wins a row, from a bootstrap interval of the ratio
//! of medians (reaper / perf) over the rounds, so "inside the noise" is a
//! number rather than a sentence.
//!
//! Both samples are resampled independently (with replacement) and the
//! ratio of their medians is taken each time; the central 95% of those
//! ratios is the interval. A row wins only when the whole interval is on
//! its side of 1.0. The resampling uses a fixed seed, so the same figures
//! always give the same table.

use std::fmt;

/// Resamples per interval: enough for a stable 2.5/97.5 percentile.
const RESAMPLES: usize = 10_000;
/// Fixed seed: the table is a function of the figures alone.
const SEED: u64 = 0x05ee_db16;
/// Fewest values per side for an interval; below it the verdict says so.
pub const MIN_N: usize = 3;
/// Confidence of the interval.
const LEVEL: f64 = 0.95;

/// What "better" means for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Durations: lower is better ("faster").
    Time,
    /// Memory: lower is better ("smaller").
    Memory,
    /// Two measurements of the same thing: they should agree.
    Agree,
}

/// A ratio of medians with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioInterval {
    /// median(reaper) / median(perf).
    pub ratio: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
}

/// The verdict of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The whole interval is below 1.0.
    ReaperLower(Goal, RatioInterval),
    /// The interval contains 1.0.
    Noise(Goal, RatioInterval),
    /// The whole interval is above 1.0.
    PerfLower(Goal, RatioInterval),
    /// Fewer than [`MIN_N`] values on one side, or a zero median.
    TooFew { reaper: usize, perf: usize },
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn clean(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of a resample of `from` (drawn with replacement) into `buf`.
fn resampled_median(rng: &mut fastrand::Rng, from: &[f64], buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..from.len()).map(|_| from[rng.usize(..from.len())]));
    buf.sort_by(f64::total_cmp);
    median_sorted(buf)
}

/// The ratio of medians `reaper / perf` and its bootstrap interval, with
/// `seed` for the resampling; `None` when a side has fewer than [`MIN_N`]
/// values or a median of zero.
pub fn ratio_interval_seeded(reaper: &[f64], perf: &[f64], seed: u64) -> Option<RatioInterval> {
    let (r, p) = (clean(reaper), clean(perf));
    if r.len() < MIN_N || p.len() < MIN_N {
        return None;
    }
    let (rm, pm) = (median_sorted(&r), median_sorted(&p));
    if pm == 0.0 {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut rb, mut pb) = (Vec::new(), Vec::new());
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let num = resampled_median(&mut rng, &r, &mut rb);
            let den = resampled_median(&mut rng, &p, &mut pb);
            (den != 0.0).then(|| num / den)
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    Some(RatioInterval {
        ratio: rm / pm,
        lo: at(tail),
        hi: at(1.0 - tail),
    })
}

/// [`ratio_interval_seeded`] with the table's fixed seed.
pub fn ratio_interval(reaper: &[f64], perf: &[f64]) -> Option<RatioInterval> {
    ratio_interval_seeded(reaper, perf, SEED)
}

/// The verdict for `reaper` against `perf` under `goal`.
pub fn verdict(goal: Goal, reaper: &[f64], perf: &[f64]) -> Verdict {
    match ratio_interval(reaper, perf) {
        None => Verdict::TooFew {
            reaper: clean(reaper).len(),
            perf: clean(perf).len(),
        },
        Some(ci) if ci.hi < 1.0 => Verdict::ReaperLower(goal, ci),
        Some(ci) if ci.lo > 1.0 => Verdict::PerfLower(goal, ci),
        Some(ci) => Verdict::Noise(goal, ci),
    }
}

impl Verdict {
    /// Whether reaper wins the row.
    pub fn reaper_wins(&self) -> bool {
        matches!(
            self,
            Self::ReaperLower(Goal::Time | Goal::Memory, _) | Self::Noise(Goal::Agree, _)
        )
    }
}

fn interval(ci: &RatioInterval) -> String {
    format!("{:.2}× [{:.2}–{:.2}]", ci.ratio, ci.lo, ci.hi)
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, ci) = match self {
            Self::TooFew { reaper, perf } => {
                return write!(
                    f,
                    "too few values for an interval (reaper {reaper}, perf {perf}; needs {MIN_N} each)"
                );
            }
            Self::ReaperLower(Goal::Time, ci) => ("reaper faster", ci),
            Self::PerfLower(Goal::Time, ci) => ("perf faster", ci),
            Self::ReaperLower(Goal::Memory, ci) => ("reaper smaller", ci),
            Self::PerfLower(Goal::Memory, ci) => ("perf smaller", ci),
            Self::ReaperLower(Goal::Agree, ci) => ("reaper lower than perf", ci),
            Self::PerfLower(Goal::Agree, ci) => ("reaper higher than perf", ci),
            Self::Noise(Goal::Agree, ci) => ("agree (inside the noise)", ci),
            Self::Noise(_, ci) => ("inside the noise", ci),
        };
        write!(f, "{word} {}", interval(ci))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_brackets_the_ratio_and_is_reproducible() {
        let reaper = [10.0, 11.0, 12.0, 9.0, 10.5, 30.0];
        let perf = [20.0, 21.0, 19.0, 22.0, 20.5, 18.0];
        let a = ratio_interval_seeded(&reaper, &perf, 7).unwrap();
        let b = ratio_interval_seeded(&reaper, &perf, 7).unwrap();
        assert_eq!(a, b, "same seed, same interval");
        assert!((a.ratio - 10.75 / 20.25).abs() < 1e-12, "{a:?}");
        assert!(a.lo <= a.ratio && a.ratio <= a.hi, "{a:?}");
        // Every resampled median lies within each sample's range.
        assert!(a.lo >= 9.0 / 22.0 && a.hi <= 30.0 / 18.0, "{a:?}");
    }

    #[test]
    fn clearly_separated_samples_give_a_winner() {
        let fast = [100.0, 105.0, 98.0, 102.0, 101.0, 99.0, 103.0, 97.0];
        let slow = [300.0, 290.0, 310.0, 305.0, 295.0, 299.0, 301.0, 302.0];
        let v = verdict(Goal::Time, &fast, &slow);
        assert!(matches!(v, Verdict::ReaperLower(Goal::Time, _)), "{v:?}");
        assert!(v.reaper_wins());
        assert!(v.to_string().starts_with("reaper faster 0.33× ["), "{v}");
        let v = verdict(Goal::Memory, &slow, &fast);
        assert!(matches!(v, Verdict::PerfLower(Goal::Memory, _)), "{v:?}");
        assert!(!v.reaper_wins());
        assert!(v.to_string().starts_with("perf smaller 2.99× ["), "{v}");
    }

    #[test]
    fn overlapping_samples_are_inside_the_noise() {
        let a = [100.0, 150.0, 80.0, 120.0, 95.0, 140.0, 60.0, 110.0];
        let b = [105.0, 90.0, 130.0, 115.0, 70.0, 145.0, 100.0, 85.0];
        let v = verdict(Goal::Time, &a, &b);
        match &v {
            Verdict::Noise(Goal::Time, ci) => assert!(ci.lo < 1.0 && ci.hi > 1.0, "{ci:?}"),
            other => panic!("{other:?}"),
        }
        assert!(v.to_string().starts_with("inside the noise "), "{v}");
        let v = verdict(Goal::Agree, &a, &b);
        assert!(v.reaper_wins(), "agreement is what accuracy wants");
        assert!(
            v.to_string().starts_with("agree (inside the noise) "),
            "{v}"
        );
    }

    #[test]
    fn too_few_values_or_zero_median_give_no_interval() {
        let v = verdict(Goal::Time, &[1.0, 2.0], &[1.0, 2.0, 3.0]);
        assert_eq!(v, Verdict::TooFew { reaper: 2, perf: 3 });
        assert!(v.to_string().contains("needs 3 each"));
        assert_eq!(
            ratio_interval(&[1.0, 2.0, 3.0], &[0.0, 0.0, 0.0, f64::NAN]),
            None
        );
        // NaNs are dropped before counting.
        assert!(matches!(
            verdict(Goal::Time, &[1.0, f64::NAN, 2.0], &[1.0, 2.0, 3.0]),
            Verdict::TooFew { reaper: 2, .. }
        ));
    }
}
