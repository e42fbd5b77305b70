//! Statistics for A/B comparison: order statistics and the Mann-Whitney U
//! test. The comparison applies it to run medians ([`super::runlevel`]);
//! what follows holds for any small samples.
//!
//! Why Mann-Whitney rather than a t-test or a bootstrap: teardown timings are
//! skewed and have outliers (an interrupt, a contended lock, a page-cache
//! refill), and a run set is small (5–10 episodes). Mann-Whitney assumes
//! neither normality nor equal variances, is insensitive to a single outlier,
//! and its exact null distribution gives valid p-values at N = 5 (the
//! smallest one-sided p with 5 vs 5 is 1/252 ≈ 0.004). A bootstrap CI of the
//! median difference is badly calibrated at that size: the median of five
//! resampled values takes only five distinct values.
//!
//! The exact distribution is that of the rank sum under all C(n, n₁) ways of
//! splitting the pooled sample, computed with tied values sharing their mean
//! rank, so it is exact with ties too. Above [`EXACT_MAX_N`] pooled values
//! the normal approximation with tie and continuity correction is used.
//! The test's result ([`MannWhitney`]) is reaper-model's type.

pub use crate::stats::{max, median, min};
pub use reaper_model::output::quantity::{MannWhitney, Method};

/// Largest pooled sample for the exact distribution; the dynamic program
/// costs O(n · n₁ · n²), about 10⁷ steps at 60, a few milliseconds.
pub const EXACT_MAX_N: usize = 60;

/// Mid-ranks (1-based) of the pooled values, and the tie groups' sizes.
fn mid_ranks(pooled: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_by(|&i, &j| pooled[i].total_cmp(&pooled[j]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && pooled[order[end]] == pooled[order[start]] {
            end += 1;
        }
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        ties.push(end - start);
        start = end;
    }
    (ranks, ties)
}

/// Runs the test; `None` when either sample is empty.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let pooled: Vec<f64> = b.iter().chain(a).copied().collect();
    let (ranks, ties) = mid_ranks(&pooled);
    let (n_a, n_b) = (a.len(), b.len());
    let rank_sum_b: f64 = ranks[..n_b].iter().sum();
    let u_b = rank_sum_b - (n_b * (n_b + 1)) as f64 / 2.0;
    let (p_greater, p_less, method) = if n_a + n_b <= EXACT_MAX_N {
        let (ge, le) = exact_tails(&ranks, n_b, rank_sum_b);
        (ge, le, Method::Exact)
    } else {
        let (ge, le) = normal_tails(u_b, n_a, n_b, &ties);
        (ge, le, Method::Normal)
    };
    Some(MannWhitney {
        u_b,
        p_greater,
        p_less,
        p_two_sided: (2.0 * p_greater.min(p_less)).min(1.0),
        method,
    })
}

/// P(S ≥ observed) and P(S ≤ observed) for S the rank sum of `k` values
/// drawn without replacement from `ranks`. Ranks are doubled so mid-ranks
/// are integers; `counts[j][s]` is the number of j-subsets with doubled sum s.
fn exact_tails(ranks: &[f64], k: usize, observed: f64) -> (f64, f64) {
    let doubled: Vec<usize> = ranks.iter().map(|r| (r * 2.0).round() as usize).collect();
    let max_sum: usize = doubled.iter().sum();
    let mut counts = vec![vec![0.0f64; max_sum + 1]; k + 1];
    counts[0][0] = 1.0;
    for (i, &r) in doubled.iter().enumerate() {
        for j in (1..=k.min(i + 1)).rev() {
            let (lower, upper) = counts.split_at_mut(j);
            for s in (r..=max_sum).rev() {
                upper[0][s] += lower[j - 1][s - r];
            }
        }
    }
    let target = (observed * 2.0).round() as usize;
    let total: f64 = counts[k].iter().sum();
    let ge: f64 = counts[k][target..].iter().sum();
    let le: f64 = counts[k][..=target.min(max_sum)].iter().sum();
    (ge / total, le / total)
}

/// Normal approximation of the same tails, with the tie-corrected variance
/// and a continuity correction of ½.
fn normal_tails(u: f64, n_a: usize, n_b: usize, ties: &[usize]) -> (f64, f64) {
    let (na, nb) = (n_a as f64, n_b as f64);
    let n = na + nb;
    let mean = na * nb / 2.0;
    let tie_term: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum::<f64>() / (n * (n - 1.0));
    let variance = na * nb / 12.0 * ((n + 1.0) - tie_term);
    if variance <= 0.0 {
        // Every value is the same: no evidence either way.
        return (1.0, 1.0);
    }
    let sd = variance.sqrt();
    let z_ge = (u - mean - 0.5) / sd;
    let z_le = (u - mean + 0.5) / sd;
    (normal_sf(z_ge), 1.0 - normal_sf(z_le))
}

