//! The open formats and CI integration end to end, on committed fixtures:
//! `report --format`, `diff -o`'s pprof pair, a frozen schema-version-1 run
//! file compared with a current one, and `gate` under GitHub Actions.

use std::path::{Path, PathBuf};

mod common;

use common::{reaper, temp_dir, text};

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn report_writes_each_open_format_and_prints_no_tables() {
    let run = data("function_timing/sid-x86_64.run.json");
    let dir = temp_dir("formats");
    for (format, file) in [
        ("pprof", "profile.pb.gz"),
        ("trace", "trace.json"),
        ("speedscope", "speedscope.json"),
    ] {
        let out = reaper(&["report", arg(&run), "--format", format, "-o", arg(&dir)]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        assert!(
            out.stdout.is_empty(),
            "{format}: printed {}",
            text(&out.stdout)
        );
        let written = std::fs::read(dir.join(file)).unwrap();
        assert!(!written.is_empty());
        if format == "pprof" {
            assert_eq!(written[..2], [0x1f, 0x8b], "pprof files are gzipped");
        } else {
            serde_json::from_slice::<serde_json::Value>(&written).unwrap();
        }
    }
    let out = reaper(&["report", arg(&run), "--format", "flamegraph"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unknown formats are usage errors"
    );
}

#[test]
fn a_frozen_version_1_run_diffs_against_a_current_one_and_writes_the_pprof_pair() {
    let old = data("schema/v1/vm-sid-x86_64-function-timing.run.json");
    let new = data("compare/vm-bookworm-x86_64/run.json");
    let dir = temp_dir("diff-pprof");
    let out = reaper(&["diff", arg(&old), arg(&new), "-o", arg(&dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kill → exit_mmap done"),
        "{}",
        text(&out.stdout)
    );
    for side in ["a.pb.gz", "b.pb.gz"] {
        assert!(
            std::fs::metadata(dir.join(side)).unwrap().len() > 0,
            "{side}"
        );
    }
    assert!(text(&out.stderr).contains("go tool pprof -diff_base"));
}

#[test]
fn gate_under_github_actions_appends_the_summary_and_prints_error_commands() {
    let dir = temp_dir("gate-github");
    let summary = dir.join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = common::command()
        .args([
            "gate",
            "--baseline",
            arg(&data("compare/set-baseline")),
            "--candidate",
            arg(&data("compare/set-regression-20")),
        ])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        format!("earlier step\n{stdout}")
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(errors.len(), 5, "{stderr}");
    assert!(
        errors[0].starts_with(
            "::error title=reaper gate%3A total regressed::total regressed: median 133.0 ms"
        ),
        "{}",
        errors[0]
    );
    // Outside Actions: no workflow commands.
    let out = common::command()
        .args([
            "gate",
            "--baseline",
            arg(&data("compare/set-baseline")),
            "--candidate",
            arg(&data("compare/set-regression-20")),
        ])
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("::error"));
}

/// `-o -` writes a single-file format to stdout and creates nothing; the
/// commands that write a directory of files refuse it with exit 2.
#[test]
fn dash_is_stdout_for_one_file_and_refused_for_a_directory() {
    let run = data("report/6.18-mrelease.run.json");
    let cwd = temp_dir("dash");
    let in_cwd = |args: &[&str]| {
        common::command()
            .args(args)
            .current_dir(&cwd)
            .output()
            .unwrap()
    };
    let out = in_cwd(&["report", arg(&run), "--format", "trace", "-o", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trace: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(trace["traceEvents"].is_array());
    let out = in_cwd(&["report", arg(&run), "--format", "speedscope", "-o", "-"]);
    let speedscope: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        speedscope["exporter"],
        format!("reaper@{}", env!("CARGO_PKG_VERSION")),
        "speedscope's exporter is name@version"
    );
    let out = in_cwd(&["report", arg(&run), "--format", "pprof", "-o", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout[..2], [0x1f, 0x8b], "gzipped pprof on stdout");
    for args in [
        vec!["report", arg(&run), "-o", "-"],
        vec!["diff", arg(&run), arg(&run), "-o", "-"],
        vec!["record", "--victim", "64M", "-o", "-"],
    ] {
        let out = in_cwd(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("-o -"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(
        !cwd.join("-").exists(),
        "no file or directory named '-' is created"
    );
}

/// A run without a sample (a watch that saw no teardown) still writes the
/// files asked for, and says they are empty and why.
#[test]
fn empty_exports_are_warned() {
    let mut run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("report/6.18-mrelease.run.json")).unwrap())
            .unwrap();
    run["episodes"] = serde_json::json!([]);
    run["watch"] = serde_json::json!({
        "watched_s": 30, "episodes_seen": 0, "episodes_evicted": 0, "plain_kills_ignored": 0
    });
    let dir = temp_dir("empty-exports");
    let path = dir.join("run.json");
    std::fs::write(&path, serde_json::to_vec(&run).unwrap()).unwrap();
    for format in ["pprof", "speedscope", "trace"] {
        let out = reaper(&["report", arg(&path), "--format", format, "-o", arg(&dir)]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("warning") && stderr.contains("saw no teardown"),
            "{format}: {stderr}"
        );
    }
    let out = reaper(&["report", arg(&path), "-o", arg(&dir.join("flames"))]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("no flame graph is drawn"),
        "{}",
        text(&out.stderr)
    );
}
