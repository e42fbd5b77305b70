//! `--runs auto`: how many runs a side. The first batch of each side is
//! recorded, then reaper's own power computation says how many runs a side
//! flag a change of `--detect` with 90% power at the run-to-run noise those
//! runs show: `reaper gate --plan PCT --baseline DIR --json`, once with
//! each side's runs as the baseline (its noise is the baseline's). reaper-
//! lab computes no power of its own: it takes, per gated metric, the larger
//! of the two sides' run counts, then the largest over the metrics, never
//! fewer than the runs it has or than the gate accepts, at most
//! `--max-runs`; and it says why ("chose N runs a side: …").

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::error::Refused;

/// `--runs`: a number, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    Fixed(u32),
    Auto,
}

/// A `--runs` or `--detect` value out of its range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanFlagError {
    /// `--runs` neither a positive number nor `auto`.
    #[error("`{raw}`: expected a number of runs (1 or more) or auto")]
    Runs {
        /// The value as given.
        raw: String,
    },
    /// `--detect` not a percentage strictly between 0 and 100.
    #[error("`{raw}`: expected a change in percent, e.g. 5%")]
    Percent {
        /// The value as given.
        raw: String,
    },
}

/// Parses `--runs`.
pub fn parse_runs(text: &str) -> Result<Runs, PlanFlagError> {
    if text == "auto" {
        return Ok(Runs::Auto);
    }
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Runs::Fixed(n)),
        _ => Err(PlanFlagError::Runs {
            raw: text.to_owned(),
        }),
    }
}

/// Parses `--detect`: `5%` or `5` (percent), above 0 and below 100.
pub fn parse_percent(text: &str) -> Result<f64, PlanFlagError> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 100.0 => Ok(p),
        _ => Err(PlanFlagError::Percent {
            raw: text.to_owned(),
        }),
    }
}

/// What `reaper gate --plan PCT --json` prints (the fields reaper-lab reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Plan {
    /// The fewest runs a side the gate accepts.
    pub min_runs: u32,
    /// One per gated metric.
    pub rows: Vec<PlanRow>,
}

/// One gated metric's plan.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlanRow {
    pub metric: String,
    /// Run-to-run spread of the run medians, fraction of their median.
    #[serde(default)]
    pub run_sd: Option<f64>,
    /// Runs a side for 90% power; `None` when no count up to reaper's
    /// largest tried reaches it, or when the noise is not measured.
    #[serde(default)]
    pub runs_needed: Option<u32>,
    /// Why there is no plan, when the noise is not measured.
    #[serde(default)]
    pub not_measured: Option<String>,
}

/// One metric's need over both sides.
#[derive(Debug, Clone, PartialEq)]
enum Need {
    /// Runs a side, and the sides' noise in percent.
    Runs(u32, Vec<f64>),
    /// No run count reaper tries reaches 90% power on some side.
    Unreachable,
    /// Neither side measured its noise.
    NotMeasured(String),
}

/// The number of runs chosen, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub runs: u32,
    pub why: String,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chose {} runs a side: {}", self.runs, self.why)
    }
}

/// Each metric's need over the sides' plans, in the first plan's order.
fn needs(plans: &[Plan]) -> Vec<(String, Need)> {
    let mut order: Vec<String> = Vec::new();
    let mut rows: BTreeMap<String, Vec<&PlanRow>> = BTreeMap::new();
    for row in plans.iter().flat_map(|p| &p.rows) {
        if !rows.contains_key(&row.metric) {
            order.push(row.metric.clone());
        }
        rows.entry(row.metric.clone()).or_default().push(row);
    }
    order
        .into_iter()
        .map(|metric| {
            let sides = &rows[&metric];
            let measured: Vec<&&PlanRow> =
                sides.iter().filter(|r| r.not_measured.is_none()).collect();
            let need = if measured.is_empty() {
                let why = sides
                    .iter()
                    .find_map(|r| r.not_measured.clone())
                    .unwrap_or_default();
                Need::NotMeasured(why)
            } else if measured.iter().any(|r| r.runs_needed.is_none()) {
                Need::Unreachable
            } else {
                Need::Runs(
                    measured
                        .iter()
                        .filter_map(|r| r.runs_needed)
                        .max()
                        .unwrap_or(0),
                    measured
                        .iter()
                        .filter_map(|r| r.run_sd.map(|sd| sd * 100.0))
                        .collect(),
                )
            };
            (metric, need)
        })
        .collect()
}

