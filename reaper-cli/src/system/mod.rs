//! Facts about the running machine: kernel, its policies, privileges,
//! procfs, tracefs.

pub mod kernel;
pub mod policy;
pub mod privileges;
pub mod procfs;
pub mod tracefs;
