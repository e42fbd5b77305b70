//! Where the VM harness keeps downloaded kernels, busybox and apt state:
//! `$REAPER_VM_CACHE`, or `target/vm-cache/` in the workspace. Everything
//! there can be deleted; it is fetched again on the next run.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Overrides the cache directory (e.g. to share it between clones in CI).
const CACHE_ENV: &str = "REAPER_VM_CACHE";

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

/// The cache directory, created if needed.
pub fn cache_dir() -> Result<PathBuf> {
    let dir = std::env::var_os(CACHE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("vm-cache"));
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "creating the VM cache {} (set {CACHE_ENV} to move it)",
            dir.display()
        )
    })?;
    Ok(dir)
}
