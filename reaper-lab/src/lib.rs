//! reaper-lab: the VM harness (qemu, initramfs, console, Debian kernel
//! index and packages), the kernel build and the A/B experiment, as a
//! library that the `reaper-lab` binary and `cargo xtask` share.

pub mod ab;
pub mod apt;
pub mod arch;
pub mod cli;
pub mod docs;
pub mod error;
pub mod host;
pub mod kernel;
pub mod paths;
pub mod reaper_json;
pub mod reapers;
pub mod setup_qemu;
pub mod vm;
