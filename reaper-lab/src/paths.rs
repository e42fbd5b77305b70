//! Where reaper-lab keeps what it downloads and builds (the cache), and
//! where its outputs go by default.
//!
//! The cache holds Debian packages and their apt state, busybox, kernel
//! source trees and builds, and the guests' temporary initramfs files;
//! everything there can be deleted and is fetched or built again on the
//! next run. It is `$REAPER_VM_CACHE` when set, else the directory a caller
//! chose with [`set_layout`] (`cargo xtask`: `target/vm-cache`), else
//! `$XDG_CACHE_HOME/reaper-lab` (`~/.cache/reaper-lab`).
//!
//! Outputs (`vm`'s `/out` copies, `ab`'s result directories) go under
//! `reaper-lab-out/` in the current directory unless a flag names the
//! directory (`cargo xtask`: under `target/`).

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context, Result};

/// Overrides the cache directory (e.g. to share it between clones in CI).
pub const CACHE_ENV: &str = "REAPER_VM_CACHE";
/// The cache's name under `$XDG_CACHE_HOME`.
const CACHE_NAME: &str = "reaper-lab";
/// The default output root under the current directory.
const OUT_NAME: &str = "reaper-lab-out";

/// Where a caller wants the cache and the default outputs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub cache: PathBuf,
    pub out_root: PathBuf,
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

/// Sets the layout for this process (the first call wins): `cargo xtask`
/// keeps the cache and outputs in the workspace's `target/`.
pub fn set_layout(layout: Layout) {
    let _ = LAYOUT.set(layout);
}

/// The cache directory, created if needed.
pub fn cache_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(CACHE_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => match LAYOUT.get() {
            Some(layout) => layout.cache.clone(),
            None => user_cache()?,
        },
    };
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "creating the cache {} (set {CACHE_ENV} to move it)",
            dir.display()
        )
    })?;
    // Absolute: kernel builds run make and scripts in other directories.
    std::path::absolute(&dir).with_context(|| format!("resolving {}", dir.display()))
}

/// `$XDG_CACHE_HOME/reaper-lab`, else `$HOME/.cache/reaper-lab`.
fn user_cache() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join(CACHE_NAME));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .with_context(|| {
            format!("neither XDG_CACHE_HOME nor HOME is set: set {CACHE_ENV} to a cache directory")
        })?;
    Ok(PathBuf::from(home).join(".cache").join(CACHE_NAME))
}

/// Scratch files of one run (the guests' initramfs), inside the cache.
pub fn work_dir() -> Result<PathBuf> {
    let dir = cache_dir()?.join("work");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Where outputs go when no flag names a directory.
pub fn out_root() -> PathBuf {
    match LAYOUT.get() {
        Some(layout) => layout.out_root.clone(),
        None => PathBuf::from(OUT_NAME),
    }
}
