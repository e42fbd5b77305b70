//! `record --oom [--frozen]`: let the kernel's OOM killer pick reaper's
//! victim inside a memory cgroup reaper created, and profile the victim's exit
//! against the `oom_reaper` kthread.
//!
//! Plain: the cgroup limit is 90% of the victim's size, so the victim is
//! OOM-killed while populating. Frozen: the victim (T threads) populates
//! under a roomier limit, is frozen with the cgroup freezer, and a second
//! process (default oom_score_adj, far smaller) allocates until the memcg OOM
//! kills the frozen victim; reaper then watches whether every victim thread
//! exits (6.18+ thaws the whole process) or stays frozen (6.1 thawed one
//! thread only), and how long the oom_reaper took.

use std::{
    collections::BTreeMap,
    os::fd::OwnedFd,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use reaper_common::timeline::{TimelineEvent, TimelineKind};

use super::{
    Recorder, interrupt,
    setup::{EpisodeEnd, EpisodeSetup},
};
use crate::{
    model::{Episode, FrozenOutcome, ThreadFate, VictimInfo},
    scenario::{
        cgroup::OwnedCgroup,
        pidfd,
        victim::{self, SpawnOptions},
    },
    size::VictimSpec,
    system::procfs,
};

/// Longest wait for the OOM kill after the victim starts allocating.
const OOM_KILL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after the OOM kill to wait for the oom_reaper (it is delayed by
/// 2 s on 5.17+ kernels; MAX_OOM_REAP_RETRIES adds up to 1 s more).
const REAPER_WAIT: Duration = Duration::from_secs(5);
/// Extra memcg room above a frozen victim's size for the trigger's first pages.
const FROZEN_HEADROOM: u64 = 64 << 20;
/// Size of the allocation that triggers the memcg OOM in the frozen scenario.
const TRIGGER_BYTES: u64 = 256 << 20;
/// How often the frozen scenario looks at the victim's threads in /proc.
const THREAD_CHECK: Duration = Duration::from_millis(20);
/// The OOM killer's first pick (OOM_SCORE_ADJ_MAX in include/uapi/linux/oom.h).
const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// The OOM scenario's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OomScenario {
    /// The victim.
    pub spec: VictimSpec,
    /// Freeze the victim before the OOM kill.
    pub frozen: bool,
    /// How long to watch a frozen victim after the kill.
    pub frozen_timeout: Duration,
}

impl Recorder {
    /// One OOM episode; the cgroup is removed on every path (Drop).
    pub(super) fn oom_episode(
        &mut self,
        index: u32,
        scenario: &OomScenario,
    ) -> anyhow::Result<Episode> {
        let name = crate::scenario::cgroup::owned_name(std::process::id(), index);
        let cgroup = OwnedCgroup::create(&name, scenario.frozen)
            .context("refusing to trigger an OOM without a memory cgroup of reaper's own")?;
        let result = if scenario.frozen {
            self.frozen_oom(index, scenario, &cgroup)
        } else {
            self.plain_oom(index, scenario, &cgroup)
        };
        let problems = cgroup.remove();
        if !problems.is_empty() {
            anyhow::bail!("cleaning up cgroup {name}: {}", problems.join("; "));
        }
        result
    }

    /// Waits for the reaper's verdict on `victim_pid` (start/finish or skip).
    fn wait_for_reaper(&mut self, events: &mut Vec<TimelineEvent>, victim_pid: u32) {
        let done = |e: &TimelineEvent| {
            e.arg == i64::from(victim_pid)
                && (e.kind == TimelineKind::OomFinishReaping as u32
                    || e.kind == TimelineKind::OomSkipReaping as u32)
        };
        self.wait_events(events, Instant::now() + REAPER_WAIT, done);
    }

    fn plain_oom(
        &mut self,
        index: u32,
        scenario: &OomScenario,
        cgroup: &OwnedCgroup,
    ) -> anyhow::Result<Episode> {
        let limit = scenario.spec.bytes / 10 * 9 / 4096 * 4096;
        cgroup.set_memory_limit(Some(limit))?;
        let options = SpawnOptions {
            join: cgroup.procs_files(false),
            oom_score_adj: Some(OOM_SCORE_ADJ_MAX),
            wait_go: true,
            comm: None,
            exit_on_stdin: false,
        };
        let mut victim = victim::spawn_with(&scenario.spec, &options)?;
        let pid = victim.pid;
        // Unarmed: the victim counts from its oom:mark_victim on, not while
        // it populates.
        let mut setup = self.begin_episode(index, pid, victim::VICTIM_COMM, false)?;
        warn_without_oom_reaper(&setup);
        self.drop_stale_events();
        let start_ns = pidfd::monotonic_ns();
        victim.go()?;
        let fd = pidfd::open(pid)?;
        let (exited, peak_usage) = self.wait_oom_exit(&fd, cgroup, &mut setup.events);
        victim.kill_and_reap();
        self.wait_for_reaper(&mut setup.events, pid);
        let kill_ns = mark_victim_ns(&setup.events, pid);
        if kill_ns.is_none() {
            log::warn!(
                "no oom:mark_victim event for pid {pid}: the OOM killer did not pick it (or the tracepoint is missing)"
            );
        }
        // Snapshotted before it populated: its size is the cgroup's peak.
        setup.victim = VictimInfo {
            pid,
            comm: victim::VICTIM_COMM.into(),
            rss_bytes: peak_usage,
            threads: scenario.spec.threads,
            vmas: scenario.spec.vmas,
        };
        let end = EpisodeEnd::killed(kill_ns.unwrap_or(start_ns), None, exited);
        self.finish_episode(setup, end)
    }

    /// Collects events until the victim exits (OOM-killed while it
    /// populates), [`OOM_KILL_TIMEOUT`] passes or the user stops; returns
    /// whether it exited and the cgroup's peak memory usage meanwhile.
    fn wait_oom_exit(
        &mut self,
        fd: &OwnedFd,
        cgroup: &OwnedCgroup,
        events: &mut Vec<TimelineEvent>,
    ) -> (bool, u64) {
        let mut peak_usage = 0;
        let deadline = Instant::now() + OOM_KILL_TIMEOUT;
        while Instant::now() < deadline && !interrupt::stop_requested() {
            peak_usage = peak_usage.max(cgroup.memory_usage());
            if pidfd::wait_exit(fd, 10) {
                return (true, peak_usage);
            }
            self.timeline.poll(events);
        }
        (false, peak_usage)
    }

    fn frozen_oom(
        &mut self,
        index: u32,
        scenario: &OomScenario,
        cgroup: &OwnedCgroup,
    ) -> anyhow::Result<Episode> {
        cgroup.set_memory_limit(Some(scenario.spec.bytes + FROZEN_HEADROOM))?;
        let options = SpawnOptions {
            join: cgroup.procs_files(true),
            oom_score_adj: Some(OOM_SCORE_ADJ_MAX),
            wait_go: false,
            comm: None,
            exit_on_stdin: false,
        };
        let mut victim = victim::spawn_with(&scenario.spec, &options)?;
        victim.wait_ready()?;
        let pid = victim.pid;
        let mut setup = self.begin_episode(index, pid, victim::VICTIM_COMM, true)?;
        warn_without_oom_reaper(&setup);
        // Declared after the victim, so on an early return it is dropped
        // first: the victim thaws before its guard kills and reaps it.
        let frozen = cgroup.freeze(Duration::from_secs(5))?;
        self.drop_stale_events();
        let start_ns = pidfd::monotonic_ns();
        let mut trigger = spawn_trigger(cgroup)?;
        let watched = self.watch_frozen_threads(&mut setup, scenario.frozen_timeout);
        if watched.kill_ns.is_some() {
            self.wait_for_reaper(&mut setup.events, pid);
        }
        // Thaw and clean up: the victim may be stuck frozen on old kernels.
        cgroup.set_memory_limit(None)?;
        frozen.thaw()?;
        victim.kill_and_reap();
        trigger.kill_and_reap();
        if watched.kill_ns.is_none() {
            log::warn!(
                "the memcg OOM did not kill the frozen victim {pid} within {OOM_KILL_TIMEOUT:?}"
            );
        }
        let end = EpisodeEnd {
            frozen: Some(watched.outcome(setup.threads.len() as u32, scenario.frozen_timeout)),
            ..EpisodeEnd::killed(
                watched.kill_ns.unwrap_or(start_ns),
                None,
                watched.kill_ns.is_some(),
            )
        };
        self.finish_episode(setup, end)
    }

    /// Collects events and watches the frozen victim's threads in /proc
    /// until every thread is gone after the OOM kill, `timeout` after the
    /// kill, [`OOM_KILL_TIMEOUT`] without one, or the user stops.
    fn watch_frozen_threads(&mut self, setup: &mut EpisodeSetup, timeout: Duration) -> ThreadWatch {
        let pid = setup.victim.pid;
        let mut fates: BTreeMap<u32, Option<u64>> =
            setup.threads.iter().map(|&t| (t, None)).collect();
        let mut deadline = Instant::now() + OOM_KILL_TIMEOUT;
        let mut kill_ns: Option<u64> = None;
        loop {
            self.timeline.poll(&mut setup.events);
            if kill_ns.is_none()
                && let Some(ns) = mark_victim_ns(&setup.events, pid)
            {
                kill_ns = Some(ns);
                deadline = Instant::now() + timeout;
            }
            if let Some(kill_ns) = kill_ns {
                note_thread_exits(&mut fates, kill_ns);
            }
            let all_gone = kill_ns.is_some() && fates.values().all(Option::is_some);
            if all_gone || Instant::now() > deadline || interrupt::stop_requested() {
                break;
            }
            // Thread exits show in /proc, not in the timeline: look again
            // after a short wait that still wakes on events and Ctrl-C.
            self.wait_events(&mut setup.events, Instant::now() + THREAD_CHECK, |_| false);
        }
        let still = fates
            .iter()
            .filter(|(_, f)| f.is_none())
            .filter_map(|(&tid, _)| procfs::stat(tid).map(|s| (tid, s.state)))
            .collect();
        ThreadWatch {
            kill_ns,
            fates,
            still,
        }
    }
}

/// Starts the frozen scenario's trigger: a far smaller process (default
/// oom_score_adj) in the memory cgroup only, whose allocations make the
/// memcg OOM kill the frozen victim.
fn spawn_trigger(cgroup: &OwnedCgroup) -> anyhow::Result<victim::SpawnedVictim> {
    let spec = VictimSpec {
        bytes: TRIGGER_BYTES,
        vmas: 1,
        threads: 1,
    };
    let options = SpawnOptions {
        join: cgroup.procs_files(false),
        oom_score_adj: None,
        wait_go: false,
        comm: Some("reaper-trigger".into()),
        exit_on_stdin: false,
    };
    Ok(victim::spawn_with(&spec, &options)?)
}

/// Marks each thread of `fates` that is gone now (exited, or a zombie) as
/// exited now, in ms after the kill at `kill_ns`.
fn note_thread_exits(fates: &mut BTreeMap<u32, Option<u64>>, kill_ns: u64) {
    let now_ms = pidfd::monotonic_ns().saturating_sub(kill_ns) / 1_000_000;
    for (tid, fate) in fates.iter_mut().filter(|(_, f)| f.is_none()) {
        if procfs::stat(*tid).is_none_or(|s| matches!(s.state, 'Z' | 'X')) {
            *fate = Some(now_ms);
        }
    }
}

/// What the frozen scenario saw of the victim's threads.
struct ThreadWatch {
    /// When the OOM killer marked the victim (`oom:mark_victim`), if it did.
    kill_ns: Option<u64>,
    /// Each thread's exit, in ms after the kill, when seen.
    fates: BTreeMap<u32, Option<u64>>,
    /// Threads still present at the end, with their /proc state.
    still: Vec<(u32, char)>,
}

impl ThreadWatch {
    /// The run file's record of it, for a victim of `threads` threads
    /// watched for `timeout` after the kill.
    fn outcome(&self, threads: u32, timeout: Duration) -> FrozenOutcome {
        let fates = &self.fates;
        FrozenOutcome {
            threads,
            timeout_ms: timeout.as_millis() as u64,
            all_exited_ms: fates
                .values()
                .all(Option::is_some)
                .then(|| fates.values().flatten().copied().max().unwrap_or(0)),
            thread_exits: fates
                .iter()
                .map(|(&tid, &exited_ms)| ThreadFate {
                    tid,
                    exited_ms,
                    state_at_timeout: self.still.iter().find(|(t, _)| *t == tid).map(|&(_, s)| s),
                })
                .collect(),
            still_present_at_timeout: self.still.iter().map(|&(t, _)| t).collect(),
        }
    }
}

/// The oom_reaper's work cannot be attributed without its kthread.
fn warn_without_oom_reaper(setup: &EpisodeSetup) {
    if !setup.tracks_oom_reaper() {
        log::warn!("no oom_reaper kernel thread found; its work cannot be attributed");
    }
}

/// Timestamp of `oom:mark_victim` for `pid`.
fn mark_victim_ns(events: &[TimelineEvent], pid: u32) -> Option<u64> {
    events
        .iter()
        .find(|e| e.kind == TimelineKind::OomMarkVictim as u32 && e.arg == i64::from(pid))
        .map(|e| e.ts_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_still_frozen_at_the_timeout_leaves_all_exited_unset() {
        let watched = ThreadWatch {
            kill_ns: Some(1),
            fates: BTreeMap::from([(10, Some(3)), (11, None), (12, Some(7))]),
            still: vec![(11, 'D')],
        };
        let outcome = watched.outcome(3, Duration::from_secs(10));
        assert_eq!(outcome.threads, 3);
        assert_eq!(outcome.timeout_ms, 10_000);
        assert_eq!(outcome.all_exited_ms, None);
        assert_eq!(outcome.still_present_at_timeout, [11]);
        let fates: Vec<_> = outcome
            .thread_exits
            .iter()
            .map(|f| (f.tid, f.exited_ms, f.state_at_timeout))
            .collect();
        assert_eq!(
            fates,
            [
                (10, Some(3), None),
                (11, None, Some('D')),
                (12, Some(7), None)
            ]
        );
    }

    #[test]
    fn every_thread_gone_gives_the_last_exit() {
        let watched = ThreadWatch {
            kill_ns: Some(1),
            fates: BTreeMap::from([(10, Some(3)), (11, Some(9))]),
            still: Vec::new(),
        };
        let outcome = watched.outcome(2, Duration::from_secs(1));
        assert_eq!(outcome.all_exited_ms, Some(9));
        assert!(outcome.still_present_at_timeout.is_empty());
    }
}
