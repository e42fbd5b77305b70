//! Drift and design: was the comparison recorded so that drift cancels?
//!
//! The run-level test ([`super::runlevel`]) holds its false-alarm rate when
//! runs recorded alternately are exchangeable. Two recordings break that,
//! and no statistics on the values can tell the result from a change:
//! - a **blocked design**: every run of one side recorded before every run
//!   of the other, so whatever drifted between the two blocks (machine
//!   load, memory state, another day) reads as a difference. Eight A/A sets
//!   recorded one after another on the development host failed 20 of 56
//!   gate pairs; the same sets alternated, 0 and 1 of 56.
//! - a **trend inside a side**: its runs' values move with recording time.
//!
//! Each run is placed in time by its start (`recording.started_unix_ms`,
//! or `started_unix` in older files). The trend test is Kendall's rank
//! correlation between recording time and a composite of the run medians:
//! per compared metric, each run's rank among its side's runs (scaled to
//! 0–1), averaged over the metrics the run measured. Under no drift the runs
//! are exchangeable, so every ordering of the composite against time is
//! equally likely and the exact null distribution of Kendall's S is that of
//! the number of inversions of a random permutation (the Mahonian numbers,
//! `I(n, k) = Σ_{j=0}^{min(k, n−1)} I(n−1, k−j)`); with ties the normal
//! approximation with Kendall's tie-corrected variance is used. One
//! composite per side keeps the warning's false-alarm rate at `alpha` for
//! both sides together (Holm over the two), where a test per metric would
//! warn in most honest comparisons.
//!
//! The types are reaper-model's ([`reaper_model::output::design`]); this
//! module tests the recording and words its warnings.

use super::load::RunSet;
use super::runlevel::Grouped;
use super::stats::{median, normal_sf};

pub use reaper_model::output::design::{Design, DesignCheck, Kendall, MetricMove, Trend};

/// Largest run count for the exact null distribution; the inversion counts
/// of 60 items are below 2^200, far within f64.
const EXACT_MAX_RUNS: usize = 60;

/// When a run started, ms since the Unix epoch.
pub fn run_start_ms(run: &crate::model::Run) -> u64 {
    run.recording
        .started_unix_ms
        .unwrap_or(run.recording.started_unix.saturating_mul(1000))
}

/// The design of two run sets.
pub fn design(a: &RunSet, b: &RunSet) -> Design {
    let times = |s: &RunSet| -> Vec<u64> { s.runs.iter().map(|r| run_start_ms(&r.run)).collect() };
    let (ta, tb) = (times(a), times(b));
    let (Some(&a_min), Some(&a_max), Some(&b_min), Some(&b_max)) = (
        ta.iter().min(),
        ta.iter().max(),
        tb.iter().min(),
        tb.iter().max(),
    ) else {
        return Design::Unknown {
            why: "a side has no runs".to_owned(),
        };
    };
    if a_max == 0 && b_max == 0 {
        return Design::Unknown {
            why: "no run records when it started".to_owned(),
        };
    }
    if a_min == a_max && b_min == b_max && a_min == b_min {
        return Design::Unknown {
            why: "every run of both sides has the same start time (copies of one recording?)"
                .to_owned(),
        };
    }
    let runs = (ta.len(), tb.len());
    if a_max < b_min {
        Design::Blocked {
            a_first: true,
            runs,
            gap_ms: b_min - a_max,
        }
    } else if b_max < a_min {
        Design::Blocked {
            a_first: false,
            runs,
            gap_ms: a_min - b_max,
        }
    } else {
        Design::Interleaved
    }
}

/// Counts of inversions 0..=n(n−1)/2 over the n! permutations (Mahonian
/// numbers).
pub fn inversion_counts(n: usize) -> Vec<f64> {
    let mut counts = vec![1.0];
    for k in 2..=n {
        let mut next = vec![0.0; counts.len() + k - 1];
        for (i, &c) in counts.iter().enumerate() {
            for slot in next.iter_mut().skip(i).take(k) {
                *slot += c;
            }
        }
        counts = next;
    }
    counts
}

fn sign(v: f64) -> i64 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