/// Chooses the runs a side from the sides' `plans`, given `have` runs a
/// side already recorded, the `detect` percent and the `max` allowed.
pub fn choose(plans: &[Plan], have: u32, detect: f64, max: u32) -> Choice {
    let needs = needs(plans);
    let floor = plans
        .iter()
        .map(|p| p.min_runs)
        .max()
        .unwrap_or(0)
        .max(have);
    let mut parts: Vec<String> = Vec::new();
    let mut unreachable: Vec<&str> = Vec::new();
    let mut unplanned: Vec<String> = Vec::new();
    let mut needed = 0u32;
    for (metric, need) in &needs {
        match need {
            Need::Runs(n, noise) => {
                needed = needed.max(*n);
                let noise: Vec<String> = noise.iter().map(|p| format!("{p:.1}%")).collect();
                parts.push(format!("{metric} (noise {}) needs {n}", noise.join("/")));
            }
            Need::Unreachable => unreachable.push(metric),
            Need::NotMeasured(why) => unplanned.push(format!("{metric} ({why})")),
        }
    }
    let mut why = format!(
        "to flag a {detect}% change with 90% power at the run-to-run noise of the first \
         {have} runs a side (reaper gate --plan on each side, noise A/B)"
    );
    if !parts.is_empty() {
        why.push_str(&format!(": {}", parts.join(", ")));
    }
    if !unreachable.is_empty() {
        why.push_str(&format!(
            "; {} reach 90% power at no run count reaper tries (a change this small is within \
             their noise or their gate threshold)",
            unreachable.join(", ")
        ));
    }
    if !unplanned.is_empty() {
        why.push_str(&format!("; not planned: {}", unplanned.join(", ")));
    }
    let runs = if !unreachable.is_empty() || (parts.is_empty() && !needs.is_empty()) {
        why.push_str(&format!(", so the most allowed (--max-runs {max})"));
        max.max(have)
    } else if needed > max {
        why.push_str(&format!(
            "; {needed} are needed, capped by --max-runs {max}: a {detect}% change may go \
             unflagged"
        ));
        max.max(have)
    } else if needed < floor {
        why.push_str(&format!(
            "; {floor} a side are kept (recorded already, and the fewest the gate accepts)"
        ));
        floor
    } else {
        needed
    };
    Choice { runs, why }
}

/// The arguments of one side's plan request (one place, so the spelling
/// reaper takes is pinned by a test).
pub fn plan_args(side: &Path, detect: f64) -> Vec<String> {
    vec![
        "gate".into(),
        "--plan".into(),
        format!("{detect}"),
        "--baseline".into(),
        side.display().to_string(),
        "--json".into(),
    ]
}

/// Refuses `--runs auto` unless `reaper` has `gate --plan` (checked before
/// anything is built or booted).
pub fn check_supported(reaper: &Path) -> Result<()> {
    let out = Command::new(reaper)
        .args(["gate", "--help"])
        .output()
        .with_context(|| format!("running {} gate --help", reaper.display()))?;
    let help = String::from_utf8_lossy(&out.stdout);
    if !help.contains("--plan") {
        return Err(Refused(format!(
            "--runs auto needs `reaper gate --plan`, which {} does not have: use a newer \
             reaper (--reaper FILE), or give --runs N",
            reaper.display()
        ))
        .into());
    }
    Ok(())
}

