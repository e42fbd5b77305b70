//! Checks of the OOM scenarios in each cell: `record --oom` (the memcg OOM
//! kill of reaper's own victim) and `record --oom --frozen` (a frozen
//! four-thread victim), with the cgroups gone afterwards.
//!
//! The frozen expectation is per kernel, from the seed thread's first patch:
//! before 6.18 `mark_oom_victim()` thawed only the chosen thread of a victim
//! frozen by the legacy (v1) freezer, so its other threads stay frozen and
//! exit_mmap never runs; from 6.18 the whole process is thawed and dies.

use reaper_common::timeline::TimelineKind;
use reaper_model::{Episode, TimelineEventKind};

use super::read_or_fail;
use super::{CellContext, Verdict, find_run_json, step_failed};
use crate::reaper_json::Run;

/// `/out` directories of the two steps (see `matrix::cell_command`).
pub const OOM_DIR: &str = "oom";
pub const FROZEN_DIR: &str = "frozen";
/// Reaper cgroups still present after the steps, one per line.
pub const CGROUPS_LEFT: &str = "cgroups-left.txt";

fn episode(ctx: &CellContext, step: &str, dir: &str) -> Result<Episode, Verdict> {
    if !ctx.reaper_ran {
        return Err(Verdict::Skip("reaper not run (--smoke)".into()));
    }
    if let Some(fail) = step_failed(ctx.out_dir, step) {
        return Err(fail);
    }
    let path = find_run_json(&ctx.out_dir.join(dir))
        .ok_or_else(|| Verdict::Fail(format!("no run.json under /out/{dir}")))?;
    let run: Run = read_or_fail(&path)?;
    run.episodes
        .into_iter()
        .next()
        .ok_or_else(|| Verdict::Fail(format!("{} has no episode", path.display())))
}

fn cgroups_left(ctx: &CellContext) -> Option<Verdict> {
    let left = std::fs::read_to_string(ctx.out_dir.join(CGROUPS_LEFT)).unwrap_or_default();
    let left: Vec<&str> = left.lines().filter(|l| !l.trim().is_empty()).collect();
    (!left.is_empty()).then(|| Verdict::Fail(format!("reaper left cgroups behind: {left:?}")))
}

/// `record --oom`: the OOM killer picked reaper's victim inside its memcg, the
/// reaper's outcome is explained, and no cgroup is left.
pub fn memcg_oom(ctx: &CellContext) -> Verdict {
    let episode = match episode(ctx, "oom", OOM_DIR) {
        Ok(e) => e,
        Err(verdict) => return verdict,
    };
    if let Some(fail) = cgroups_left(ctx) {
        return fail;
    }
    let first = episode.timeline.first().map(|t| t.kind);
    if first != Some(TimelineKind::OomMarkVictim.into()) {
        return Verdict::Fail(format!(
            "the timeline starts with {:?}, not the OOM kill of reaper's victim",
            first.map_or("", TimelineEventKind::name)
        ));
    }
    match &episode.latencies.oom_reaper_verdict {
        Some(verdict) => Verdict::Pass(format!("OOM kill seen; oom_reaper {verdict}")),
        None => Verdict::Fail("no oom_reaper verdict in the run".into()),
    }
}

/// Whether the guest kernel is older than 6.18 (per-thread thawing).
fn thaws_one_thread(release: &str) -> Option<bool> {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some((major, minor) < (6, 18))
}

/// `record --oom --frozen`: every thread's fate is recorded, and the kernel
/// behaves as its version predicts.
pub fn frozen_victim(ctx: &CellContext) -> Verdict {
    let episode = match episode(ctx, "frozen", FROZEN_DIR) {
        Ok(e) => e,
        Err(verdict) => return verdict,
    };
    if let Some(fail) = cgroups_left(ctx) {
        return fail;
    }
    let Some(frozen) = &episode.frozen else {
        return Verdict::Fail("the episode has no frozen-victim outcome".into());
    };
    let fates = frozen.thread_exits.len();
    if frozen.threads != 4 || fates != 4 {
        return Verdict::Fail(format!(
            "expected the fates of 4 threads, got threads={} fates={fates}",
            frozen.threads
        ));
    }
    let still = frozen.still_present_at_timeout.len();
    let all_exited = frozen.all_exited_ms;
    match (thaws_one_thread(ctx.guest_release), all_exited) {
        (Some(true), None) if still > 0 => Verdict::Pass(format!(
            "{}: {still} of 4 threads still frozen after the timeout (per-thread thaw)",
            ctx.guest_release
        )),
        (Some(false), Some(ms)) => Verdict::Pass(format!(
            "{}: every thread exited, the last {ms} ms after the OOM kill (per-process thaw)",
            ctx.guest_release
        )),
        (expect, _) => Verdict::Fail(format!(
            "{}: {} threads still present, all exited: {all_exited:?}; expected {}",
            ctx.guest_release,
            still,
            match expect {
                Some(true) => "threads to stay frozen (pre-6.18 per-thread thaw)",
                Some(false) => "every thread to exit (6.18+ per-process thaw)",
                None => "a parseable kernel release",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::thaws_one_thread;

    #[test]
    fn kernel_versions_before_6_18_thaw_one_thread() {
        assert_eq!(thaws_one_thread("6.1.0-50-cloud-amd64"), Some(true));
        assert_eq!(thaws_one_thread("6.12.95+deb12-cloud-amd64"), Some(true));
        assert_eq!(thaws_one_thread("6.18.44-fc-v657"), Some(false));
        assert_eq!(thaws_one_thread("7.2.13+deb14-cloud-arm64"), Some(false));
        assert_eq!(thaws_one_thread("garbage"), None);
    }
}
