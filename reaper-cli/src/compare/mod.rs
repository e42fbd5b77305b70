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

pub use comparable::Incomparable;
pub use load::{RunSet, SetError};

/// Why two sides could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A side could not be loaded.
    #[error("{side}: {source}")]
    Load {
        /// "A", "B", "baseline", "candidate".
        side: &'static str,
        /// What went wrong.
        #[source]
        source: SetError,
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
/// version everywhere, victim sizes within 10% unless `force`.
pub fn load_pair(
    (a_name, a_path): (&'static str, &Path),
    (b_name, b_path): (&'static str, &Path),
    force: bool,
) -> Result<Pair, CompareError> {
    let raw_a = load::read_raw(a_path).map_err(|source| CompareError::Load {
        side: a_name,
        source,
    })?;
    let raw_b = load::read_raw(b_path).map_err(|source| CompareError::Load {
        side: b_name,
        source,
    })?;
    comparable::check_schema(&raw_a, &raw_b)?;
    let a = load::decode(a_path, raw_a).map_err(|source| CompareError::Load {
        side: a_name,
        source,
    })?;
    let b = load::decode(b_path, raw_b).map_err(|source| CompareError::Load {
        side: b_name,
        source,
    })?;
    let notes = comparable::check_sizes(&a, &b, force)?;
    Ok(Pair { a, b, notes })
}
