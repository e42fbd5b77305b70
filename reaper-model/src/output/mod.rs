//! The `--json` outputs of `reaper report`, `reaper diff` and `reaper gate`
//! (and the `reaper gate --calibrate` file): the types reaper-cli fills and
//! serializes, and that any reader (xtask, scripts, CI) decodes, so the
//! writer and its readers cannot disagree on a field. The published JSON
//! Schemas (`docs/schemas/{report,diff,gate}.schema.json`) are derived from
//! these types.
//!
//! One module per output ([`report`], [`diff`], [`gate`], [`calibration`]),
//! and the parts diff and gate share, each named after the reaper-cli
//! `compare` module that computes it: which episodes a figure used
//! ([`clean`]), the compared metrics ([`metrics`]), one compared quantity
//! with its statistics ([`quantity`]) and the recording design
//! ([`design`]). Only what can be read off a value lives here; every
//! computation stays in reaper-cli.

pub mod calibration;
pub mod clean;
pub mod design;
pub mod diff;
pub mod gate;
pub mod metrics;
pub mod quantity;
pub mod report;
