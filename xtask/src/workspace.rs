//! This workspace's directories, for the tasks that build and test it.

use std::path::PathBuf;

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The cargo target directory of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where xtask keeps reaper-lab's cache and outputs: `target/vm-cache` and
/// `target/` (as before reaper-lab existed, so caches stay warm).
pub fn lab_layout() -> reaper_lab::paths::Layout {
    reaper_lab::paths::Layout {
        cache: target_dir().join("vm-cache"),
        out_root: target_dir(),
    }
}
