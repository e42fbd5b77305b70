//! Builds reaper-ebpf for bpfel-unknown-none with the nightly toolchain
//! (aya-build), so a plain `cargo build` produces a `reaper` binary with its
//! eBPF object embedded. Set AYA_BUILD_SKIP=1 to skip (the binary then fails
//! at run time with a clear message).
//!
//! rustc links the eBPF object with the `bpf-linker` it finds on `PATH`. When
//! `cargo xtask setup` installed the pinned bpf-linker into the project-local
//! root (because the one on `PATH` is missing or another version), this
//! script puts that root's `bin` first, so a plain `cargo build` uses it too.
//! The root is found from this crate's manifest directory, not from the
//! target directory, so `cargo install --path reaper-cli` (which builds in a
//! temporary target directory) and a `CARGO_TARGET_DIR` elsewhere find it.
//!
//! The object is kept in `TARGET_DIR/ebpf-cache` under a hash of what it is
//! built from (`build/ebpf_cache.rs`), so the dev, release and musl builds
//! compile it once between them instead of once each.
//!
//! What the nested build needs is checked first: without bpf-linker or the
//! nightly toolchain's rust-src, the build stops with one line that names
//! `cargo xtask setup` (`cargo::error`), instead of rustc's "linker
//! `bpf-linker` not found" under a build-script backtrace.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/ebpf_cache.rs"]
mod ebpf_cache;

/// xtask's project-local tool root's `bin` (xtask/src/setup/bpf_linker.rs
/// `LOCAL_ROOT`), relative to the workspace root (this crate's parent).
const LOCAL_TOOLS_BIN: &str = "target/tools/bin";

/// What to run when something the eBPF build needs is missing.
const SETUP_HINT: &str = "run `cargo xtask setup` once in the reaper checkout (it installs the nightly rust-src and bpf-linker 0.10.3 into target/tools), or set AYA_BUILD_SKIP=1 to build a reaper that cannot record";

/// The project-local bin directory, when it holds a bpf-linker.
fn local_bpf_linker_dir(bin: &Path) -> Option<PathBuf> {
    bin.join("bpf-linker").is_file().then(|| bin.to_path_buf())
}

/// Whether `name` is an executable file in one of `PATH`'s directories.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(name);
            candidate.is_file()
                && std::fs::metadata(&candidate).is_ok_and(|m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                })
        })
    })
}

/// Puts `bin` first on `PATH` for the nested eBPF build.
fn prepend_path(bin: PathBuf) -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let joined = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))
        .map_err(|e| format!("cannot put the project's tools first on PATH: {e}"))?;
    // SAFETY: a build script is one thread here (nothing has been spawned
    // yet), so no other thread reads the environment while it changes.
    unsafe { std::env::set_var("PATH", joined) };
    Ok(())
}

/// The nightly toolchain's sysroot, when rustup has a nightly toolchain.
fn nightly_sysroot() -> Option<PathBuf> {
    let out = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Checks what the nested `cargo +nightly build -Z build-std=core` needs,
/// in the order a fresh machine lacks them; the error is one line.
fn preflight(manifest_dir: &Path) -> Result<(), String> {
    let local_bin = manifest_dir
        .parent()
        .unwrap_or(manifest_dir)
        .join(LOCAL_TOOLS_BIN);
    match local_bpf_linker_dir(&local_bin) {
        Some(bin) => prepend_path(bin)?,
        None if on_path("bpf-linker") => {}
        None => {
            return Err(format!(
                "bpf-linker (the eBPF linker) is neither on PATH nor in {}: {SETUP_HINT}",
                local_bin.display()
            ));
        }
    }
    let Some(sysroot) = nightly_sysroot() else {
        return Err(format!(
            "the nightly Rust toolchain (the eBPF crate needs -Z build-std) is not installed: {SETUP_HINT}"
        ));
    };
    let core = sysroot.join("lib/rustlib/src/rust/library/core/Cargo.toml");
    if !core.is_file() {
        return Err(format!(
            "the nightly toolchain has no rust-src component ({} is missing): {SETUP_HINT}",
            core.display()
        ));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    println!("cargo:rerun-if-changed=../reaper-common/src");
    let skip =
        std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if !skip && let Err(why) = preflight(Path::new(&manifest_dir)) {
        // One line for people; cargo adds "build script logged errors".
        println!("cargo::error={why}");
        return Ok(());
    }
    let ebpf_dir = Path::new(&manifest_dir).join("../reaper-ebpf");
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let workspace = Path::new(&manifest_dir)
        .parent()
        .unwrap_or(Path::new(&manifest_dir));
    let cached = (!skip)
        .then(|| ebpf_cache::entry(workspace, &out_dir))
        .flatten();
    if let Some(entry) = &cached
        && ebpf_cache::restore(entry, &out_dir)
    {
        // What aya-build would have asked cargo to watch.
        println!("cargo:rerun-if-changed={ebpf_dir}");
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        return Ok(());
    }
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf_cache::OBJECT,
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )?;
    if let Some(entry) = &cached {
        ebpf_cache::store(entry, &out_dir);
    }
    Ok(())
}
