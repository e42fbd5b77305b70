//! Run-to-run noise measured from A/A run sets (`reaper gate --calibrate`),
//! kept as a file beside a CI baseline and used by `reaper gate
//! --calibration FILE`.
//!
//! Model: a run's median of a metric, relative to the grand median, is
//! `set effect + run effect`; the run effect's spread `run_sd` is what runs
//! recorded together disagree by, the set effect's spread `set_sd` is what
//! whole run sets recorded at different times (another job, another day)
//! disagree by beyond that. Both are fractions of the median, estimated by
//! the usual one-way variance components: `run_sd²` is the pooled
//! within-set variance of run medians, `set_sd²` the variance of the set
//! means minus its run part (never below 0).
//!
//! A gate of `ra` baseline against `rb` candidate runs then expects its
//! relative delta to have a standard deviation of
//! `sqrt(run_sd² (1/ra + 1/rb) + 2 set_sd²)`, and noise allows `z` times
//! that, `z` the normal quantile of the per-metric level.
//!
//! The file's types ([`Calibration`], [`MetricNoise`]) are reaper-model's;
//! this module estimates, reads and sums them up.

use std::path::{Path, PathBuf};

use super::clean::LossPolicy;
use super::load::RunSet;
use super::metrics::{METRICS, Metric, samples};

use super::runlevel::{normal_upper_quantile, run_medians};
use super::stats::median;
pub use reaper_model::output::calibration::{Calibration, MetricNoise, VERSION};

/// Largest calibration file read: one is a few KB (a line per metric and
/// per A/A set), so 1 MiB is generous.
pub const MAX_CALIBRATION_BYTES: u64 = 1 << 20;

/// The relative increase noise alone reaches with probability `level`
/// (one-sided) in a gate of `ra` against `rb` runs; `None` when not
/// measured.
pub fn allowed_fraction(noise: &MetricNoise, ra: usize, rb: usize, level: f64) -> Option<f64> {
    if noise.not_measured.is_some() || ra == 0 || rb == 0 {
        return None;
    }
    let runs = 1.0 / ra as f64 + 1.0 / rb as f64;
    let sd = (noise.run_sd.powi(2) * runs + 2.0 * noise.set_sd.powi(2)).sqrt();
    Some(normal_upper_quantile(level) * sd)
}

/// Why a calibration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// Unreadable.
    #[error("{}: cannot read the calibration file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not a calibration.
    #[error("{}: not a reaper gate calibration file; write one with `reaper gate --calibrate DIR... -o FILE`", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The decode error.
        #[source]
        source: crate::input::DecodeError,
    },
    /// Not a regular file, or larger than any calibration.
    #[error("{}: {what}; not a reaper gate calibration file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is.
        what: String,
    },
    /// Another format version.
    #[error("{}: calibration format version {found}, this reaper reads {VERSION}; calibrate again with this reaper", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// Fewer than two runs in all: no spread to measure.
    #[error(
        "calibration needs at least two runs in all (found {runs}); record A/A run sets with several `reaper record` invocations each"
    )]
    TooFewRuns {
        /// Runs given.
        runs: usize,
    },
}

/// Sample variance (n − 1); `None` below two values.
fn variance(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some(values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64)
}

/// One metric's noise from its run medians per set.
fn noise(metric: &Metric, per_set: &[Vec<f64>]) -> MetricNoise {
    let all: Vec<f64> = per_set.iter().flatten().copied().collect();
    let sets: Vec<&Vec<f64>> = per_set.iter().filter(|s| !s.is_empty()).collect();
    let mut out = MetricNoise {
        metric: metric.name.to_owned(),
        median_ms: median(&all).unwrap_or(0.0),
        run_sd: 0.0,
        set_sd: 0.0,
        runs: all.len(),
        sets: sets.len(),
        not_measured: None,
    };
    if out.median_ms <= 0.0 {
        out.not_measured = Some("no positive values in the A/A runs".to_owned());
        return out;
    }
    let rel: Vec<Vec<f64>> = sets
        .iter()
        .map(|s| s.iter().map(|v| v / out.median_ms - 1.0).collect())
        .collect();
    let (mut squares, mut dof) = (0.0, 0usize);
    for s in &rel {
        if let Some(v) = variance(s) {
            squares += v * (s.len() - 1) as f64;
            dof += s.len() - 1;
        }
    }
    let means: Vec<f64> = rel
        .iter()
        .map(|s| s.iter().sum::<f64>() / s.len() as f64)
        .collect();
    let between = variance(&means);
    match (dof, between) {
        (0, None) => out.not_measured = Some("fewer than two runs measured it".to_owned()),
        // One run per set: runs and sets cannot be told apart; all of the
        // spread is counted as set drift, which does not shrink with runs.
        (0, Some(b)) => out.set_sd = b.sqrt(),
        (_, between) => {
            let within = squares / dof as f64;
            out.run_sd = within.sqrt();
            if let Some(b) = between {
                let mean_inverse =
                    rel.iter().map(|s| 1.0 / s.len() as f64).sum::<f64>() / rel.len() as f64;
                out.set_sd = (b - within * mean_inverse).max(0.0).sqrt();
            }
        }
    }
    out
}

