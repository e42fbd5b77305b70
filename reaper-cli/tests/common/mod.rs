//! Helpers shared by the integration tests: running the `reaper` binary,
//! scratch directories, and the root check that privileged tests skip on.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// The binary under test.
pub const REAPER: &str = env!("CARGO_BIN_EXE_reaper");

/// Whether the tests run as root (real uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Returns false, and says why, when a privileged test cannot run here.
pub fn require_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIP {test}: needs root to load eBPF programs (run `sudo -E cargo xtask test`)");
        return false;
    }
    true
}

/// `reaper` as a command whose unasked run saves (`record` without -o) go
/// to this test process's scratch runs directory, never the user's
/// `~/.local/state`.
pub fn command() -> Command {
    let mut cmd = Command::new(REAPER);
    cmd.env(
        "REAPER_RUNS_DIR",
        std::env::temp_dir().join(format!("reaper-test-runs-{}", std::process::id())),
    );
    cmd
}

/// Runs `reaper` with `args` and captures its output.
pub fn reaper(args: &[&str]) -> Output {
    command().args(args).output().expect("running reaper")
}

/// Lossy UTF-8 of a captured stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh, empty scratch directory unique to this process, removed when
/// dropped (a failing test's panic drops it too; set
/// `REAPER_KEEP_TEST_DIRS=1` to keep them for a look).
pub fn temp_dir(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("reaper-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// A scratch directory that removes itself ([`temp_dir`]).
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("REAPER_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A run file, decoded with the types reaper writes it with.
pub fn load_run(path: &std::path::Path) -> reaper_model::Run {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
