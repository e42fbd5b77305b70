//! Medians, ranges and the markdown result table.

use std::fmt::Write as _;

use super::verdict::{self, Goal, RatioInterval, Verdict};

/// Median and range of one figure over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Summarizes `values`; None when empty. NaNs are dropped.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        n,
        median,
        min: v[0],
        max: v[n - 1],
    })
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    pub measure: String,
    pub condition: String,
    pub unit: &'static str,
    pub summary: Option<Summary>,
    /// Ratio of this row's median to its baseline's, when it has one.
    pub ratio: Option<f64>,
    /// That ratio's bootstrap interval, when the baseline is another
    /// condition and not the perf row the verdict already compares with
    /// (e.g. "reaper default / no profiler", issue 29's overhead figure).
    pub ratio_interval: Option<RatioInterval>,
    /// The condition the ratio is taken against.
    ratio_baseline: String,
    /// "reaper vs perf", for a reaper row with a perf counterpart.
    pub verdict: Option<Verdict>,
    pub note: String,
    /// The values, for the verdict's bootstrap.
    values: Vec<f64>,
}

impl Row {
    pub fn new(measure: &str, condition: &str, unit: &'static str, values: &[f64]) -> Self {
        Self {
            measure: measure.to_owned(),
            condition: condition.to_owned(),
            unit,
            summary: summarize(values),
            ratio: None,
            ratio_interval: None,
            ratio_baseline: String::new(),
            verdict: None,
            note: String::new(),
            values: values.to_vec(),
        }
    }

    /// Sets the "reaper vs perf" verdict of this (reaper) row against
    /// `perf`'s values.
    pub fn versus(mut self, perf: &Row, goal: Goal) -> Self {
        self.verdict = Some(verdict::verdict(goal, &self.values, &perf.values));
        if perf.condition == self.ratio_baseline {
            // The verdict column prints the same interval.
            self.ratio_interval = None;
        }
        self
    }

    /// Sets the ratio to `baseline`'s median, with its bootstrap interval
    /// (the same resampling as the verdict's) unless the baseline is this
    /// row's own condition.
    pub fn ratio_to(mut self, baseline: &Row) -> Self {
        self.ratio = match (self.summary, baseline.summary) {
            (Some(s), Some(b)) if b.median != 0.0 => Some(s.median / b.median),
            _ => None,
        };
        self.ratio_baseline.clone_from(&baseline.condition);
        self.ratio_interval = if baseline.condition == self.condition {
            None
        } else {
            verdict::ratio_interval(&self.values, &baseline.values)
        };
        self
    }

    /// "over T: 1.03× [0.99–1.06]": this row's median over `baseline`'s with
    /// its bootstrap interval, for a second ratio in the note column
    /// (`None` when either side has too few values).
    pub fn ratio_over(&self, baseline: &Row, short_name: &str) -> Option<String> {
        let ci = verdict::ratio_interval(&self.values, &baseline.values)?;
        Some(format!(
            "over {short_name}: {:.2}× [{:.2}–{:.2}]",
            ci.ratio, ci.lo, ci.hi
        ))
    }

    /// Appends a note ("; " between notes).
    pub fn note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        if self.note.is_empty() {
            self.note = note;
        } else if !note.is_empty() {
            self.note = format!("{}; {note}", self.note);
        }
        self
    }
}

