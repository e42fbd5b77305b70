//! `--runs auto`: how many runs a side. The first batch of each side is
//! recorded, then `reaper gate --plan` (reaper's own power computation:
//! reaper-lab does not keep a second one) says, per gated metric, how many
//! runs a side detect a change of `--detect` with 90% power at the noise
//! those runs show; reaper-lab takes the largest, never fewer than the
//! runs it has, and at most `--max-runs`, and says why.
//!
//! The contract with reaper (`reaper gate --plan --baseline DIR --candidate
//! DIR --detect PCT --json`): `{"runs_per_side": N, "metrics": [{"metric":
//! "...", "noise_pct": F, "runs_per_side": N}]}`, a metric's figures absent
//! or null when its noise could not be measured.

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

/// Parses `--runs`.
pub fn parse_runs(text: &str) -> Result<Runs, String> {
    if text == "auto" {
        return Ok(Runs::Auto);
    }
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Runs::Fixed(n)),
        _ => Err(format!(
            "`{text}`: expected a number of runs (1 or more) or auto"
        )),
    }
}

/// Parses `--detect`: `5%` or `5` (percent), above 0 and below 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 100.0 => Ok(p),
        _ => Err(format!("`{text}`: expected a change in percent, e.g. 5%")),
    }
}

/// What `reaper gate --plan --json` prints.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Plan {
    /// Runs a side for every gated metric, when any could be planned.
    #[serde(default)]
    pub runs_per_side: Option<u32>,
    #[serde(default)]
    pub metrics: Vec<MetricPlan>,
}

/// One gated metric's plan.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MetricPlan {
    pub metric: String,
    /// Its run-to-run noise, percent of its median.
    #[serde(default)]
    pub noise_pct: Option<f64>,
    /// Runs a side that detect the change with 90% power.
    #[serde(default)]
    pub runs_per_side: Option<u32>,
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

/// Chooses the runs a side from `plan`, given `have` runs a side already
/// recorded, a `detect` percent and the `max` allowed.
pub fn choose(plan: &Plan, have: u32, detect: f64, max: u32) -> Choice {
    let planned: Vec<(&MetricPlan, u32)> = plan
        .metrics
        .iter()
        .filter_map(|m| m.runs_per_side.map(|n| (m, n)))
        .collect();
    let needed = plan
        .runs_per_side
        .or_else(|| planned.iter().map(|(_, n)| *n).max());
    let Some(needed) = needed else {
        return Choice {
            runs: max.max(have),
            why: format!(
                "reaper gate --plan could not estimate the noise of any gated metric from the \
                 first {have} runs a side, so the most allowed (--max-runs {max})"
            ),
        };
    };
    let noise: Vec<String> = planned
        .iter()
        .map(|(m, n)| match m.noise_pct {
            Some(noise) => format!("{} noise {noise:.1}% needs {n}", m.metric),
            None => format!("{} needs {n}", m.metric),
        })
        .collect();
    let unplanned: Vec<&str> = plan
        .metrics
        .iter()
        .filter(|m| m.runs_per_side.is_none())
        .map(|m| m.metric.as_str())
        .collect();
    let mut why = format!(
        "to detect a {detect}% change with 90% power at the run-to-run noise of the first \
         {have} runs a side (reaper gate --plan): {}",
        if noise.is_empty() {
            format!("{needed} runs a side")
        } else {
            noise.join(", ")
        }
    );
    if !unplanned.is_empty() {
        why.push_str(&format!(
            "; not planned (noise not measured): {}",
            unplanned.join(", ")
        ));
    }
    let runs = if needed > max {
        why.push_str(&format!(
            "; {needed} are needed, capped by --max-runs {max}: a {detect}% change may go \
             undetected"
        ));
        max.max(have)
    } else if needed < have {
        why.push_str(&format!("; the first batch already has {have}"));
        have
    } else {
        needed
    };
    Choice { runs, why }
}

/// The arguments of the plan request (one place, so the contract's
/// spelling is pinned by a test).
pub fn plan_args(baseline: &Path, candidate: &Path, detect: f64) -> Vec<String> {
    vec![
        "gate".into(),
        "--plan".into(),
        "--baseline".into(),
        baseline.display().to_string(),
        "--candidate".into(),
        candidate.display().to_string(),
        "--detect".into(),
        format!("{detect}"),
        "--json".into(),
    ]
}

/// Fails unless `reaper` has `gate --plan` (checked before anything is
/// built or booted).
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

/// Runs the plan on the runs recorded so far.
pub fn request(reaper: &Path, baseline: &Path, candidate: &Path, detect: f64) -> Result<Plan> {
    let out = Command::new(reaper)
        .args(plan_args(baseline, candidate, detect))
        .output()
        .with_context(|| format!("running {} gate --plan", reaper.display()))?;
    if !out.status.success() {
        bail!(
            "reaper gate --plan failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("reading reaper gate --plan --json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's JSON, as the lead gave it.
    const PLAN: &str = r#"{"runs_per_side": 12, "metrics": [
        {"metric": "total", "noise_pct": 3.1, "runs_per_side": 7},
        {"metric": "kill_to_reap", "noise_pct": 5.4, "runs_per_side": 12},
        {"metric": "pte_lock_wait", "noise_pct": null, "runs_per_side": null}]}"#;

    #[test]
    fn the_plan_json_is_read() {
        let plan: Plan = serde_json::from_str(PLAN).unwrap();
        assert_eq!(plan.runs_per_side, Some(12));
        assert_eq!(plan.metrics.len(), 3);
        assert_eq!(plan.metrics[1].noise_pct, Some(5.4));
        assert_eq!(plan.metrics[2].runs_per_side, None);
        // Fields reaper may add later are ignored.
        let more: Plan =
            serde_json::from_str(r#"{"runs_per_side": 3, "metrics": [], "power": 0.9}"#).unwrap();
        assert_eq!(more.runs_per_side, Some(3));
    }

    #[test]
    fn the_choice_says_what_and_why() {
        let plan: Plan = serde_json::from_str(PLAN).unwrap();
        let c = choose(&plan, 5, 5.0, 30);
        assert_eq!(c.runs, 12);
        let text = c.to_string();
        assert!(
            text.starts_with("chose 12 runs a side: to detect a 5% change"),
            "{text}"
        );
        assert!(text.contains("kill_to_reap noise 5.4% needs 12"), "{text}");
        assert!(
            text.contains("not planned (noise not measured): pte_lock_wait"),
            "{text}"
        );
        let capped = choose(&plan, 5, 5.0, 10);
        assert_eq!(capped.runs, 10);
        assert!(
            capped.why.contains("capped by --max-runs 10"),
            "{}",
            capped.why
        );
        let few = choose(&plan, 15, 5.0, 30);
        assert_eq!(few.runs, 15, "runs already recorded are kept");
        let none = choose(
            &Plan {
                runs_per_side: None,
                metrics: Vec::new(),
            },
            5,
            5.0,
            20,
        );
        assert_eq!(none.runs, 20);
        assert!(none.why.contains("could not estimate"), "{}", none.why);
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
    fn the_request_follows_the_contract() {
        assert_eq!(
            plan_args(Path::new("a"), Path::new("b"), 5.0).join(" "),
            "gate --plan --baseline a --candidate b --detect 5 --json"
        );
    }
}