/// Sizes of the groups of equal values.
fn tie_groups(v: &[f64]) -> Vec<usize> {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut out = Vec::new();
    let mut run = 1;
    for w in sorted.windows(2) {
        if w[0] == w[1] {
            run += 1;
        } else {
            out.push(run);
            run = 1;
        }
    }
    if !sorted.is_empty() {
        out.push(run);
    }
    out
}

/// Kendall's test; `None` below 3 pairs of values or when either variable
/// is constant.
pub fn kendall(x: &[f64], y: &[f64]) -> Option<Kendall> {
    let n = x.len().min(y.len());
    if n < 3 {
        return None;
    }
    let mut s = 0i64;
    for i in 0..n {
        for j in i + 1..n {
            s += sign(x[j] - x[i]) * sign(y[j] - y[i]);
        }
    }
    let (tx, ty) = (tie_groups(&x[..n]), tie_groups(&y[..n]));
    let pairs = (n * (n - 1) / 2) as f64;
    let tied = |t: &[usize]| t.iter().map(|&g| (g * (g - 1) / 2) as f64).sum::<f64>();
    let (px, py) = (pairs - tied(&tx), pairs - tied(&ty));
    if px == 0.0 || py == 0.0 {
        return None;
    }
    let tau = s as f64 / (px * py).sqrt();
    let no_ties = tx.iter().chain(&ty).all(|&g| g == 1);
    let p = if no_ties && n <= EXACT_MAX_RUNS {
        // S = pairs − 2·inversions; P(|S| ≥ |s|) from the inversion counts.
        let counts = inversion_counts(n);
        let total: f64 = counts.iter().sum();
        let extreme: f64 = counts
            .iter()
            .enumerate()
            .filter(|(inv, _)| (pairs as i64 - 2 * *inv as i64).abs() >= s.abs())
            .map(|(_, c)| c)
            .sum();
        (extreme / total).min(1.0)
    } else {
        let nf = n as f64;
        let v = |t: &[usize], f: &dyn Fn(f64) -> f64| t.iter().map(|&g| f(g as f64)).sum::<f64>();
        let v0 = nf * (nf - 1.0) * (2.0 * nf + 5.0);
        let third = |g: f64| g * (g - 1.0) * (2.0 * g + 5.0);
        let cube = |g: f64| g * (g - 1.0) * (g - 2.0);
        let square = |g: f64| g * (g - 1.0);
        let var = (v0 - v(&tx, &third) - v(&ty, &third)) / 18.0
            + v(&tx, &cube) * v(&ty, &cube) / (9.0 * nf * (nf - 1.0) * (nf - 2.0))
            + v(&tx, &square) * v(&ty, &square) / (2.0 * nf * (nf - 1.0));
        if var <= 0.0 {
            return None;
        }
        let z = ((s.abs() as f64) - 1.0).max(0.0) / var.sqrt();
        (2.0 * normal_sf(z)).min(1.0)
    };
    Some(Kendall { s, tau, p })
}

/// Mid-ranks scaled to 0..1 (all 0.5 when one value).
fn scaled_ranks(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    if n < 2 {
        return vec![0.5; n];
    }
    v.iter()
        .map(|x| {
            let below = v.iter().filter(|y| *y < x).count() as f64;
            let equal = v.iter().filter(|y| *y == x).count() as f64;
            (below + (equal - 1.0) / 2.0) / (n as f64 - 1.0)
        })
        .collect()
}

/// One metric's values, grouped by run (in the set's run order), by name.
pub type Series<'a> = (&'a str, &'a Grouped);

