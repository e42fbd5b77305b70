//! The gate verdict: which gated metrics regressed.
//!
//! The statistical unit is the run ([`super::runlevel`]). A metric regresses
//! when all of these hold:
//! 1. its candidate median exceeds the baseline median by more than the
//!    allowed increase: the larger of its threshold
//!    ([`super::spec::Threshold::allowed_ms`]) and, with a calibration file, what
//!    measured run-to-run noise reaches at the per-metric level
//!    ([`super::calibration`]);
//! 2. the increase is at least [`GateOptions::min_delta_ms`] (a floor, so a
//!    percentage of a near-zero baseline cannot fail on one sample);
//! 3. when both sides have enough runs ([`GateOptions::runs_needed`]), a
//!    one-sided Mann-Whitney U test of the run medians, Holm-adjusted over
//!    the gated metrics, gives p < [`GateOptions::alpha`]. Without enough
//!    runs only a calibration can judge the noise; without one the gate
//!    refuses ([`check_runs`]).
//!
//! `alpha` is the gate's false-alarm rate over all its metrics, not each
//! metric's: per metric the level is `alpha / metrics` (Holm's first step).
//!
//! The report's types are reaper-model's ([`reaper_model::output::gate`]),
//! so xtask and other readers decode `gate --json` with what this fills.

use super::CompareError;
use super::clean::{LossPolicy, Scope, exclusion};
use super::diff::Header;
use super::load::RunSet;
use super::metrics::{Samples, samples};
use super::quantity::{Comparison, comparison};
use super::runlevel::{self, holm};
use super::spec::Gated;
use super::stats::MannWhitney;

pub use reaper_model::output::gate::{
    CalibrationUse, GateOptions, GateReport, NoiseFloor, Status, UNIT, Verdict,
};

/// Default false-alarm rate of the whole gate (all gated metrics).
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default absolute floor, ms: two cpu-clock samples at the default 4 kHz,
/// below which a sampled difference is one sample landing either way.
pub const DEFAULT_MIN_DELTA_MS: f64 = 0.5;
/// Default equivalence margin, percent of the baseline: a metric whose
/// shift's 95% interval lies inside ±this is reported as "no change beyond
/// ±5%". The smallest default gate threshold; see the README for the A/A
/// interval widths it was checked against.
pub const DEFAULT_EQUIVALENCE_PCT: f64 = 5.0;

/// The gate's defaults: the default SPEC, alpha, floor and loss policy,
/// no calibration.
pub fn default_options() -> GateOptions {
    GateOptions {
        gated: super::spec::defaults(),
        min_runs: None,
        alpha: DEFAULT_ALPHA,
        min_delta_ms: DEFAULT_MIN_DELTA_MS,
        calibration: None,
        policy: LossPolicy::default(),
        equivalence_pct: DEFAULT_EQUIVALENCE_PCT,
    }
}

/// Refuses a gate whose sides have too few runs to separate a change from
/// run-to-run drift, unless a calibration measured that drift.
pub fn check_runs(
    baseline: &RunSet,
    candidate: &RunSet,
    opts: &GateOptions,
) -> Result<(), CompareError> {
    let needed = if opts.calibration.is_some() {
        1
    } else {
        opts.runs_needed()
    };
    let scopes: Vec<Scope> = opts
        .gated
        .iter()
        .map(|g| Scope::of_row(g.metric.row))
        .collect();
    for (side, set) in [("baseline", baseline), ("candidate", candidate)] {
        let runs = set
            .runs
            .iter()
            .filter(|r| {
                r.run.episodes.iter().any(|e| {
                    scopes
                        .iter()
                        .any(|&s| exclusion(e, s, &opts.policy).is_none())
                })
            })
            .count();
        if runs < needed {
            return Err(CompareError::TooFewRuns {
                side,
                found: runs,
                required: needed,
                alpha: opts.alpha,
                metrics: opts.gated.len(),
            });
        }
    }
    Ok(())
}

/// What a status decision reads.
struct Evidence {
    /// Both sides have the runs the test needs.
    enough_runs: bool,
    /// Holm-adjusted one-sided p that the candidate is larger / smaller.
    p_greater: Option<f64>,
    p_less: Option<f64>,
    /// Allowed increase, ms.
    allowed: Option<f64>,
    /// The calibration measured this metric's noise.
    calibrated: bool,
}

