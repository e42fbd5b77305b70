//! What gets torn down and how: the synthetic victim, existing pids, and the
//! lmkd-style kill + `process_mrelease` race.

pub mod cgroup;
pub mod child;
pub mod identity;
pub mod pidfd;
pub mod victim;
