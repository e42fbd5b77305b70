//! `reaper gate --plan CHANGE`: how many runs per side the gate needs to
//! flag a given change with 90% power at the noise measured so far.
//!
//! For each gated metric the run-to-run spread of run medians (a fraction
//! of the median) comes from a calibration file (`run_sd`, and `set_sd` for
//! a baseline recorded in another job) or from the baseline's own runs
//! (their sample standard deviation over their median; 3 runs at least).
//! Power is then estimated by simulating the gate's own decision on `R`
//! against `R` run medians drawn from a normal model (baseline `1 + e`,
//! candidate `1 + change + e`, `e ~ N(0, sd)`): the candidate's median
//! exceeds the baseline's by more than the metric's threshold and by at
//! least `--min-delta-ms`, and the exact one-sided Mann-Whitney U of the
//! run medians reaches the per-metric level `alpha / metrics` (Holm's
//! first, strictest step, so the figure is conservative). 4,000 simulated
//! gates per `R` (standard error of a power near 0.9: 0.005), from a fixed
//! seed, so the same inputs always give the same plan.

use serde::Serialize;

use super::calibration::Calibration;
use super::gate::GateOptions;
use super::load::RunSet;
use super::metrics::samples;
use super::runlevel::run_medians;
use super::shift::lower_critical;
use super::spec::Threshold;
use super::stats::median;

/// Power the plan asks for.
pub const TARGET_POWER: f64 = 0.9;
/// Simulated gates per run count.
const SIMULATIONS: usize = 4000;
/// Largest run count tried.
pub const MAX_RUNS: usize = 50;

/// Where a metric's noise figure came from.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoiseSource {
    /// The baseline's runs.
    Baseline {
        /// Runs that measured the metric.
        runs: usize,
    },
    /// A calibration file.
    Calibration {
        /// The file.
        file: String,
    },
}

/// One gated metric's plan.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PlanRow {
    /// Metric name.
    pub metric: &'static str,
    /// Median of the run medians, ms (what percentages are of).
    pub median_ms: Option<f64>,
    /// Run-to-run spread of run medians, fraction of the median.
    pub run_sd: Option<f64>,
    /// Spread of whole run sets beyond their runs (a stored baseline), from
    /// a calibration.
    pub set_sd: f64,
    /// Where the noise came from.
    pub source: Option<NoiseSource>,
    /// The metric's threshold.
    pub threshold: Threshold,
    /// Runs per side for [`TARGET_POWER`], `None` when not reached by
    /// [`MAX_RUNS`] or not measurable.
    pub runs_needed: Option<usize>,
    /// Power with the runs the gate needs at least.
    pub power_at_min_runs: Option<f64>,
    /// Why there is no plan for this metric.
    pub not_measured: Option<String>,
}

/// The plan for every gated metric.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Plan {
    /// The change to detect, percent of the baseline.
    pub change_pct: f64,
    /// The fewest runs per side the gate accepts.
    pub min_runs: usize,
    /// One per gated metric.
    pub rows: Vec<PlanRow>,
}

/// A small deterministic generator (splitmix64) with Box-Muller normals:
/// the plan must not depend on a system RNG.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// What one simulated gate needs.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// Run-to-run sd, fraction.
    pub run_sd: f64,
    /// Set-to-set sd, fraction (each side's set effect).
    pub set_sd: f64,
    /// True change, fraction.
    pub change: f64,
    /// Allowed increase, fraction of the baseline median.
    pub allowed: f64,
    /// Floor, fraction of the baseline median.
    pub floor: f64,
    /// One-sided level per metric.
    pub level: f64,
}

/// The share of simulated `runs`-against-`runs` gates that flag `model`'s
/// change.
pub fn power(model: &Model, runs: usize, seed: u64) -> f64 {
    let Some((c, _)) = lower_critical(runs, runs, model.level) else {
        return 0.0;
    };
    // Reject when U (pairs with the candidate above) ≥ runs² − c.
    let reject_at = runs * runs - c;
    let mut rng = Rng(seed);
    let mut flagged = 0usize;
    for _ in 0..SIMULATIONS {
        let (set_b, set_c) = (model.set_sd * rng.normal(), model.set_sd * rng.normal());
        let base: Vec<f64> = (0..runs)
            .map(|_| 1.0 + set_b + model.run_sd * rng.normal())
            .collect();
        let cand: Vec<f64> = (0..runs)
            .map(|_| 1.0 + model.change + set_c + model.run_sd * rng.normal())
            .collect();
        let (Some(mb), Some(mc)) = (median(&base), median(&cand)) else {
            continue;
        };
        let delta = mc - mb;
        if delta <= model.allowed * mb || delta < model.floor {
            continue;
        }
        let u = cand
            .iter()
            .map(|y| base.iter().filter(|x| y > *x).count())
            .sum::<usize>();
        flagged += usize::from(u >= reject_at);
    }
    flagged as f64 / SIMULATIONS as f64
}