/// Measures the noise of every metric from A/A run sets, each run's median
/// over the episodes `policy` lets the metric use.
pub fn estimate(sets: &[RunSet], policy: &LossPolicy) -> Result<Calibration, CalibrationError> {
    let runs: usize = sets.iter().map(|s| s.runs.len()).sum();
    if runs < 2 {
        return Err(CalibrationError::TooFewRuns { runs });
    }
    let per_set: Vec<Vec<super::metrics::Samples>> =
        sets.iter().map(|s| samples(s, policy)).collect();
    let metrics = METRICS
        .iter()
        .enumerate()
        .map(|(i, metric)| {
            let medians: Vec<Vec<f64>> = per_set.iter().map(|s| run_medians(&s[i].runs)).collect();
            noise(metric, &medians)
        })
        .collect();
    let distinct = |f: &dyn Fn(&crate::model::Run) -> String| {
        let mut seen: Vec<String> = Vec::new();
        for set in sets {
            for v in set.distinct(f) {
                if !seen.contains(&v) {
                    seen.push(v);
                }
            }
        }
        seen
    };
    Ok(Calibration {
        version: VERSION,
        sources: sets.iter().map(|s| s.path.display().to_string()).collect(),
        sets: sets.len(),
        runs,
        kernels: distinct(&|r| r.host.kernel_release.clone()),
        scenarios: distinct(&|r| r.recording.scenario.label().to_owned()),
        metrics,
    })
}

/// Reads a calibration file: untrusted input like a run file (CI keeps
/// it beside the baseline), so only a regular file of at most
/// [`MAX_CALIBRATION_BYTES`] is opened, and it is decoded through the
/// guard (strings escaped, numbers bounded, memory charged).
pub fn read(path: &Path) -> Result<Calibration, CalibrationError> {
    use crate::input::open::{Opened, describe, open_path};
    use std::io::Read as _;
    let read_error = |source| CalibrationError::Read {
        path: path.to_owned(),
        source,
    };
    let not_a_file = |what: String| CalibrationError::NotAFile {
        path: path.to_owned(),
        what,
    };
    let (file, id) = match open_path(path, true).map_err(read_error)? {
        Opened::File(file, id) => (file, id),
        Opened::Dir(_) => return Err(not_a_file("a directory".to_owned())),
        Opened::Other(kind) => {
            return Err(not_a_file(format!(
                "{}, not a regular file",
                describe(kind)
            )));
        }
    };
    if id.size > MAX_CALIBRATION_BYTES {
        return Err(not_a_file(format!(
            "{} bytes, larger than any calibration (limit {MAX_CALIBRATION_BYTES})",
            id.size
        )));
    }
    let budget = crate::input::Budget::default();
    budget
        .charge_bytes(id.size)
        .map_err(|e| not_a_file(e.to_string()))?;
    let cal: Calibration =
        crate::input::decode(file.take(id.size), &budget).map_err(|source| match source {
            crate::input::DecodeError::Read(source) => read_error(source),
            source => CalibrationError::Corrupt {
                path: path.to_owned(),
                source,
            },
        })?;
    if cal.version != VERSION {
        return Err(CalibrationError::Version {
            path: path.to_owned(),
            found: cal.version,
        });
    }
    Ok(cal)
}

