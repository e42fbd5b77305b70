//! `--max-regression SPEC`: which metrics the gate checks and how much each
//! may grow, e.g. `total=5%,pte_lock_wait=10%,kill_to_reap=2ms,rmap=off`.
//!
//! A SPEC overrides the defaults entry by entry ([`DEFAULT_SPEC`]); `off`
//! drops a default. A threshold is a percentage of the baseline median or
//! an absolute number of milliseconds. [`Threshold`] and [`Gated`] are
//! reaper-model's types (a gate report carries them).

use super::metrics::{self, METRICS, Metric};

pub use reaper_model::output::gate::{Gated, Threshold};

/// The thresholds gated when no SPEC is given. Total and latencies at 5%:
/// a real teardown regression (the thread's reverse-order change moved the
/// total by 20%) is well above it, and it is above the run-to-run spread of
/// a median over 5+ episodes. PTE-lock wait and rmap removal at 10%: they
/// are smaller quantities measured from fewer samples or events, so their
/// medians move more between identical kernels.
pub const DEFAULT_SPEC: &str =
    "total=5%,pte_lock_wait=10%,rmap=10%,kill_to_reap=5%,kill_to_exit_mmap=5%";

/// Why a SPEC is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// An entry names no metric.
    #[error("unknown metric {name:?} in --max-regression; known metrics: {known}")]
    UnknownMetric {
        /// The name given.
        name: String,
        /// [`metrics::names`].
        known: String,
    },
    /// An entry is not `metric=threshold`.
    #[error(
        "{entry:?} in --max-regression is not METRIC=THRESHOLD (e.g. total=5% or kill_to_reap=2ms or rmap=off)"
    )]
    Malformed {
        /// The entry.
        entry: String,
    },
    /// A threshold that is not a non-negative number with % or ms.
    #[error("threshold {value:?} for {metric} is not a percentage (5%), milliseconds (2ms) or off")]
    BadThreshold {
        /// The metric.
        metric: String,
        /// The threshold given.
        value: String,
    },
    /// A metric listed twice.
    #[error("{metric} appears twice in --max-regression")]
    Duplicate {
        /// The metric.
        metric: String,
    },
}

fn parse_threshold(metric: &str, raw: &str) -> Result<Option<Threshold>, SpecError> {
    let bad = || SpecError::BadThreshold {
        metric: metric.to_owned(),
        value: raw.to_owned(),
    };
    let raw_trim = raw.trim();
    if raw_trim.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (number, make): (&str, fn(f64) -> Threshold) = if let Some(n) = raw_trim.strip_suffix('%') {
        (n, Threshold::Percent)
    } else if let Some(n) = raw_trim.strip_suffix("ms") {
        (n, Threshold::Ms)
    } else {
        return Err(bad());
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok(Some(make(value)))
}

/// Parses `metric=threshold` entries into (metric, threshold-or-off).
fn entries(spec: &str) -> Result<Vec<(&'static Metric, Option<Threshold>)>, SpecError> {
    let mut out: Vec<(&'static Metric, Option<Threshold>)> = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, value) = entry.split_once('=').ok_or_else(|| SpecError::Malformed {
            entry: entry.to_owned(),
        })?;
        let name = name.trim();
        let metric = metrics::find(name).ok_or_else(|| SpecError::UnknownMetric {
            name: name.to_owned(),
            known: metrics::names(),
        })?;
        if out.iter().any(|(m, _)| m.name == metric.name) {
            return Err(SpecError::Duplicate {
                metric: name.to_owned(),
            });
        }
        out.push((metric, parse_threshold(name, value)?));
    }
    Ok(out)
}

/// The gated metrics: the defaults, overridden by `spec`, in [`METRICS`] order.
pub fn parse(spec: &str) -> Result<Vec<Gated>, SpecError> {
    let defaults = entries(DEFAULT_SPEC).expect("DEFAULT_SPEC parses");
    let given = entries(spec)?;
    Ok(METRICS
        .iter()
        .filter_map(|metric| {
            let pick = |list: &[(&'static Metric, Option<Threshold>)]| {
                list.iter()
                    .find(|(m, _)| m.name == metric.name)
                    .map(|(_, t)| *t)
            };
            let threshold = pick(&given).or_else(|| pick(&defaults))??;
            Some(Gated { metric, threshold })
        })
        .collect())
}

/// The default gated metrics (`parse("")`).
pub fn defaults() -> Vec<Gated> {
    let defaults = entries(DEFAULT_SPEC).unwrap_or_default();
    METRICS
        .iter()
        .filter_map(|metric| {
            let (_, threshold) = defaults.iter().find(|(m, _)| m.name == metric.name)?;
            Some(Gated {
                metric,
                threshold: (*threshold)?,
            })
        })
        .collect()
}

/// Text for `reaper gate --help`: every metric and the defaults.
pub fn help() -> String {
    let mut out = String::from("Metrics:\n");
    for m in METRICS {
        out.push_str(&format!("  {:<24} {}\n", m.name, m.description));
    }
    out.push_str(&format!("Default: {DEFAULT_SPEC}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(spec: &str) -> Vec<(&'static str, Threshold)> {
        parse(spec)
            .unwrap()
            .into_iter()
            .map(|g| (g.metric.name, g.threshold))
            .collect()
    }

    #[test]
    fn default_spec() {
        assert_eq!(
            pairs(""),
            vec![
                ("total", Threshold::Percent(5.0)),
                ("pte_lock_wait", Threshold::Percent(10.0)),
                ("rmap", Threshold::Percent(10.0)),
                ("kill_to_reap", Threshold::Percent(5.0)),
                ("kill_to_exit_mmap", Threshold::Percent(5.0)),
            ]
        );
        assert_eq!(parse("").unwrap(), defaults());
    }

    #[test]
    fn overrides_additions_and_off() {
        assert_eq!(
            pairs(
                " total=2.5% , kill_to_reap=3ms,rmap=off,pte_lock_wait_reaper=20%,kill_to_exit_mmap=OFF"
            ),
            vec![
                ("total", Threshold::Percent(2.5)),
                ("pte_lock_wait", Threshold::Percent(10.0)),
                ("pte_lock_wait_reaper", Threshold::Percent(20.0)),
                ("kill_to_reap", Threshold::Ms(3.0)),
            ]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let err = parse("total=5%,bogus=1%").unwrap_err();
        assert!(matches!(&err, SpecError::UnknownMetric { name, .. } if name == "bogus"));
        assert!(
            err.to_string()
                .contains("known metrics: total, total_exit_mmap")
        );
        assert!(matches!(parse("total"), Err(SpecError::Malformed { .. })));
        for bad in [
            "total=5",
            "total=-1%",
            "total=x%",
            "total=NaN%",
            "total=5 s",
        ] {
            assert!(
                matches!(parse(bad), Err(SpecError::BadThreshold { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            parse("total=5%,total=6%"),
            Err(SpecError::Duplicate {
                metric: "total".into()
            })
        );
    }

    #[test]
    fn allowed_increase() {
        assert_eq!(Threshold::Percent(5.0).allowed_ms(200.0), 10.0);
        assert_eq!(Threshold::Ms(2.0).allowed_ms(200.0), 2.0);
        assert_eq!(Threshold::Percent(5.0).to_string(), "5%");
        assert_eq!(Threshold::Ms(2.5).to_string(), "2.5ms");
    }

    #[test]
    fn help_lists_every_metric() {
        let h = help();
        for m in METRICS {
            assert!(h.contains(m.name));
        }
        assert!(h.contains(DEFAULT_SPEC));
    }
}
