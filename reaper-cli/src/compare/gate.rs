//! The gate verdict: which gated metrics regressed.
//!
//! A metric regresses when all three hold:
//! 1. its candidate median exceeds the baseline median by more than the
//!    threshold ([`Threshold::allowed_ms`]);
//! 2. the increase is at least [`GateOptions::min_delta_ms`] (a floor, so a
//!    percentage of a near-zero baseline cannot fail on one sample);
//! 3. a one-sided Mann-Whitney U test says the candidate is larger with
//!    p < [`GateOptions::alpha`] (so a median moved by noise does not fail).

use serde::Serialize;

use super::diff::{Header, SideInfo};
use super::load::RunSet;
use super::metrics::samples;
use super::quantity::Comparison;
use super::spec::{Gated, Threshold};
use super::stats::{MannWhitney, mann_whitney};

/// Default episodes required per side; 5 vs 5 is the smallest design where
/// complete separation reaches p = 0.004 one-sided.
pub const DEFAULT_MIN_RUNS: usize = 5;
/// Default one-sided significance level.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default absolute floor, ms: two cpu-clock samples at the default 4 kHz,
/// below which a sampled difference is one sample landing either way.
pub const DEFAULT_MIN_DELTA_MS: f64 = 0.5;

/// Gate settings.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GateOptions {
    /// Gated metrics and thresholds.
    pub gated: Vec<Gated>,
    /// Complete episodes required on each side.
    pub min_runs: usize,
    /// One-sided significance level.
    pub alpha: f64,
    /// Increases below this are never regressions, ms.
    pub min_delta_ms: f64,
}

/// A gated metric's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Within its threshold (or below the floor).
    Pass,
    /// Over its threshold, with significance.
    Regressed,
    /// Over its threshold, but not significantly: within the noise.
    WithinNoise,
    /// Significantly smaller on the candidate.
    Improved,
    /// Not evaluated, and why.
    Skipped {
        /// Why.
        why: String,
    },
}

/// One gated metric.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    /// Metric name.
    pub metric: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Its threshold.
    pub threshold: Threshold,
    /// The largest allowed increase, ms (when the baseline was measured).
    pub allowed_ms: Option<f64>,
    /// Baseline (a) and candidate (b).
    pub comparison: Comparison,
    /// The one-sided test, when both sides were measured.
    pub test: Option<MannWhitney>,
    /// The outcome.
    pub status: Status,
}

/// The gate's result.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GateReport {
    /// The baseline.
    pub baseline: SideInfo,
    /// The candidate.
    pub candidate: SideInfo,
    /// What differs between the sides (allowed, shown).
    pub differences: Vec<String>,
    /// Comparability notes.
    pub notes: Vec<String>,
    /// Settings used.
    pub options: GateOptions,
    /// One per gated metric.
    pub verdicts: Vec<Verdict>,
}

impl GateReport {
    /// The verdicts that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts
            .iter()
            .filter(|v| v.status == Status::Regressed)
    }

    /// 0 when nothing regressed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.regressions().next().is_some())
    }
}

fn status(
    values: (&[f64], &[f64]),
    c: &Comparison,
    test: Option<&MannWhitney>,
    allowed: Option<f64>,
    opts: &GateOptions,
) -> Status {
    let (base, cand) = values;
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
    let fewest = base.len().min(cand.len());
    if fewest < opts.min_runs {
        return skipped(format!(
            "measured in only {} baseline and {} candidate episodes; --min-runs is {}",
            base.len(),
            cand.len(),
            opts.min_runs
        ));
    }
    let (Some(test), Some(delta), Some(allowed)) = (test, c.delta_ms, allowed) else {
        return skipped("no data".to_owned());
    };
    if test.p_less < opts.alpha && delta < 0.0 {
        return Status::Improved;
    }
    if delta <= allowed || delta < opts.min_delta_ms {
        return Status::Pass;
    }
    if test.p_greater < opts.alpha {
        Status::Regressed
    } else {
        Status::WithinNoise
    }
}

/// Evaluates every gated metric.
pub fn evaluate(
    baseline: &RunSet,
    candidate: &RunSet,
    header: Header,
    opts: &GateOptions,
) -> GateReport {
    let (sb, sc) = (samples(baseline), samples(candidate));
    let verdicts = opts
        .gated
        .iter()
        .map(|g| {
            let index = super::metrics::METRICS
                .iter()
                .position(|m| m.name == g.metric.name)
                .expect("gated metrics come from METRICS");
            let (b, c) = (&sb[index], &sc[index]);
            let comparison = Comparison::new(
                &b.values,
                &c.values,
                || b.why_not().unwrap_or_default(),
                || c.why_not().unwrap_or_default(),
            );
            let test = mann_whitney(&b.values, &c.values);
            let allowed = comparison.a.median().map(|m| g.threshold.allowed_ms(m));
            let status = status(
                (&b.values, &c.values),
                &comparison,
                test.as_ref(),
                allowed,
                opts,
            );
            Verdict {
                metric: g.metric.name,
                description: g.metric.description,
                threshold: g.threshold,
                allowed_ms: allowed,
                comparison,
                test,
                status,
            }
        })
        .collect();
    GateReport {
        baseline: header.a,
        candidate: header.b,
        differences: header.differences,
        notes: header.notes,
        options: opts.clone(),
        verdicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GateOptions {
        GateOptions {
            gated: Vec::new(),
            min_runs: 5,
            alpha: DEFAULT_ALPHA,
            min_delta_ms: DEFAULT_MIN_DELTA_MS,
        }
    }

    fn judge(base: &[f64], cand: &[f64], threshold: Threshold) -> Status {
        let c = Comparison::new(base, cand, || "why".into(), || "why".into());
        let t = mann_whitney(base, cand);
        let allowed = c.a.median().map(|m| threshold.allowed_ms(m));
        status((base, cand), &c, t.as_ref(), allowed, &opts())
    }

    const BASE: [f64; 5] = [100.0, 98.0, 103.0, 101.0, 99.0];

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
    fn a_shifted_median_within_the_noise_is_not_a_regression() {
        let base = [80.0, 120.0, 95.0, 130.0, 70.0];
        let cand = [90.0, 140.0, 110.0, 125.0, 75.0];
        // Median +15% but the samples overlap: not significant.
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
        let base = [0.1, 0.1, 0.1, 0.1, 0.1];
        let cand = [0.2, 0.2, 0.2, 0.2, 0.2];
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
            Status::Skipped { why } if why.contains("--min-runs is 5")
        ));
    }
}
