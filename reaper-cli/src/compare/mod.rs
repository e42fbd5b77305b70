//! A/B comparison of run sets: `reaper diff` and `reaper gate`.
//!
//! Each side is a run file or a directory of runs (`load`). The two sides
//! are checked for comparability (`comparable`), their per-episode samples
//! of the summary metrics are extracted from the episodes each figure may
//! use (`clean`: a loss leaves an episode out only of what it can bias;
//! `metrics`, from the report's own summary rows; `exact` for exact
//! function timing; `functions` for the per-context tables), grouped by run,
//! and compared with medians and a Mann-Whitney U test of the run medians
//! (`runlevel`, `stats`, `quantity`): the run is the statistical unit.
//! `diff` builds the diff model that `text` renders; `gate` judges
//! regressions against a SPEC (`spec`), optionally with measured noise
//! (`calibration`), and `gate_render` writes markdown and JUnit; `flame`
//! writes differential flame graphs. `shift` gives each row's effect size
//! and 95% interval, `design` the drift and blocked-design warnings, and
//! `plan` the runs a change needs.

pub mod calibration;
pub mod clean;
pub mod collision;
pub mod comparable;
pub mod design;
pub mod diff;
pub mod exact;
pub mod flame;
pub mod functions;
pub mod gate;
pub mod gate_render;
pub mod load;
pub mod metrics;
pub mod plan;
pub mod quantity;
pub mod runlevel;
pub mod shift;
pub mod spec;
pub mod stats;
pub mod text;

#[cfg(test)]
mod synth;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::input::{Budget, Exceeded};

pub use comparable::Incomparable;
pub use load::{RunSet, SetError};

/// Why two sides could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A side could not be loaded.
    #[error("{side}")]
    Load {
        /// "A", "B", "baseline", "candidate".
        side: &'static str,
        /// What went wrong.
        #[source]
        source: SetError,
    },
    /// The sides together are more than `--max-input` allows.
    #[error("{sides}")]
    OverBudget {
        /// The sides, named with their paths.
        sides: String,
        /// Which limit.
        #[source]
        source: Exceeded,
    },
    /// The sides are not comparable.
    #[error(transparent)]
    Incomparable(#[from] Incomparable),
    /// Too few runs for a gate to separate a change from run-to-run drift.
    #[error("too few runs: the {side} has {found} run{} with episodes the gated metrics may use, but separating a change from run-to-run drift needs {required} runs per side (the run is the statistical unit: with {required} against {required} runs, complete separation of the run medians is the least that reaches one-sided p < {alpha} over {metrics} gated metric{}); record each side with {required} `reaper record` invocations, alternating baseline and candidate, or pass --calibration FILE written by `reaper gate --calibrate A/A-DIR...`", if *found == 1 { "" } else { "s" }, if *metrics == 1 { "" } else { "s" })]
    TooFewRuns {
        /// Which side.
        side: &'static str,
        /// Runs with episodes the gated metrics may use.
        found: usize,
        /// Runs needed per side.
        required: usize,
        /// The gate's false-alarm rate.
        alpha: f64,
        /// Gated metrics.
        metrics: usize,
    },
}

/// Two loaded, comparable sides.
#[derive(Debug)]
pub struct Pair {
    /// Side A (the baseline for a gate).
    pub a: RunSet,
    /// Side B (the candidate).
    pub b: RunSet,
    /// Comparability notes for the header (forced differences).
    pub notes: Vec<String>,
}

/// Loads both sides and checks that they are comparable: one schema
/// version everywhere, victim sizes within 10% unless `force`; within the
/// default `--max-input`.
pub fn load_pair(
    a: (&'static str, &Path),
    b: (&'static str, &Path),
    force: bool,
) -> Result<Pair, CompareError> {
    load_pair_within(a, b, force, &Budget::default())
}

/// [`load_pair`] charging `budget`.
pub fn load_pair_within(
    a: (&'static str, &Path),
    b: (&'static str, &Path),
    force: bool,
    budget: &Budget,
) -> Result<Pair, CompareError> {
    let mut sets = load_sets(&[a, b], budget)?.into_iter();
    let (Some(a), Some(b)) = (sets.next(), sets.next()) else {
        unreachable!("load_sets returns one set per side")
    };
    let notes = comparable::check_sizes(&a, &b, force)?;
    Ok(Pair { a, b, notes })
}

/// Loads one side within `budget` (a `--plan` baseline, a test fixture).
pub fn load_set(side: &'static str, path: &Path, budget: &Budget) -> Result<RunSet, CompareError> {
    let mut sets = load_sets(&[(side, path)], budget)?;
    Ok(sets.remove(0))
}

/// Loads several sides (`load`'s three steps, each over every side before
/// the next): nothing is read before the sides' sizes fit `budget`, and
/// nothing decoded before their schema versions agree.
pub fn load_sets(
    sides: &[(&'static str, &Path)],
    budget: &Budget,
) -> Result<Vec<RunSet>, CompareError> {
    let on = |side| move |source| CompareError::Load { side, source };
    let listed = sides
        .iter()
        .map(|&(side, path)| load::list(path).map_err(on(side)))
        .collect::<Result<Vec<_>, _>>()?;
    let total = listed
        .iter()
        .map(load::Listed::bytes)
        .fold(0, u64::saturating_add);
    budget
        .check_bytes(total)
        .map_err(|source| CompareError::OverBudget {
            sides: sides
                .iter()
                .map(|(side, path)| format!("{side} ({})", path.display()))
                .collect::<Vec<_>>()
                .join(" and "),
            source,
        })?;
    let scanned = sides
        .iter()
        .zip(listed)
        .map(|(&(side, _), listed)| load::scan(listed, budget).map_err(on(side)))
        .collect::<Result<Vec<_>, _>>()?;
    comparable::check_schema(scanned.iter().flat_map(load::Scanned::versions))?;
    sides
        .iter()
        .zip(scanned)
        .map(|(&(side, _), scanned)| load::decode(scanned, budget).map_err(on(side)))
        .collect()
}
