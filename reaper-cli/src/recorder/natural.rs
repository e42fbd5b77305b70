//! `record --pid P` without `--kill`: profile the teardown of a process
//! that exits by itself (a JVM, a browser tab, a test runner), or that
//! someone else kills and reaps, without causing it.
//!
//! P is tracked from the start but unarmed, so nothing it does while it
//! lives is counted; the kernel side arms it when its own exit begins
//! (`exit_group`, or a thread's `sched_process_exit`; see the eBPF
//! `timeline` probes). Every `process_mrelease` caller on the system is
//! tracked for its call (owned by its tgid), and a call that overlapped P's
//! exit (or whose pidfd /proc shows to be P's) is P's mrelease caller; the
//! `oom_reaper` is tracked as in every episode. While P lives, its resident
//! counters are re-read from /proc, so the reclaim's start is P's RSS just
//! before its exit. t = 0 is the first sign of the exit (see [`exit_began`]).

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use reaper_common::{
    context::{CONTEXT_MRELEASE_CALLER, CONTEXT_VICTIM_EXIT},
    timeline::{TimelineEvent, TimelineKind},
    tracking::{tag_context, tag_owner},
};

use super::{
    LATE_EVENT_GRACE, Recorder, interrupt,
    setup::{EpisodeEnd, EpisodeSetup},
};
use crate::{
    model::Episode,
    probes::{collect, timeline_reader::Wake},
    scenario::pidfd,
    system::procfs,
};

/// How often P's /proc counters are re-read while it lives.
const REFRESH: Duration = Duration::from_millis(100);
/// Re-reads of the resident counters between two of threads and VMAs
/// (a large process's /proc/PID/maps is slow to read).
const SLOW_REFRESH_EVERY: u32 = 10;

/// The first sign that `pid`'s exit began, ns (CLOCK_MONOTONIC): its
/// `exit_group`, a thread's `sched_process_exit`, a resident counter
/// changed by one of its own tasks or a reaper, an OOM kill of it, or a
/// `process_mrelease` call that is its (`callers`).
pub fn exit_began(events: &[TimelineEvent], pid: u32, callers: &BTreeSet<u32>) -> Option<u64> {
    events
        .iter()
        .filter(|e| {
            let Some(kind) = TimelineKind::from_raw(e.kind) else {
                return false;
            };
            let victims = tag_context(e.context) == CONTEXT_VICTIM_EXIT && e.tgid == pid;
            match kind {
                TimelineKind::ExitGroup | TimelineKind::ProcessExit => victims,
                TimelineKind::RssStat => {
                    victims || callers.contains(&tag_owner(e.context)) || tag_owner(e.context) == 0
                }
                TimelineKind::OomMarkVictim => e.arg == i64::from(pid),
                TimelineKind::MreleaseEnter => callers.contains(&e.tgid),
                _ => false,
            }
        })
        .map(|e| e.ts_ns)
        .min()
}

/// The `process_mrelease` callers that reaped `pid`: a call whose pidfd
/// /proc showed to be `pid`'s when it was seen (`targets`), else one that
/// overlapped `pid`'s exit window (`began` → freed).
pub fn callers_of(
    events: &[TimelineEvent],
    pid: u32,
    targets: &[(u32, u32)],
    window: (u64, u64),
) -> BTreeSet<u32> {
    let mut callers = BTreeSet::new();
    for enter in events
        .iter()
        .filter(|e| e.kind == TimelineKind::MreleaseEnter as u32)
    {
        let named = targets.iter().find(|(tid, _)| *tid == enter.tid);
        let exit = events
            .iter()
            .filter(|e| e.kind == TimelineKind::MreleaseExit as u32 && e.tid == enter.tid)
            .map(|e| e.ts_ns)
            .find(|&t| t >= enter.ts_ns)
            .unwrap_or(u64::MAX);
        let overlaps = enter.ts_ns <= window.1 && exit >= window.0;
        let ours = match named {
            Some((_, target)) => *target == pid,
            None => overlaps,
        };
        if ours {
            callers.insert(enter.tgid);
        }
    }
    callers
}

