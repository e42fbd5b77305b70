//! Root integration tests of issue 14's attacks and of least privilege:
//! planted symlinks under `record -o`, the previous run kept, files handed
//! to the sudo user, the victim running unprivileged, and a record as
//! `nobody` holding only the documented capabilities. Without root they
//! print why and skip. (Kept apart from `host_root.rs` so the two can grow
//! independently; run one test at a time, `--test-threads=1`.)

use std::os::unix::fs::{MetadataExt as _, symlink};
use std::path::Path;
use std::process::Command;

mod common;

use common::{REAPER, reaper, require_root, temp_dir, text};

/// `nobody`/`nogroup` on Debian.
const NOBODY: u32 = 65534;
/// What `record --victim` needs (README "Least privilege").
const VICTIM_CAPS: &str = "+bpf,+perfmon,+dac_read_search,+syslog";

fn status_field(pid: u32, field: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
}

#[test]
fn record_replaces_planted_symlinks_and_keeps_the_previous_run() {
    if !require_root("record_replaces_planted_symlinks") {
        return;
    }
    let root = temp_dir("evil");
    let target = root.join("victimfile");
    std::fs::write(&target, "precious").unwrap();
    let out = root.join("evil");
    std::fs::create_dir(&out).unwrap();
    symlink(&target, out.join("run.json")).unwrap();
    symlink(&target, out.join("combined.svg")).unwrap();
    let record = |what: &str| {
        let result = reaper(&["record", "--victim", "128M", "-o", out.to_str().unwrap()]);
        assert_eq!(
            result.status.code(),
            Some(0),
            "{what}: {}",
            text(&result.stderr)
        );
        text(&result.stderr)
    };
    let first = record("first record");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    for name in ["run.json", "combined.svg"] {
        let meta = std::fs::symlink_metadata(out.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name} is still a symlink");
    }
    assert!(
        !first.contains("kept the previous run"),
        "a symlink is not a previous run: {first}"
    );
    let previous = std::fs::read(out.join("run.json")).unwrap();
    let second = record("second record");
    assert!(second.contains("run.json.old"), "{second}");
    assert_eq!(std::fs::read(out.join("run.json.old")).unwrap(), previous);
    assert_ne!(std::fs::read(out.join("run.json")).unwrap(), previous);
}

#[test]
fn root_refuses_an_output_directory_another_user_planted() {
    if !require_root("root_refuses_planted_directory") {
        return;
    }
    // The attack as it happens: a user creates the directory root
    // will write to and plants a symlink in it.
    let root = temp_dir("planted-dir");
    let target = root.join("victimfile");
    std::fs::write(&target, "precious").unwrap();
    let evil = root.join("evil");
    std::fs::create_dir(&evil).unwrap();
    symlink(&target, evil.join("combined.svg")).unwrap();
    std::os::unix::fs::lchown(evil.join("combined.svg"), Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(&evil, Some(NOBODY), Some(NOBODY)).unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report/6.18-mrelease.run.json");
    let result = reaper(&[
        "report",
        fixture.to_str().unwrap(),
        "-o",
        evil.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(2));
    let err = text(&result.stderr);
    assert!(
        err.contains("refusing to write") && err.contains(&format!("uid {NOBODY}")),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    // A symlink to a directory, planted by that user, is refused the same way.
    let link = root.join("link");
    symlink(&root, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    let result = reaper(&[
        "report",
        fixture.to_str().unwrap(),
        "-o",
        link.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(2));
    assert!(text(&result.stderr).contains("symlink owned by uid"));
}

#[test]
fn files_written_under_sudo_belong_to_the_invoking_user() {
    if !require_root("files_under_sudo") {
        return;
    }
    let root = temp_dir("sudo-owner");
    let out = root.join("new/out");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report/6.18-mrelease.run.json");
    let result = common::command()
        .args([
            "report",
            fixture.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(0), "{}", text(&result.stderr));
    for path in [root.join("new"), out.clone(), out.join("combined.svg")] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (NOBODY, NOBODY),
            "{}",
            path.display()
        );
    }
    // The scratch directory itself existed before: it stays root's.
    assert_eq!(std::fs::metadata(&root).unwrap().uid(), 0);
}

#[test]
fn the_synthetic_victim_runs_unprivileged() {
    if !require_root("victim_unprivileged") {
        return;
    }
    let mut child = common::command()
        .args(["record", "--victim", "256M", "--runs", "3"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let parent = child.id().to_string();
    let mut seen = None;
    while seen.is_none() && child.try_wait().unwrap().is_none() {
        seen = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|&pid| {
                status_field(pid, "Name:").as_deref() == Some("reaper-victim")
                    && status_field(pid, "PPid:").as_deref() == Some(parent.as_str())
                    && status_field(pid, "Uid:").is_some_and(|u| !u.starts_with("0\t"))
            })
            .map(|pid| (status_field(pid, "Uid:"), status_field(pid, "CapEff:")));
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    let (uid, caps) = seen.expect("no reaper-victim of this record ran as a non-root user");
    assert!(uid.unwrap().starts_with(&NOBODY.to_string()));
    assert_eq!(caps.as_deref(), Some("0000000000000000"));
}

#[test]
fn capabilities_only_record_as_nobody() {
    if !require_root("capabilities_only_record (needs root to drop to nobody)") {
        return;
    }
    let root = temp_dir("caps-only");
    std::os::unix::fs::chown(&root, Some(NOBODY), Some(NOBODY)).unwrap();
    // The test binary may live under a directory nobody cannot enter.
    let exe = root.join("reaper");
    std::fs::copy(REAPER, &exe).unwrap();
    let out = root.join("run");
    let result = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            &format!("--inh-caps={VICTIM_CAPS}"),
            &format!("--ambient-caps={VICTIM_CAPS}"),
            exe.to_str().unwrap(),
            "record",
            "--victim",
            "128M",
            "-o",
            out.to_str().unwrap(),
        ])
        .current_dir(&root)
        .output()
        .expect("setpriv (util-linux)");
    let err = text(&result.stderr);
    if err.contains("Invalid argument") && err.contains("ambient") {
        eprintln!("SKIP capabilities_only_record: this kernel has no ambient capabilities: {err}");
        return;
    }
    assert_eq!(result.status.code(), Some(0), "{err}");
    let run = common::load_run(&out.join("run.json"));
    let episode = &run.episodes[0];
    let victim_samples: u64 = episode
        .context(reaper_model::Context::VictimExit)
        .map_or(0, |c| c.stacks.iter().map(|s| s.samples).sum());
    assert!(victim_samples > 0, "no victim samples: {episode:#?}");
    assert_eq!(
        std::fs::metadata(out.join("run.json")).unwrap().uid(),
        NOBODY
    );

    // One capability fewer: named, exit 2.
    let fewer = "+bpf,+perfmon,+dac_read_search";
    let result = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            &format!("--inh-caps={fewer}"),
            &format!("--ambient-caps={fewer}"),
            exe.to_str().unwrap(),
            "record",
            "--victim",
            "128M",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    let err = text(&result.stderr);
    let kptr = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap_or_default();
    if kptr.trim() != "0" {
        assert!(err.contains("missing CAP_SYSLOG"), "{err}");
    }
}
