//! Root integration tests: they load and attach reaper's probes on the host
//! kernel and kill real (synthetic) victims. Without root they print why and
//! skip; with root every assertion is real. Run them one at a time
//! (`--test-threads=1`): they attach system-wide probes.

use std::process::Command;

use reaper_model::{
    ContextProfile, Episode, Run, ScenarioKind, TimelineEventKind,
    doctor::{Diagnosis, Outcome},
    query::Context,
};

mod common;

use common::{REAPER, load_run, reaper, require_root, temp_dir, text};

fn context(run: &Run, context: Context) -> Option<&ContextProfile> {
    run.episodes.first()?.context(context)
}

fn samples_under(context: &ContextProfile, frame: &str) -> u64 {
    context.under(frame).0
}

/// Whether no `reaper-victim` this test process started (through reaper)
/// is left. Only this process's descendants count: the test process is made
/// a child subreaper, so a victim reaper orphaned is reparented here and
/// still counted, while victims of other reapers on the same host (other
/// users, other test runs) are not mistaken for a leak.
fn no_victims_left() -> bool {
    own_victims().is_empty()
}

/// Live `reaper-victim` processes descended from this test process; zombies
/// reparented here are reaped first (by pid, never by waiting on any child,
/// which would steal the exit status of a reaper a test is waiting for).
fn own_victims() -> Vec<i32> {
    static SUBREAPER: std::sync::Once = std::sync::Once::new();
    // SAFETY: prctl with integer arguments only.
    SUBREAPER.call_once(|| unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    });
    let me = std::process::id() as i32;
    let stat = |pid: i32| -> Option<(String, char, i32)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (open, close) = (text.find('(')?, text.rfind(')')?);
        let comm = text[open + 1..close].to_string();
        let mut rest = text[close + 2..].split_whitespace();
        let state = rest.next()?.chars().next()?;
        Some((comm, state, rest.next()?.parse().ok()?))
    };
    let descends_from_me = |mut pid: i32| {
        for _ in 0..64 {
            match stat(pid) {
                Some((_, _, ppid)) if ppid == me => return true,
                Some((_, _, ppid)) if ppid > 1 => pid = ppid,
                _ => return false,
            }
        }
        false
    };
    let mut victims = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Some((comm, state, ppid)) = stat(pid) else {
            continue;
        };
        if comm != "reaper-victim" || !descends_from_me(pid) {
            continue;
        }
        if state == 'Z' && ppid == me {
            // SAFETY: waits for this one exited child only.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            continue;
        }
        victims.push(pid);
    }
    victims
}

