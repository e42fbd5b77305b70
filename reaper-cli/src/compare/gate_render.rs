//! The gate's outputs: a short markdown summary (stdout, CI comments),
//! JUnit XML with one testcase per gated metric and the report as JSON
//! (`--json`, read back with reaper-model's [`GateReport`]); and, when the
//! gate cannot judge (exit 2), the markdown and JUnit saying why
//! ([`Refusal`]), so a CI job's summary page and test report are never
//! empty.

use std::fmt::Write;

use super::diff::SideInfo;
use super::gate::{GateReport, Status, Verdict};
use super::quantity::{Side, format_p, p_text};
use super::text::{delta, shift_pct, stack_loss_text, usage_text};
use crate::duration::ms_for_size;
use crate::sanitize;

/// `reaper gate --json`: the report as pretty JSON, newline-terminated.
pub fn json(r: &GateReport) -> serde_json::Result<String> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

fn side(s: &Side) -> String {
    match s {
        Side::Measured {
            median, min, max, ..
        } => format!(
            "{} ({}–{})",
            ms_for_size(*median),
            ms_for_size(*min),
            ms_for_size(*max)
        ),
        Side::NotMeasured { .. } => "not measured".to_owned(),
    }
}

fn result(v: &Verdict) -> String {
    let text = match &v.status {
        Status::Pass => "pass".to_owned(),
        Status::Regressed => "REGRESSION".to_owned(),
        Status::WithinNoise => "pass (over threshold, within noise)".to_owned(),
        Status::Improved => "pass (improved)".to_owned(),
        Status::Skipped { why } => format!("skipped: {why}"),
    };
    match v.no_change_beyond_pct {
        Some(m) if v.status != Status::Regressed => format!("{text}; no change beyond ±{m}%"),
        _ => text,
    }
}

fn threshold(v: &Verdict) -> String {
    let noise = v
        .noise_ms
        .map_or_else(String::new, |n| format!(", noise +{} ms", ms_for_size(n)));
    match v.allowed_ms {
        Some(allowed) => format!("{} (+{} ms{noise})", v.threshold, ms_for_size(allowed)),
        None => v.threshold.to_string(),
    }
}

/// "5 of 5 · 3 of 5 (2 lost race)".
fn used(v: &Verdict, policy: &super::clean::LossPolicy) -> String {
    format!(
        "{} · {}",
        v.comparison.coverage.a.text(policy),
        v.comparison.coverage.b.text(policy)
    )
}

fn p_cell(v: &Verdict) -> String {
    v.p_adjusted.map_or_else(|| "–".to_owned(), format_p)
}

/// One sentence naming a regression: the metric, both medians, the delta
/// and the threshold.
pub fn regression_line(v: &Verdict) -> String {
    format!(
        "{} regressed: median {} ms → {} ms, {}, threshold {}, {} (one-sided Mann-Whitney U of {} vs {} run medians, Holm-adjusted)",
        v.metric,
        v.comparison
            .a
            .median()
            .map_or_else(String::new, ms_for_size),
        v.comparison
            .b
            .median()
            .map_or_else(String::new, ms_for_size),
        delta(&v.comparison),
        threshold(v),
        v.p_adjusted.map_or_else(|| "p n/a".to_owned(), p_text),
        v.comparison.a.runs(),
        v.comparison.b.runs()
    )
}

/// Text that may come from a run file or the command line, made inert in
/// a markdown line or table cell.
fn escape_cell(s: &str) -> String {
    sanitize::markdown(s)
}

/// The markdown table of the verdicts, one row per gated metric.
fn verdict_table(out: &mut String, r: &GateReport) {
    let _ = writeln!(
        out,
        "\n| Metric | Baseline ms, median (min–max) | Candidate ms | Delta | Shift [95% CI] | Threshold | p (runs, one-sided, Holm) | Result | Episodes used (baseline · candidate) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for v in &r.verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v.metric,
            side(&v.comparison.a),
            side(&v.comparison.b),
            delta(&v.comparison),
            shift_pct(&v.comparison),
            threshold(v),
            p_cell(v),
            match v.status {
                Status::Regressed => format!("**{}**", result(v)),
                _ => escape_cell(&result(v)),
            },
            escape_cell(&used(v, &r.options.policy))
        );
    }
}

