//! The "kill → mrelease done" row of a `reaper record` run (issue 17 item
//! 4): measured in every episode that won the mrelease race, and with a
//! source. The classic `syscalls:sys_exit_process_mrelease` tracepoint is
//! one source; a kernel without `CONFIG_FTRACE_SYSCALLS` has none, and there
//! the figure must come from another one (the function probe's exit today;
//! the raw syscall tracepoints once the timeline uses them) that the run
//! names in `latencies.mrelease_source`.
//!
//! The check holds for any source chain: it asks only that the row is
//! measured, that it names a source, and that the source is not the classic
//! tracepoint when that tracepoint did not attach.

use reaper_model::{Episode, Run};

use super::read_or_fail;
use super::{CellContext, RECORD_DIR, Verdict, find_run_json};

/// The run's probe entry of the classic exit tracepoint.
pub const CLASSIC_EXIT: &str = "timeline:syscalls:sys_exit_process_mrelease";

/// `cargo xtask vm-test`'s check on `/out/record`.
pub fn mrelease_done_source(ctx: &CellContext) -> Verdict {
    if !ctx.reaper_ran {
        return Verdict::Skip("reaper not run (--smoke)".into());
    }
    let Some(path) = find_run_json(&ctx.out_dir.join(RECORD_DIR)) else {
        return Verdict::Fail(format!("no run.json under /out/{RECORD_DIR}"));
    };
    match read_or_fail::<Run>(&path) {
        Ok(run) => verdict(&run),
        Err(fail) => fail,
    }
}

