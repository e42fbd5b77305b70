//! A cache of the built eBPF object, shared by every build of the
//! workspace. aya-build compiles reaper-ebpf (with `-Z build-std=core`,
//! about a minute) in a target directory under `OUT_DIR`, which differs per
//! profile and host target, so `cargo build`, `cargo build --release` and
//! the musl release builds each compiled the same bpfel object again. The
//! object depends only on the eBPF and common crates' files, the lock
//! file, the workspace manifest, the BPF target arch, the nightly compiler
//! and bpf-linker; keyed by a hash of all of those, one build serves the
//! others. The cache lives in `TARGET_DIR/ebpf-cache` (the directory cargo
//! marks with `CACHEDIR.TAG`), so `cargo clean` empties it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The object's file name in `OUT_DIR` (what `include_bytes!` reads).
pub const OBJECT: &str = "reaper-ebpf";

/// Where this build's object is cached, or `None` when no key can be made
/// (no target directory found, a file unreadable, a tool not answering):
/// then the object is built as if there were no cache.
pub fn entry(workspace: &Path, out_dir: &Path) -> Option<PathBuf> {
    let target_dir = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())?;
    let mut hasher = DefaultHasher::new();
    for dir in ["reaper-ebpf", "reaper-common"] {
        hash_tree(&workspace.join(dir), &mut hasher).ok()?;
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        file.hash(&mut hasher);
        std::fs::read(workspace.join(file)).ok()?.hash(&mut hasher);
    }
    for var in [
        "CARGO_CFG_TARGET_ARCH",
        "CARGO_CFG_TARGET_ENDIAN",
        "RUSTC_BOOTSTRAP",
    ] {
        std::env::var_os(var).hash(&mut hasher);
    }
    tool_version(&["rustup", "run", "nightly", "rustc", "-vV"])?.hash(&mut hasher);
    tool_version(&["bpf-linker", "--version"])?.hash(&mut hasher);
    Some(
        target_dir
            .join("ebpf-cache")
            .join(format!("{:016x}", hasher.finish()))
            .join(OBJECT),
    )
}

/// Copies a cached object into `OUT_DIR`; false when there is none.
pub fn restore(entry: &Path, out_dir: &Path) -> bool {
    entry.is_file() && std::fs::copy(entry, out_dir.join(OBJECT)).is_ok()
}

/// Stores the object just built (write then rename, so a concurrent build
/// never reads half a file). A failure only costs the next build a rebuild.
pub fn store(entry: &Path, out_dir: &Path) {
    let Some(dir) = entry.parent() else { return };
    let partial = dir.join(format!("{OBJECT}.{}.partial", std::process::id()));
    let stored = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::copy(out_dir.join(OBJECT), &partial))
        .and_then(|_| std::fs::rename(&partial, entry));
    if stored.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
}

/// Every file below `dir` (paths relative to it, sorted, then contents),
/// skipping target directories.
fn hash_tree(dir: &Path, hasher: &mut DefaultHasher) -> std::io::Result<()> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next)? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    pending.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        file.strip_prefix(dir).unwrap_or(&file).hash(hasher);
        std::fs::read(&file)?.hash(hasher);
    }
    Ok(())
}

/// What a tool says about its own version (stdout), if it runs.
fn tool_version(command: &[&str]) -> Option<Vec<u8>> {
    let (program, args) = command.split_first()?;
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then_some(out.stdout)
}