#[test]
fn record_512m_victim_profiles_both_sides_and_report_reproduces_it() {
    if !require_root("record_512m_victim") {
        return;
    }
    let dir = temp_dir("record");
    // Three episodes: a loaded machine can let a victim drop its mm before
    // process_mrelease arrives (ESRCH, the race lost), and one lost race
    // must not leave the reaper side without an episode to check.
    let out = reaper(&[
        "record",
        "--victim",
        "512M",
        "--runs",
        "3",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "record failed: {}\n{stdout}",
        text(&out.stderr)
    );

    let run = load_run(&dir.join("run.json"));
    assert_eq!(run.schema_version, reaper_model::SCHEMA_VERSION);
    assert!(!run.partial);
    // Issue 29: a warm-up teardown of reaper's own victim ran first, was
    // discarded, and the run and the header say so.
    let warmup = run.recording.warmup.as_deref().unwrap_or_default();
    assert!(
        warmup.starts_with("a 32M,") && warmup.contains("victim of reaper's own (pid "),
        "{warmup:?}"
    );
    assert!(
        stdout.contains(&format!("Warm-up: {warmup}; discarded before episode 1")),
        "{stdout}"
    );
    let episodes = &run.episodes;
    // A lost race (ESRCH) is kept, marked, and replaced (up to --retries 3).
    let lost = episodes.iter().filter(|e| e.lost_race()).count();
    assert!(lost <= 3, "more lost races than retries: {lost}");
    assert_eq!(episodes.len(), 3 + lost);
    for episode in episodes.iter().filter(|e| e.lost_race()) {
        assert_eq!(
            episode.latencies.mrelease_ret,
            Some(-3),
            "lost_race without ESRCH"
        );
    }
    if lost > 0 {
        assert!(stdout.contains("Lost races: "), "{stdout}");
    }
    for (i, episode) in episodes.iter().enumerate() {
        let victim = episode
            .context(Context::VictimExit)
            .expect("victim_exit context");
        assert!(
            samples_under(victim, "exit_mmap") > 0,
            "episode {i}: no victim samples under exit_mmap"
        );
    }
    let reaped: Vec<&Episode> = episodes.iter().filter(|e| e.mrelease_succeeded()).collect();
    assert!(
        !reaped.is_empty(),
        "process_mrelease lost the race in all 3 episodes: {:?}",
        episodes.iter().map(|e| &e.latencies).collect::<Vec<_>>()
    );
    for episode in reaped {
        let reaper_ctx = episode
            .context(Context::MreleaseCaller)
            .expect("mrelease_caller context");
        assert!(
            samples_under(reaper_ctx, "__oom_reap_task_mm") > 0,
            "no reaper samples under __oom_reap_task_mm"
        );
    }

    // The PTE-lock wait is measured (sampled spin time), and so are the
    // traced lock waits (a number and a wait count), never "not measured".
    let row = |label: &str| {
        stdout
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no `{label}` row:\n{stdout}"))
            .to_owned()
    };
    let pte = row("Time waiting for pte spinlock");
    assert!(
        !pte.contains("not measured") && pte.chars().any(|c| c.is_ascii_digit()),
        "{pte}"
    );
    let traced = row("PTE-lock waits traced");
    assert!(
        traced.contains("waits") && !traced.contains("not measured"),
        "{traced}"
    );

    for (svg, frame) in [
        ("victim_exit.svg", "exit_mmap"),
        ("mrelease_caller.svg", "__oom_reap_task_mm"),
        ("combined.svg", "exit_mmap"),
    ] {
        let path = dir.join(svg);
        let body =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut reader = quick_xml::Reader::from_str(&body);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{svg} is not well-formed XML: {e}"),
            }
        }
        assert!(body.contains(frame), "{svg} lacks {frame}");
    }
    assert!(
        std::fs::read_to_string(dir.join("victim_exit.folded"))
            .unwrap()
            .contains("exit_mmap")
    );

    // reaper report re-renders the same tables offline.
    let report = reaper(&[
        "report",
        dir.join("run.json").to_str().unwrap(),
        "-o",
        temp_dir("rerender").to_str().unwrap(),
    ]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    assert_eq!(
        text(&report.stdout),
        stdout,
        "reaper report does not reproduce reaper record's output"
    );
    assert!(no_victims_left(), "a reaper-victim process survived");
}

