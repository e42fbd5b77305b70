//! The warm-up teardown: before the first measured episode of a `--victim`
//! or `--pid --kill` record, reaper kills and `process_mrelease`s a small
//! victim of its own, with every probe attached and its tasks tracked, and
//! discards the episode (`--oom`, a `--pid` left to exit by itself and
//! `--watch` have none).
//!
//! Why: the first run of freshly loaded probes, and of the kernel code the
//! attach patched (fentry call sites, tracepoint static keys), is dearer
//! than every later one: cold caches on hardware, and in an emulator such
//! as qemu TCG a translation of every patched page and of the JIT'd
//! programs. Measured in the 2-vCPU TCG guests of the VM matrix (7.2 and
//! 6.1, 256M victim, three episodes per record), episode 1 took longer than
//! episodes 2 and 3 under both `--attach sampling` and the default probes,
//! by up to 6 ms of 55-65 (issue 29). Without a warm-up that cost lands in
//! the one episode most records have. `--no-warmup` skips it; run.json's
//! `recording.warmup` and the report's header say what ran.

use super::{RecordSettings, Recorder, Target};
use crate::{scenario::victim, size::VictimSpec};

/// The warm-up victim: large enough that the walk frees whole page tables
/// and batches (8192 pages, 16 page tables), small enough to cost little
/// (tens of ms in a TCG guest); four threads, so that under TCG some thread
/// still holds the mm when process_mrelease arrives (see the VM matrix's
/// victim).
const WARMUP_VICTIM: &str = "32M,threads=4";

impl Recorder {
    /// Runs the warm-up teardown when the scenario has one, and describes
    /// it for run.json; `None` when none ran. A warm-up that fails is said
    /// and skipped: the measured episodes do not depend on it.
    pub(super) fn warm_up(&mut self, settings: &RecordSettings) -> Option<String> {
        if !settings.warmup || !matches!(settings.target, Target::Victim(_) | Target::Pid(_)) {
            return None;
        }
        let spec: VictimSpec = WARMUP_VICTIM
            .parse()
            .unwrap_or_else(|e| unreachable!("{WARMUP_VICTIM} parses: {e:?}"));
        let progress = settings.progress;
        let outcome = victim::spawn(&spec)
            .map_err(anyhow::Error::from)
            .and_then(|mut spawned| {
                let pid = spawned.pid;
                progress.say(format_args!(
                    "warm-up: victim {spec} of reaper's own (pid {pid}): killing it{}; the episode is discarded (--no-warmup skips it)",
                    if settings.mrelease {
                        " and calling process_mrelease"
                    } else {
                        ""
                    }
                ));
                let episode = self.race(0, pid, Some(&mut spawned), settings.mrelease)?;
                Ok((pid, episode.latencies.mrelease_ret, episode.partial))
            });
        match outcome {
            Ok((pid, mrelease_ret, interrupted)) => Some(format!(
                "a {spec} victim of reaper's own (pid {pid}), killed{}{}",
                match (settings.mrelease, mrelease_ret) {
                    (false, _) => String::new(),
                    (true, Some(ret)) => format!(" and process_mrelease'd (returned {ret})"),
                    (true, None) => " and process_mrelease'd".to_owned(),
                },
                if interrupted {
                    ", interrupted (Ctrl-C)"
                } else {
                    ""
                }
            )),
            Err(err) => {
                progress.say(format_args!(
                    "warm-up skipped: {err:#}; episode 1 includes the probes' first run"
                ));
                None
            }
        }
    }
}
