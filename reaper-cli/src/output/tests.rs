//! The writer's guarantees, each pinned by the attack or failure it stops.

use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt as _, symlink};

use super::*;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn symlink_at_the_final_name_is_replaced_not_followed() {
    let scratch = tempfile::tempdir().unwrap();
    let victim = scratch.path().join("victimfile");
    std::fs::write(&victim, "precious").unwrap();
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    symlink(&victim, out.join("run.json")).unwrap();
    let dir = OutputDir::create(&out).unwrap();
    dir.write("run.json", b"{}").unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(out.join("run.json")).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(std::fs::read_to_string(out.join("run.json")).unwrap(), "{}");
}

#[test]
fn crash_mid_write_keeps_the_previous_file_and_leaves_no_temporary() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = OutputDir::create(scratch.path()).unwrap();
    dir.write("run.json", b"the good run").unwrap();
    let err = dir
        .write_with("run.json", |f| {
            f.write_all(b"{\"half\": ")?;
            Err(std::io::Error::other("disk full (injected)"))
        })
        .unwrap_err();
    assert!(matches!(err, OutputError::Io { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("run.json")).unwrap(),
        "the good run"
    );
    assert_eq!(entries(scratch.path()), ["run.json"]);
}

#[test]
fn names_that_are_not_one_component_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = OutputDir::create(&scratch.path().join("out")).unwrap();
    for name in ["../../trav-pwned.svg", "a/b", "..", ".", "", "x\0y"] {
        assert!(
            matches!(dir.write(name, b"x"), Err(OutputError::BadName { .. })),
            "{name:?}"
        );
    }
    assert_eq!(entries(scratch.path()), ["out"]);
}

#[test]
fn previous_run_is_kept_as_old_and_symlinks_are_not_kept() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = OutputDir::create(scratch.path()).unwrap();
    assert_eq!(dir.keep_previous("run.json", "run.json.old").unwrap(), None);
    dir.write("run.json", b"first").unwrap();
    let kept = dir.keep_previous("run.json", "run.json.old").unwrap();
    assert_eq!(kept, Some(scratch.path().join("run.json.old")));
    assert_eq!(entries(scratch.path()), ["run.json.old"]);
    symlink("/etc/passwd", scratch.path().join("run.json")).unwrap();
    assert_eq!(dir.keep_previous("run.json", "run.json.old").unwrap(), None);
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("run.json.old")).unwrap(),
        "first"
    );
}

#[test]
fn world_writable_directory_without_sticky_bit_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let open = scratch.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = OutputDir::create(&open).unwrap_err();
    assert!(
        matches!(err, OutputError::UnsafeDir { .. }) && err.to_string().contains("sticky"),
        "{err}"
    );
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    OutputDir::create(&open).unwrap();
}

#[test]
fn missing_parents_are_created() {
    let scratch = tempfile::tempdir().unwrap();
    let deep = scratch.path().join("a/b/c");
    let dir = OutputDir::create(&deep).unwrap();
    dir.write("x.svg", b"<svg/>").unwrap();
    assert!(deep.join("x.svg").is_file());
}

#[test]
fn write_file_writes_beside_a_relative_or_absolute_path() {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("gate.md");
    write_file(&path, b"# gate").unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap(), "# gate");
}
