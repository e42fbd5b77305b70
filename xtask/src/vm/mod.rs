//! `cargo xtask vm-test`'s parts: the matrix ([`matrix`]), the checks it
//! asserts on what each guest sent back ([`checks`]), and the guest's
//! reaper built from this tree ([`build`]), and where each cell's time went
//! ([`step_times`]). The harness itself (boot,
//! kernels, qemu, console) is reaper-lab's, re-exported here.

pub mod build;
pub mod checks;
pub mod matrix;
pub mod results;
pub mod step_times;
pub mod table;

pub use reaper_lab::vm::{VmSpec, arch, boot, kernel, qemu};

/// The directories the matrix and its checks use.
pub mod cache {
    pub use crate::workspace::target_dir;
    #[cfg(test)]
    pub use crate::workspace::workspace_root;
}
