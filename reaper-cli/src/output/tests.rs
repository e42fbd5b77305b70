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
    // Kept by a link: the run is still complete under its own name until
    // the next one is renamed over it.
    assert_eq!(entries(scratch.path()), ["run.json", "run.json.old"]);
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("run.json")).unwrap(),
        "first"
    );
    dir.write("run.json", b"second").unwrap();
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("run.json.old")).unwrap(),
        "first"
    );
    std::fs::remove_file(scratch.path().join("run.json")).unwrap();
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

#[test]
fn a_directory_planted_under_a_name_to_write_is_found_before_recording() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = OutputDir::create(scratch.path()).unwrap();
    let names = ["run.json".to_owned(), "run.json.old".to_owned()];
    dir.check_writable(&names).unwrap();
    std::fs::create_dir(scratch.path().join("run.json.old")).unwrap();
    let err = dir.check_writable(&names).unwrap_err();
    assert!(
        matches!(err, OutputError::Blocked { .. }) && err.is_usage(),
        "{err}"
    );
    assert_eq!(
        entries(scratch.path()),
        ["run.json.old"],
        "the probe left nothing"
    );
}

#[test]
fn an_unreplaceable_old_name_keeps_the_previous_run_under_a_unique_name() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = OutputDir::create(scratch.path()).unwrap();
    dir.write("run.json", b"first").unwrap();
    std::fs::create_dir(scratch.path().join("run.json.old")).unwrap();
    std::fs::write(scratch.path().join("run.json.old/x"), "").unwrap();
    let kept = dir
        .keep_previous("run.json", "run.json.old")
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "first");
    assert!(
        kept.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("run.json.old.")
    );
}

#[test]
fn a_regular_file_is_not_an_output_directory_and_a_directory_not_a_file() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = OutputDir::create(&file).unwrap_err();
    assert!(
        matches!(err, OutputError::NotADirectory { .. }) && err.is_usage(),
        "{err}"
    );
    let err = write_file(scratch.path(), b"x").unwrap_err();
    assert!(err.is_usage(), "{err}");
    std::fs::create_dir(scratch.path().join("d")).unwrap();
    let err = write_file(&scratch.path().join("d"), b"x").unwrap_err();
    assert!(matches!(err, OutputError::IsADirectory { .. }), "{err}");
}

#[test]
fn appends_go_to_regular_files_only_and_never_through_symlinks() {
    let scratch = tempfile::tempdir().unwrap();
    let summary = scratch.path().join("summary.md");
    append_file(&summary, b"one\n").unwrap();
    append_file(&summary, b"two\n").unwrap();
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), "one\ntwo\n");
    let victim = scratch.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let link = scratch.path().join("link.md");
    symlink(&victim, &link).unwrap();
    assert!(append_file(&link, b"x").is_err());
    assert!(append_file(Path::new("/dev/null"), b"x").is_err());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_second_recording_into_the_same_directory_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let first = OutputDir::create(scratch.path()).unwrap();
    first.lock().unwrap();
    let second = OutputDir::create(scratch.path()).unwrap();
    let err = second.lock().unwrap_err();
    assert!(
        matches!(err, OutputError::Locked { holder: Some(pid), .. } if pid == std::process::id()),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id()))
    );
    drop(first);
    second.lock().unwrap();
}

#[test]
fn a_set_of_files_is_checked_before_its_first_file_is_written() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = OutputDir::create(scratch.path()).unwrap();
    std::fs::create_dir(scratch.path().join("b.svg")).unwrap();
    let files = [
        ("a.svg".to_owned(), b"a".to_vec()),
        ("b.svg".to_owned(), b"b".to_vec()),
    ];
    let err = dir.write_all(&files).unwrap_err();
    assert!(matches!(err, OutputError::Blocked { .. }), "{err}");
    assert_eq!(entries(scratch.path()), ["b.svg"], "nothing was written");
}
