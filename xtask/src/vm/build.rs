//! Building the binaries that go into the guest: reaper as a static musl
//! binary for the guest's architecture. The arm64 guest runs the binary
//! unpacked from the `cargo xtask dist` tarball, so what is shipped is what
//! is tested; `REAPER_VM_REAPER=tree|dist` overrides that for any arch.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::arch::Arch;
use crate::build::{Shipped, musl_binary};

/// Chooses the guest binary's source (`tree` or `dist`).
const SOURCE_ENV: &str = "REAPER_VM_REAPER";

/// Where the guest's reaper comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The in-tree musl build.
    Tree,
    /// Unpacked from the release tarball.
    Dist,
}

impl Source {
    fn for_arch(arch: Arch) -> Result<Source> {
        match std::env::var(SOURCE_ENV).ok().as_deref() {
            Some("tree") => Ok(Source::Tree),
            Some("dist") => Ok(Source::Dist),
            Some(other) => bail!("{SOURCE_ENV}={other:?}: expected tree or dist"),
            None if arch == Arch::Arm64 => Ok(Source::Dist),
            None => Ok(Source::Tree),
        }
    }
}

/// The `reaper` the guest runs for `arch` (see the module doc).
pub fn reaper_binary(arch: Arch) -> Result<PathBuf> {
    match Source::for_arch(arch)? {
        Source::Tree => musl_binary(Shipped::Reaper, arch),
        Source::Dist => crate::dist::unpacked_binary(arch),
    }
}

/// The guests' reaper for `cargo xtask vm|ab` (the aliases of reaper-lab's
/// commands): built from this tree, or unpacked from the tarball, as
/// [`reaper_binary`] decides.
pub struct TreeBuild;

impl reaper_lab::reapers::ReaperSource for TreeBuild {
    fn reaper_for(&self, arch: Arch) -> Result<PathBuf> {
        reaper_binary(arch)
    }
}
