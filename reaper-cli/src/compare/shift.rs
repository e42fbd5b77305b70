//! How large a difference is: the Hodges-Lehmann shift of B against A and
//! its distribution-free confidence interval (Moses), on run medians.
//!
//! The shift is the median of all `m·n` differences `b_j − a_i` between the
//! two sides' run medians: the estimate that goes with the Mann-Whitney U
//! test ([`super::stats`]), robust to an outlying run, and equal to the
//! difference of the two values when each side has one run. Its confidence
//! interval is the `C+1`-th smallest to the `C+1`-th largest difference,
//! where `C` is the largest value with `P(U ≤ C) ≤ (1 − level)/2` under the
//! exact null distribution of U for `m` and `n` without ties; its coverage
//! is then exactly `1 − 2·P(U ≤ C)` (at least `level`) for continuous data
//! whose sides differ by a shift (Hollander & Wolfe, *Nonparametric
//! Statistical Methods*, 3rd ed., §4.3; Bauer 1972). With too few runs (3
//! against 3: `P(U = 0) = 1/20`) no interval reaches 95% and none is given.
//!
//! The null distribution is the Gaussian-binomial recurrence: with `i`
//! values of A and `j` of B, the largest pooled value is either a B value
//! (above all `i` A values: U grows by `i`) or an A value (U unchanged), so
//! `f(i, j)[u] = f(i, j−1)[u − i] + f(i−1, j)[u]`. Above [`EXACT_MAX_N`]
//! pooled values the normal approximation gives `C`.

use super::runlevel::normal_upper_quantile;
use super::stats::{EXACT_MAX_N, median};

pub use reaper_model::output::quantity::{CONFIDENCE, Shift};

/// Counts of U = 0..=m·n over all C(m+n, m) orderings of `m` A values and
/// `n` B values without ties (U: pairs with the B value above the A value).
pub fn u_null_counts(m: usize, n: usize) -> Vec<f64> {
    // f[i] holds the distribution for i A values and the current j B values.
    let mut f: Vec<Vec<f64>> = (0..=m).map(|_| vec![1.0]).collect();
    for _j in 1..=n {
        let mut next: Vec<Vec<f64>> = Vec::with_capacity(m + 1);
        next.push(vec![1.0]);
        for i in 1..=m {
            let (with_b_top, with_a_top) = (&f[i], &next[i - 1]);
            let len = (with_b_top.len() + i).max(with_a_top.len());
            let mut dist = vec![0.0; len];
            for (u, &c) in with_b_top.iter().enumerate() {
                dist[u + i] += c;
            }
            for (u, &c) in with_a_top.iter().enumerate() {
                dist[u] += c;
            }
            next.push(dist);
        }
        f = next;
    }
    f.pop().unwrap_or_default()
}

/// The largest `C` with `P(U ≤ C) ≤ tail` for `m` against `n` values, and
/// `P(U ≤ C)`; `None` when even `P(U = 0)` exceeds `tail`.
pub fn lower_critical(m: usize, n: usize, tail: f64) -> Option<(usize, f64)> {
    if m == 0 || n == 0 {
        return None;
    }
    if m + n > EXACT_MAX_N {
        let (mf, nf) = (m as f64, n as f64);
        let sd = (mf * nf * (mf + nf + 1.0) / 12.0).sqrt();
        let c = mf * nf / 2.0 - normal_upper_quantile(tail) * sd - 0.5;
        return (c >= 0.0).then(|| (c.floor() as usize, tail));
    }
    let counts = u_null_counts(m, n);
    let total: f64 = counts.iter().sum();
    let mut cumulative = 0.0;
    let mut found = None;
    for (u, c) in counts.iter().enumerate() {
        cumulative += c;
        if cumulative / total > tail {
            break;
        }
        found = Some((u, cumulative / total));
    }
    found
}

/// The shift of `b` against `a` with a [`CONFIDENCE`] interval; `None`
/// when a side is empty.
pub fn of(a: &[f64], b: &[f64]) -> Option<Shift> {
    at(a, b, CONFIDENCE)
}

