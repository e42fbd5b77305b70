//! Kernels older than the mechanisms reaper prefers (issue 26; Debian
//! bullseye's 5.10): what the matrix table's [`Mechanisms`] row says is
//! missing must be refused before acting, or measured from a named stand-in,
//! never made up.
//!
//! - `mrelease-refusal`: without `process_mrelease`, `record`'s default
//!   mode exited 2 before killing anything and named the modes that work;
//!   with it, doctor agrees and the cell never tried.
//! - `fallback-sources`: without `mmap:exit_mmap`, every episode's "kill →
//!   exit_mmap done" is measured and names its function probe; without
//!   `lock:contention_*`, the run's lock waits name the spin slow path's
//!   probe; and the OOM step's reaper verdict is an explanation, not "no
//!   oom_reaper event seen".

use reaper_model::Run;

use super::super::table::{self, Mechanisms};
use super::read_or_fail;
use super::{
    CellContext, DOCTOR_JSON, OOM_DIR, RECORD_DIR, REFUSED_DIR, REFUSED_TEXT, Verdict,
    find_run_json, step_status,
};
use crate::reaper_json::Diagnosis;

/// The verdict the OOM step must not give where the table knows better.
const NO_EVENT: &str = "no oom_reaper event seen";

fn mechanisms(ctx: &CellContext) -> Result<Mechanisms, Verdict> {
    if !ctx.reaper_ran {
        return Err(Verdict::Skip("reaper not run (--smoke)".into()));
    }
    table::expectation(ctx.guest_release, ctx.arch)
        .map(|row| row.mechanisms)
        .ok_or_else(|| {
            Verdict::Fail(format!(
                "the matrix table has no row for {} on {}; add one to xtask/src/vm/table.rs",
                ctx.guest_release, ctx.arch
            ))
        })
}

/// `record` without `--no-mrelease` on a kernel without `process_mrelease`.
pub fn mrelease_refusal(ctx: &CellContext) -> Verdict {
    let want = match mechanisms(ctx) {
        Ok(m) => m,
        Err(v) => return v,
    };
    let doctor: Diagnosis = match read_or_fail(&ctx.out_dir.join(DOCTOR_JSON)) {
        Ok(d) => d,
        Err(fail) => return fail,
    };
    if doctor.process_mrelease != want.mrelease {
        return Verdict::Fail(format!(
            "doctor says process_mrelease {}, the table expects it {}",
            presence(doctor.process_mrelease),
            presence(want.mrelease)
        ));
    }
    let status = step_status(ctx.out_dir, "refused");
    if want.mrelease {
        return match status {
            None => {
                Verdict::Skip("process_mrelease present (doctor agrees): nothing to refuse".into())
            }
            Some(code) => Verdict::Fail(format!(
                "process_mrelease is present, yet the refusal step ran (exit {code})"
            )),
        };
    }
    let text = std::fs::read_to_string(ctx.out_dir.join(REFUSED_TEXT)).unwrap_or_default();
    refusal_verdict(
        status,
        &text,
        find_run_json(&ctx.out_dir.join(REFUSED_DIR)).is_some(),
    )
}

fn presence(present: bool) -> &'static str {
    if present { "present" } else { "missing" }
}

/// The refusal step's outcome: exit 2, a message naming what works, no
/// run recorded.
fn refusal_verdict(status: Option<i32>, text: &str, recorded: bool) -> Verdict {
    match status {
        Some(2) => {}
        Some(code) => {
            return Verdict::Fail(format!(
                "`reaper record` without process_mrelease exited {code}, not 2: {}",
                text.trim()
            ));
        }
        None => return Verdict::Fail("the refusal step did not run".into()),
    }
    if recorded {
        return Verdict::Fail("the refused record still wrote a run".into());
    }
    let missing: Vec<&str> = ["nothing was killed", "--no-mrelease", "--oom", "--degrade"]
        .into_iter()
        .filter(|needle| !text.contains(needle))
        .collect();
    if !missing.is_empty() {
        return Verdict::Fail(format!(
            "the refusal does not say {missing:?}: {}",
            text.trim()
        ));
    }
    Verdict::Pass("exit 2 before killing, naming --no-mrelease, --oom and --degrade".into())
}