/// The trend of one side: `series` hold each compared metric's per-run
/// values in the order of `set.runs`.
pub fn trend(set: &RunSet, series: &[Series<'_>]) -> Option<Trend> {
    let times: Vec<f64> = set
        .runs
        .iter()
        .map(|r| run_start_ms(&r.run) as f64)
        .collect();
    let n = times.len();
    let mut sum = vec![0.0; n];
    let mut count = vec![0usize; n];
    let mut strongest: Option<(f64, MetricMove)> = None;
    for (name, runs) in series {
        let indexed: Vec<(usize, f64)> = runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| median(r).map(|m| (i, m)))
            .collect();
        if indexed.len() < 3 {
            continue;
        }
        let values: Vec<f64> = indexed.iter().map(|(_, m)| *m).collect();
        for ((i, _), r) in indexed.iter().zip(scaled_ranks(&values)) {
            sum[*i] += r;
            count[*i] += 1;
        }
        let t: Vec<f64> = indexed.iter().map(|(i, _)| times[*i]).collect();
        if let Some(k) = kendall(&t, &values) {
            let mut order: Vec<usize> = (0..indexed.len()).collect();
            order.sort_by(|&x, &y| t[x].total_cmp(&t[y]));
            let (first, last) = (order[0], order[order.len() - 1]);
            let m = MetricMove {
                metric: (*name).to_owned(),
                first_ms: values[first],
                last_ms: values[last],
            };
            if strongest
                .as_ref()
                .is_none_or(|(tau, _)| k.tau.abs() > tau.abs())
            {
                strongest = Some((k.tau, m));
            }
        }
    }
    let (t, c): (Vec<f64>, Vec<f64>) = (0..n)
        .filter(|&i| count[i] > 0)
        .map(|i| (times[i], sum[i] / count[i] as f64))
        .unzip();
    let test = kendall(&t, &c)?;
    Some(Trend {
        runs: t.len(),
        test,
        p_adjusted: test.p,
        strongest: strongest.map(|(_, m)| m),
    })
}

