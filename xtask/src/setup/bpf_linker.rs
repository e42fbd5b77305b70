//! bpf-linker at the pinned version, without touching the user's own.
//!
//! rustc links `bpfel-unknown-none` objects by running `bpf-linker` from
//! `PATH` (aya-build starts that nested build with the build script's
//! environment). A `bpf-linker` on `PATH` that reports the pinned version is
//! used as it is; otherwise the pinned version is installed into the
//! project-local root `target/tools`, never over the user's copy. Every
//! build xtask starts puts `target/tools/bin` first on `PATH`
//! ([`super::cargo`]), and `reaper-cli/build.rs` does the same for a plain
//! `cargo build`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::workspace::workspace_root;
use reaper_lab::host::find_in_path;

/// bpf-linker release that links with rustc's own LLVM 22 (0.11+ wants a
/// system LLVM 23 that is not packaged).
pub const VERSION: &str = "0.10.3";
/// The project-local install root, relative to the workspace. reaper-cli's
/// build.rs looks for `bin/bpf-linker` under the same path.
pub const LOCAL_ROOT: &str = "target/tools";

/// The local root's `bin` directory.
pub fn local_bin() -> PathBuf {
    workspace_root().join(LOCAL_ROOT).join("bin")
}

/// `PATH` with the local root's `bin` first.
pub fn path_with_local_tools() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(local_bin()).chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).unwrap_or(path)
}

/// The version `bpf-linker --version` reports (`bpf-linker 0.10.3`).
fn version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).map(str::to_string)
}

fn parse_version(text: &str) -> Option<&str> {
    let mut words = text.split_whitespace();
    (words.next()? == "bpf-linker").then_some(())?;
    words.next()
}

/// Makes sure the build will find bpf-linker [`VERSION`].
pub fn ensure() -> Result<()> {
    let local = local_bin().join("bpf-linker");
    if version_of(&local).as_deref() == Some(VERSION) {
        return Ok(());
    }
    let on_path = find_in_path("bpf-linker");
    if let Some(found) = &on_path
        && version_of(found).as_deref() == Some(VERSION)
    {
        return Ok(());
    }
    let root = workspace_root().join(LOCAL_ROOT);
    eprintln!(
        "xtask setup: installing bpf-linker {VERSION} into {} ({}; about a minute)",
        root.display(),
        match &on_path {
            Some(found) => format!(
                "the one on PATH, {}, is {} and is left alone",
                found.display(),
                version_of(found).unwrap_or_else(|| "of unknown version".into())
            ),
            None => "none is on PATH".to_string(),
        }
    );
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.arg("install").arg("--root").arg(&root).args([
        "bpf-linker",
        "--version",
        VERSION,
        "--locked",
    ]);
    super::status(cargo)?;
    if version_of(&local).as_deref() != Some(VERSION) {
        bail!(
            "cargo install finished but {} does not report version {VERSION}",
            local.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("bpf-linker 0.10.3\n"), Some("0.10.3"));
        assert_eq!(parse_version("something 0.10.3"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn local_tools_come_first_on_path() {
        let path = path_with_local_tools();
        let first = std::env::split_paths(&path).next().unwrap();
        assert_eq!(first, local_bin());
    }
}