/// The same at another confidence `level`.
pub fn at(a: &[f64], b: &[f64], level: f64) -> Option<Shift> {
    let mut diffs: Vec<f64> = b
        .iter()
        .flat_map(|y| a.iter().map(move |x| y - x))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let estimate = median(&diffs)?;
    let critical = lower_critical(a.len(), b.len(), (1.0 - level) / 2.0);
    let (ci, coverage) = match critical {
        Some((c, p)) => (
            Some((diffs[c], diffs[diffs.len() - 1 - c])),
            Some(1.0 - 2.0 * p),
        ),
        None => (None, None),
    };
    Some(Shift {
        estimate,
        ci,
        coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// C(m+n, m).
    fn choose(n: usize, k: usize) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    /// Brute force: U over every way to place `m` A values among `m+n`.
    fn brute_counts(m: usize, n: usize) -> Vec<f64> {
        let mut counts = vec![0.0; m * n + 1];
        for mask in 0u32..(1 << (m + n)) {
            if mask.count_ones() as usize != n {
                continue;
            }
            // Bit k set: position k (ascending) holds a B value.
            let mut a_below = 0;
            let mut u = 0;
            for k in 0..m + n {
                if mask & (1 << k) != 0 {
                    u += a_below;
                } else {
                    a_below += 1;
                }
            }
            counts[u] += 1.0;
        }
        counts
    }

    #[test]
    fn null_counts_match_brute_force_and_sum_to_the_orderings() {
        for (m, n) in [(1, 1), (2, 3), (3, 3), (4, 5), (5, 5), (3, 7)] {
            let counts = u_null_counts(m, n);
            assert_eq!(counts, brute_counts(m, n), "{m} vs {n}");
            assert!(close(counts.iter().sum(), choose(m + n, m)));
        }
        // 5 vs 5: U = 0..4 counted 1, 1, 2, 3, 5 (of 252), as in stats.rs.
        assert_eq!(&u_null_counts(5, 5)[..5], [1.0, 1.0, 2.0, 3.0, 5.0]);
    }

    /// Two-sided 5% critical values of U from the published Mann-Whitney
    /// tables (e.g. Siegel & Castellan, Table J; any statistics text):
    /// reject when U ≤ the value.
    #[test]
    fn critical_values_match_the_published_table() {
        for (m, n, published) in [
            (4, 4, 0),
            (5, 5, 2),
            (6, 6, 5),
            (7, 7, 8),
            (8, 8, 13),
            (9, 9, 17),
            (10, 10, 23),
            (3, 5, 0),
            (5, 8, 6),
            (6, 10, 11),
        ] {
            let (c, p) = lower_critical(m, n, 0.025).unwrap();
            assert_eq!(c, published, "{m} vs {n}");
            assert!(p <= 0.025);
        }
        // 3 vs 3: P(U = 0) = 1/20 > 0.025: no 95% interval exists.
        assert_eq!(lower_critical(3, 3, 0.025), None);
        assert_eq!(lower_critical(0, 3, 0.025), None);
    }

    #[test]
    fn the_normal_approximation_agrees_above_the_exact_limit() {
        let (exact, _) = lower_critical(30, 30, 0.025).unwrap();
        let (approx, _) = lower_critical(31, 30, 0.025).unwrap();
        // Published normal-approximation value for 30 vs 30 is 317.
        assert!((315..=320).contains(&exact), "{exact}");
        assert!(approx.abs_diff(exact) <= 16, "{approx} vs {exact}");
    }

    #[test]
    fn hodges_lehmann_and_moses_interval() {
        // One run a side: the difference itself, no interval.
        let s = of(&[10.0], &[12.5]).unwrap();
        assert_eq!((s.estimate, s.ci), (2.5, None));
        // 5 vs 5 shifted by exactly 10 with spread: estimate 10; C = 2 so
        // the interval is the 3rd smallest to 3rd largest of 25 differences,
        // at coverage 1 − 2·4/252.
        let a = [100.0, 101.0, 103.0, 104.0, 108.0];
        let b: Vec<f64> = a.iter().map(|v| v + 10.0).collect();
        let s = of(&a, &b).unwrap();
        assert_eq!(s.estimate, 10.0);
        let mut d: Vec<f64> = b
            .iter()
            .flat_map(|y| a.iter().map(move |x| y - x))
            .collect();
        d.sort_by(f64::total_cmp);
        assert_eq!(s.ci, Some((d[2], d[22])));
        assert!(close(s.coverage.unwrap(), 1.0 - 8.0 / 252.0));
        assert!(s.ci.unwrap().0 < 10.0 && s.ci.unwrap().1 > 10.0);
        assert_eq!(of(&[], &[1.0]), None);
    }

    #[test]
    fn equivalence_needs_the_whole_interval_inside_the_margin() {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        let near: Vec<f64> = a.iter().map(|v| v + 0.5).collect();
        let s = of(&a, &near).unwrap();
        assert!(s.within(100.0, 5.0), "{s:?}");
        assert!(!s.within(100.0, 0.5), "{s:?}");
        let one = of(&[100.0], &[100.0]).unwrap();
        assert!(!one.within(100.0, 50.0), "no interval, no statement");
    }
}