/// The plan with one side's runs as the baseline.
pub fn request(reaper: &Path, side: &Path, detect: f64) -> Result<Plan> {
    let out = Command::new(reaper)
        .args(plan_args(side, detect))
        .output()
        .with_context(|| format!("running {} gate --plan", reaper.display()))?;
    if !out.status.success() {
        bail!(
            "reaper gate --plan on {} failed ({}): {}",
            side.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("reading reaper gate --plan --json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reaper's own output (tests/data/README.md says how it was made).
    fn plan(name: &str) -> Plan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn reapers_plan_json_is_read() {
        let p = plan("plan-set-baseline-7pct.json");
        assert_eq!(p.min_runs, 5);
        let total = p.rows.iter().find(|r| r.metric == "total").unwrap();
        assert_eq!(total.runs_needed, Some(12));
        let rmap = p.rows.iter().find(|r| r.metric == "rmap").unwrap();
        assert_eq!(
            (rmap.runs_needed, rmap.not_measured.as_deref()),
            (None, None)
        );
        let one = plan("plan-one-run-7pct.json");
        assert!(one.rows.iter().all(|r| r.not_measured.is_some()));
    }

    #[test]
    fn the_largest_need_of_both_sides_is_chosen_and_said() {
        let p = plan("plan-set-baseline-12pct.json");
        let c = choose(&[p.clone(), p], 5, 12.0, 30);
        assert_eq!(c.runs, 11, "{c}");
        let text = c.to_string();
        assert!(
            text.starts_with("chose 11 runs a side: to flag a 12% change"),
            "{text}"
        );
        assert!(text.contains("rmap (noise 2.9%/2.9%) needs 11"), "{text}");
        let capped = choose(&[plan("plan-set-baseline-12pct.json")], 5, 12.0, 8);
        assert_eq!(capped.runs, 8);
        assert!(
            capped.why.contains("capped by --max-runs 8"),
            "{}",
            capped.why
        );
    }

    #[test]
    fn a_metric_no_run_count_can_flag_takes_the_most_allowed() {
        let c = choose(&[plan("plan-set-baseline-7pct.json")], 5, 7.0, 30);
        assert_eq!(c.runs, 30);
        assert!(
            c.why
                .contains("pte_lock_wait, rmap reach 90% power at no run count"),
            "{}",
            c.why
        );
        assert!(c.why.contains("total (noise 3.0%) needs 12"), "{}", c.why);
    }

    #[test]
    fn unmeasured_noise_is_said_and_takes_the_most_allowed() {
        let c = choose(&[plan("plan-one-run-7pct.json")], 1, 7.0, 20);
        assert_eq!(c.runs, 20);
        assert!(
            c.why
                .contains("not planned: total (the baseline measured it in 1 run"),
            "{}",
            c.why
        );
    }

    #[test]
    fn recorded_runs_and_the_gates_minimum_are_kept() {
        let p = plan("plan-set-baseline-12pct.json");
        let few = Plan {
            min_runs: 5,
            rows: p
                .rows
                .iter()
                .filter(|r| r.metric == "total")
                .cloned()
                .collect(),
        };
        assert_eq!(few.rows[0].runs_needed, Some(5));
        assert_eq!(choose(std::slice::from_ref(&few), 7, 12.0, 30).runs, 7);
    }

    #[test]
    fn runs_and_percent_flags() {
        assert_eq!(parse_runs("auto"), Ok(Runs::Auto));
        assert_eq!(parse_runs("10"), Ok(Runs::Fixed(10)));
        assert!(parse_runs("0").is_err() && parse_runs("many").is_err());
        assert_eq!(parse_percent("5%"), Ok(5.0));
        assert_eq!(parse_percent("2.5"), Ok(2.5));
        assert!(parse_percent("0%").is_err() && parse_percent("x").is_err());
    }

    #[test]
    fn the_request_is_spelled_as_reaper_takes_it() {
        assert_eq!(
            plan_args(Path::new("a"), 5.0).join(" "),
            "gate --plan 5 --baseline a --json"
        );
    }
}
