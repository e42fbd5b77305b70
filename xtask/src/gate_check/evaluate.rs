//! Gating every pair of recorded run sets with `reaper gate`'s defaults,
//! and the figures: false-alarm rate, detection rate, and each set's
//! medians (to show the drift the gate had to live with). `reaper gate
//! --json` is read into reaper-model's [`GateReport`], the type reaper
//! writes it from.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use reaper_model::output::diff::SideInfo;
use reaper_model::output::gate::{GateReport, Verdict};
use reaper_model::output::quantity::{Comparison, Side};

use super::SetPlan;
use crate::reaper_json::Run;

/// One gate invocation's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Pass,
    /// Exit 1, with the metrics that regressed.
    Fail(Vec<String>),
    /// Exit 2 (too few runs, unreadable), with the first line of stderr.
    Refused(String),
}

/// A side's facts, read from the gate's JSON.
#[derive(Clone, Debug, Default)]
struct SetFacts {
    runs: usize,
    used: String,
    left_out: String,
    medians: BTreeMap<String, f64>,
}

/// Counts of outcomes over a family of pairs.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Pairs gated.
    pub pairs: usize,
    /// Exit 1.
    pub failed: usize,
    /// Exit 0.
    pub passed: usize,
    /// Exit 2, with the distinct reasons.
    pub refused: usize,
    /// Metrics that regressed, and how often.
    pub metrics: BTreeMap<String, usize>,
    /// Distinct refusal reasons.
    pub reasons: Vec<String>,
    /// Pairs whose verdict warned of a blocked design or drift.
    pub warned: usize,
    /// Pairs where `total`'s 95% interval lay inside the equivalence margin.
    pub equivalent: usize,
    /// `total`'s interval half-widths, percent of the baseline.
    pub half_widths: Vec<f64>,
}

impl Tally {
    /// What the verdict says beyond the exit status.
    fn read(&mut self, report: &GateReport) {
        if !report.warnings.is_empty() {
            self.warned += 1;
        }
        let Some(total) = report.verdicts.iter().find(|v| v.metric == "total") else {
            return;
        };
        if total.no_change_beyond_pct.is_some() {
            self.equivalent += 1;
        }
        if let Some((lo, hi)) = total.comparison.shift.and_then(|s| s.ci_pct) {
            self.half_widths.push((hi - lo) / 2.0);
        }
    }

    fn half_width_text(&self) -> String {
        let mut w = self.half_widths.clone();
        w.sort_by(f64::total_cmp);
        match (w.first(), w.get(w.len() / 2), w.last()) {
            (Some(lo), Some(mid), Some(hi)) => format!("±{mid:.1}% (±{lo:.1}–{hi:.1}%)"),
            _ => "–".to_owned(),
        }
    }

    fn add(&mut self, o: &Outcome) {
        self.pairs += 1;
        match o {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail(metrics) => {
                self.failed += 1;
                for m in metrics {
                    *self.metrics.entry(m.clone()).or_default() += 1;
                }
            }
            Outcome::Refused(why) => {
                self.refused += 1;
                if !self.reasons.contains(why) {
                    self.reasons.push(why.clone());
                }
            }
        }
    }

    /// Failed over all pairs, percent (a refused pair is neither a false
    /// alarm nor a detection); `None` when every pair was refused.
    pub fn rate(&self) -> Option<f64> {
        (self.refused < self.pairs).then(|| self.failed as f64 / self.pairs as f64 * 100.0)
    }

    fn rate_text(&self) -> String {
        match self.rate() {
            Some(r) => format!("{}/{} = {r:.1}%", self.failed, self.pairs),
            None => "not measured (every pair was refused)".to_owned(),
        }
    }