#[test]
fn doctor_attaches_tracepoints_and_sampling_for_real() {
    if !require_root("doctor") {
        return;
    }
    let out = reaper(&["doctor", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let d: Diagnosis = serde_json::from_slice(&out.stdout).unwrap();
    let works = |kind: &str| {
        d.attach_kinds
            .iter()
            .find(|k| k.kind.name() == kind)
            .map(|k| k.works)
    };
    assert_eq!(works("tracepoint"), Some(true));
    assert_eq!(works("perf_event"), Some(true));
    for kind in ["fentry", "fexit", "kprobe", "kretprobe", "tp_btf"] {
        assert!(works(kind).is_some(), "doctor did not check {kind}");
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(d.host.kernel_release, release.trim());
    assert!(
        d.probe_targets
            .iter()
            .any(|t| t.concept == reaper_model::ConceptId::ReaperWork
                && t.symbol.as_deref() == Some("__oom_reap_task_mm"))
    );
    // Every program record uses was loaded and attached for real; none was
    // refused by the verifier (policy refusals such as EPERM fentry are fine).
    let programs = d.programs.as_ref().expect("doctor loaded its programs");
    let attached = |program: &str| {
        programs
            .iter()
            .any(|p| p.program == program && p.attached())
    };
    for program in [
        "sample_cpu_clock",
        "lock_contention_begin",
        "lock_contention_end",
    ] {
        assert!(attached(program), "{program} did not attach: {programs:?}");
    }
    let verifier: Vec<_> = programs
        .iter()
        .filter(|p| matches!(&p.outcome, Outcome::Refused(r) if r.by_verifier()))
        .collect();
    assert!(verifier.is_empty(), "verifier refusals: {verifier:?}");
    // A host whose kernel log says it is locked down gets the lockdown
    // named with its level, once, in the text output.
    if d.policy
        .lockdown_log
        .iter()
        .any(|l| l.contains("Kernel is locked down"))
    {
        let lockdown = d.policy.lockdown.as_ref().expect("lockdown named");
        let mode = lockdown.mode.expect("its level found").name();
        let text_out = text(&reaper(&["doctor"]).stdout);
        assert_eq!(
            text_out
                .matches(&format!("* kernel lockdown: {mode}"))
                .count(),
            1,
            "{text_out}"
        );
        assert!(text_out.contains("still works: "), "{text_out}");
    } else {
        eprintln!("this host's kernel log shows no lockdown; the lockdown finding is not checked");
    }
}

#[test]
fn protected_and_bad_pids_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["record", "--pid", "1", "--kill"], "pid 1"),
        (&["record", "--pid", "9999999", "--kill"], "does not exist"),
        (&["record", "--pid", "2", "--kill"], "kernel thread"),
        // Without --kill reaper only waits, but pid 1 is still refused.
        (&["record", "--pid", "1"], "pid 1"),
        (&["record", "--pid", "2"], "kernel thread"),
        (&["record", "--victim", "1G,vmas=0"], "vmas"),
        (&["record", "--victim", "lots"], "not a size"),
    ];
    for (args, needle) in cases {
        let out = reaper(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} should fail with exit 2"
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: expected `{needle}` in: {err}"
        );
    }
    // The tool's parent (this test process) is refused too.
    let me = std::process::id().to_string();
    let out = reaper(&["record", "--pid", &me, "--kill"]);
    assert!(
        text(&out.stderr).contains("parent"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unprivileged_record_names_the_missing_capabilities() {
    if !require_root("unprivileged_record (needs root to drop to nobody)") {
        return;
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            REAPER,
            "record",
            "--victim",
            "64M",
        ])
        .output()
        .expect("setpriv (util-linux) is installed by cargo xtask setup");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
}

#[test]
fn sigint_detaches_and_saves_a_partial_run() {
    if !require_root("sigint_partial_run") {
        return;
    }
    let dir = temp_dir("sigint");
    let mut child = common::command()
        .args([
            "record",
            "--victim",
            "256M",
            "--runs",
            "1000",
            "-o",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until at least one episode has been recorded (a victim was killed).
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) && !has_seen_victim() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: signalling our own child.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted record exits 130");
    let run = load_run(&dir.join("run.json"));
    assert!(run.partial);
    assert!(
        run.partial_reason
            .as_deref()
            .is_some_and(|r| r.contains("interrupted")),
        "{:?}",
        run.partial_reason
    );
    assert!(run.episodes.len() < 1000);
    assert!(no_victims_left(), "a reaper-victim process survived Ctrl-C");
}

fn has_seen_victim() -> bool {
    !no_victims_left()
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Runs `reaper` with `args`, capturing its output, and returns its pid
/// too (to look for what that very process left behind).
fn reaper_with_pid(args: &[&str]) -> (u32, std::process::Output) {
    let child = Command::new(REAPER)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running reaper");
    let pid = child.id();
    (pid, child.wait_with_output().expect("waiting for reaper"))
}

/// Whether reaper process `pid` left no cgroup behind. Only its own: a test
/// running in parallel may legitimately hold a `reaper-*` cgroup of its own.
fn no_cgroups_left_by(pid: u32) -> bool {
    cgroups_of(pid).is_empty()
}

#[test]
fn oom_kill_in_own_memcg_is_explained_and_cleaned_up() {
    if !require_root("oom") {
        return;
    }
    let dir = temp_dir("oom");
    let (pid, out) = reaper_with_pid(&[
        "record",
        "--oom",
        "--victim",
        "256M",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let run = load_run(&dir.join("run.json"));
    assert_eq!(run.recording.scenario.kind, ScenarioKind::Oom);
    let episode = &run.episodes[0];
    let kinds: Vec<TimelineEventKind> = episode.timeline.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds.first().copied(),
        Some(reaper_common::timeline::TimelineKind::OomMarkVictim.into()),
        "the OOM killer did not pick reaper's victim: {kinds:?}"
    );
    let verdict = episode
        .latencies
        .oom_reaper_verdict
        .as_deref()
        .expect("an oom_reaper verdict");
    // Either the reaper ran (then its context has samples) or the report says why not.
    if verdict.starts_with("reaped") {
        assert!(
            context(&run, Context::OomReaper).is_some(),
            "the reaper ran but has no context"
        );
    } else {
        assert!(
            stdout.contains(verdict),
            "the report does not explain the reaper: {verdict}"
        );
    }
    let victim = context(&run, Context::VictimExit).expect("victim_exit context");
    assert!(samples_under(victim, "exit_mmap") > 0);
    // The victim is armed at oom:mark_victim, so its population (page
    // faults, ~80% of its samples when counted from the start) is left out;
    // what remains under do_anonymous_page is the faulting path unwinding
    // after the kill (the OOM report, reclaim retries).
    let faults = samples_under(victim, "do_anonymous_page");
    assert!(
        faults < samples_under(victim, "exit_mmap"),
        "pre-kill page faults were attributed to the victim's exit ({faults} samples)"
    );
    assert!(no_cgroups_left_by(pid), "reaper {pid} left a cgroup behind");
    assert!(no_victims_left(), "a reaper-victim process survived");
}

#[test]
fn frozen_oom_victim_reports_every_thread_and_thaws() {
    if !require_root("frozen") {
        return;
    }
    let dir = temp_dir("frozen");
    let (pid, out) = reaper_with_pid(&[
        "record",
        "--oom",
        "--frozen",
        "--victim",
        "256M,threads=4",
        "--frozen-timeout",
        "5",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let run = load_run(&dir.join("run.json"));
    let frozen = run.episodes[0].frozen.as_ref().expect("a frozen outcome");
    assert_eq!(frozen.threads, 4);
    assert_eq!(frozen.thread_exits.len(), 4);
    assert!(stdout.contains("Frozen victim (4 threads"), "{stdout}");
    assert!(no_cgroups_left_by(pid), "reaper {pid} left a cgroup behind");
    assert!(no_victims_left(), "a reaper-victim process survived");
}

/// The cgroup directories named after reaper process `pid`, in every
/// hierarchy reaper uses.
fn cgroups_of(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("reaper-{pid}-");
    [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup",
    ]
    .iter()
    .filter_map(|root| std::fs::read_dir(root).ok())
    .flatten()
    .filter_map(Result::ok)
    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    .map(|e| e.path())
    .collect()
}

#[test]
fn kill_9_during_frozen_oom_leaves_no_cgroup_after_the_next_record() {
    if !require_root("stale_cgroups") {
        return;
    }
    let mut hard_killed = common::command()
        .args([
            "record",
            "--oom",
            "--frozen",
            "--victim",
            "256M,threads=4",
            "--frozen-timeout",
            "60",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting reaper");
    let pid = hard_killed.id();
    // Kill it as soon as its victim has joined its memory cgroup.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let joined = loop {
        let joined = cgroups_of(pid).iter().any(|dir| {
            std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        });
        if joined || std::time::Instant::now() > deadline {
            break joined;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: SIGKILL to the reaper process this test started.
    unsafe { libc_kill(pid as i32, 9) };
    let _ = hard_killed.wait();
    assert!(joined, "reaper {pid} never put a victim into its cgroup");
    let left = cgroups_of(pid);
    assert!(
        !left.is_empty(),
        "kill -9 left nothing behind, so this test checks nothing"
    );

    let dir = temp_dir("stale-cgroups");
    let out = reaper(&[
        "record",
        "--oom",
        "--victim",
        "128M",
        "--quiet",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("removed stale cgroup reaper-{pid}-0")),
        "the cleanup was not reported: {stderr}"
    );
    assert_eq!(cgroups_of(pid), Vec::<std::path::PathBuf>::new());
}

#[test]
fn frozen_needs_four_threads() {
    let out = reaper(&["record", "--oom", "--frozen", "--victim", "256M,threads=2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("at least 4 threads"));
}

#[test]
fn watch_sees_another_reapers_mrelease_episode_and_its_caller() {
    if !require_root("watch") {
        return;
    }
    use std::io::BufRead as _;
    let dir = temp_dir("watch");
    let mut watcher = common::command()
        .args([
            "record",
            "--watch",
            // A bound only: the test stops it with SIGINT once the other
            // recorder is done (on a loaded machine that recorder's start
            // alone can take longer than any fixed duration).
            "--duration",
            "600",
            "-o",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(watcher.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("watching every teardown") {
        line.clear();
    }
    assert!(line.contains("watching"), "the watcher never started");
    let recorder = common::command()
        .args(["record", "--victim", "256M"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let recorder_pid = recorder.id();
    let out = recorder.wait_with_output().unwrap();
    assert!(out.status.success());
    // Let the victim's process_free (an RCU callback) reach the watcher.
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: SIGINT to the watcher this test started.
    unsafe { libc_kill(watcher.id() as i32, 2) };
    let status = watcher.wait().unwrap();
    assert!(status.success(), "the watcher failed");
    let run = load_run(&dir.join("run.json"));
    assert_eq!(run.recording.scenario.kind, ScenarioKind::Watch);
    let episodes = &run.episodes;
    let expected = format!("process_mrelease by reaper-mrelease[{recorder_pid}]");
    let episode = episodes
        .iter()
        .find(|e| e.trigger.as_deref() == Some(expected.as_str()))
        .unwrap_or_else(|| panic!("no episode triggered by {expected}: {episodes:#?}"));
    assert_eq!(episode.victim.comm, "reaper-victim");
    assert!(
        episode.context(Context::MreleaseCaller).is_some(),
        "{:?}",
        episode
            .contexts
            .iter()
            .map(|c| c.context)
            .collect::<Vec<_>>()
    );
    assert!(no_victims_left());
}

/// A 1 GiB process the test starts, which exits by itself (code 3) once the
/// test writes a line to its stdin: reaper's synthetic victim with
/// `--exit-on-stdin`, under `comm`.
struct SelfExiting {
    child: std::process::Child,
}

impl SelfExiting {
    fn start(comm: &str) -> Self {
        use std::io::BufRead as _;
        let mut child = common::command()
            .args([
                "__victim",
                &(1u64 << 30).to_string(),
                "64",
                "1",
                "--comm",
                comm,
                "--exit-on-stdin",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 && !line.contains("ready") {
            line.clear();
        }
        assert!(line.contains("ready"), "the 1 GiB process never populated");
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets it exit by itself and reaps it.
    fn exit(mut self) {
        use std::io::Write as _;
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"3\n").unwrap();
        drop(stdin);
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "it did not exit by itself");
    }
}

/// Reads `stderr` until a line contains `needle`.
fn wait_for_line(stderr: &mut impl std::io::BufRead, needle: &str) {
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if line.contains(needle) {
            return;
        }
        line.clear();
    }
    panic!("reaper never said {needle:?}");
}

/// The teardown tables of a process that exits by itself: `record --pid P`
/// without `--kill` kills nothing, waits, and profiles P's own exit_mmap.
#[test]
fn record_pid_without_kill_profiles_a_1g_process_that_exits_by_itself() {
    if !require_root("record_pid_without_kill") {
        return;
    }
    let dir = temp_dir("natural");
    let victim = SelfExiting::start("reaper-natural");
    let pid = victim.pid().to_string();
    let mut recorder = common::command()
        .args(["record", "--pid", &pid, "-o", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(recorder.stderr.take().unwrap());
    wait_for_line(&mut stderr, "to exit by itself");
    victim.exit();
    let out = recorder.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "record failed:\n{stdout}");
    assert!(
        stdout.contains("its own exit (exit_group(3))"),
        "the episode names the exit: {stdout}"
    );
    assert!(
        stdout.contains("Timeline (ms since its exit began):"),
        "{stdout}"
    );
    assert!(
        stdout.contains("== victim exit (victim_exit)"),
        "the victim's tables: {stdout}"
    );
    let run = load_run(&dir.join("run.json"));
    assert_eq!(run.recording.scenario.kind, ScenarioKind::Exit);
    let episode = &run.episodes[0];
    assert!(!episode.partial);
    assert!(
        episode
            .timeline
            .iter()
            .all(|e| e.kind != TimelineEventKind::Kill),
        "reaper killed nothing"
    );
    let victim_exit = episode.context(Context::VictimExit).expect("victim_exit");
    assert!(
        samples_under(victim_exit, "exit_mmap") > 0,
        "the exit's teardown was sampled"
    );
    assert!(episode.latencies.kill_to_exit_mmap_done_ns.is_some());
    if let Some(reclaim) = &episode.reclaim {
        assert!(
            reclaim.rss_at_start_bytes >= 1 << 30,
            "RSS at the exit: {}",
            reclaim.rss_at_start_bytes
        );
        let freed = reclaim.freed_bytes[&reaper_model::Context::VictimExit];
        assert!(freed >= 900 << 20, "freed by its exit: {freed}");
    } else {
        eprintln!("kmem:rss_stat did not attach here; reclaim not checked");
    }
}

/// `--watch --comm NAME --min-rss 512M` follows a matching process before
/// it exits, and records its ordinary exit as an episode.
#[test]
fn watch_with_comm_and_min_rss_records_an_ordinary_exit() {
    if !require_root("watch_comm_min_rss") {
        return;
    }
    let dir = temp_dir("watch-exit");
    let mut watcher = common::command()
        .args([
            "record",
            "--watch",
            "--duration",
            "600",
            "--comm",
            "reaper-bigexit",
            "--min-rss",
            "512M",
            "-o",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(watcher.stderr.take().unwrap());
    wait_for_line(&mut stderr, "watching every teardown");
    let victim = SelfExiting::start("reaper-bigexit");
    let pid = victim.pid();
    // The watcher lists /proc every 100 ms; give it a few polls.
    std::thread::sleep(std::time::Duration::from_secs(1));
    victim.exit();
    // Let the free (an RCU callback) and two polls reach the watcher.
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: SIGINT to the watcher this test started.
    unsafe { libc_kill(watcher.id() as i32, 2) };
    assert!(watcher.wait().unwrap().success(), "the watcher failed");
    let run = load_run(&dir.join("run.json"));
    let episode = run
        .episodes
        .iter()
        .find(|e| e.victim.pid == pid)
        .unwrap_or_else(|| panic!("no episode of pid {pid}: {:#?}", run.episodes));
    assert_eq!(episode.victim.comm, "reaper-bigexit");
    assert_eq!(
        episode.trigger.as_deref(),
        Some("its own exit (exit_group(3))")
    );
    assert!(episode.victim.rss_bytes >= 512 << 20);
    assert!(episode.latencies.kill_to_exit_mmap_done_ns.is_some());
    let victim_exit = episode.context(Context::VictimExit).expect("victim_exit");
    assert!(samples_under(victim_exit, "exit_mmap") > 0);
}

/// Without -o, record still keeps its run (run.json alone) under the runs
/// directory and says where; with --no-save it says it kept nothing.
#[test]
fn record_without_output_saves_the_run_and_says_where() {
    if !require_root("record_without_output") {
        return;
    }
    let runs = temp_dir("runs-dir");
    let out = common::command()
        .args([
            "record",
            "--victim",
            "64M",
            "--attach",
            "sampling",
            "--no-warmup",
        ])
        .env("REAPER_RUNS_DIR", &runs)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let saved = stderr
        .lines()
        .find_map(|l| l.strip_prefix("reaper: saved the run as "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no saved path in: {stderr}"));
    let saved = std::path::Path::new(saved);
    assert!(saved.starts_with(&runs), "{}", saved.display());
    assert!(
        saved
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n.to_string_lossy().ends_with("Z-victim")),
        "{}",
        saved.display()
    );
    let run = load_run(saved);
    assert_eq!(run.episodes.len(), 1);
    assert_eq!(run.recording.warmup, None, "--no-warmup");
    assert!(!stderr.contains("warm-up"), "{stderr}");
    let again = reaper(&["report", saved.to_str().unwrap()]);
    assert!(again.status.success());
    let out = common::command()
        .args([
            "record",
            "--victim",
            "64M",
            "--attach",
            "sampling",
            "--no-save",
        ])
        .env("REAPER_RUNS_DIR", &runs)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("the run was not saved (--no-save"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 1);
    assert!(no_victims_left());
}

/// `--program-cost`: the kernel's run statistics of reaper's programs are
/// switched on, read per episode, and tabled in the report.
#[test]
fn program_cost_counts_each_program_per_episode() {
    if !require_root("program_cost") {
        return;
    }
    let dir = temp_dir("program-cost");
    let out = reaper(&[
        "record",
        "--victim",
        "64M",
        "--attach",
        "sampling",
        "--program-cost",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = load_run(&dir.join("run.json"));
    let costs = &run.episodes[0].program_costs;
    let sampling = costs
        .get("sample_cpu_clock")
        .unwrap_or_else(|| panic!("no sampling program cost in {costs:?}"));
    assert!(sampling.runs > 0 && sampling.run_ns > 0, "{sampling:?}");
    assert!(!run.program_costs.is_empty());
    assert!(stdout.contains("Probe program cost"), "{stdout}");
    assert!(no_victims_left());
    // Issue 29: with the per-syscall tracepoints (FTRACE_SYSCALLS),
    // process_mrelease is seen through them, and the raw_syscalls programs,
    // which would run for every syscall on the machine, never run.
    let syscalls = std::path::Path::new("/sys/kernel/tracing/events/syscalls");
    if !syscalls.join("sys_enter_process_mrelease").is_dir() {
        eprintln!("no syscalls:* tracepoints here: the raw fallback is not checked");
        return;
    }
    for raw in ["raw_sys_enter", "raw_sys_exit"] {
        assert!(!costs.contains_key(raw), "{raw} ran: {costs:?}");
    }
    for probe in [
        "timeline:syscalls:sys_enter_process_mrelease",
        "timeline:syscalls:sys_exit_process_mrelease",
        "timeline:syscalls:sys_enter_exit_group",
    ] {
        let used = run.recording.probes.iter().find(|p| p.probe == probe);
        assert_eq!(
            used.map(|p| (p.mode, p.status.is_attached())),
            Some((reaper_model::AttachMode::Tracepoint, true)),
            "{probe}: {used:?}"
        );
    }
    let exit = costs
        .get("timeline_mrelease_exit")
        .unwrap_or_else(|| panic!("process_mrelease's exit did not run: {costs:?}"));
    assert_eq!(exit.runs, 1, "one process_mrelease call per episode");
}