fn status(c: &Comparison, e: &Evidence, opts: &GateOptions) -> Status {
    let skipped = |why: String| Status::Skipped { why };
    match (&c.a, &c.b) {
        (super::quantity::Side::NotMeasured { why }, _) => {
            return skipped(format!("not measured on the baseline ({why})"));
        }
        (_, super::quantity::Side::NotMeasured { why }) => {
            return skipped(format!("not measured on the candidate ({why})"));
        }
        _ => {}
    }
    if !e.enough_runs && !e.calibrated {
        let calibration = if opts.calibration.is_some() {
            " (the calibration has no noise figure for this metric)"
        } else {
            ""
        };
        return skipped(format!(
            "measured in only {} baseline and {} candidate runs; {} per side are needed{calibration}",
            c.a.runs(),
            c.b.runs(),
            opts.runs_needed()
        ));
    }
    let (Some(delta), Some(allowed)) = (c.delta_ms, e.allowed) else {
        return skipped("no data".to_owned());
    };
    let significant = |p: Option<f64>| p.is_some_and(|p| p < opts.alpha);
    if delta < 0.0
        && (if e.enough_runs {
            significant(e.p_less)
        } else {
            -delta > allowed
        })
    {
        return Status::Improved;
    }
    if delta <= allowed || delta < opts.min_delta_ms {
        return Status::Pass;
    }
    if !e.enough_runs || significant(e.p_greater) {
        // Too few runs for the test: the calibrated noise was the evidence.
        Status::Regressed
    } else {
        Status::WithinNoise
    }
}

/// The calibrated noise allowance of one metric, ms.
fn noise_ms(g: &Gated, c: &Comparison, opts: &GateOptions) -> Option<f64> {
    let cal = &opts.calibration.as_ref()?.calibration;
    let fraction = super::calibration::allowed_fraction(
        cal.get(g.metric)?,
        c.a.runs(),
        c.b.runs(),
        opts.level(),
    )?;
    Some(fraction * c.a.median()?)
}

/// One gated metric's samples compared: the gate's entry, the comparison
/// of both sides, and the run-level test (when both sides have runs).
type GatedRow<'g> = (&'g Gated, Comparison, Option<MannWhitney>);

/// Each gated metric's comparison of the baseline's samples `sb` with the
/// candidate's `sc`.
fn gated_rows<'g>(gated: &'g [Gated], sb: &[Samples], sc: &[Samples]) -> Vec<GatedRow<'g>> {
    gated
        .iter()
        .map(|g| {
            let index = super::metrics::METRICS
                .iter()
                .position(|m| m.name == g.metric.name)
                .expect("gated metrics come from METRICS");
            let (b, c) = (&sb[index], &sc[index]);
            let comparison = comparison(
                &b.runs,
                &c.runs,
                || b.why_not().unwrap_or_default(),
                || c.why_not().unwrap_or_default(),
            )
            .covering(b.coverage.clone(), c.coverage.clone());
            (g, comparison, runlevel::test(&b.runs, &c.runs))
        })
        .collect()
}

/// The verdict on one gated metric, given its Holm-adjusted p-values
/// (greater, less) and the runs each side needs.
fn verdict(
    (g, comparison, test): GatedRow<'_>,
    (p_greater, p_less): (Option<f64>, Option<f64>),
    needed: usize,
    opts: &GateOptions,
) -> Verdict {
    let noise = noise_ms(g, &comparison, opts);
    let allowed = comparison
        .a
        .median()
        .map(|m| g.threshold.allowed_ms(m).max(noise.unwrap_or(0.0)));
    let evidence = Evidence {
        enough_runs: comparison.a.runs() >= needed && comparison.b.runs() >= needed,
        p_greater,
        p_less,
        allowed,
        calibrated: noise.is_some(),
    };
    let no_change_beyond_pct = comparison
        .shift
        .filter(|s| s.ms.within(s.base_ms, opts.equivalence_pct))
        .map(|_| opts.equivalence_pct);
    Verdict {
        metric: g.metric.name.to_owned(),
        description: g.metric.description.to_owned(),
        threshold: g.threshold,
        allowed_ms: allowed,
        noise_ms: noise,
        no_change_beyond_pct,
        status: status(&comparison, &evidence, opts),
        comparison,
        test,
        p_adjusted: p_greater,
    }
}

