//! Run files that stay readable, and published JSON Schemas.
//!
//! [`crate::model::migrate`] (reaper-model, so every reader upgrades the
//! same way) upgrades a run file written by any earlier schema version to
//! the current [`crate::model::SCHEMA_VERSION`] on load; `published` derives
//! the JSON Schemas of run.json and of every `--json` output from the Rust
//! types (kept in the repository under `docs/schemas/`).

pub mod published;

#[cfg(test)]
mod tests;