    fn metrics_text(&self) -> String {
        if self.metrics.is_empty() {
            return "–".to_owned();
        }
        self.metrics
            .iter()
            .map(|(m, n)| format!("{m} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Everything gate-check found.
pub struct Evaluation {
    aa: Tally,
    detection: Tally,
    sets: Vec<(SetPlan, SetFacts, Option<f64>)>,
}

/// `reaper gate --json`'s output read into the type reaper writes it
/// from; an output that does not decode is an error naming `command`.
fn decode(stdout: &[u8], command: &str) -> Result<GateReport> {
    serde_json::from_slice(stdout)
        .with_context(|| format!("{command}: its output is not a reaper gate --json report"))
}

/// Runs the gate on one pair: its outcome, and its report unless it
/// refused (exit 2 prints none).
fn gate(reaper: &Path, baseline: &Path, candidate: &Path) -> Result<(Outcome, Option<GateReport>)> {
    let out = Command::new(reaper)
        .args(["gate", "--json", "--baseline"])
        .arg(baseline)
        .arg("--candidate")
        .arg(candidate)
        .output()
        .with_context(|| format!("running {} gate", reaper.display()))?;
    let command = || {
        format!(
            "{} gate --json --baseline {} --candidate {}",
            reaper.display(),
            baseline.display(),
            candidate.display()
        )
    };
    let (outcome, report) = match out.status.code() {
        Some(0) => (Outcome::Pass, Some(decode(&out.stdout, &command())?)),
        Some(1) => {
            let report = decode(&out.stdout, &command())?;
            let regressed = report.regressions().map(|v| v.metric.clone()).collect();
            (Outcome::Fail(regressed), Some(report))
        }
        Some(2) => (
            Outcome::Refused(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            ),
            None,
        ),
        other => bail!("{} exited with {other:?}", command()),
    };
    Ok((outcome, report))
}

/// "sampled 15/18, latency 15/18" and "sampled: 3 lost race" from a side's
/// episode usage.
fn usage(side: &SideInfo, report: &GateReport) -> (String, String) {
    let policy = &report.options.policy;
    let mut used = Vec::new();
    let mut left = Vec::new();
    for u in &side.usage {
        let (scope, c) = (u.scope.label(), &u.coverage);
        used.push(format!("{scope} {}/{}", c.used, c.episodes));
        let reasons: Vec<String> = c
            .left_out
            .iter()
            .map(|l| format!("{} {}", l.episodes, l.reason.label(policy)))
            .collect();
        if !reasons.is_empty() {
            left.push(format!("{scope}: {}", reasons.join(", ")));
        }
    }
    let left = if left.is_empty() {
        "–".to_owned()
    } else {
        left.join("; ")
    };
    (used.join(", "), left)
}

/// One side's facts: its runs, episode usage and each metric's median
/// (`which` picks the side of a verdict's comparison).
fn facts(side: &SideInfo, report: &GateReport, which: fn(&Comparison) -> &Side) -> SetFacts {
    let (used, left_out) = usage(side, report);
    SetFacts {
        runs: side.runs,
        used,
        left_out,
        medians: report
            .verdicts
            .iter()
            .filter_map(|v: &Verdict| Some((v.metric.clone(), which(&v.comparison).median()?)))
            .collect(),
    }
}

/// The median VMA count of a set's victims (from the run files), to show
/// that the regression's layout really differs.
fn victim_vmas(dir: &Path) -> Option<f64> {
    let mut vmas = Vec::new();
    for run in std::fs::read_dir(dir).ok()?.flatten() {
        let path = run.path().join("run.json");
        if !path.is_file() {
            continue;
        }
        let run: Run = match crate::reaper_json::read(&path) {
            Ok(run) => run,
            Err(e) => {
                eprintln!("gate-check: {e:#}; its victims are not counted");
                continue;
            }
        };
        vmas.extend(run.episodes.iter().map(|e| f64::from(e.victim.vmas)));
    }
    vmas.sort_by(f64::total_cmp);
    vmas.get(vmas.len() / 2).copied()
}

/// Gates every A/A ordered pair and every (A/A, regression) pair.
pub fn evaluate(reaper: &Path, dir: &Path, sets: &[SetPlan]) -> Result<Evaluation> {
    let (aa, reg): (Vec<&SetPlan>, Vec<&SetPlan>) = sets.iter().partition(|s| s.aa);
    let mut result = Evaluation {
        aa: Tally::default(),
        detection: Tally::default(),
        sets: Vec::new(),
    };
    let mut seen: BTreeMap<String, SetFacts> = BTreeMap::new();
    for b in &aa {
        for c in aa.iter().chain(&reg) {
            if b.name == c.name {
                continue;
            }
            let (outcome, report) = gate(reaper, &dir.join(&b.name), &dir.join(&c.name))?;
            let tally = if c.aa {
                &mut result.aa
            } else {
                &mut result.detection
            };
            tally.add(&outcome);
            if let Some(r) = &report {
                seen.entry(b.name.clone())
                    .or_insert_with(|| facts(&r.baseline, r, |c| &c.a));
                seen.entry(c.name.clone())
                    .or_insert_with(|| facts(&r.candidate, r, |c| &c.b));
                tally.read(r);
            }
        }
    }
    for s in sets {
        let f = seen.get(&s.name).cloned().unwrap_or_default();
        result
            .sets
            .push((s.clone(), f, victim_vmas(&dir.join(&s.name))));
    }
    Ok(result)
}

impl Evaluation {
    /// The result table, the per-set table and notes, as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| reaper gate, defaults | ordered pairs | failed (exit 1) | passed (exit 0) | refused (exit 2) | rate | metrics that failed | warned (design, drift) | total: no change beyond ±5% | total: 95% interval, half-width (median, range) |\n|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (name, t) in [
            ("A/A: false alarms", &self.aa),
            ("regression: detected", &self.detection),
        ] {
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                t.pairs,
                t.failed,
                t.passed,
                t.refused,
                t.rate_text(),
                t.metrics_text(),
                t.warned,
                t.equivalent,
                t.half_width_text()
            ));
        }
        for reason in self.aa.reasons.iter().chain(&self.detection.reasons) {
            out.push_str(&format!("\nRefused: {reason}\n"));
        }
        out.push_str(
            "\nPer run set (medians over the episodes each metric may use, ms):\n\n| set | victim | victim VMAs (median) | runs | episodes used | left out | total | kill_to_reap | kill_to_exit_mmap |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        for (plan, f, vmas) in &self.sets {
            let m = |k: &str| {
                f.medians
                    .get(k)
                    .map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                plan.name,
                plan.victim,
                vmas.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}")),
                f.runs,
                f.used,
                f.left_out,
                m("total"),
                m("kill_to_reap"),
                m("kill_to_exit_mmap")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reaper gate --json on the committed run-set fixtures, as reaper's
    /// own golden test keeps it (`reaper-cli/tests/data/compare/`).
    fn golden(candidate: &str) -> Vec<u8> {
        let path = crate::vm::cache::workspace_root()
            .join("reaper-cli/tests/data/compare")
            .join(format!("gate-set-baseline-vs-{candidate}.expected.json"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_real_gate_report_is_read_typed() {
        let report = decode(&golden("set-regression-20"), "reaper gate").unwrap();
        let regressed: Vec<&str> = report.regressions().map(|v| v.metric.as_str()).collect();
        assert_eq!(
            regressed,
            [
                "total",
                "pte_lock_wait",
                "rmap",
                "kill_to_reap",
                "kill_to_exit_mmap"
            ]
        );
        let mut t = Tally::default();
        t.read(&report);
        assert_eq!((t.warned, t.equivalent), (0, 0));
        // total's 95% interval: +15.6% to +26.9% of the baseline.
        assert_eq!(t.half_widths.len(), 1);
        assert!(
            (t.half_widths[0] - 5.639).abs() < 1e-3,
            "{:?}",
            t.half_widths
        );
        let base = facts(&report.baseline, &report, |c| &c.a);
        let cand = facts(&report.candidate, &report, |c| &c.b);
        assert_eq!((base.runs, cand.runs), (5, 5));
        assert_eq!(base.used, "sampled 15/15, latency 15/15");
        assert_eq!(base.left_out, "–");
        assert_eq!(
            (base.medians["total"], cand.medians["total"]),
            (133.0, 161.5)
        );
        // The A/A pair: nothing regressed; total's median moved little.
        let aa = decode(&golden("set-drift"), "reaper gate").unwrap();
        assert_eq!(aa.regressions().count(), 0);
        assert_eq!(aa.exit_code(), 0);
    }

    /// An output that is not a gate report is an error naming the command,
    /// not a report of nothing.
    #[test]
    fn an_unreadable_gate_output_names_the_command() {
        for stdout in [&b""[..], b"{}", b"## reaper gate: PASS"] {
            let err = decode(stdout, "reaper gate --json --baseline a --candidate b").unwrap_err();
            assert!(
                format!("{err:#}").starts_with("reaper gate --json --baseline a --candidate b: "),
                "{err:#}"
            );
        }
    }

    #[test]
    fn rates_count_only_judged_pairs() {
        let mut t = Tally::default();
        t.add(&Outcome::Pass);
        t.add(&Outcome::Fail(vec!["total".into(), "kill_to_reap".into()]));
        t.add(&Outcome::Fail(vec!["total".into()]));
        t.add(&Outcome::Refused("too few runs".into()));
        assert_eq!((t.pairs, t.failed, t.passed, t.refused), (4, 2, 1, 1));
        assert_eq!(t.rate_text(), "2/4 = 50.0%");
        assert_eq!(t.metrics_text(), "kill_to_reap ×1, total ×2");
        let mut none = Tally::default();
        none.add(&Outcome::Refused("x".into()));
        assert_eq!(none.rate(), None);
    }
}