/// One side's line of the markdown summary: label, path, runs, episodes
/// used, stack loss, kernels and architectures.
fn markdown_side(out: &mut String, name: &str, s: &SideInfo, policy: &super::clean::LossPolicy) {
    let _ = writeln!(
        out,
        "- {name}: {} — {} ({} run{}, {} episodes; used: {}{}; Linux {} {})",
        escape_cell(&s.label),
        sanitize::markdown_code(&s.path),
        s.runs,
        if s.runs == 1 { "" } else { "s" },
        s.episodes,
        usage_text(s, policy),
        if s.stack_loss.samples > 0 || s.stack_loss.lost > 0 {
            format!("; samples without a stack: {}", stack_loss_text(s, policy))
        } else {
            String::new()
        },
        escape_cell(&s.kernels.join(", ")),
        escape_cell(&s.archs.join(", "))
    );
}

/// The markdown summary's line naming the metrics shown not to change
/// beyond the equivalence margin (none: no line).
fn markdown_equivalent(out: &mut String, r: &GateReport) {
    let equivalent: Vec<&str> = r
        .verdicts
        .iter()
        .filter(|v| v.no_change_beyond_pct.is_some() && v.status != Status::Regressed)
        .map(|v| v.metric.as_str())
        .collect();
    if !equivalent.is_empty() {
        let _ = writeln!(
            out,
            "- No change beyond ±{}% in {}: the 95% interval of the shift of the run medians lies inside ±{}% of the baseline",
            r.options.equivalence_pct,
            equivalent.join(", "),
            r.options.equivalence_pct
        );
    }
}

/// The markdown summary.
pub fn markdown(r: &GateReport) -> String {
    let mut out = String::new();
    let regressions: Vec<&Verdict> = r.regressions().collect();
    let verdict = if regressions.is_empty() {
        "PASS".to_owned()
    } else {
        format!(
            "FAIL — {} regression{}",
            regressions.len(),
            if regressions.len() == 1 { "" } else { "s" }
        )
    };
    let _ = writeln!(out, "## reaper gate: {verdict}\n");
    let policy = &r.options.policy;
    for (name, s) in [("Baseline", &r.baseline), ("Candidate", &r.candidate)] {
        markdown_side(&mut out, name, s, policy);
    }
    let _ = writeln!(out, "- Statistical unit: the {}", r.unit);
    // Names the --calibration file: a path, escaped like the labels.
    let _ = writeln!(
        out,
        "- Noise floor: {}",
        escape_cell(&r.noise_floor.to_string())
    );
    if !r.differences.is_empty() {
        let _ = writeln!(
            out,
            "- Differences: {}",
            escape_cell(&r.differences.join("; "))
        );
    }
    for note in &r.notes {
        let _ = writeln!(out, "- Note: {}", escape_cell(note));
    }
    for warning in r.warnings() {
        let _ = writeln!(out, "- **Warning**: {}", escape_cell(&warning));
    }
    for v in &regressions {
        let _ = writeln!(out, "- **{}**", regression_line(v));
    }
    markdown_equivalent(&mut out, r);
    verdict_table(&mut out, r);
    let _ = writeln!(
        out,
        "\nA metric regresses when its median grows by more than its threshold{} and by at least {} ms, and, with {} or more runs per side, a one-sided Mann-Whitney U test of the run medians, Holm-adjusted over the {} gated metrics, gives p < {}.",
        if r.options.calibration.is_some() {
            " (at least what the calibrated noise reaches)"
        } else {
            ""
        },
        r.options.min_delta_ms,
        r.options.runs_needed(),
        r.verdicts.len(),
        r.options.alpha
    );
    out
}

/// Why a gate could not judge (exit 2), for its outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The error, with its causes (`{err:#}`).
    pub reason: String,
    /// `--baseline`, when given.
    pub baseline: Option<String>,
    /// `--candidate`, when given.
    pub candidate: Option<String>,
}

/// The markdown of a refused gate.
pub fn refusal_markdown(r: &Refusal) -> String {
    let mut out = String::from(
        "## reaper gate: REFUSED (exit 2): nothing was judged

",
    );
    // The reason can quote run files (a kernel release, a scenario) and
    // the paths are the user's: both are data, escaped.
    let _ = writeln!(out, "- Reason: {}", escape_cell(&r.reason));
    for (name, path) in [("Baseline", &r.baseline), ("Candidate", &r.candidate)] {
        if let Some(path) = path {
            let _ = writeln!(out, "- {name}: {}", sanitize::markdown_code(path));
        }
    }
    let _ = writeln!(
        out,
        "\nThe gate exits 2 when it cannot judge: unreadable or incomparable run files, too few runs per side, or a bad option. It is not a pass."
    );
    out
}