fn number(x: f64) -> String {
    let a = x.abs();
    if x.fract() == 0.0 || a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Renders the rows as a markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| measure | condition | n | median | min–max | ratio | reaper vs perf | note |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let (n, median, range) = match row.summary {
            Some(s) => (
                s.n.to_string(),
                format!("{} {}", number(s.median), row.unit)
                    .trim_end()
                    .to_owned(),
                format!("{}–{}", number(s.min), number(s.max)),
            ),
            None => ("0".into(), "not measured".into(), "-".into()),
        };
        let ratio = match (row.ratio, row.ratio_interval) {
            (None, _) => "-".to_owned(),
            (Some(r), None) => format!("{r:.2}×"),
            (Some(r), Some(ci)) => format!("{r:.2}× [{:.2}–{:.2}]", ci.lo, ci.hi),
        };
        let verdict = row
            .verdict
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let _ = writeln!(
            out,
            "| {} | {} | {n} | {median} | {range} | {ratio} | {verdict} | {} |",
            row.measure, row.condition, row.note
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_nan() {
        assert_eq!(summarize(&[]), None);
        let s = summarize(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max), (3, 2.0, 1.0, 3.0));
        let s = summarize(&[4.0, 1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max), (4, 2.5, 1.0, 4.0));
    }

    #[test]
    fn ratio_to_baseline_median() {
        let base = Row::new("latency", "none", "ms", &[10.0, 20.0, 30.0]);
        let row = Row::new("latency", "perf", "ms", &[22.0, 40.0, 30.0]).ratio_to(&base);
        assert_eq!(row.ratio, Some(1.5));
        let empty = Row::new("latency", "x", "ms", &[]).ratio_to(&base);
        assert_eq!(empty.ratio, None);
    }

    #[test]
    fn renders_markdown() {
        let base = Row::new("kill→mrelease", "no profiler", "ms", &[100.0, 120.0]);
        let row = Row::new("kill→mrelease", "perf", "ms", &[0.05])
            .ratio_to(&base)
            .note("loses");
        assert_eq!(row.clone().note("more").note("").note, "loses; more");
        let md = markdown(&[base, row, Row::new("x", "y", "ms", &[])]);
        let expected = "\
| measure | condition | n | median | min–max | ratio | reaper vs perf | note |
|---|---|---|---|---|---|---|---|
| kill→mrelease | no profiler | 2 | 110 ms | 100–120 | - | - |  |
| kill→mrelease | perf | 1 | 0.050 ms | 0.050–0.050 | 0.00× | - | loses |
| x | y | 0 | not measured | - | - | - |  |
";
        assert_eq!(md, expected);
        let counts = markdown(&[Row::new("loss", "F", "", &[0.0, 3.0, 0.0])]);
        assert!(
            counts.ends_with("| loss | F | 3 | 0 | 0–3 | - | - |  |\n"),
            "{counts}"
        );
        let md = expected.to_owned();
        assert_eq!(md, expected);
    }

    #[test]
    fn a_ratio_to_another_condition_carries_its_interval() {
        let base = Row::new("latency", "A: none", "ms", &[30.0, 31.0, 32.0, 33.0, 34.0]);
        let self_ratio =
            Row::new("latency", "A: none", "ms", &[30.0, 31.0, 32.0, 33.0, 34.0]).ratio_to(&base);
        assert_eq!(self_ratio.ratio, Some(1.0));
        assert_eq!(self_ratio.ratio_interval, None);
        let b = Row::new(
            "latency",
            "B: reaper",
            "ms",
            &[33.0, 34.0, 35.0, 36.0, 37.0],
        )
        .ratio_to(&base);
        let ci = b.ratio_interval.expect("5 values a side give an interval");
        assert!(
            ci.lo <= b.ratio.unwrap() && b.ratio.unwrap() <= ci.hi,
            "{ci:?}"
        );
        let line = markdown(&[b]).lines().nth(2).unwrap().to_owned();
        assert!(
            line.contains(&format!("| 1.09× [{:.2}–{:.2}] |", ci.lo, ci.hi)),
            "{line}"
        );
        let few = Row::new("latency", "B: reaper", "ms", &[33.0]).ratio_to(&base);
        assert_eq!(few.ratio_interval, None, "one value gives no interval");
    }

    #[test]
    fn verdict_column_is_rendered_for_reaper_rows() {
        let perf = Row::new("start-up", "perf", "ms", &[300.0, 310.0, 290.0, 305.0]);
        let reaper = Row::new("start-up", "reaper", "ms", &[100.0, 110.0, 90.0, 105.0])
            .ratio_to(&perf)
            .versus(&perf, Goal::Time);
        let md = markdown(&[reaper, perf]);
        let lines: Vec<&str> = md.lines().collect();
        assert!(
            lines[2].contains("| 0.34× | reaper faster 0.34× ["),
            "{}",
            lines[2]
        );
        assert!(lines[3].ends_with("| - | - |  |"), "{}", lines[3]);
    }
}