/// A human summary: one line per metric.
pub fn summary(cal: &Calibration) -> String {
    let mut out = format!(
        "calibration from {} A/A run set{} ({} runs; {}; {})\n",
        cal.sets,
        if cal.sets == 1 { "" } else { "s" },
        cal.runs,
        cal.kernels.join(", "),
        cal.scenarios.join(", ")
    );
    for m in &cal.metrics {
        match &m.not_measured {
            Some(why) => out.push_str(&format!("  {:<24} not measured ({why})\n", m.metric)),
            None => out.push_str(&format!(
                "  {:<24} median {:.2} ms, run-to-run {:.1}%, set-to-set {:.1}%, noise allows +{:.1}% with 5 vs 5 runs at p=0.01\n",
                m.metric,
                m.median_ms,
                m.run_sd * 100.0,
                m.set_sd * 100.0,
                allowed_fraction(m, 5, 5, 0.01).unwrap_or(0.0) * 100.0
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric() -> &'static Metric {
        &METRICS[0]
    }

    #[test]
    fn runs_and_sets_are_told_apart() {
        // Three sets of three runs: within each set ±1 around its level,
        // the levels 100, 110, 90: sets drift, runs barely.
        let per_set = vec![
            vec![99.0, 100.0, 101.0],
            vec![109.0, 110.0, 111.0],
            vec![89.0, 90.0, 91.0],
        ];
        let n = noise(metric(), &per_set);
        assert_eq!((n.runs, n.sets, n.median_ms), (9, 3, 100.0));
        assert!((n.run_sd - 0.01).abs() < 1e-12, "{n:?}");
        // Set means 0, 0.1, −0.1: variance 0.01, minus 0.0001/3.
        let expected = (0.01f64 - 0.0001 / 3.0).sqrt();
        assert!((n.set_sd - expected).abs() < 1e-12, "{n:?}");
        // 5 vs 5 runs, z(0.01) = 2.326.
        let allowed = allowed_fraction(&n, 5, 5, 0.01).unwrap();
        let sd = (0.0001f64 * 0.4 + 2.0 * expected * expected).sqrt();
        assert!((allowed - 2.326_348 * sd).abs() < 1e-5, "{allowed}");
    }

    #[test]
    fn one_set_measures_runs_only_and_one_run_per_set_counts_as_drift() {
        let n = noise(metric(), &[vec![98.0, 100.0, 102.0]]);
        assert!((n.run_sd - 0.02).abs() < 1e-12);
        assert_eq!(n.set_sd, 0.0);
        let n = noise(metric(), &[vec![95.0], vec![105.0]]);
        assert_eq!(n.run_sd, 0.0);
        assert!(n.set_sd > 0.0);
        let n = noise(metric(), &[vec![100.0]]);
        assert!(n.not_measured.is_some());
        assert_eq!(allowed_fraction(&n, 5, 5, 0.01), None);
        let n = noise(metric(), &[vec![0.0, 0.0]]);
        assert!(n.not_measured.is_some());
    }

    #[test]
    fn the_file_round_trips_and_versions_are_checked() {
        let cal = Calibration {
            version: VERSION,
            sources: vec!["aa1".into()],
            sets: 1,
            runs: 3,
            kernels: vec!["6.18".into()],
            scenarios: vec!["victim 256M".into()],
            metrics: vec![noise(metric(), &[vec![98.0, 100.0, 102.0]])],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("noise.json");
        std::fs::write(&path, serde_json::to_string(&cal).unwrap()).unwrap();
        let back = read(&path).unwrap();
        assert_eq!((back.sets, back.runs, &back.sources), (1, 3, &cal.sources));
        assert!((back.metrics[0].run_sd - 0.02).abs() < 1e-12);
        assert!(cal.get(metric()).is_some());
        assert!(
            summary(&cal).contains("run-to-run 2.0%"),
            "{}",
            summary(&cal)
        );
        let old = Calibration { version: 0, ..cal };
        std::fs::write(&path, serde_json::to_string(&old).unwrap()).unwrap();
        assert!(matches!(
            read(&path),
            Err(CalibrationError::Version { found: 0, .. })
        ));
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(read(&path), Err(CalibrationError::Corrupt { .. })));
    }
}