/// JUnit XML of a refused gate: one testcase with an `error` element.
pub fn refusal_junit(r: &Refusal) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(
        "<testsuites name=\"reaper gate\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n",
    );
    out.push_str(
        "  <testsuite name=\"reaper gate: refused\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n",
    );
    let _ = writeln!(out, "    <properties>");
    for (name, path) in [("baseline", &r.baseline), ("candidate", &r.candidate)] {
        if let Some(path) = path {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                xml_escape(path)
            );
        }
    }
    let _ = writeln!(out, "    </properties>");
    out.push_str("    <testcase classname=\"reaper.gate\" name=\"gate\">\n");
    let _ = writeln!(
        out,
        "      <error message=\"{}\" type=\"refused\">{}</error>",
        xml_escape(&r.reason),
        xml_escape(&refusal_markdown(r))
    );
    out.push_str("    </testcase>\n  </testsuite>\n</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content (the one XML escape,
/// shared with the collision map's SVG).
pub use crate::sanitize::xml as xml_escape;

/// JUnit XML: one testcase per gated metric; a regression is a `failure`,
/// an unevaluated metric is `skipped`.
pub fn junit(r: &GateReport) -> String {
    let failures = r.regressions().count();
    let skipped = r
        .verdicts
        .iter()
        .filter(|v| matches!(v.status, Status::Skipped { .. }))
        .count();
    let tests = r.verdicts.len();
    let suite = format!("reaper gate: {} vs {}", r.baseline.label, r.candidate.label);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"reaper gate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        xml_escape(&suite)
    );
    junit_properties(&mut out, r);
    for v in &r.verdicts {
        junit_testcase(&mut out, v, &r.options.policy);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The JUnit suite's `<properties>`: the statistical unit, the noise floor,
/// each side's episodes used, and the recordings' warnings.
fn junit_properties(out: &mut String, r: &GateReport) {
    let _ = writeln!(out, "    <properties>");
    for (name, value) in [
        ("statistical_unit", format!("the {}", r.unit)),
        ("noise_floor", r.noise_floor.to_string()),
        (
            "baseline_episodes_used",
            usage_text(&r.baseline, &r.options.policy),
        ),
        (
            "candidate_episodes_used",
            usage_text(&r.candidate, &r.options.policy),
        ),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            xml_escape(&value)
        );
    }
    let warnings = r.warnings();
    if !warnings.is_empty() {
        let _ = writeln!(
            out,
            "      <property name=\"recording_warnings\" value=\"{}\"/>",
            xml_escape(&warnings.join(" | "))
        );
    }
    let _ = writeln!(out, "    </properties>");
}

/// One gated metric's JUnit `<testcase>`: a `failure` when it regressed,
/// `skipped` when not evaluated, else its detail as output.
fn junit_testcase(out: &mut String, v: &Verdict, policy: &super::clean::LossPolicy) {
    let _ = writeln!(
        out,
        "    <testcase classname=\"reaper.gate\" name=\"{}\">",
        xml_escape(&v.metric)
    );
    let detail = format!(
        "{}: baseline {} ms, candidate {} ms, delta {}, threshold {}, {}; {}; episodes used {}",
        v.description,
        side(&v.comparison.a),
        side(&v.comparison.b),
        delta(&v.comparison),
        threshold(v),
        v.p_adjusted.map_or_else(
            || "p n/a".to_owned(),
            |p| format!("{} (run medians, Holm-adjusted)", p_text(p))
        ),
        result(v),
        used(v, policy)
    );
    match &v.status {
        Status::Regressed => {
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"regression\">{}</failure>",
                xml_escape(&regression_line(v)),
                xml_escape(&detail)
            );
        }
        Status::Skipped { why } => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", xml_escape(why));
        }
        _ => {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                xml_escape(&detail)
            );
        }
    }
    let _ = writeln!(out, "    </testcase>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_an_error_element_and_a_summary() {
        let r = Refusal {
            reason: "too few runs: the baseline has 1 run <x>".into(),
            baseline: Some("a/b".into()),
            candidate: None,
        };
        let md = refusal_markdown(&r);
        assert!(md.starts_with("## reaper gate: REFUSED (exit 2)"), "{md}");
        assert!(md.contains("- Reason: too few runs"));
        assert!(md.contains("- Baseline: `a/b`") && !md.contains("Candidate"));
        let xml = refusal_junit(&r);
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(xml.contains("<error message=\"too few runs: the baseline has 1 run &lt;x&gt;\""));
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(xml_escape("x\u{1}y\nz"), "xy\nz");
    }
}
