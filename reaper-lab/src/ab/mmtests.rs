//! The plain-text block a reviewer pastes into a cover letter, in the
//! style of mmtests' compare-kernels: what was compared (kernel revisions,
//! `.config` hashes, the command), then one line per metric with A, B,
//! the change, the run-to-run noise and a significance marker, and the
//! gate's verdict. Every figure comes from reaper's own outputs
//! ([`super::compare`]); a figure reaper did not give is `n/m`, never 0.

use std::fmt::Write as _;

use super::compare::{Comparison, DiffJson, Noise, SideValue};

/// What the block says about one side.
pub struct SideHeader<'a> {
    pub label: &'a str,
    pub description: &'a str,
    pub release: Option<&'a str>,
    pub config_hash: Option<&'a str>,
    /// Run files recorded.
    pub runs: usize,
}

/// Everything the block shows.
pub struct Block<'a> {
    pub title: &'a str,
    pub a: SideHeader<'a>,
    pub b: SideHeader<'a>,
    pub command: &'a str,
    pub diff: &'a DiffJson,
    pub noise: (Option<&'a Noise>, Option<&'a Noise>),
    pub verdict: &'a str,
}

/// What the columns mean, under the table.
const LEGEND: [&str; 5] = [
    "A, B: median over episodes, ms; %change: (B-A)/A",
    "±noise: run-to-run spread, the sd of the run medians of the noisier side (reaper gate",
    "  --calibrate on each side alone) as % of A's median, as %change is; -: not measured",
    "sig: two-sided Mann-Whitney U of the run medians (reaper diff): *** p<0.001, ** p<0.01,",
    "  * p<0.05, n/s not significant, -: no test (too few runs, or a side not measured)",
];

/// Significance marker of a two-sided p-value.
pub fn marker(p: Option<f64>) -> &'static str {
    match p {
        None => "-",
        Some(p) if p < 0.001 => "***",
        Some(p) if p < 0.01 => "**",
        Some(p) if p < 0.05 => "*",
        Some(_) => "n/s",
    }
}

/// One table row: label, A, B, %change, ±noise, significance.
type Row = [String; 6];

fn value(side: &SideValue) -> String {
    match side {
        SideValue::Measured { median, .. } => format!("{median:.2}"),
        SideValue::NotMeasured { .. } => "n/m".into(),
    }
}

fn row(label: String, c: &Comparison, noise: Option<f64>) -> Row {
    let both = matches!(
        (&c.a, &c.b),
        (SideValue::Measured { .. }, SideValue::Measured { .. })
    );
    let change = match (both, c.delta_pct) {
        (true, Some(pct)) => format!("{pct:+.2}%"),
        _ => "n/m".into(),
    };
    let noise = noise.map_or_else(|| "-".into(), |n| format!("±{n:.1}%"));
    let sig = if both {
        marker(c.test.as_ref().map(|t| t.p_two_sided))
    } else {
        "-"
    };
    [label, value(&c.a), value(&c.b), change, noise, sig.into()]
}

/// The noisier side's run-to-run sd of `metric` as a percentage of A's
/// median, so it reads on %change's scale (a side's noise relative to its
/// own median would blow up where a patch takes a metric near zero).
fn noise_of(noise: (Option<&Noise>, Option<&Noise>), metric: &str, a: &SideValue) -> Option<f64> {
    let SideValue::Measured { median, .. } = a else {
        return None;
    };
    let sd_a = noise.0.and_then(|n| n.sd_ms(metric));
    let sd_b = noise.1.and_then(|n| n.sd_ms(metric));
    let sd = match (sd_a, sd_b) {
        (Some(a), Some(b)) => a.max(b),
        (a, b) => a.or(b)?,
    };
    (*median > 0.0).then(|| sd / median * 100.0)
}

fn header_line(name: &str, s: &SideHeader) -> String {
    format!(
        "{name} {}: {}; release {}; .config sha256 {}; {} run(s)",
        s.label,
        s.description,
        s.release.unwrap_or("n/m (known after boot)"),
        s.config_hash.unwrap_or("n/m (no .config)"),
        s.runs
    )
}

