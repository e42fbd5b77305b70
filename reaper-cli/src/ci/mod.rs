//! CI integration: what reaper does differently under a CI runner.

pub mod github;