impl Recorder {
    /// Waits for `pid`'s own exit (or Ctrl-C) and profiles its teardown.
    pub(super) fn natural_exit(
        &mut self,
        index: u32,
        pid: u32,
        progress: super::progress::Progress,
    ) -> anyhow::Result<Episode> {
        let stat = procfs::validate_target(pid)?;
        // Unarmed: counted from its exit on.
        let mut setup = self.begin_episode(index, pid, &stat.comm, false)?;
        collect::set_follow_mrelease(&mut self.ebpf, true)?;
        let fd = pidfd::open(pid).with_context(|| format!("pidfd_open({pid})"))?;
        self.drop_stale_events();
        progress.say(format_args!(
            "waiting for pid {pid} ({}, RSS {} MiB) to exit by itself; reaper kills nothing (Ctrl-C stops)",
            setup.victim.comm,
            setup.victim.rss_bytes >> 20
        ));
        let mut targets = Vec::new();
        let outcome = self.wait_natural_exit(&mut setup, &fd, &mut targets);
        collect::set_follow_mrelease(&mut self.ebpf, false)?;
        let (complete, freed_ns) = match outcome {
            NaturalEnd::Freed(at) => (true, Some(at)),
            NaturalEnd::Stopped => (false, None),
        };
        let began_guess = setup
            .events
            .iter()
            .filter(|e| tag_context(e.context) == CONTEXT_VICTIM_EXIT && e.tgid == pid)
            .map(|e| e.ts_ns)
            .min()
            .unwrap_or_else(pidfd::monotonic_ns);
        let window = (began_guess, freed_ns.unwrap_or(u64::MAX));
        let callers = callers_of(&setup.events, pid, &targets, window);
        for caller in &callers {
            if let Some(e) = setup
                .events
                .iter()
                .find(|e| e.kind == TimelineKind::MreleaseEnter as u32 && e.tgid == *caller)
            {
                setup.list_task(
                    CONTEXT_MRELEASE_CALLER,
                    e.tid,
                    &crate::recorder::watch::comm_of(&e.comm),
                );
            }
        }
        let t0 = exit_began(&setup.events, pid, &callers).unwrap_or(began_guess);
        setup.owners = Some(std::iter::once(0).chain(callers.iter().copied()).collect());
        let end = EpisodeEnd::killed(t0, None, complete);
        let mut episode = self.finish_episode(setup, end)?;
        episode.trigger = Some(trigger(&episode.timeline, !callers.is_empty()));
        Ok(episode)
    }

    /// Collects events until `pid` is freed or the user stops; meanwhile
    /// re-reads its /proc counters and names the pidfds of the
    /// `process_mrelease` calls it sees (`targets`: caller tid → pid).
    fn wait_natural_exit(
        &mut self,
        setup: &mut EpisodeSetup,
        fd: &std::os::fd::OwnedFd,
        targets: &mut Vec<(u32, u32)>,
    ) -> NaturalEnd {
        let pid = setup.victim.pid;
        let freed = |e: &TimelineEvent| {
            e.kind == TimelineKind::ProcessFree as u32 && e.arg == i64::from(pid)
        };
        let mut refreshes = 0u32;
        let mut exited_at: Option<Instant> = None;
        loop {
            let seen = setup.events.len();
            let wake = self.wait_events(&mut setup.events, Instant::now() + REFRESH, freed);
            for e in &setup.events[seen..] {
                if e.kind == TimelineKind::MreleaseEnter as u32
                    && let Some(target) = crate::recorder::watch::pidfd_target(e.tgid, e.arg)
                {
                    targets.push((e.tid, target));
                }
            }
            match wake {
                Wake::Done => {
                    let at = setup
                        .events
                        .iter()
                        .rev()
                        .find(|e| freed(e))
                        .map(|e| e.ts_ns);
                    return NaturalEnd::Freed(at.unwrap_or_else(pidfd::monotonic_ns));
                }
                Wake::Stopped => return NaturalEnd::Stopped,
                Wake::Deadline => {}
            }
            if interrupt::stop_requested() {
                return NaturalEnd::Stopped;
            }
            if exited_at.is_none() {
                refresh(setup, refreshes);
                refreshes += 1;
                if pidfd::wait_exit(fd, 0) {
                    exited_at = Some(Instant::now());
                }
            } else if exited_at.is_some_and(|t| t.elapsed() > LATE_EVENT_GRACE * 10) {
                // Exited (the pidfd says so) but its free was never seen.
                log::warn!(
                    "pid {pid} exited but its task_struct was not seen freed; its profile may be incomplete"
                );
                return NaturalEnd::Freed(pidfd::monotonic_ns());
            }
        }
    }
}

/// How the wait for a natural exit ended.
enum NaturalEnd {
    /// The victim's task_struct was freed at this time (ns).
    Freed(u64),
    /// The user stopped reaper first.
    Stopped,
}