/// The check on one run.
pub fn verdict(run: &Run) -> Verdict {
    if !run.recording.scenario.mrelease {
        return Verdict::Skip("the scenario calls no process_mrelease".into());
    }
    let classic = classic_status(run);
    let won: Vec<&Episode> = run.episodes.iter().filter(|e| !e.lost_race()).collect();
    if won.is_empty() {
        return Verdict::Skip(format!(
            "every one of {} episode(s) lost the mrelease race",
            run.episodes.len()
        ));
    }
    let mut sources = Vec::new();
    for e in &won {
        if e.latencies.kill_to_mrelease_done_ns.is_none() {
            return Verdict::Fail(format!(
                "episode {}: kill → mrelease done not measured (the classic tracepoint: {})",
                e.index,
                classic.as_deref().unwrap_or("attached")
            ));
        }
        let source = match (&e.latencies.mrelease_source, &classic) {
            (Some(source), _) => source.label(),
            (None, None) => "from the syscalls:sys_exit_process_mrelease tracepoint".to_owned(),
            (None, Some(why)) => {
                return Verdict::Fail(format!(
                    "episode {}: kill → mrelease done measured but no source named, and the \
                     classic tracepoint did not attach ({why}), so it cannot be from it",
                    e.index
                ));
            }
        };
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    Verdict::Pass(format!(
        "measured in {} of {} episode(s) ({} lost the race), {}{}",
        won.len(),
        run.episodes.len(),
        run.episodes.len() - won.len(),
        sources.join("; "),
        classic
            .map(|why| format!("; syscalls tracepoint: {why}"))
            .unwrap_or_default()
    ))
}

/// `None` when the classic exit tracepoint attached, else why not.
fn classic_status(run: &Run) -> Option<String> {
    match run
        .recording
        .probes
        .iter()
        .find(|p| p.probe == CLASSIC_EXIT)
    {
        Some(p) if p.status.is_attached() => None,
        Some(p) => Some(p.status.to_string()),
        None => Some("not listed in the run's probes".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::reaper_json::fixtures;

    fn run(classic: &str, episodes: Vec<Value>) -> Run {
        let value = fixtures::run(json!({
            "recording": {"probes": [
                {"probe": CLASSIC_EXIT, "mode": "tracepoint", "status": classic}
            ]},
            "episodes": episodes,
        }));
        serde_json::from_value(value).unwrap()
    }

    fn episode(latencies: Value) -> Value {
        fixtures::episode(100, json!({ "latencies": latencies }))
    }

    const FALLBACK: &str = r#"{"kill_to_mrelease_done_ns": 900000000,
        "mrelease_source": {"kind": "function_probe", "symbol": "__x64_sys_process_mrelease",
        "exit_probe": "kretprobe", "tracepoints": "not found"}}"#;

    #[test]
    fn the_classic_tracepoint_is_a_source_when_it_attached() {
        let r = run(
            "attached",
            vec![episode(json!({"kill_to_mrelease_done_ns": 5}))],
        );
        let Verdict::Pass(msg) = verdict(&r) else {
            panic!("{:?}", verdict(&r))
        };
        assert!(
            msg.contains("syscalls:sys_exit_process_mrelease tracepoint"),
            "{msg}"
        );
    }

    #[test]
    fn without_the_tracepoint_the_row_names_another_source() {
        let r = run(
            "tracepoint syscalls:sys_exit_process_mrelease: not found",
            vec![episode(serde_json::from_str(FALLBACK).unwrap())],
        );
        let Verdict::Pass(msg) = verdict(&r) else {
            panic!("{:?}", verdict(&r))
        };
        assert!(
            msg.contains("from kretprobe __x64_sys_process_mrelease"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_figure_or_source_fails() {
        let missing = "tracepoint syscalls:sys_exit_process_mrelease: not found";
        let not_measured = run(missing, vec![episode(json!({}))]);
        assert!(matches!(verdict(&not_measured), Verdict::Fail(_)));
        let unnamed = run(
            missing,
            vec![episode(json!({"kill_to_mrelease_done_ns": 5}))],
        );
        let Verdict::Fail(msg) = verdict(&unnamed) else {
            panic!("{:?}", verdict(&unnamed))
        };
        assert!(msg.contains("no source named"), "{msg}");
        // Lost races are left out, as in the summary's medians.
        let lost = fixtures::episode(100, json!({"lost_race": true}));
        assert!(matches!(
            verdict(&run(missing, vec![lost])),
            Verdict::Skip(_)
        ));
    }

    /// A real run on the kernel without `FTRACE_SYSCALLS` (see the report
    /// fixtures' README): the row is measured, from the function probe.
    #[test]
    fn a_real_run_without_syscall_tracepoints_passes() {
        let path = crate::vm::cache::workspace_root()
            .join("reaper-cli/tests/data/report/6.1-no-ftrace-syscalls.run.json");
        let r: Run = read_or_fail(&path).unwrap();
        assert!(
            classic_status(&r).is_some(),
            "the classic tracepoint attached"
        );
        let Verdict::Pass(msg) = verdict(&r) else {
            panic!("{:?}", verdict(&r))
        };
        assert!(
            msg.contains("from fexit __x64_sys_process_mrelease"),
            "{msg}"
        );
    }

    /// The verdict on a real run, e.g. one recorded in a VM booted on the
    /// kernel without `FTRACE_SYSCALLS` (`cargo xtask kernel build --fragment
    /// kernel/variants/no-ftrace-syscalls.config`, then `cargo xtask vm
    /// --kernel … -- reaper record … -o /out/record`):
    /// `XTASK_RUN_JSON=target/vm-out/…/record/run.json cargo test -p xtask
    /// verdict_of_a_real_run -- --ignored --nocapture`.
    #[test]
    #[ignore = "reads a run.json recorded in a VM"]
    fn verdict_of_a_real_run() {
        let path =
            std::path::PathBuf::from(std::env::var("XTASK_RUN_JSON").expect("XTASK_RUN_JSON"));
        let r: Run = read_or_fail(&path).unwrap();
        let v = verdict(&r);
        println!("{}: mrelease-done-source: {v:?}", path.display());
        assert!(matches!(v, Verdict::Pass(_)), "{v:?}");
    }
}
