//! Builds reaper-ebpf for bpfel-unknown-none with the nightly toolchain
//! (aya-build), so a plain `cargo build` produces a `reaper` binary with its
//! eBPF object embedded. Set AYA_BUILD_SKIP=1 to skip (the binary then fails
//! at run time with a clear message).

use std::path::Path;

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
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
