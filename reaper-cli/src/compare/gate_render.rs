//! The gate's outputs: a short markdown summary (stdout, CI comments) and
//! JUnit XML with one testcase per gated metric.

use std::fmt::Write;

use super::gate::{GateReport, Status, Verdict};
use super::quantity::{Side, format_p, p_text};
use super::text::delta;
use crate::duration::ms_for_size;
use crate::sanitize;

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
    match &v.status {
        Status::Pass => "pass".to_owned(),
        Status::Regressed => "REGRESSION".to_owned(),
        Status::WithinNoise => "pass (over threshold, within noise)".to_owned(),
        Status::Improved => "pass (improved)".to_owned(),
        Status::Skipped { why } => format!("skipped: {why}"),
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
    for (name, s) in [("Baseline", &r.baseline), ("Candidate", &r.candidate)] {
        let _ = writeln!(
            out,
            "- {name}: {} — {} ({} run{}, {} clean episodes; {}; Linux {} {})",
            escape_cell(&s.label),
            sanitize::markdown_code(&s.path),
            s.runs,
            if s.runs == 1 { "" } else { "s" },
            s.clean_episodes,
            s.excluded,
            escape_cell(&s.kernels.join(", ")),
            escape_cell(&s.archs.join(", "))
        );
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
    for v in &regressions {
        let _ = writeln!(out, "- **{}**", regression_line(v));
    }
    let _ = writeln!(
        out,
        "\n| Metric | Baseline ms, median (min–max) | Candidate ms | Delta | Threshold | p (runs, one-sided, Holm) | Result |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for v in &r.verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            v.metric,
            side(&v.comparison.a),
            side(&v.comparison.b),
            delta(&v.comparison),
            threshold(v),
            p_cell(v),
            match v.status {
                Status::Regressed => format!("**{}**", result(v)),
                _ => escape_cell(&result(v)),
            }
        );
    }
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

/// Escapes text for XML attributes and content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

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
    let _ = writeln!(out, "    <properties>");
    for (name, value) in [
        ("statistical_unit", format!("the {}", r.unit)),
        ("noise_floor", r.noise_floor.to_string()),
        ("baseline_left_out", r.baseline.excluded.to_string()),
        ("candidate_left_out", r.candidate.excluded.to_string()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            xml_escape(&value)
        );
    }
    let _ = writeln!(out, "    </properties>");
    for v in &r.verdicts {
        let _ = writeln!(
            out,
            "    <testcase classname=\"reaper.gate\" name=\"{}\">",
            xml_escape(v.metric)
        );
        let detail = format!(
            "{}: baseline {} ms, candidate {} ms, delta {}, threshold {}, {}; {}",
            v.description,
            side(&v.comparison.a),
            side(&v.comparison.b),
            delta(&v.comparison),
            threshold(v),
            v.p_adjusted.map_or_else(
                || "p n/a".to_owned(),
                |p| format!("{} (run medians, Holm-adjusted)", p_text(p))
            ),
            result(v)
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
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(xml_escape("x\u{1}y\nz"), "xy\nz");
    }
}
