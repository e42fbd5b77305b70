//! Run files and output directories as an attacker shapes them (issue 14):
//! path traversal through a context name, symlinks planted in the output
//! directory, oversized and non-regular run files. No root needed; the
//! record-side twins are in `host_root.rs`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

mod common;

use common::{reaper, temp_dir, text};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/report")
        .join(name)
}

/// A copy of a real run whose victim context is renamed to `context`.
fn run_with_context(dir: &Path, context: &str) -> PathBuf {
    let mut run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("6.18-mrelease.run.json")).unwrap()).unwrap();
    for episode in run["episodes"].as_array_mut().unwrap() {
        for c in episode["contexts"].as_array_mut().unwrap() {
            if c["context"] == "victim_exit" {
                c["context"] = context.into();
            }
        }
    }
    let path = dir.join("run.json");
    std::fs::write(&path, serde_json::to_vec(&run).unwrap()).unwrap();
    path
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn traversal_context_name_is_refused_and_nothing_is_written_outside() {
    let root = temp_dir("traversal");
    let runs = root.join("a/b");
    std::fs::create_dir_all(&runs).unwrap();
    let run = run_with_context(&runs, "../../trav-pwned");
    let out = runs.join("out");
    let result = reaper(&["report", run.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2), "{}", text(&result.stderr));
    let err = text(&result.stderr);
    assert!(
        err.contains("not a reaper run file") && err.contains("../../trav-pwned"),
        "{err}"
    );
    assert!(result.stdout.is_empty());
    assert_eq!(entries(&root), ["a"]);
    assert_eq!(entries(&runs), ["run.json"], "nothing may be written");
    // diff and gate read the same loader.
    let b = root.join("b.json");
    std::fs::copy(fixture("6.18-mrelease.run.json"), &b).unwrap();
    for args in [
        vec!["diff", run.to_str().unwrap(), b.to_str().unwrap()],
        vec![
            "gate",
            "--baseline",
            b.to_str().unwrap(),
            "--candidate",
            run.to_str().unwrap(),
        ],
    ] {
        let result = reaper(&args);
        assert_eq!(result.status.code(), Some(2), "{args:?}");
        assert!(text(&result.stderr).contains("not a reaper run file"));
    }
}

#[test]
fn symlinked_svgs_in_the_output_directory_are_replaced_not_followed() {
    let root = temp_dir("symlinked-svg");
    let target = root.join("victimfile");
    std::fs::write(&target, "precious").unwrap();
    let out = root.join("out");
    std::fs::create_dir(&out).unwrap();
    for name in ["combined.svg", "victim_exit.svg", "combined.folded"] {
        symlink(&target, out.join(name)).unwrap();
    }
    let result = reaper(&[
        "report",
        fixture("6.18-mrelease.run.json").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stderr));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    for name in ["combined.svg", "victim_exit.svg", "combined.folded"] {
        let meta = std::fs::symlink_metadata(out.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} is still a symlink");
    }
    assert!(
        entries(&out).iter().all(|n| !n.ends_with(".tmp")),
        "a temporary file was left: {:?}",
        entries(&out)
    );
}

#[test]
fn report_prints_first_and_writes_files_only_with_o() {
    let root = temp_dir("report-no-files");
    let run = root.join("run.json");
    std::fs::copy(fixture("6.18-mrelease.run.json"), &run).unwrap();
    let result = reaper(&["report", run.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stderr));
    assert!(text(&result.stdout).contains("victim exit"));
    assert_eq!(entries(&root), ["run.json"]);
}

#[test]
fn world_writable_output_directory_is_refused_with_exit_2() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = temp_dir("world-writable");
    let out = root.join("open");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let result = reaper(&[
        "report",
        fixture("6.18-mrelease.run.json").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(2));
    let err = text(&result.stderr);
    assert!(
        err.contains("refusing to write") && err.contains("sticky"),
        "{err}"
    );
    assert!(entries(&out).is_empty());
}

#[test]
fn oversized_and_non_regular_run_files_are_refused_before_reading() {
    let root = temp_dir("oversized");
    let big = root.join("run.json");
    // Sparse: no disk space is used, but the size is far past any real run.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let result = reaper(&["report", big.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    let err = text(&result.stderr);
    assert!(err.contains("limit 268435456 bytes"), "{err}");

    let fifo = root.join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates a node.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
    let result = reaper(&["report", fifo.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(2));
    let err = text(&result.stderr);
    assert!(err.contains("a FIFO, not a regular file"), "{err}");
    // Nothing was read from it, so nothing is said about its contents.
    assert!(!err.contains("JSON"), "{err}");
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}