/// Upper tail of the standard normal, P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' erfcc, Chebyshev fit
/// with relative error below 1.2e-7 everywhere, ample for p-values).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn complete_separation_5_vs_5_is_one_in_252() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [6.0, 7.0, 8.0, 9.0, 10.0];
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.method, Method::Exact);
        assert_eq!(t.u_b, 25.0);
        assert!(close(t.p_greater, 1.0 / 252.0, 1e-12));
        assert!(close(t.p_less, 1.0, 1e-12));
        assert!(close(t.p_two_sided, 2.0 / 252.0, 1e-12));
    }

    #[test]
    fn exact_5_vs_5_matches_the_published_table() {
        // Counts of U = 0..4 for n₁ = n₂ = 5 are 1, 1, 2, 3, 5 (of 252), so
        // P(U ≤ 2) = 4/252 and P(U ≤ 3) = 7/252: the two-sided 5% critical
        // value is U = 2, as in every Mann-Whitney table.
        let a = [10.0, 20.0, 30.0, 40.0, 50.0];
        // B below A except for k inversions gives U_B = k.
        for (b, cumulative) in [
            ([1.0, 2.0, 3.0, 4.0, 15.0], 2.0),  // U = 1
            ([1.0, 2.0, 3.0, 4.0, 25.0], 4.0),  // U = 2
            ([1.0, 2.0, 3.0, 4.0, 35.0], 7.0),  // U = 3
            ([1.0, 2.0, 3.0, 4.0, 45.0], 12.0), // U = 4
        ] {
            let t = mann_whitney(&a, &b).unwrap();
            assert!(close(t.p_less, cumulative / 252.0, 1e-12), "{b:?}: {t:?}");
        }
    }

    #[test]
    fn identical_samples_show_nothing() {
        let a = [5.0; 6];
        let t = mann_whitney(&a, &a).unwrap();
        assert_eq!(t.u_b, 18.0);
        assert_eq!(t.p_two_sided, 1.0);
    }

    /// Brute force over all splits of the pooled sample, for cross-checking
    /// the dynamic program with ties.
    fn brute_force(a: &[f64], b: &[f64]) -> (f64, f64) {
        let pooled: Vec<f64> = b.iter().chain(a).copied().collect();
        let (ranks, _) = mid_ranks(&pooled);
        let observed: f64 = ranks[..b.len()].iter().sum();
        let n = pooled.len();
        let (mut ge, mut le, mut total) = (0u64, 0u64, 0u64);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != b.len() {
                continue;
            }
            let s: f64 = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| ranks[i])
                .sum();
            total += 1;
            ge += u64::from(s >= observed - 1e-9);
            le += u64::from(s <= observed + 1e-9);
        }
        (ge as f64 / total as f64, le as f64 / total as f64)
    }

    #[test]
    fn exact_with_ties_matches_brute_force() {
        let a = [3.0, 3.0, 5.0, 7.0, 7.0, 9.0];
        let b = [5.0, 7.0, 8.0, 9.0, 9.0, 12.0];
        let t = mann_whitney(&a, &b).unwrap();
        let (ge, le) = brute_force(&a, &b);
        assert!(close(t.p_greater, ge, 1e-12), "{t:?} vs {ge}");
        assert!(close(t.p_less, le, 1e-12), "{t:?} vs {le}");
    }

    #[test]
    fn normal_approximation_agrees_with_exact_at_moderate_n() {
        // 31 + 31 values (just above the exact limit) against the exact
        // answer for 30 + 30 of the same shape: close, not equal.
        let a: Vec<f64> = (0..31).map(f64::from).collect();
        let b: Vec<f64> = (0..31).map(|i| f64::from(i) + 6.0).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.method, Method::Normal);
        let exact = mann_whitney(&a[..30], &b[..30]).unwrap();
        assert_eq!(exact.method, Method::Exact);
        assert!(t.p_greater < 0.1 && exact.p_greater < 0.1);
        assert!(close(t.p_greater, exact.p_greater, 0.02), "{t:?} {exact:?}");
    }

    #[test]
    fn normal_tail_values() {
        assert!(close(normal_sf(0.0), 0.5, 1e-7));
        assert!(close(normal_sf(1.959_964), 0.025, 1e-6));
        assert!(close(normal_sf(-1.644_854), 0.95, 1e-6));
    }

    #[test]
    fn normal_uses_tie_correction() {
        // Heavy ties shrink the variance: the corrected p is smaller than
        // the uncorrected one would be.
        let a = vec![1.0; 40];
        let mut b = vec![1.0; 30];
        b.extend(vec![2.0; 10]);
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.method, Method::Normal);
        // U_B = 10·40 + 30·40/2 = 1000, mean 800; ties 70 and 10.
        assert_eq!(t.u_b, 1000.0);
        let n = 80.0;
        let tie = (70.0f64.powi(3) - 70.0 + 10.0f64.powi(3) - 10.0) / (n * (n - 1.0));
        let sd = (40.0 * 40.0 / 12.0 * (n + 1.0 - tie)).sqrt();
        assert!(close(
            t.p_greater,
            normal_sf((1000.0 - 800.0 - 0.5) / sd),
            1e-12
        ));
        assert!(t.p_greater < 0.001);
    }
}
