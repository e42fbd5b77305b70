//! Statistics with the run as the unit.
//!
//! A run set is runs (one run file: one `reaper record` invocation or one VM
//! boot) of episodes. Episodes of one run agree closely; whole runs drift
//! (machine load, CPU frequency, memory state). Treating the episodes of a
//! few runs as independent samples reads that drift as a significant change:
//! eight A/A run sets on a 2-CPU machine failed 27% of ordered gate pairs.
//!
//! So each run is summarised by its median, and the sides are compared by
//! an exact Mann-Whitney U test of the run medians ([`super::stats`]). Under
//! no change, runs recorded alternately are exchangeable, so the test's
//! false-alarm rate is at most its level whatever the drift; what it costs
//! is runs: with `R` against `R` runs the smallest one-sided p is
//! `1 / C(2R, R)` ([`min_runs`]). A gate checks several metrics, so its
//! p-values are Holm-adjusted ([`holm`]): the gate's false-alarm rate, not
//! each metric's, is `--alpha`.

use super::stats::{MannWhitney, mann_whitney, median, normal_sf};

/// The fewest runs per side at which complete separation is significant:
/// reaper-model's, since a gate report's settings read it.
pub use reaper_model::output::gate::min_runs;

/// Values grouped by run: one inner vector per run (the episodes used).
pub type Grouped = [Vec<f64>];

/// The medians of the runs that have values.
pub fn run_medians(runs: &Grouped) -> Vec<f64> {
    runs.iter().filter_map(|r| median(r)).collect()
}

/// Every value of every run, in run order.
pub fn flatten(runs: &Grouped) -> Vec<f64> {
    runs.iter().flatten().copied().collect()
}

/// Groups `values` by the run index beside each (`run_of[i]` is the run of
/// `values[i]`), in run order; runs without values are left out.
pub fn group(values: &[f64], run_of: &[usize]) -> Vec<Vec<f64>> {
    let mut out: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
    for (v, r) in values.iter().zip(run_of) {
        out.entry(*r).or_default().push(*v);
    }
    out.into_values().collect()
}

/// Runs that have at least one value.
pub fn count(runs: &Grouped) -> usize {
    runs.iter().filter(|r| !r.is_empty()).count()
}

/// The Mann-Whitney U test of B's run medians against A's.
pub fn test(a: &Grouped, b: &Grouped) -> Option<MannWhitney> {
    mann_whitney(&run_medians(a), &run_medians(b))
}

/// Holm's step-down adjustment of `p` (same order out): the family-wise
/// error rate of "adjusted p < α" is at most α for any dependence.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut out = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// The standard normal quantile: z with P(Z > z) = `upper` (bisection on
/// [`normal_sf`], ample for thresholds).
pub fn normal_upper_quantile(upper: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0f64, 10.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if normal_sf(mid) > upper {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn runs_are_summarised_by_their_medians() {
        let runs = vec![vec![1.0, 2.0, 30.0], vec![], vec![5.0, 4.0]];
        assert_eq!(run_medians(&runs), [2.0, 4.5]);
        assert_eq!(count(&runs), 2);
        assert_eq!(flatten(&runs), [1.0, 2.0, 30.0, 5.0, 4.0]);
        assert_eq!(
            group(&[1.0, 2.0, 3.0, 4.0], &[0, 2, 0, 2]),
            [vec![1.0, 3.0], vec![2.0, 4.0]]
        );
    }

    #[test]
    fn drift_between_runs_is_not_a_change() {
        // Issue 15's shape: tight episodes inside each run, whole runs
        // shifted. Episode-level, 10 vs 10 values look very different;
        // run-level, 2 runs against 2 cannot show anything.
        let a = vec![
            vec![19.0, 19.2, 19.5, 19.8, 20.0],
            vec![20.1, 20.3, 20.5, 20.6, 20.8],
        ];
        let b = vec![
            vec![22.0, 22.5, 23.0, 24.0, 25.0],
            vec![19.9, 20.0, 20.2, 20.4, 20.7],
        ];
        let episodes = mann_whitney(&flatten(&a), &flatten(&b)).unwrap();
        assert!(episodes.p_greater < 0.05, "{episodes:?}");
        let runs = test(&a, &b).unwrap();
        assert!(runs.p_greater > 0.3, "{runs:?}");
    }

    #[test]
    fn separated_runs_are_a_change() {
        let a: Vec<Vec<f64>> = (0..5).map(|i| vec![100.0 + f64::from(i); 3]).collect();
        let b: Vec<Vec<f64>> = (0..5).map(|i| vec![130.0 + f64::from(i); 3]).collect();
        let t = test(&a, &b).unwrap();
        assert!(close(t.p_greater, 1.0 / 252.0, 1e-12), "{t:?}");
    }

    #[test]
    fn runs_needed_per_level() {
        assert_eq!(min_runs(0.05), 4); // 1/70 = 0.014
        assert_eq!(min_runs(0.01), 5); // 1/252 = 0.004
        assert_eq!(min_runs(0.1), 3); // 1/20 = 0.05
        assert_eq!(min_runs(0.001), 7); // 1/3432
    }

    #[test]
    fn holm_adjustment() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.5]);
        // Sorted 0.01, 0.03, 0.04, 0.5 → ×4, ×3, ×2, ×1, monotone.
        assert!(close(adj[0], 0.04, 1e-12));
        assert!(close(adj[2], 0.09, 1e-12));
        assert!(close(adj[1], 0.09, 1e-12));
        assert!(close(adj[3], 0.5, 1e-12));
        assert_eq!(holm(&[]), Vec::<f64>::new());
        assert_eq!(holm(&[0.7, 0.9]), [1.0, 1.0]);
    }

    #[test]
    fn normal_quantiles() {
        assert!(close(normal_upper_quantile(0.05), 1.644_854, 1e-5));
        assert!(close(normal_upper_quantile(0.01), 2.326_348, 1e-5));
        assert!(close(normal_upper_quantile(0.5), 0.0, 1e-6));
    }
}