/// Runs per side from `from` up to [`MAX_RUNS`] until the power reaches
/// [`TARGET_POWER`]; also the power at `from`.
pub fn runs_needed(model: &Model, from: usize, seed: u64) -> (Option<usize>, f64) {
    let at_min = power(model, from, seed);
    if at_min >= TARGET_POWER {
        return (Some(from), at_min);
    }
    let needed = (from + 1..=MAX_RUNS).find(|&r| power(model, r, seed ^ r as u64) >= TARGET_POWER);
    (needed, at_min)
}

/// A metric's noise: (median ms, run sd, set sd, source), or why not.
type Noise = Result<(f64, f64, f64, NoiseSource), NoNoise>;

/// Why a metric's noise is not known, so its plan row is not measured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoNoise {
    /// The baseline has too few runs with the metric for a spread.
    #[error("the baseline measured it in {runs} run{}; the run-to-run spread needs 3", if *runs == 1 { "" } else { "s" })]
    TooFewRuns {
        /// Runs with a median of the metric.
        runs: usize,
    },
    /// The baseline's median is 0, so a relative spread is undefined.
    #[error("its baseline median is 0")]
    ZeroMedian,
    /// The calibration file has no row for the metric.
    #[error("the calibration file has no figure for {metric}")]
    NotCalibrated {
        /// The metric's name.
        metric: String,
    },
    /// The calibration file's row says why it was not measured.
    #[error("{0}")]
    CalibrationNotMeasured(String),
    /// Neither source of noise was given.
    #[error("no baseline and no calibration given")]
    NoSource,
}

fn noise_from_baseline(runs: &[Vec<f64>]) -> Noise {
    let medians = run_medians(runs);
    if medians.len() < 3 {
        return Err(NoNoise::TooFewRuns {
            runs: medians.len(),
        });
    }
    let centre = median(&medians).unwrap_or(0.0);
    if centre <= 0.0 {
        return Err(NoNoise::ZeroMedian);
    }
    let mean = medians.iter().sum::<f64>() / medians.len() as f64;
    let var = medians.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (medians.len() - 1) as f64;
    Ok((
        centre,
        var.sqrt() / centre,
        0.0,
        NoiseSource::Baseline {
            runs: medians.len(),
        },
    ))
}

fn noise_from_calibration(cal: &Calibration, file: &str, metric: &str) -> Noise {
    let m = cal
        .metrics
        .iter()
        .find(|m| m.metric == metric)
        .ok_or_else(|| NoNoise::NotCalibrated {
            metric: metric.to_owned(),
        })?;
    if let Some(why) = &m.not_measured {
        return Err(NoNoise::CalibrationNotMeasured(why.clone()));
    }
    Ok((
        m.median_ms,
        m.run_sd,
        m.set_sd,
        NoiseSource::Calibration {
            file: file.to_owned(),
        },
    ))
}

/// The plan for detecting `change_pct` with the gate `opts`, noise from
/// the calibration when given, else from `baseline`.
pub fn plan(baseline: Option<&RunSet>, opts: &GateOptions, change_pct: f64) -> Plan {
    let per_metric = baseline.map(|b| samples(b, &opts.policy));
    let min_runs = opts.runs_needed();
    let rows = opts
        .gated
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let noise: Noise = match (&opts.calibration, &per_metric) {
                (Some(c), _) => noise_from_calibration(&c.calibration, &c.path, g.metric.name),
                (None, Some(s)) => {
                    let index = super::metrics::METRICS
                        .iter()
                        .position(|m| m.name == g.metric.name)
                        .unwrap_or(0);
                    noise_from_baseline(&s[index].runs)
                }
                (None, None) => Err(NoNoise::NoSource),
            };
            let row = |median_ms, run_sd, set_sd, source| PlanRow {
                metric: g.metric.name,
                median_ms,
                run_sd,
                set_sd,
                source,
                threshold: g.threshold,
                runs_needed: None,
                power_at_min_runs: None,
                not_measured: None,
            };
            match noise {
                Err(why) => PlanRow {
                    not_measured: Some(why.to_string()),
                    ..row(None, None, 0.0, None)
                },
                Ok((median_ms, run_sd, set_sd, source)) => {
                    let model = Model {
                        run_sd,
                        set_sd,
                        change: change_pct / 100.0,
                        allowed: g.threshold.allowed_ms(median_ms) / median_ms,
                        floor: opts.min_delta_ms / median_ms,
                        level: opts.level(),
                    };
                    let (needed, at_min) = runs_needed(&model, min_runs, 0x5EED ^ i as u64);
                    PlanRow {
                        runs_needed: needed,
                        power_at_min_runs: Some(at_min),
                        ..row(Some(median_ms), Some(run_sd), set_sd, Some(source))
                    }
                }
            }
        })
        .collect();
    Plan {
        change_pct,
        min_runs,
        rows,
    }
}

