//! Builds reaper-ebpf for bpfel-unknown-none with the nightly toolchain
//! (aya-build), so a plain `cargo build` produces a `reaper` binary with its
//! eBPF object embedded. Set AYA_BUILD_SKIP=1 to skip (the binary then fails
//! at run time with a clear message).
//!
//! rustc links the eBPF object with the `bpf-linker` it finds on `PATH`. When
//! `cargo xtask` installed the pinned bpf-linker into the project-local root
//! (because the one on `PATH` is missing or another version), this script
//! puts that root's `bin` first, so a plain `cargo build` uses it too.

use std::path::{Path, PathBuf};

/// xtask's project-local tool root (xtask/src/setup/bpf_linker.rs), relative
/// to this crate.
const LOCAL_TOOLS_BIN: &str = "../target/tools/bin";

/// Puts [`LOCAL_TOOLS_BIN`] first on `PATH` for the nested eBPF build, when
/// a bpf-linker is there.
fn prefer_local_bpf_linker(manifest_dir: &Path) -> anyhow::Result<()> {
    let bin: PathBuf = manifest_dir.join(LOCAL_TOOLS_BIN);
    if !bin.join("bpf-linker").is_file() {
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let joined = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))?;
    // SAFETY: a build script is one thread here (nothing has been spawned
    // yet), so no other thread reads the environment while it changes.
    unsafe { std::env::set_var("PATH", joined) };
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    prefer_local_bpf_linker(Path::new(&manifest_dir))?;
    let ebpf_dir = Path::new(&manifest_dir).join("../reaper-ebpf");
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    println!("cargo:rerun-if-changed=../reaper-common/src");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "reaper-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