/// Re-reads the victim's resident counters (every time) and its threads
/// and VMAs (every [`SLOW_REFRESH_EVERY`]th time), keeping the last
/// readings taken while its mm was still there.
fn refresh(setup: &mut EpisodeSetup, count: u32) {
    let pid = setup.victim.pid;
    if let Some(members) = procfs::rss_members(pid) {
        setup.rss_start = Some(members);
        let rss = procfs::rss_bytes(pid);
        if rss > 0 {
            setup.victim.rss_bytes = rss;
        }
    }
    if count % SLOW_REFRESH_EVERY == SLOW_REFRESH_EVERY - 1 {
        let threads = procfs::threads(pid);
        let vmas = procfs::vma_count(pid);
        if !threads.is_empty() && vmas > 0 {
            setup.victim.threads = threads.len() as u32;
            setup.victim.vmas = vmas;
        }
    }
}

/// What started a natural episode, for people: "exit_group(3)", "exit
/// (sched_process_exit)", with the reaping seen.
fn trigger(timeline: &[crate::model::TimelineEntry], mreleased: bool) -> String {
    let exit_group = timeline.iter().find(|e| e.kind == TimelineKind::ExitGroup);
    let oom = timeline
        .iter()
        .any(|e| e.kind == TimelineKind::OomMarkVictim);
    let how = match (exit_group, oom) {
        (_, true) => "OOM-killed".to_owned(),
        (Some(e), false) => format!("its own exit (exit_group({}))", e.arg),
        (None, false) => "its own exit (or a signal)".to_owned(),
    };
    if mreleased {
        format!("{how}, reaped by process_mrelease")
    } else {
        how
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reaper_common::tracking::tag;

    fn event(
        kind: TimelineKind,
        ts_ns: u64,
        tid: u32,
        tgid: u32,
        context: u32,
        arg: i64,
    ) -> TimelineEvent {
        TimelineEvent {
            ts_ns,
            arg,
            kind: kind as u32,
            context,
            tid,
            tgid,
            ..TimelineEvent::default()
        }
    }

    const P: u32 = 500;

    #[test]
    fn the_exit_begins_at_its_first_sign() {
        let victim = tag(CONTEXT_VICTIM_EXIT, 0);
        let events = [
            event(TimelineKind::ProcessFree, 90, 0, 0, 0, i64::from(P)),
            event(TimelineKind::ExitMmap, 80, P, P, victim, 0),
            event(TimelineKind::ProcessExit, 30, P + 1, P, victim, 0),
            event(TimelineKind::ExitGroup, 20, P + 2, P, victim, 3),
            // Another process's untracked events never count.
            event(TimelineKind::ExitGroup, 5, 9, 9, 0, 0),
        ];
        assert_eq!(exit_began(&events, P, &BTreeSet::new()), Some(20));
        let oom = [
            event(TimelineKind::OomMarkVictim, 10, 1, 1, 0, i64::from(P)),
            event(TimelineKind::ProcessExit, 30, P, P, victim, 0),
        ];
        assert_eq!(exit_began(&oom, P, &BTreeSet::new()), Some(10));
        assert_eq!(exit_began(&[], P, &BTreeSet::new()), None);
    }

    #[test]
    fn a_caller_is_ours_by_its_pidfd_or_else_by_overlap() {
        let caller = tag(CONTEXT_MRELEASE_CALLER, 700);
        let events = [
            event(TimelineKind::MreleaseEnter, 100, 701, 700, caller, 5),
            event(TimelineKind::MreleaseExit, 200, 701, 700, caller, 0),
            event(
                TimelineKind::MreleaseEnter,
                400,
                801,
                800,
                tag(CONTEXT_MRELEASE_CALLER, 800),
                5,
            ),
            event(
                TimelineKind::MreleaseExit,
                450,
                801,
                800,
                tag(CONTEXT_MRELEASE_CALLER, 800),
                0,
            ),
        ];
        // Overlap with the exit window [150, 300]: 700 yes, 800 no.
        assert_eq!(
            callers_of(&events, P, &[], (150, 300)),
            BTreeSet::from([700])
        );
        // A pidfd naming another process wins over the overlap.
        assert_eq!(
            callers_of(&events, P, &[(701, 12)], (150, 300)),
            BTreeSet::new()
        );
        // A pidfd naming P wins too.
        assert_eq!(
            callers_of(&events, P, &[(801, P)], (150, 300)),
            BTreeSet::from([700, 800])
        );
    }
}