/// The plan as markdown.
pub fn markdown(p: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "## reaper gate --plan: runs per side to flag a +{}% change with {:.0}% power\n\n",
        p.change_pct,
        TARGET_POWER * 100.0
    );
    let _ = writeln!(
        out,
        "| Metric | Median ms | Run-to-run sd | Set-to-set sd | Noise from | Threshold | Runs per side | Power at {} runs |",
        p.min_runs
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in &p.rows {
        if let Some(why) = &r.not_measured {
            let _ = writeln!(
                out,
                "| {} | – | – | – | – | {} | not measured ({why}) | – |",
                r.metric, r.threshold
            );
            continue;
        }
        let source = match &r.source {
            Some(NoiseSource::Baseline { runs }) => format!("baseline ({runs} runs)"),
            Some(NoiseSource::Calibration { file }) => format!("calibration `{file}`"),
            None => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}% | {:.1}% | {source} | {} | {} | {} |",
            r.metric,
            r.median_ms
                .map_or_else(|| "–".to_owned(), crate::duration::ms_for_size),
            r.run_sd.unwrap_or(0.0) * 100.0,
            r.set_sd * 100.0,
            r.threshold,
            r.runs_needed
                .map_or_else(|| format!("more than {MAX_RUNS}"), |n| n.to_string()),
            r.power_at_min_runs
                .map_or_else(|| "–".to_owned(), |p| format!("{p:.2}"))
        );
    }
    let _ = writeln!(
        out,
        "\nSimulated: {SIMULATIONS} gates per run count of normal run medians with the measured spread; a change is flagged as the gate flags it (over the threshold and the floor, and one-sided Mann-Whitney U of the run medians at alpha / metrics). A change no larger than a threshold is flagged at most half the time whatever the runs. Record the sides alternately: set-to-set drift (a calibration's set_sd, for a baseline from another job) then cancels."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(change: f64, run_sd: f64) -> Model {
        Model {
            run_sd,
            set_sd: 0.0,
            change,
            allowed: 0.05,
            floor: 0.0,
            level: 0.01,
        }
    }

    #[test]
    fn power_grows_with_the_change_and_the_runs() {
        let small = power(&model(0.10, 0.05), 5, 1);
        let large = power(&model(0.30, 0.05), 5, 1);
        assert!(small < large, "{small} {large}");
        assert!(large > 0.95, "{large}");
        let more = power(&model(0.10, 0.05), 15, 1);
        assert!(more > small, "{more} {small}");
        // No change: flagged almost never (the level and the threshold).
        assert!(power(&model(0.0, 0.05), 10, 1) < 0.01);
        // A change inside the threshold: at most about half the time.
        assert!(power(&model(0.05, 0.02), 30, 1) < 0.6);
    }

    /// Cross-check against the exact answer with no noise: every simulated
    /// gate is complete separation, flagged once the runs reach the level
    /// (5 against 5 at 0.01: 1/252).
    #[test]
    fn without_noise_the_runs_the_test_needs_suffice() {
        let m = Model {
            run_sd: 1e-9,
            ..model(0.2, 0.0)
        };
        assert_eq!(power(&m, 4, 1), 0.0, "4 vs 4 cannot reach 0.01: 1/70");
        assert_eq!(power(&m, 5, 1), 1.0);
        assert_eq!(runs_needed(&m, 5, 1), (Some(5), 1.0));
    }

    #[test]
    fn a_plan_from_the_baseline_runs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/compare/set-baseline");
        let set = super::super::load_set("baseline", &path, &Default::default()).unwrap();
        let p = plan(Some(&set), &super::super::gate::default_options(), 20.0);
        assert_eq!(p.rows.len(), 5);
        let total = &p.rows[0];
        assert_eq!(total.source, Some(NoiseSource::Baseline { runs: 5 }));
        // The fixture's runs spread ±3%: +20% is flagged with the 5 runs
        // the gate needs anyway.
        assert_eq!(total.runs_needed, Some(5), "{total:?}");
        let md = markdown(&p);
        assert!(md.contains("| total | "), "{md}");
        let none = plan(None, &super::super::gate::default_options(), 20.0);
        assert!(none.rows.iter().all(|r| r.not_measured.is_some()));
    }
}
