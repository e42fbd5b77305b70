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
    time::{Duration, Instant},
};

use anyhow::Context as _;
use reaper_common::timeline::{TimelineEvent, TimelineKind};

use super::{EpisodeParts, Recorder, interrupt};
use crate::{
    model::{Episode, FrozenOutcome, ThreadFate, VictimInfo},
    scenario::{
        cgroup::OwnedCgroup,
        pidfd,
        size::VictimSpec,
        victim::{self, SpawnOptions},
    },
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
        };
        let mut victim = victim::spawn_with(&scenario.spec, &options)?;
        // Unarmed: the victim counts from its oom:mark_victim on, not while
        // it populates.
        let setup = self.begin_episode(victim.pid, victim::VICTIM_COMM, false)?;
        warn_without_oom_reaper(&setup);
        let mut events = Vec::new();
        self.timeline.poll(&mut Vec::new());
        let start_ns = pidfd::monotonic_ns();
        victim.go()?;
        let fd = pidfd::open(victim.pid)?;
        let mut peak_usage = 0;
        let deadline = Instant::now() + OOM_KILL_TIMEOUT;
        let mut exited = false;
        while Instant::now() < deadline && !interrupt::stop_requested() {
            peak_usage = peak_usage.max(cgroup.memory_usage());
            if pidfd::wait_exit(&fd, 10) {
                exited = true;
                break;
            }
            self.timeline.poll(&mut events);
        }
        victim.kill_and_reap();
        let pid = victim.pid;
        self.wait_for_reaper(&mut events, pid);
        let kill_ns = mark_victim_ns(&events, pid).unwrap_or(start_ns);
        let info = VictimInfo {
            pid,
            comm: victim::VICTIM_COMM.into(),
            rss_bytes: peak_usage,
            threads: scenario.spec.threads,
            vmas: scenario.spec.vmas,
        };
        if mark_victim_ns(&events, pid).is_none() {
            log::warn!(
                "no oom:mark_victim event for pid {pid}: the OOM killer did not pick it (or the tracepoint is missing)"
            );
        }
        self.finish_episode(EpisodeParts {
            index,
            victim: info,
            tasks: setup.tasks,
            events,
            kill_ns,
            killer: None,
            complete: exited,
            frozen: None,
            mrelease_ret: None,
        })
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
        };
        let mut victim = victim::spawn_with(&scenario.spec, &options)?;
        victim.wait_ready()?;
        let pid = victim.pid;
        let setup = self.begin_episode(pid, victim::VICTIM_COMM, true)?;
        warn_without_oom_reaper(&setup);
        let threads = setup.threads.clone();
        cgroup.freeze(Duration::from_secs(5))?;
        self.timeline.poll(&mut Vec::new());

        let trigger_spec = VictimSpec {
            bytes: TRIGGER_BYTES,
            vmas: 1,
            threads: 1,
        };
        let trigger_options = SpawnOptions {
            join: cgroup.procs_files(false),
            oom_score_adj: None,
            wait_go: false,
            comm: Some("reaper-trigger".into()),
        };
        let start_ns = pidfd::monotonic_ns();
        let mut trigger = victim::spawn_with(&trigger_spec, &trigger_options)?;
        let mut events = Vec::new();
        let mut fates: BTreeMap<u32, Option<u64>> = threads.iter().map(|&t| (t, None)).collect();
        let mut watch_deadline = Instant::now() + OOM_KILL_TIMEOUT;
        let mut kill_seen: Option<u64> = None;
        loop {
            self.timeline.poll(&mut events);
            if kill_seen.is_none()
                && let Some(ns) = mark_victim_ns(&events, pid)
            {
                kill_seen = Some(ns);
                watch_deadline = Instant::now() + scenario.frozen_timeout;
            }
            let now_ms =
                kill_seen.map_or(0, |k| pidfd::monotonic_ns().saturating_sub(k) / 1_000_000);
            for (tid, fate) in fates.iter_mut().filter(|(_, f)| f.is_none()) {
                let gone = procfs::stat(*tid).is_none_or(|s| matches!(s.state, 'Z' | 'X'));
                if gone && kill_seen.is_some() {
                    *fate = Some(now_ms);
                }
            }
            let all_gone = kill_seen.is_some() && fates.values().all(Option::is_some);
            if all_gone || Instant::now() > watch_deadline || interrupt::stop_requested() {
                break;
            }
            // Thread exits show in /proc, not in the timeline: look again
            // after a short wait that still wakes on events and Ctrl-C.
            self.wait_events(&mut events, Instant::now() + THREAD_CHECK, |_| false);
        }
        let still: Vec<(u32, char)> = fates
            .iter()
            .filter(|(_, f)| f.is_none())
            .filter_map(|(&tid, _)| procfs::stat(tid).map(|s| (tid, s.state)))
            .collect();
        if kill_seen.is_some() {
            self.wait_for_reaper(&mut events, pid);
        }
        // Thaw and clean up: the victim may be stuck frozen on old kernels.
        cgroup.set_memory_limit(None)?;
        cgroup.thaw()?;
        victim.kill_and_reap();
        trigger.kill_and_reap();
        let outcome = FrozenOutcome {
            threads: threads.len() as u32,
            timeout_ms: scenario.frozen_timeout.as_millis() as u64,
            all_exited_ms: fates
                .values()
                .all(Option::is_some)
                .then(|| fates.values().flatten().copied().max().unwrap_or(0)),
            thread_exits: fates
                .iter()
                .map(|(&tid, &exited_ms)| ThreadFate {
                    tid,
                    exited_ms,
                    state_at_timeout: still.iter().find(|(t, _)| *t == tid).map(|&(_, s)| s),
                })
                .collect(),
            still_present_at_timeout: still.iter().map(|&(t, _)| t).collect(),
        };
        if kill_seen.is_none() {
            log::warn!(
                "the memcg OOM did not kill the frozen victim {pid} within {OOM_KILL_TIMEOUT:?}"
            );
        }
        let complete = kill_seen.is_some();
        self.finish_episode(EpisodeParts {
            index,
            victim: setup.victim,
            tasks: setup.tasks,
            events,
            kill_ns: kill_seen.unwrap_or(start_ns),
            killer: None,
            complete,
            frozen: Some(outcome),
            mrelease_ret: None,
        })
    }
}

/// The oom_reaper's work cannot be attributed without its kthread.
fn warn_without_oom_reaper(setup: &super::setup::EpisodeSetup) {
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
