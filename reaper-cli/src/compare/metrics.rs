//! The compared metrics and their per-episode samples.
//!
//! The summary metrics are the rows of `reaper report`'s "Summary of
//! measurements (ms)" (computed by [`crate::report::summary::summary`], so a
//! diff shows the same numbers as the reports of its two sides), each as its
//! total and its exit_mmap / reaper-work parts. One sample per episode the
//! row's [`Scope`] may use ([`super::clean`]: lost races and partial
//! episodes are left out of every row, a loss only out of the rows it can
//! bias), grouped by run: the run is the statistical unit. Each metric says
//! how many episodes it used and why not the others ([`Coverage`]).
//! The metric table ([`METRICS`]) is reaper-model's vocabulary, re-exported.

use serde::Serialize;

use crate::catalog::ConceptFrames;
use crate::model::Run;
use crate::report::model::Cell;
use crate::report::summary::summary;

pub use reaper_model::output::metrics::{METRICS, Metric, Part, Row, find, names};

use super::clean::{Coverage, LossPolicy, Scope, exclusion};
use super::load::RunSet;

/// One side's samples of a metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Samples {
    /// One value per clean episode that measured it, ms, grouped by run
    /// (one inner vector per run file, empty when it measured nothing).
    pub runs: Vec<Vec<f64>>,
    /// Why episodes did not measure it (distinct reasons).
    pub not_measured: Vec<String>,
    /// The report's row labels seen (distinct), e.g. "folio_remove_rmap_ptes time".
    pub labels: Vec<String>,
    /// Episodes used, left out and not measured.
    pub coverage: Coverage,
}

fn push_distinct(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|s| s == item) {
        list.push(item.to_owned());
    }
}

impl Samples {
    /// Why nothing was measured, when nothing was.
    pub fn why_not(&self) -> Option<String> {
        if self.runs.iter().any(|r| !r.is_empty()) {
            return None;
        }
        Some(if self.not_measured.is_empty() {
            "every episode was left out".to_owned()
        } else {
            self.not_measured.join("; ")
        })
    }
}

/// Adds one run's samples of every metric to `out` (indexed like [`METRICS`]).
fn add_run(run: &Run, policy: &LossPolicy, out: &mut [Samples]) {
    let rows = summary(run, &ConceptFrames::of(&run.symbols)).rows;
    for (metric, samples) in METRICS.iter().zip(out.iter_mut()) {
        let Some(row) = rows.iter().find(|r| r.id == Some(metric.row)) else {
            push_distinct(
                &mut samples.not_measured,
                "this reaper's report has no such row",
            );
            for _ in &run.episodes {
                samples.coverage.add(None, false);
            }
            samples.runs.push(Vec::new());
            continue;
        };
        push_distinct(&mut samples.labels, &row.label);
        let scope = Scope::of_row(metric.row);
        let mut values = Vec::new();
        for (episode, cell) in run.episodes.iter().zip(&row.cells) {
            if let Some(reason) = exclusion(episode, scope, policy) {
                samples.coverage.add(Some(reason), false);
                continue;
            }
            let value = match cell {
                Cell::Measured(v) => match metric.part {
                    Part::Total => Some(v.total_ms),
                    Part::ExitMmap => v.split_ms.map(|s| s.0),
                    Part::Reaper => v.split_ms.map(|s| s.1),
                },
                Cell::NotMeasured { why } => {
                    push_distinct(&mut samples.not_measured, why);
                    None
                }
            };
            match value {
                Some(ms) => values.push(ms),
                None if matches!(cell, Cell::Measured(_)) => {
                    push_distinct(&mut samples.not_measured, "row has no split");
                }
                None => {}
            }
            samples.coverage.add(None, value.is_some());
        }
        samples.runs.push(values);
    }
}

/// Every metric's samples over a run set, indexed like [`METRICS`].
pub fn samples(set: &RunSet, policy: &LossPolicy) -> Vec<Samples> {
    let mut out = vec![Samples::default(); METRICS.len()];
    for loaded in &set.runs {
        add_run(&loaded.run, policy, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_findable() {
        for m in METRICS {
            assert_eq!(find(m.name), Some(m));
        }
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        assert_eq!(find("nope"), None);
    }

    #[test]
    fn every_metric_reads_a_row_of_the_summary() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/report/6.18-mrelease.run.json"
        );
        let run = crate::report::load_run(std::path::Path::new(path)).unwrap();
        let rows = summary(&run, &ConceptFrames::of(&run.symbols)).rows;
        for m in METRICS {
            assert_eq!(
                rows.iter().filter(|r| r.id == Some(m.row)).count(),
                1,
                "{}",
                m.name
            );
        }
    }
}