/// Figures whose usual tracepoint the kernel lacks come from a named
/// stand-in.
pub fn fallback_sources(ctx: &CellContext) -> Verdict {
    let want = match mechanisms(ctx) {
        Ok(m) => m,
        Err(v) => return v,
    };
    if want.exit_mmap_tracepoint && want.contention_tracepoints {
        return Verdict::Skip("the kernel has mmap:exit_mmap and lock:contention_*".into());
    }
    let Some(path) = find_run_json(&ctx.out_dir.join(RECORD_DIR)) else {
        return Verdict::Fail(format!("no run.json under /out/{RECORD_DIR}"));
    };
    let run: Run = match read_or_fail(&path) {
        Ok(run) => run,
        Err(fail) => return fail,
    };
    let mut lines = Vec::new();
    if !want.exit_mmap_tracepoint {
        match exit_mmap_figures(&run) {
            Ok(line) => lines.push(line),
            Err(why) => return Verdict::Fail(format!("{why:#}")),
        }
    }
    if !want.contention_tracepoints {
        match lock_waits(&run) {
            Ok(line) => lines.push(line),
            Err(why) => return Verdict::Fail(format!("{why:#}")),
        }
    }
    match oom_verdict(ctx) {
        Ok(line) => lines.push(line),
        Err(why) => return Verdict::Fail(format!("{why:#}")),
    }
    Verdict::Pass(lines.join("; "))
}

/// Every complete episode measured "kill → exit_mmap done" and named its
/// source.
fn exit_mmap_figures(run: &Run) -> anyhow::Result<String> {
    let mut sources = Vec::new();
    for e in run.episodes.iter().filter(|e| !e.partial) {
        let l = &e.latencies;
        let (Some(_), Some(source)) = (l.kill_to_exit_mmap_done_ns, &l.exit_mmap_source) else {
            anyhow::bail!(
                "episode {}: kill → exit_mmap done {:?} without a named source",
                e.index + 1,
                l.kill_to_exit_mmap_done_ns
            );
        };
        let label = source.label();
        if !sources.contains(&label) {
            sources.push(label);
        }
    }
    if sources.is_empty() {
        anyhow::bail!("no complete episode");
    }
    Ok(format!(
        "kill → exit_mmap done in {} episode(s), {}",
        run.episodes.len(),
        sources.join(", ")
    ))
}

/// The run's lock waits come from the spin slow path, named.
fn lock_waits(run: &Run) -> anyhow::Result<String> {
    let Some(source) = &run.recording.lock_wait_source else {
        anyhow::bail!("lock:contention_* is missing but the run names no other lock-wait source");
    };
    let (waits, ns): (u64, u64) = run
        .episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .flat_map(|c| &c.lock_waits)
        .fold((0, 0), |(n, t), w| (n + w.count, t + w.total_ns));
    Ok(format!(
        "lock waits {}: {waits} wait(s), {:.1} ms in {} episode(s)",
        source.label(),
        ns as f64 / 1e6,
        run.episodes.len()
    ))
}

/// The OOM step explained what the oom_reaper did.
fn oom_verdict(ctx: &CellContext) -> anyhow::Result<String> {
    if step_status(ctx.out_dir, "oom") != Some(0) {
        anyhow::bail!("the oom step did not succeed (see memcg-oom)");
    }
    let path = find_run_json(&ctx.out_dir.join(OOM_DIR))
        .ok_or_else(|| anyhow::anyhow!("no run.json under /out/{OOM_DIR}"))?;
    let run: Run = crate::reaper_json::read(&path)?;
    let verdict = run
        .episodes
        .first()
        .and_then(|e| e.latencies.oom_reaper_verdict.clone())
        .ok_or_else(|| anyhow::anyhow!("the oom run has no oom_reaper verdict"))?;
    if verdict == NO_EVENT {
        anyhow::bail!("oom_reaper: {NO_EVENT}");
    }
    Ok(format!("oom_reaper: {verdict}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSAL: &str = "Error: process_mrelease is missing on this kernel (ENOSYS; it arrived \
        in Linux 5.15) (5.10.0-32-cloud-amd64), and `record` --victim (the default) races the \
        kill with it, so nothing was killed. Modes that work on this kernel:\n  reaper record \
        --no-mrelease ...\n  reaper record --oom ...\nor add --degrade to record";

    #[test]
    fn the_refusal_must_exit_2_say_what_works_and_record_nothing() {
        assert!(matches!(
            refusal_verdict(Some(2), REFUSAL, false),
            Verdict::Pass(_)
        ));
        let Verdict::Fail(m) = refusal_verdict(Some(0), "", false) else {
            panic!()
        };
        assert!(m.contains("not 2"), "{m}");
        assert!(matches!(
            refusal_verdict(Some(2), REFUSAL, true),
            Verdict::Fail(_)
        ));
        let Verdict::Fail(m) = refusal_verdict(Some(2), "Error: no", false) else {
            panic!()
        };
        assert!(m.contains("--no-mrelease"), "{m}");
        assert!(matches!(refusal_verdict(None, "", false), Verdict::Fail(_)));
    }
}
