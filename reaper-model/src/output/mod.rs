//! The `--json` outputs of reaper's commands: the types reaper-cli fills
//! and serializes, and that any reader (xtask, scripts, CI) decodes, so the
//! writer and its readers cannot disagree on a field. The published JSON
//! Schemas (`docs/schemas/`) are derived from these types.
//!
//! One module per output: [`report`] (`reaper report --json`). Only what
//! can be read off a value lives here; every computation stays in
//! reaper-cli.

pub mod report;
