//! `reaper diff` and `reaper gate` end to end: the binary on the committed
//! fixtures in `tests/data/compare/` (exit codes, messages, files), and, as
//! root, on two real host recordings whose differential flame graphs must
//! parse as XML. Without root that part prints why and is skipped.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{is_root, reaper, temp_dir, text};

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/compare")
        .join(name)
        .display()
        .to_string()
}

fn gate(baseline: &str, candidate: &str, extra: &[&str]) -> Output {
    let (b, c) = (data(baseline), data(candidate));
    let mut args = vec!["gate", "--baseline", &b, "--candidate", &c];
    args.extend_from_slice(extra);
    reaper(&args)
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

/// Parses a whole XML document; returns the names of its elements.
fn xml_elements(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut names = Vec::new();
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return names,
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                names.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Ok(_) => {}
            Err(e) => panic!(
                "{}: not well-formed XML at {}: {e}",
                path.display(),
                reader.buffer_position()
            ),
        }
    }
}

#[test]
fn gate_fails_a_clear_20_percent_regression_and_names_it() {
    let dir = temp_dir("gate-regression");
    let (md, junit) = (dir.join("gate.md"), dir.join("gate.xml"));
    let out = gate(
        "set-baseline",
        "set-regression-20",
        &[
            "--markdown",
            md.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("## reaper gate: FAIL — 5 regressions"),
        "{stdout}"
    );
    assert!(stderr.contains("total regressed: median "), "{stderr}");
    assert!(
        stderr.contains("(one-sided Mann-Whitney U of 5 vs 5 run medians, Holm-adjusted)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("- Statistical unit: the run (one run file"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "- Noise floor: built-in (no calibration file): increases under 0.5 ms never fail"
        ),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&md).unwrap(), stdout);
    let elements = xml_elements(&junit);
    assert_eq!(elements.iter().filter(|e| *e == "testcase").count(), 5);
    assert_eq!(elements.iter().filter(|e| *e == "failure").count(), 5);
    assert_eq!(elements.iter().filter(|e| *e == "property").count(), 4);
}

/// `reaper gate --json` is what reaper-model's `GateReport` decodes (xtask's
/// gate-check reads it so): the regressions it names are the exit status's.
#[test]
fn gate_json_decodes_into_the_model() {
    for (candidate, exit, regressed) in [("set-regression-20", 1, true), ("set-drift", 0, false)] {
        let out = gate("set-baseline", candidate, &["--json"]);
        assert_eq!(code(&out), exit, "{}", text(&out.stderr));
        let report: reaper_model::output::gate::GateReport =
            serde_json::from_slice(&out.stdout).expect("gate --json decodes");
        assert_eq!(report.exit_code(), exit);
        assert_eq!(report.regressions().next().is_some(), regressed);
        assert_eq!(report.verdicts.len(), report.options.gated.len());
    }
}

#[test]
fn gate_passes_a_a_run_sets_that_drift() {
    for candidate in ["set-drift", "set-baseline"] {
        let out = gate("set-baseline", candidate, &[]);
        assert_eq!(code(&out), 0, "{candidate}: {}", text(&out.stdout));
        assert!(text(&out.stdout).starts_with("## reaper gate: PASS"));
    }
}

#[test]
fn gate_thresholds_come_from_the_spec() {
    // 25% allowed everywhere: the 20% regression passes.
    let spec = "total=25%,pte_lock_wait=25%,rmap=25%,kill_to_reap=25%,kill_to_exit_mmap=25%";
    let out = gate(
        "set-baseline",
        "set-regression-20",
        &["--max-regression", spec],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    // Only the total gated, and in ms: still a regression.
    let spec = "total=10ms,pte_lock_wait=off,rmap=off,kill_to_reap=off,kill_to_exit_mmap=off";
    let out = gate(
        "set-baseline",
        "set-regression-20",
        &["--max-regression", spec, "--json"],
    );
    assert_eq!(code(&out), 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdicts = json["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0]["metric"], "total");
    assert_eq!(verdicts[0]["status"]["status"], "regressed");
}

#[test]
fn gate_usage_errors_exit_2() {
    let out = gate(
        "baseline",
        "regression-20",
        &["--max-regression", "total=5%,speed=1%"],
    );
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("unknown metric \"speed\""),
        "{}",
        text(&out.stderr)
    );
    let out = gate(
        "baseline",
        "regression-20",
        &["--max-regression", "total=5"],
    );
    assert_eq!(code(&out), 2);
    let out = gate("baseline", "regression-20", &["--min-runs", "2"]);
    assert_eq!(code(&out), 2);
    // 3 against 3 runs can never reach p < 0.05 over five metrics.
    let out = gate("set-baseline", "set-regression-20", &["--min-runs", "3"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("--min-runs 3 is too few"),
        "{}",
        text(&out.stderr)
    );
    let help = reaper(&["gate", "--help"]);
    assert!(text(&help.stdout).contains("kill_to_reap"));
    assert!(text(&help.stdout).contains("Default: total=5%"));
}

#[test]
fn gate_refuses_too_few_runs_and_incomparable_runs_with_exit_2() {
    let out = gate("set-baseline", "too-few", &[]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains(
            "too few runs: the candidate has 1 run with episodes the gated metrics may use, but separating a change from run-to-run drift needs 5 runs per side"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = gate("baseline", "schema-2", &[]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("schema version 1 but"),
        "{}",
        text(&out.stderr)
    );
    let out = gate("baseline", "size-2g", &[]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("victim size 1G"),
        "{}",
        text(&out.stderr)
    );
    let out = gate("baseline", "no-such-dir", &[]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("candidate:"),
        "{}",
        text(&out.stderr)
    );
}

/// `reaper gate` with `GITHUB_STEP_SUMMARY` set (as under Actions).
fn gate_in_actions(summary: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_reaper"))
        .arg("gate")
        .args(args)
        .env("GITHUB_STEP_SUMMARY", summary)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("running reaper")
}

/// Issue 22: a refused gate (exit 2) wrote no job summary, no `::error`
/// line and no JUnit file, so the CI job went red with an empty summary
/// page. Every exit now speaks.
#[test]
fn every_gate_exit_writes_the_summary_and_2_and_1_an_error_line() {
    let dir = temp_dir("gate-actions");
    let summary = dir.join("summary.md");
    let junit = dir.join("gate.xml");
    let (b, c) = (data("set-baseline"), data("too-few"));
    let j = junit.to_str().unwrap();
    let out = gate_in_actions(
        &summary,
        &["--baseline", &b, "--candidate", &c, "--junit", j],
    );
    assert_eq!(code(&out), 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "::error title=reaper gate%3A refused (exit 2)::too few runs: the candidate has 1 run"
        ),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.starts_with("## reaper gate: REFUSED (exit 2)"),
        "{written}"
    );
    assert!(xml_elements(&junit).iter().any(|e| e == "error"));
    // An unreadable side and a bad flag are refusals too.
    let out = gate_in_actions(
        &summary,
        &["--baseline", &b, "--candidate", "no-such-dir", "--junit", j],
    );
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("::error title=reaper gate%3A refused"));
    let out = gate_in_actions(
        &summary,
        &["--baseline", &b, "--junit", j, "--no-such-flag"],
    );
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains(
            "::error title=reaper gate%3A refused (exit 2)::unexpected argument '--no-such-flag'"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("--no-such-flag")
    );
    // Exit 1: the summary and one ::error per regressed metric.
    let c = data("set-regression-20");
    let before = std::fs::read_to_string(&summary).unwrap().len();
    let out = gate_in_actions(
        &summary,
        &["--baseline", &b, "--candidate", &c, "--junit", j],
    );
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr)
            .matches("::error title=reaper gate%3A ")
            .count(),
        5
    );
    let after = std::fs::read_to_string(&summary).unwrap();
    assert!(after[before..].starts_with("## reaper gate: FAIL — 5 regressions"));
    // Exit 0: the summary, no ::error.
    let out = gate_in_actions(
        &summary,
        &["--baseline", &b, "--candidate", &data("set-drift")],
    );
    assert_eq!(code(&out), 0);
    assert!(!text(&out.stderr).contains("::error"));
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .contains("## reaper gate: PASS")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` copies of a fixture's run file under `dir/name/copy-N/`.
fn copies(dir: &Path, name: &str, n: usize) -> PathBuf {
    let side = dir.join(name);
    for i in 0..n {
        let to = side.join(format!("copy-{i}"));
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(Path::new(&data(name)).join("run.json"), to.join("run.json")).unwrap();
    }
    side
}

/// Issue 22's "Done when" on the real 6.1 pair: five copies a side flag
/// forward (the candidate) against reverse (the baseline) with exit 1, a
/// step summary and `::error` lines; one run a side exits 2 with a step
/// summary, an `::error` line and a JUnit file.
#[test]
fn gate_on_the_real_6_1_pair_speaks_in_ci() {
    let dir = temp_dir("gate-6.1-pair");
    let summary = dir.join("summary.md");
    let junit = dir.join("gate.xml");
    let (base5, cand5) = (
        copies(&dir, "vm-6.1-reverse", 5),
        copies(&dir.join("5"), "vm-6.1-forward", 5),
    );
    let (b, c, j) = (
        base5.to_str().unwrap(),
        cand5.to_str().unwrap(),
        junit.to_str().unwrap(),
    );
    let out = gate_in_actions(&summary, &["--baseline", b, "--candidate", c, "--junit", j]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 1, "{stderr}");
    assert!(
        stderr.contains("::error title=reaper gate%3A pte_lock_wait regressed::"),
        "{stderr}"
    );
    assert!(
        stderr.contains("::warning title=reaper gate%3A recording::blocked design"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.starts_with("## reaper gate: FAIL"), "{written}");
    assert!(xml_elements(&junit).iter().any(|e| e == "failure"));
    std::fs::remove_file(&summary).unwrap();
    std::fs::remove_file(&junit).unwrap();
    let (base1, cand1) = (data("vm-6.1-reverse"), data("vm-6.1-forward"));
    let out = gate_in_actions(
        &summary,
        &["--baseline", &base1, "--candidate", &cand1, "--junit", j],
    );
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(
        stderr.contains("::error title=reaper gate%3A refused (exit 2)::too few runs"),
        "{stderr}"
    );
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .starts_with("## reaper gate: REFUSED")
    );
    assert!(xml_elements(&junit).iter().any(|e| e == "error"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gate_plans_the_runs_a_change_needs() {
    let out = reaper(&["gate", "--plan", "20", "--baseline", &data("set-baseline")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "## reaper gate --plan: runs per side to flag a +20% change with 90% power"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("| total | 133.0 | "), "{stdout}");
    let out = reaper(&["gate", "--plan", "20"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--plan needs the noise"));
}

#[test]
fn gate_calibrates_from_a_a_sets_and_then_gates_one_run_per_side() {
    let dir = temp_dir("gate-calibration");
    let noise = dir.join("noise.json");
    let (a, b) = (data("set-baseline"), data("set-drift"));
    let out = reaper(&["gate", "--calibrate", &a, &b, "-o", noise.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("calibration from 2 A/A run sets (10 runs"),
        "{}",
        text(&out.stderr)
    );
    let cal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&noise).unwrap()).unwrap();
    assert_eq!(cal["metrics"][0]["metric"], "total");
    let n = noise.to_str().unwrap();
    let out = gate("baseline", "regression-20", &["--calibration", n]);
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("- Noise floor: calibration file "),
        "{}",
        text(&out.stdout)
    );
    let out = gate("baseline", "noisy-equal", &["--calibration", n]);
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    let out = gate(
        "baseline",
        "regression-20",
        &["--calibration", "no-such.json"],
    );
    assert_eq!(code(&out), 2);
}

#[test]
fn diff_prints_both_sides_and_writes_differential_flame_graphs() {
    let dir = temp_dir("diff-fixtures");
    let out = reaper(&[
        "diff",
        &data("baseline"),
        &data("kernel-6.1"),
        "--label-a",
        "6.18",
        "--label-b",
        "6.1",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("| Category"), "{stdout}");
    assert!(stdout.contains("| A: 6.18"), "{stdout}");
    assert!(stdout.contains("Differences: kernel: 6.18.0-1-amd64 → 6.1.0-40-amd64"));
    assert!(stdout.contains("not measured [1]"));
    // One run per side: no significance is claimed between episodes.
    assert!(stdout.contains("n/a (runs<4)"), "{stdout}");
    for context in ["victim_exit", "mrelease_caller"] {
        for way in ["a-vs-b", "b-vs-a"] {
            let svg = dir.join(format!("{context}.{way}.diff.svg"));
            assert!(
                xml_elements(&svg).iter().any(|e| e == "svg"),
                "{}",
                svg.display()
            );
        }
    }
    let out = reaper(&["diff", &data("baseline"), &data("regression-20"), "--json"]);
    assert_eq!(code(&out), 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["metrics"][0]["metric"], "total");
    // Five runs per side, completely separated: significant at the run level.
    let out = reaper(&["diff", &data("set-baseline"), &data("set-regression-20")]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).contains("significant: B slower (p=0.008)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn diff_refuses_incomparable_runs_unless_forced() {
    let out = reaper(&["diff", &data("baseline"), &data("schema-2")]);
    assert_eq!(code(&out), 2);
    let out = reaper(&["diff", &data("baseline"), &data("size-2g")]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("pass --force"),
        "{}",
        text(&out.stderr)
    );
    let out = reaper(&["diff", &data("baseline"), &data("size-2g"), "--force"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains("Note: --force: victim sizes differ (1G vs 2G)"));
}

#[test]
fn diff_of_two_real_host_recordings_renders_parseable_svgs() {
    if !is_root() {
        eprintln!(
            "SKIP diff_of_two_real_host_recordings: needs root to record (run `sudo -E cargo xtask test`)"
        );
        return;
    }
    let dir = temp_dir("host");
    for side in ["a", "b"] {
        let out_dir = dir.join(side);
        let out = reaper(&[
            "record",
            "--victim",
            "256M",
            "--runs",
            "2",
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "record {side} failed: {}\n{}",
            text(&out.stderr),
            text(&out.stdout)
        );
    }
    let flames = dir.join("diff");
    let out = reaper(&[
        "diff",
        dir.join("a").to_str().unwrap(),
        dir.join("b").to_str().unwrap(),
        "-o",
        flames.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Total running time"), "{stdout}");
    assert!(
        stdout.contains("n/a (runs<4)"),
        "one run per side: no significance claimed\n{stdout}"
    );
    let svgs: Vec<PathBuf> = std::fs::read_dir(&flames)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    assert!(
        svgs.iter()
            .any(|p| p.ends_with("victim_exit.a-vs-b.diff.svg")),
        "{svgs:?}"
    );
    assert!(svgs.len() >= 2, "{svgs:?}");
    for svg in &svgs {
        let elements = xml_elements(svg);
        assert!(elements.iter().any(|e| e == "svg"), "{}", svg.display());
    }
    let victim = std::fs::read_to_string(flames.join("victim_exit.a-vs-b.diff.svg")).unwrap();
    assert!(
        victim.contains("exit_mmap"),
        "the victim's diff has no exit_mmap frame"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