/// The block.
pub fn render(block: &Block) -> String {
    let mut rows: Vec<Row> = vec![[
        "metric (ms)".into(),
        "A".into(),
        "B".into(),
        "%change".into(),
        "±noise".into(),
        "sig".into(),
    ]];
    let mut not_measured: Vec<String> = Vec::new();
    for m in &block.diff.metrics {
        rows.push(row(
            m.display(),
            &m.comparison,
            noise_of(block.noise, &m.metric, &m.comparison.a),
        ));
        for (side, v) in [("A", &m.comparison.a), ("B", &m.comparison.b)] {
            if let SideValue::NotMeasured { why } = v {
                not_measured.push(format!("{} on {side}: {why}", m.display()));
            }
        }
    }
    for e in &block.diff.exact.rows {
        rows.push(row(
            format!("exact {} ({})", e.function, e.context),
            &e.comparison,
            None,
        ));
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "reaper-lab A/B: {}", block.title);
    let _ = writeln!(out, "{}", header_line("A", &block.a));
    let _ = writeln!(out, "{}", header_line("B", &block.b));
    let _ = writeln!(out, "command: {}", block.command);
    let _ = writeln!(out);
    for r in &rows {
        let pad = |i: usize| widths[i].saturating_sub(r[i].chars().count());
        let mut line = format!("{}{}", r[0], " ".repeat(pad(0)));
        for (i, cell) in r.iter().enumerate().skip(1) {
            let _ = write!(line, "  {}{cell}", " ".repeat(pad(i)));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out);
    if let Some(why) = &block.diff.exact.not_measured {
        let _ = writeln!(out, "exact function timing: not measured ({why})");
    }
    for line in &not_measured {
        let _ = writeln!(out, "n/m: {line}");
    }
    for line in LEGEND {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "gate: {}", block.verdict);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::compare::{MetricNoise, Noise};

    /// `reaper diff --json` of reaper-cli's tests/data/compare set-baseline
    /// against set-regression-20 (5 runs a side), as reaper printed it.
    const DIFF: &str = include_str!("../../tests/data/diff-set-baseline-vs-set-regression-20.json");

    #[test]
    fn markers() {
        assert_eq!(marker(Some(0.0004)), "***");
        assert_eq!(marker(Some(0.004)), "**");
        assert_eq!(marker(Some(0.04)), "*");
        assert_eq!(marker(Some(0.5)), "n/s");
        assert_eq!(marker(None), "-");
    }

    fn noise(median_ms: f64, run_sd: f64) -> Noise {
        Noise {
            metrics: vec![MetricNoise {
                metric: "total".into(),
                median_ms,
                run_sd,
                not_measured: None,
            }],
        }
    }

    #[test]
    fn the_block_of_a_real_diff() {
        let diff: DiffJson = serde_json::from_str(DIFF).unwrap();
        // A: 2.1% of 133 ms = 2.8 ms; B: 3.4% of 161.5 ms = 5.5 ms, 4.1% of A's median.
        let (na, nb) = (noise(133.0, 0.021), noise(161.5, 0.034));
        let side = |label| SideHeader {
            label,
            description: "linux-source-6.1 6.1.158-1",
            release: Some("6.1.158"),
            config_hash: Some("0123456789ab"),
            runs: 5,
        };
        let block = Block {
            title: "mm: a change",
            a: side("Without patch"),
            b: side("With patch"),
            command: "reaper-lab ab --source 6.1 --patch x.patch",
            diff: &diff,
            noise: (Some(&na), Some(&nb)),
            verdict: "FAIL (...)",
        };
        let text = render(&block);
        reaper_model::golden::check_golden(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/mmtests-set-baseline-vs-set-regression-20.txt"),
            &text,
        );
        // The total's noise is the noisier side's, on A's scale.
        let total = text.lines().find(|l| l.starts_with("Total")).unwrap();
        assert!(total.contains("±4.1%"), "{total}");
    }
}