/// Checks two sides at `alpha` (the trends Holm-adjusted over the two).
pub fn check(
    a: &RunSet,
    b: &RunSet,
    series_a: &[Series<'_>],
    series_b: &[Series<'_>],
    alpha: f64,
) -> DesignCheck {
    let (mut ta, mut tb) = (trend(a, series_a), trend(b, series_b));
    let raw: Vec<f64> = [&ta, &tb]
        .iter()
        .filter_map(|t| t.as_ref().map(|t| t.test.p))
        .collect();
    let mut adjusted = super::runlevel::holm(&raw).into_iter();
    for t in [&mut ta, &mut tb].into_iter().flatten() {
        t.p_adjusted = adjusted.next().unwrap_or(1.0);
    }
    DesignCheck {
        design: design(a, b),
        trend_a: ta,
        trend_b: tb,
        alpha,
    }
}

/// One sentence per problem, naming the sides `names` ("A"/"B" or
/// "baseline"/"candidate"); empty when the recording looks sound. One
/// run against one is not called blocked: it cannot be otherwise, and
/// no significance is claimed for it.
pub fn warnings(check: &DesignCheck, names: (&str, &str)) -> Vec<String> {
    let mut out: Vec<String> = blocked_warning(&check.design, names).into_iter().collect();
    for (name, t) in [(names.0, &check.trend_a), (names.1, &check.trend_b)] {
        let Some(t) = t else { continue };
        if t.p_adjusted >= check.alpha {
            continue;
        }
        let moved = t
            .strongest
            .as_ref()
            .map(|m| {
                format!(
                    "; {} went {} → {} ms from its first run to its last",
                    m.metric,
                    crate::duration::ms_for_size(m.first_ms),
                    crate::duration::ms_for_size(m.last_ms)
                )
            })
            .unwrap_or_default();
        let consequence = if check.design == Design::Interleaved {
            "the sides were recorded alternately, so the drift hits both, but it widens the run-to-run noise the test judges by"
        } else {
            "the run-to-run test assumes no such trend"
        };
        out.push(format!(
            "drift: the {name}'s {} runs {} with recording time (Kendall τ = {:.2} of the run medians against start time, p = {}, Holm-adjusted over both sides){moved}; {consequence}",
            t.runs,
            if t.test.tau > 0.0 { "grow" } else { "shrink" },
            t.test.tau,
            super::quantity::format_p(t.p_adjusted),
        ));
    }
    out
}

/// The blocked design's warning: every run of one side recorded
/// before the other's. One run against one is not called blocked.
fn blocked_warning(design: &Design, names: (&str, &str)) -> Option<String> {
    if let Design::Blocked {
        a_first,
        runs,
        gap_ms,
    } = design
        && runs.0.max(runs.1) > 1
    {
        let (first, second, n1, n2) = if *a_first {
            (names.0, names.1, runs.0, runs.1)
        } else {
            (names.1, names.0, runs.1, runs.0)
        };
        let all = |n: usize, side: &str| {
            if n == 1 {
                format!("the {side} run")
            } else {
                format!("all {n} {side} runs")
            }
        };
        return Some(format!(
            "blocked design: {} {} recorded before {} ({} between the blocks), so drift between the two blocks (load, memory state, another boot or day) cannot be told from a change; record the sides alternately (one {first} run, one {second} run, …)",
            all(n1, first),
            if n1 == 1 { "was" } else { "were" },
            all(n2, second),
            gap_text(*gap_ms),
        ));
    }
    None
}

/// "2.5 s", "40 min".
fn gap_text(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 600_000 {
        format!("{} s", ms / 1000)
    } else if ms < 36_000_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} h", ms / 3_600_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mahonian_numbers() {
        assert_eq!(inversion_counts(1), [1.0]);
        assert_eq!(inversion_counts(4), [1.0, 3.0, 5.0, 6.0, 5.0, 3.0, 1.0]);
        let five = inversion_counts(5);
        assert_eq!(
            five,
            [1.0, 4.0, 9.0, 15.0, 20.0, 22.0, 20.0, 15.0, 9.0, 4.0, 1.0]
        );
        assert_eq!(five.iter().sum::<f64>(), 120.0);
    }

    /// All permutations of 0..n, for the brute-force check.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for at in 0..=p.len() {
                let mut q = p.clone();
                q.insert(at, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn exact_p_matches_brute_force() {
        let x: Vec<f64> = (0..6).map(f64::from).collect();
        let y = [3.0, 1.0, 4.0, 6.0, 5.0, 9.0];
        let k = kendall(&x, &y).unwrap();
        let s_of = |v: &[f64]| -> i64 {
            let mut s = 0;
            for i in 0..v.len() {
                for j in i + 1..v.len() {
                    s += sign(v[j] - v[i]);
                }
            }
            s
        };
        let all = permutations(6);
        let extreme = all
            .iter()
            .filter(|p| {
                let v: Vec<f64> = p.iter().map(|&i| y[i]).collect();
                s_of(&v).abs() >= k.s.abs()
            })
            .count();
        assert!(close(k.p, extreme as f64 / all.len() as f64), "{k:?}");
        assert_eq!(k.s, s_of(&y));
    }

    /// Published: a perfect order of 5 has two-sided p = 2/120 = 0.0167,
    /// the smallest possible with 5 runs.
    #[test]
    fn a_perfect_order_of_five() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let k = kendall(&x, &[10.0, 11.0, 15.0, 16.0, 20.0]).unwrap();
        assert_eq!((k.s, k.tau), (10, 1.0));
        assert!(close(k.p, 2.0 / 120.0));
        let k = kendall(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap();
        assert_eq!(k.tau, -1.0);
        // One swap: S = 8, p = 2·(1 + 4)/120.
        let k = kendall(&x, &[1.0, 3.0, 2.0, 4.0, 5.0]).unwrap();
        assert!(close(k.p, 10.0 / 120.0), "{k:?}");
        assert_eq!(kendall(&x, &[1.0; 5]), None);
        assert_eq!(kendall(&x[..2], &x[..2]), None);
    }

    #[test]
    fn ties_use_the_corrected_normal_approximation() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let y = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0];
        let k = kendall(&x, &y).unwrap();
        assert!(k.tau > 0.9 && k.p < 0.01, "{k:?}");
    }

    #[test]
    fn scaled_ranks_use_mid_ranks() {
        assert_eq!(scaled_ranks(&[3.0, 1.0, 2.0]), [1.0, 0.0, 0.5]);
        assert_eq!(scaled_ranks(&[1.0, 1.0, 2.0]), [0.25, 0.25, 1.0]);
        assert_eq!(scaled_ranks(&[7.0]), [0.5]);
    }

    #[test]
    fn gaps_read_in_the_right_unit() {
        assert_eq!(gap_text(2_500), "2.5 s");
        assert_eq!(gap_text(125_000), "125 s");
        assert_eq!(gap_text(2_400_000), "40 min");
        assert_eq!(gap_text(90_000_000), "25 h");
    }
}
