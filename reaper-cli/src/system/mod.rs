//! Facts about the running machine: kernel, privileges, procfs, tracefs.

pub mod kernel;
pub mod privileges;
pub mod procfs;
pub mod tracefs;
