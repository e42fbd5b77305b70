//! Reading what reaper wrote, with reaper-lab's typed reader (see
//! [`reaper_lab::reaper_json`]), plus the test fixtures of xtask's checks.

#[cfg(test)]
pub mod fixtures;

pub use reaper_lab::reaper_json::{Context, Diagnosis, Run, read};
