//! Issue 23's attacks as property tests, one per item, without root (the
//! root-only twins, with files of another user and real recordings, are in
//! `host_root_safety.rs`):
//! 1. `gate --calibrate … -o FILE` over anything planted at FILE;
//! 2. an output path with an unsafe directory or a link anywhere on it;
//! 3. (bounded reading: `bounded_reading.rs`, which counts allocations);
//! 4. run-file text shaped to drive a terminal, a CI log, a job summary or
//!    a folded file;
//! 5. non-regular run and calibration files;
//! 6. two recorders locking one directory;
//! 7. a planted `run.json.old` and a crash between keeping and writing.
//!
//! `REAPER_FUZZ_CASES=N` runs N cases per property (default 16).

use std::io::Read as _;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

use reaper::output::{OutputDir, OutputError};

mod common;

use common::{REAPER, text};

fn cases() -> u32 {
    std::env::var("REAPER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs reaper, killing it if it has not finished after a minute (a hang
/// on a FIFO is the failure, not slowness: no timing is asserted).
fn reaper_within(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(REAPER);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("reaper {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// What an attacker plants under a name reaper will write.
#[derive(Clone, Copy, Debug)]
enum Plant {
    Nothing,
    SymlinkToFile,
    SymlinkToDir,
    Dangling,
    HardLink,
    Fifo,
    Regular,
}

fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        Just(Plant::Nothing),
        Just(Plant::SymlinkToFile),
        Just(Plant::SymlinkToDir),
        Just(Plant::Dangling),
        Just(Plant::HardLink),
        Just(Plant::Fifo),
        Just(Plant::Regular),
    ]
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// Plants `what` at `at`; the file and directory it may point to.
fn do_plant(what: Plant, at: &Path, victim: &Path, victim_dir: &Path) {
    match what {
        Plant::Nothing => {}
        Plant::SymlinkToFile => symlink(victim, at).unwrap(),
        Plant::SymlinkToDir => symlink(victim_dir, at).unwrap(),
        Plant::Dangling => symlink(victim_dir.join("new"), at).unwrap(),
        Plant::HardLink => std::fs::hard_link(victim, at).unwrap(),
        Plant::Fifo => mkfifo(at),
        Plant::Regular => std::fs::write(at, "old").unwrap(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Item 1: whatever is planted at the calibration file's name, the file
    /// it points to is untouched and the name ends up a regular file with
    /// the calibration.
    #[test]
    fn calibration_output_replaces_what_is_planted_never_follows_it(what in plant()) {
        let dir = scratch();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let victim_dir = dir.path().join("victim-dir");
        std::fs::create_dir(&victim_dir).unwrap();
        let out = dir.path().join("shared");
        std::fs::create_dir(&out).unwrap();
        let cal = out.join("cal.json");
        do_plant(what, &cal, &victim, &victim_dir);
        let result = reaper_within(
            &["gate", "--calibrate", arg(&data("compare/set-baseline")), "-o", arg(&cal)],
            &[],
        );
        prop_assert_eq!(result.status.code(), Some(0), "{}", text(&result.stderr));
        prop_assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        prop_assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);
        let meta = std::fs::symlink_metadata(&cal).unwrap();
        prop_assert!(meta.file_type().is_file());
        let written: Value = serde_json::from_slice(&std::fs::read(&cal).unwrap()).unwrap();
        prop_assert_eq!(&written["version"], 1);
    }

    /// Item 2: a directory others may write to anywhere on the output path
    /// (not only the last component) refuses the whole path with exit 2,
    /// and nothing is created below it.
    #[test]
    fn an_open_directory_anywhere_on_the_path_is_refused(
        depth in 1usize..5,
        open_at in 0usize..5,
        through_link in any::<bool>(),
    ) {
        let dir = scratch();
        let open_at = open_at % depth;
        let mut path = dir.path().to_owned();
        let mut open_dir = None;
        for level in 0..depth {
            path.push(format!("d{level}"));
            std::fs::create_dir(&path).unwrap();
            if level == open_at {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
                open_dir = Some(path.clone());
            }
        }
        let target = if through_link {
            symlink(&path, dir.path().join("link")).unwrap();
            dir.path().join("link/out")
        } else {
            path.join("out")
        };
        let result = reaper_within(
            &["report", arg(&data("report/6.18-mrelease.run.json")), "-o", arg(&target)],
            &[],
        );
        prop_assert_eq!(result.status.code(), Some(2), "{}", text(&result.stderr));
        let stderr = text(&result.stderr);
        prop_assert!(stderr.contains(arg(open_dir.as_ref().unwrap())), "{}", stderr);
        prop_assert!(!path.join("out").exists(), "created under a refused directory");
    }

    /// Item 4: text planted in a run file (kernel release, arch, scenario,
    /// comms, frame names) reaches no terminal, CI log, job summary or
    /// folded file as anything but inert text.
    #[test]
    fn run_file_text_is_data_in_every_output(payload in hostile_text()) {
        exercise_text(&payload);
    }

    /// Item 5: whatever non-regular thing stands where a run or
    /// calibration file is read, it is refused with exit 2, never opened
    /// for reading (no hang on a FIFO, no device read).
    #[test]
    fn non_regular_inputs_are_refused_unopened(what in non_regular()) {
        let dir = scratch();
        let run_dir = dir.path().join("runs");
        std::fs::create_dir(&run_dir).unwrap();
        let file = run_dir.join("run.json");
        make_non_regular(what, &file, dir.path());
        let fixture = data("compare/baseline/run.json");
        for args in [
            vec!["report", arg(&run_dir)],
            vec!["report", arg(&file)],
            vec!["diff", arg(&fixture), arg(&file)],
            vec!["gate", "--baseline", arg(&fixture), "--candidate", arg(&fixture),
                 "--calibration", arg(&file)],
        ] {
            let result = reaper_within(&args, &[]);
            prop_assert_eq!(result.status.code(), Some(2), "{:?}: {}", args, text(&result.stderr));
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum NonRegular {
    Fifo,
    LinkToZero,
    LinkToFifo,
    Directory,
    LinkToNull,
}

fn non_regular() -> impl Strategy<Value = NonRegular> {
    prop_oneof![
        Just(NonRegular::Fifo),
        Just(NonRegular::LinkToZero),
        Just(NonRegular::LinkToFifo),
        Just(NonRegular::Directory),
        Just(NonRegular::LinkToNull),
    ]
}

fn make_non_regular(what: NonRegular, at: &Path, scratch: &Path) {
    match what {
        NonRegular::Fifo => mkfifo(at),
        NonRegular::LinkToZero => symlink("/dev/zero", at).unwrap(),
        NonRegular::LinkToNull => symlink("/dev/null", at).unwrap(),
        NonRegular::LinkToFifo => {
            let fifo = scratch.join("fifo");
            mkfifo(&fifo);
            symlink(&fifo, at).unwrap();
        }
        NonRegular::Directory => std::fs::create_dir(at).unwrap(),
    }
}

/// Strings that try every trick: controls, workflow commands after a
/// newline or a carriage return, markdown and HTML, folded separators.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n::add-mask::secret\n".to_owned()),
        Just("\r::error file=x::fake".to_owned()),
        Just("\n  ::stop-commands::tok".to_owned()),
        Just("::set-output name=x::y".to_owned()),
        Just("x ##[error]old".to_owned()),
        Just("\u{1b}[2J\u{1b}]0;title\u{7}".to_owned()),
        Just("\u{8}\u{8}\u{9b}31m".to_owned()),
        Just("<!-- hide".to_owned()),
        Just("![i](http://e/x.png)".to_owned()),
        Just("[click](http://e)".to_owned()),
        Just("| fake | cell |".to_owned()),
        Just("\n# Heading".to_owned()),
        Just("a;b;c 999".to_owned()),
        Just("\u{202e}txt.exe".to_owned()),
        "\\PC{0,8}",
    ];
    prop::collection::vec(piece, 1..4).prop_map(|p| p.concat())
}

/// Characters that must never reach a terminal or CI log from data.
fn has_hazard(s: &str) -> bool {
    s.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

/// No line the GitHub runner would run, except reaper's own `::error`
/// annotations (written by ci/github.rs to stderr).
fn command_lines(s: &str) -> Vec<&str> {
    s.split(['\n', '\r'])
        .filter(|l| {
            let t = l.trim_start();
            (t.starts_with("::") && !t.starts_with("::error title=reaper gate: "))
                || l.contains("##[")
        })
        .collect()
}

fn check_stream(what: &str, s: &str) {
    assert!(
        !has_hazard(s),
        "{what}: a control character got through:\n{s:?}"
    );
    let commands = command_lines(s);
    assert!(
        commands.is_empty(),
        "{what}: workflow commands: {commands:?}"
    );
}

/// A real run with `payload` in every free-text field a recording copies
/// from the system or a command line.
fn poisoned_run(payload: &str) -> Value {
    let mut run: Value =
        serde_json::from_slice(&std::fs::read(data("compare/baseline/run.json")).unwrap()).unwrap();
    run["host"]["kernel_release"] = format!("6.18 {payload}").into();
    run["host"]["arch"] = format!("x86_64{payload}").into();
    run["recording"]["scenario"]["description"] = format!("victim {payload}").into();
    for episode in run["episodes"].as_array_mut().unwrap() {
        episode["victim"]["comm"] = payload.into();
        episode["trigger"] = payload.into();
        for entry in episode["timeline"].as_array_mut().unwrap() {
            entry["comm"] = payload.into();
        }
        for context in episode["contexts"].as_array_mut().unwrap() {
            for stack in context["stacks"].as_array_mut().unwrap() {
                if let Some(frames) = stack["frames"].as_array_mut()
                    && let Some(last) = frames.last_mut()
                {
                    *last = format!("leaf{payload}").into();
                }
            }
        }
    }
    run
}

fn exercise_text(payload: &str) {
    let dir = scratch();
    let run = poisoned_run(payload);
    let a = dir.path().join("a.json");
    std::fs::write(&a, serde_json::to_vec_pretty(&run).unwrap()).unwrap();
    let b = data("compare/baseline/run.json");
    // Gate sides of 5 runs each (the fewest the default gate accepts).
    let (set_a, set_b) = (dir.path().join("set-a"), dir.path().join("set-b"));
    for i in 0..5 {
        for (set, from) in [(&set_a, &a), (&set_b, &b)] {
            std::fs::create_dir_all(set.join(format!("run-{i}"))).unwrap();
            std::fs::copy(from, set.join(format!("run-{i}/run.json"))).unwrap();
        }
    }
    let summary = dir.path().join("summary.md");
    let markdown = dir.path().join("gate.md");
    let out = dir.path().join("out");
    let runs: Vec<Vec<&str>> = vec![
        vec!["report", arg(&a)],
        vec!["report", arg(&a), "--json"],
        vec!["report", arg(&a), "-o", arg(&out)],
        vec!["diff", arg(&a), arg(&b)],
        vec![
            "gate",
            "--baseline",
            arg(&set_b),
            "--candidate",
            arg(&set_a),
            "--markdown",
            arg(&markdown),
        ],
    ];
    for args in runs {
        let result = reaper_within(
            &args,
            &[
                ("GITHUB_STEP_SUMMARY", &summary),
                ("GITHUB_ACTIONS", Path::new("true")),
            ],
        );
        let code = result.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "{args:?}: {code:?} {}",
            text(&result.stderr)
        );
        check_stream(&format!("{args:?} stdout"), &text(&result.stdout));
        check_stream(&format!("{args:?} stderr"), &text(&result.stderr));
        if args.contains(&"--json") && code == Some(0) {
            // Defused text is still valid JSON.
            serde_json::from_slice::<Value>(&result.stdout).unwrap();
        }
    }
    for md in [&summary, &markdown] {
        let Ok(text) = std::fs::read_to_string(md) else {
            continue;
        };
        check_stream(&md.display().to_string(), &text);
        for bad in ["<!--", "![i](", "[click](", "| fake |"] {
            assert!(
                !text.contains(bad),
                "{}: {bad:?} is live markdown:\n{text}",
                md.display()
            );
        }
        for line in text.lines() {
            assert!(
                !line.starts_with('#') || line.starts_with("## reaper gate"),
                "{}: a heading from data: {line}",
                md.display()
            );
        }
    }
    for entry in std::fs::read_dir(&out).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "folded") {
            check_folded(&path);
        }
    }
}

/// Every line of a folded file is `frames count`, and no frame was split:
/// the poisoned leaf is one frame.
fn check_folded(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        assert!(count.parse::<u64>().is_ok(), "{}: {line:?}", path.display());
        assert!(!has_hazard(stack), "{}: {line:?}", path.display());
        let leaf = stack.rsplit(';').next().unwrap();
        if stack.contains("leaf") {
            assert!(
                leaf.starts_with("leaf"),
                "{}: a frame was split: {line:?}",
                path.display()
            );
        }
    }
}

/// Item 6, in process: of several openers of one directory racing for the
/// recording lock, exactly one wins and the others are told its pid.
#[test]
fn one_recorder_per_directory_wins_the_lock() {
    let dir = scratch();
    let path = dir.path().join("out");
    let barrier = std::sync::Barrier::new(8);
    let results: Vec<Result<OutputDir, OutputError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let out = OutputDir::create(&path)?;
                    barrier.wait();
                    out.lock().map(|()| out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, OutputError::Locked { holder: Some(pid), .. } if *pid == std::process::id()),
                "{e}"
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Item 7: a directory planted under any name a recording writes is
    /// found by the check a recording makes before its first episode.
    #[test]
    fn a_planted_directory_under_any_output_name_is_found_first(pick in any::<prop::sample::Index>()) {
        let names = record_names();
        let name = pick.get(&names);
        let dir = scratch();
        std::fs::create_dir(dir.path().join(name)).unwrap();
        let out = OutputDir::create(dir.path()).unwrap();
        let err = out.check_writable(&names).unwrap_err();
        prop_assert!(matches!(err, OutputError::Blocked { .. }) && err.is_usage(), "{}", err);
    }

    /// Item 7: however a sequence of recordings into one directory is cut
    /// short (after keeping the previous run, or mid-write), a complete
    /// run.json (one of the runs written) is always there.
    #[test]
    fn a_complete_run_json_exists_after_any_interruption(
        crashes in prop::collection::vec(0u8..3, 1..8)
    ) {
        let dir = scratch();
        let out = OutputDir::create(dir.path()).unwrap();
        let run_json = dir.path().join("run.json");
        let mut written: Vec<String> = Vec::new();
        for (i, crash) in crashes.into_iter().enumerate() {
            let body = format!("{{\"run\": {i}}}");
            out.keep_previous("run.json", "run.json.old").unwrap();
            match crash {
                // Killed after keeping, before the new file exists.
                0 => {}
                // Killed (or the disk filled) mid-write.
                1 => {
                    let _ = out.write_with("run.json", |f| {
                        use std::io::Write as _;
                        f.write_all(&body.as_bytes()[..3])?;
                        Err(std::io::Error::other("killed"))
                    });
                }
                _ => {
                    out.write("run.json", body.as_bytes()).unwrap();
                    written.push(body);
                }
            }
            if let Some(last) = written.last() {
                prop_assert_eq!(&std::fs::read_to_string(&run_json).unwrap(), last);
            } else {
                prop_assert!(!run_json.exists());
            }
        }
    }
}

/// The names `record -o` writes (as `cmd::record` lists them).
fn record_names() -> Vec<String> {
    let mut names = vec!["run.json".to_owned(), "run.json.old".to_owned()];
    names.extend(reaper::report::file_names());
    names.push("profile.pb.gz".to_owned());
    names
}