/// One p-value of each test, Holm-adjusted over the tests that ran (`None`
/// where a metric had no test).
fn holm_adjusted(tests: &[Option<&MannWhitney>], p: fn(&MannWhitney) -> f64) -> Vec<Option<f64>> {
    let raw: Vec<f64> = tests.iter().filter_map(|t| t.map(p)).collect();
    let mut adj = holm(&raw).into_iter();
    tests.iter().map(|t| t.and_then(|_| adj.next())).collect()
}

/// Evaluates every gated metric.
pub fn evaluate(
    baseline: &RunSet,
    candidate: &RunSet,
    header: Header,
    opts: &GateOptions,
) -> GateReport {
    let (sb, sc) = (
        samples(baseline, &opts.policy),
        samples(candidate, &opts.policy),
    );
    let rows = gated_rows(&opts.gated, &sb, &sc);
    let tests: Vec<Option<&MannWhitney>> = rows.iter().map(|(_, _, t)| t.as_ref()).collect();
    let (p_greater, p_less) = (
        holm_adjusted(&tests, |t| t.p_greater),
        holm_adjusted(&tests, |t| t.p_less),
    );
    let gated_index: Vec<usize> = opts
        .gated
        .iter()
        .filter_map(|g| {
            super::metrics::METRICS
                .iter()
                .position(|m| m.name == g.metric.name)
        })
        .collect();
    let design = super::diff::design_check(
        (baseline, &sb),
        (candidate, &sc),
        |i| gated_index.contains(&i),
        opts.alpha,
    );
    let needed = opts.runs_needed();
    let verdicts = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| verdict(row, (p_greater[i], p_less[i]), needed, opts))
        .collect();
    GateReport {
        baseline: header.a,
        candidate: header.b,
        differences: header.differences,
        notes: header.notes,
        unit: UNIT.to_owned(),
        noise_floor: opts.noise_floor(),
        options: opts.clone(),
        verdicts,
        warnings: super::design::warnings(&design, ("baseline", "candidate")),
        design,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::calibration::{Calibration, MetricNoise, VERSION};
    use crate::compare::metrics::METRICS;
    use crate::compare::spec::Threshold;

    fn opts(calibrated: bool) -> GateOptions {
        let calibration = calibrated.then(|| CalibrationUse {
            path: "noise.json".into(),
            calibration: Calibration {
                version: VERSION,
                sources: vec![],
                sets: 8,
                runs: 40,
                kernels: vec![],
                scenarios: vec![],
                metrics: vec![MetricNoise {
                    metric: "total".into(),
                    median_ms: 100.0,
                    run_sd: 0.05,
                    set_sd: 0.03,
                    runs: 40,
                    sets: 8,
                    not_measured: None,
                }],
            },
        });
        GateOptions {
            gated: crate::compare::spec::parse("").unwrap(),
            min_runs: None,
            alpha: DEFAULT_ALPHA,
            min_delta_ms: DEFAULT_MIN_DELTA_MS,
            calibration,
            policy: LossPolicy::default(),
            equivalence_pct: DEFAULT_EQUIVALENCE_PCT,
        }
    }

    /// Each value is one run of three identical episodes.
    fn runs(values: &[f64]) -> Vec<Vec<f64>> {
        values.iter().map(|v| vec![*v; 3]).collect()
    }

    fn judge_with(base: &[f64], cand: &[f64], threshold: Threshold, o: &GateOptions) -> Status {
        let (b, c) = (runs(base), runs(cand));
        let comparison = comparison(&b, &c, || "why".into(), || "why".into());
        let test = runlevel::test(&b, &c);
        let gated = Gated {
            metric: &METRICS[0],
            threshold,
        };
        let noise = noise_ms(&gated, &comparison, o);
        let needed = o.runs_needed();
        // One metric's p, adjusted as the first of the default five.
        let evidence = Evidence {
            enough_runs: comparison.a.runs() >= needed && comparison.b.runs() >= needed,
            p_greater: test.map(|t| (t.p_greater * 5.0).min(1.0)),
            p_less: test.map(|t| (t.p_less * 5.0).min(1.0)),
            allowed: comparison
                .a
                .median()
                .map(|m| threshold.allowed_ms(m).max(noise.unwrap_or(0.0))),
            calibrated: noise.is_some(),
        };
        status(&comparison, &evidence, o)
    }

    fn judge(base: &[f64], cand: &[f64], threshold: Threshold) -> Status {
        judge_with(base, cand, threshold, &opts(false))
    }

    const BASE: [f64; 5] = [100.0, 98.0, 103.0, 101.0, 99.0];

    #[test]
    fn five_metrics_at_5_percent_need_5_runs_per_side() {
        let o = opts(false);
        assert_eq!(o.gated.len(), 5);
        assert!((o.level() - 0.01).abs() < 1e-12);
        assert_eq!(o.runs_needed(), 5);
        assert!(o.noise_floor().to_string().contains("5 or more per side"));
    }

    #[test]
    fn a_clear_20_percent_regression_fails() {
        let cand: Vec<f64> = BASE.iter().map(|v| v * 1.2).collect();
        assert_eq!(
            judge(&BASE, &cand, Threshold::Percent(5.0)),
            Status::Regressed
        );
        // The same data under a 25% threshold passes.
        assert_eq!(judge(&BASE, &cand, Threshold::Percent(25.0)), Status::Pass);
        assert_eq!(judge(&BASE, &cand, Threshold::Ms(30.0)), Status::Pass);
    }

    #[test]
    fn identical_runs_pass() {
        assert_eq!(judge(&BASE, &BASE, Threshold::Percent(5.0)), Status::Pass);
    }

    #[test]
    fn a_shifted_median_within_the_run_noise_is_not_a_regression() {
        let base = [80.0, 120.0, 95.0, 130.0, 70.0];
        let cand = [90.0, 140.0, 110.0, 125.0, 75.0];
        // Median +15% but the runs overlap: not significant.
        assert_eq!(
            judge(&base, &cand, Threshold::Percent(5.0)),
            Status::WithinNoise
        );
    }

    #[test]
    fn improvements_and_the_floor() {
        let faster: Vec<f64> = BASE.iter().map(|v| v * 0.8).collect();
        assert_eq!(
            judge(&BASE, &faster, Threshold::Percent(5.0)),
            Status::Improved
        );
        // +100% of a 0.1 ms baseline is under the 0.5 ms floor.
        let base = [0.1; 5];
        let cand = [0.2; 5];
        assert_eq!(judge(&base, &cand, Threshold::Percent(10.0)), Status::Pass);
    }

    #[test]
    fn missing_or_thin_data_is_skipped() {
        assert!(matches!(
            judge(&[], &BASE, Threshold::Percent(5.0)),
            Status::Skipped { why } if why.starts_with("not measured on the baseline")
        ));
        assert!(matches!(
            judge(&BASE, &BASE[..3], Threshold::Percent(5.0)),
            Status::Skipped { why } if why.contains("5 per side are needed")
        ));
    }

    #[test]
    fn a_calibration_raises_the_threshold_to_the_noise_and_judges_few_runs() {
        let o = opts(true);
        // One run per side: noise sd = sqrt(0.05² · 2 + 2 · 0.03²) = 0.0825,
        // z(0.01) = 2.326: noise allows +19.2%.
        let n = noise_ms(
            &Gated {
                metric: &METRICS[0],
                threshold: Threshold::Percent(5.0),
            },
            &comparison(&runs(&[100.0]), &runs(&[110.0]), String::new, String::new),
            &o,
        )
        .unwrap();
        assert!((n - 19.18).abs() < 0.01, "{n}");
        assert_eq!(
            judge_with(&[100.0], &[115.0], Threshold::Percent(5.0), &o),
            Status::Pass
        );
        assert_eq!(
            judge_with(&[100.0], &[125.0], Threshold::Percent(5.0), &o),
            Status::Regressed
        );
        // A user threshold above the noise still wins.
        assert_eq!(
            judge_with(&[100.0], &[125.0], Threshold::Percent(30.0), &o),
            Status::Pass
        );
        assert!(
            o.noise_floor()
                .to_string()
                .contains("noise.json (8 A/A run sets, 40 runs)")
        );
    }
}
