//! `record --watch`: record every teardown on the system without triggering
//! anything, until Ctrl-C or `--duration`.
//!
//! The kernel side tracks by itself while the SETTINGS watch flag is on:
//! SIGKILL targets and OOM victims (owned by their own tgid), and
//! process_mrelease callers for the duration of the call (owned by the
//! caller's tgid). Userspace drains the aggregates every poll into per-owner
//! accumulators and assembles episodes from the timeline:
//! - an OOM kill (`oom:mark_victim`) is an episode of its victim;
//! - a process_mrelease call is an episode of the process its pidfd names
//!   (read from the caller's /proc fdinfo, else the caller's latest SIGKILL).
//!
//! An episode is finished once its victim's task_struct is freed; killed
//! processes that no mrelease or OOM kill followed are dropped and counted.
//! At most `max_episodes` are kept; older ones are evicted and counted, so
//! memory stays bounded however long it runs.
//!
//! Ordinary exits (`--comm NAME`, `--min-rss SIZE`): every [`POLL`] the
//! watcher lists /proc and follows each process that matches the filters
//! (comm, and resident size from /proc/PID/statm) before it exits: tracked
//! unarmed, owned by itself, so nothing it does while it lives counts, and
//! armed by the kernel side when its own exit begins (`exit_group`, a
//! thread's `sched_process_exit`). Its exit is then an episode like a kill
//! (t = 0: the exit's first sign), with its last /proc reading as the RSS at
//! t = 0. A process that grows past `--min-rss` and exits within one poll is
//! not seen. The filters also apply to OOM and `process_mrelease` episodes
//! (a victim whose comm differs, or whose RSS at t = 0 is below the size, is
//! counted as filtered out). SIGKILLs that no reaper follows, of processes
//! the filters did not select, are counted only: their size cannot be read
//! in time from /proc (a killed process is gone within milliseconds).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, Instant},
};

use reaper_common::{
    context::{CONTEXT_MRELEASE_CALLER, CONTEXT_OOM_REAPER, CONTEXT_VICTIM_EXIT},
    timeline::{TimelineEvent, TimelineKind},
    tracking::tag_owner,
};

use super::{
    Recorder,
    drain_pacing::DrainPacer,
    interrupt,
    setup::{self, EpisodeEnd, EpisodeSetup},
    watch_accumulator::{Accumulator, merge},
};
use crate::{
    model::{Episode, VictimInfo, WatchSummary},
    probes::{attach, collect, program_stats},
};

/// How often the watcher polls and drains.
const POLL: Duration = Duration::from_millis(100);
/// How long a SIGKILLed process may wait for a process_mrelease or OOM kill
/// after its exit before it is dropped as a plain kill.
const PAIRING_GRACE: Duration = Duration::from_secs(2);
/// Most processes followed at once (kills in flight).
const MAX_CANDIDATES: usize = 4096;

/// Most processes followed at once for their ordinary exit (each takes a
/// tracking-map entry; the map holds 1024).
const MAX_FOLLOWED_EXITS: usize = 256;

/// `--watch` parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchSettings {
    /// Stop after this long (None: until Ctrl-C).
    pub duration: Option<Duration>,
    /// Episodes kept in the run; older ones are evicted (counted).
    pub max_episodes: usize,
    /// `--comm` / `--min-rss`: which victims count, and the ordinary exits
    /// to follow.
    pub filter: ExitFilter,
}

/// A process name as the kernel keeps it: at most 15 bytes
/// (`TASK_COMM_LEN` - 1), NUL-padded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Comm([u8; 16]);

impl Comm {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(15);
        std::str::from_utf8(&self.0[..end]).unwrap_or("")
    }
}

/// A `--comm` value the kernel could never report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommError {
    /// An empty name.
    #[error("--comm needs a process name")]
    Empty,
    /// Longer than the kernel keeps.
    #[error(
        "--comm {name:?}: the kernel keeps at most 15 bytes of a process name (TASK_COMM_LEN); give {:?}",
        String::from_utf8_lossy(&name.as_bytes()[..15])
    )]
    TooLong {
        /// The name as given.
        name: String,
    },
}

impl std::str::FromStr for Comm {
    type Err = CommError;

    fn from_str(name: &str) -> Result<Self, CommError> {
        if name.is_empty() {
            return Err(CommError::Empty);
        }
        if name.len() > 15 {
            return Err(CommError::TooLong {
                name: name.to_owned(),
            });
        }
        let mut raw = [0; 16];
        raw[..name.len()].copy_from_slice(name.as_bytes());
        Ok(Self(raw))
    }
}

/// Which watched victims count, and which ordinary exits are followed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitFilter {
    /// Only victims of this comm.
    pub comm: Option<Comm>,
    /// Only victims at least this resident at t = 0, bytes.
    pub min_rss: Option<u64>,
}

impl ExitFilter {
    /// Whether ordinary exits are followed (any filter given).
    pub fn follows_exits(&self) -> bool {
        self.comm.is_some() || self.min_rss.is_some()
    }

    /// Whether a victim of this comm and RSS (bytes) counts.
    pub fn admits(&self, comm: &str, rss: u64) -> bool {
        self.comm.is_none_or(|c| c.as_str() == comm) && self.min_rss.is_none_or(|m| rss >= m)
    }
}

/// A process the kernel side is following.
#[derive(Debug)]
struct Candidate {
    /// The process at first sight (from /proc; its comm may be empty).
    victim: VictimInfo,
    /// Tgid and comm of the SIGKILL's sender.
    killed_by: Option<(u32, String)>,
    /// t0 of its episode: the SIGKILL or the OOM kill, ns.
    kill_ns: u64,
    /// What makes it an episode, once known.
    trigger: Option<String>,
    /// The caller tgid of a process_mrelease on it.
    caller: Option<(u32, u32, String)>,
    /// Whether the OOM killer picked it.
    oom: bool,
    /// Followed for its ordinary exit (`--comm`, `--min-rss`) before any
    /// kill: tracked unarmed, armed when its exit begins.
    natural: bool,
    /// When its own exit began (ns), for a followed process.
    exit_began_ns: Option<u64>,
    /// Its resident counters from /proc, last read while it had an mm.
    rss_start: Option<super::reclaim::Members>,
    /// When its task_struct was freed.
    freed_at: Option<Instant>,
    /// Its events so far.
    events: Vec<TimelineEvent>,
}

impl Candidate {
    /// Killed, or its followed exit began, and not yet freed.
    fn tearing_down(&self) -> bool {
        self.freed_at.is_none() && (!self.natural || self.exit_began_ns.is_some())
    }
}

/// The kernel's counters are system-wide in watch mode: each episode gets
/// what accrued since the previous episode was finished.
#[derive(Default)]
struct CounterLedger {
    total: BTreeMap<String, u64>,
    reported: BTreeMap<String, u64>,
}

impl CounterLedger {
    fn add(&mut self, drained: &BTreeMap<String, u64>) {
        for (name, value) in drained {
            *self.total.entry(name.clone()).or_default() += value;
        }
    }

    fn since_last_episode(&mut self) -> BTreeMap<String, u64> {
        let delta = self
            .total
            .iter()
            .map(|(name, &v)| {
                (
                    name.clone(),
                    v - self.reported.get(name).copied().unwrap_or(0),
                )
            })
            .collect();
        self.reported.clone_from(&self.total);
        delta
    }
}

/// Everything the watch loop carries between polls.
#[derive(Default)]
struct WatchState {
    candidates: HashMap<u32, Candidate>,
    /// Candidates in arrival order, for eviction.
    order: VecDeque<u32>,
    acc: Accumulator,
    episodes: VecDeque<Episode>,
    summary: WatchSummary,
    counters: CounterLedger,
    pacer: DrainPacer,
}

/// The pid a pidfd of process `tgid` refers to, from /proc fdinfo.
pub(crate) fn pidfd_target(tgid: u32, fd: i64) -> Option<u32> {
    let info = std::fs::read_to_string(format!("/proc/{tgid}/fdinfo/{fd}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A NUL-padded comm as text.
pub(crate) fn comm_of(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl Recorder {
    /// Watches until Ctrl-C or the duration; returns the episodes and a summary.
    pub fn watch_loop(
        &mut self,
        settings: &WatchSettings,
    ) -> anyhow::Result<(Vec<Episode>, WatchSummary, bool)> {
        attach::attach_watch(&mut self.ebpf, &mut self.attach, &self.raw);
        self.symbolizer
            .set_programs(crate::probes::program_symbols::of_loaded(&self.ebpf));
        collect::clear_tracking(&mut self.ebpf)?;
        self.track_oom_reaper()?;
        collect::set_watch(&mut self.ebpf, true)?;
        let filter = &settings.filter;
        let what = match (filter.comm, filter.min_rss) {
            (None, None) => String::new(),
            (comm, rss) => format!(
                ", and the ordinary exits of {}{}",
                comm.map_or_else(|| "processes".to_owned(), |c| format!("{:?}", c.as_str())),
                rss.map_or_else(String::new, |r| format!(" resident above {} MiB", r >> 20))
            ),
        };
        crate::console::info(format_args!(
            "watching every teardown (OOM kills, process_mrelease calls{what}); Ctrl-C to stop"
        ));
        let started = Instant::now();
        let skipped_before = program_stats::recursion_misses(&self.ebpf);
        let mut state = WatchState::default();
        let mut interrupted = false;
        loop {
            if interrupt::stop_requested() {
                interrupted = true;
                break;
            }
            if settings.duration.is_some_and(|d| started.elapsed() >= d) {
                break;
            }
            // Events as they come, the aggregates every POLL, Ctrl-C at once.
            let mut events = Vec::new();
            self.wait_events(&mut events, Instant::now() + POLL, |_| false);
            for event in events {
                self.route_event(event, &mut state.candidates, &mut state.order);
            }
            while state.candidates.len() > MAX_CANDIDATES {
                if let Some(old) = state.order.pop_front()
                    && let Some(c) = state.candidates.remove(&old)
                {
                    if !c.natural {
                        state.summary.plain_kills_ignored += 1;
                    }
                    collect::untrack(&mut self.ebpf, old)?;
                }
            }
            if settings.filter.follows_exits() {
                self.follow_exits(&mut state, &settings.filter)?;
            }
            self.drain_and_finish(&mut state, settings, false)?;
        }
        collect::set_watch(&mut self.ebpf, false)?;
        self.drain_and_finish(&mut state, settings, true)?;
        let WatchState {
            candidates,
            episodes,
            mut summary,
            ..
        } = state;
        summary.plain_kills_ignored += candidates.values().filter(|c| !c.natural).count() as u64;
        collect::clear_tracking(&mut self.ebpf)?;
        summary.watched_s = started.elapsed().as_secs();
        summary.skipped_probe_runs = self.probe_runs_skipped_since(&skipped_before);
        Ok((episodes.into(), summary, interrupted))
    }

    /// Lists /proc for processes the filters select that are not followed
    /// yet, and follows them (tracked unarmed, owned by themselves); re-reads
    /// the resident counters of those followed, while they have an mm.
    fn follow_exits(&mut self, state: &mut WatchState, filter: &ExitFilter) -> anyhow::Result<()> {
        let me = std::process::id();
        for (pid, candidate) in state.candidates.iter_mut().filter(|(_, c)| c.natural) {
            if candidate.exit_began_ns.is_none()
                && let Some(members) = crate::system::procfs::rss_members(*pid)
            {
                candidate.rss_start = Some(members);
                candidate.victim.rss_bytes = crate::system::procfs::rss_bytes(*pid);
            }
        }
        let followed = state.candidates.values().filter(|c| c.natural).count();
        let mut room = MAX_FOLLOWED_EXITS.saturating_sub(followed);
        for pid in crate::system::procfs::pids() {
            if room == 0 {
                break;
            }
            if pid == 1 || pid == me || state.candidates.contains_key(&pid) {
                continue;
            }
            let Some(stat) = crate::system::procfs::stat(pid) else {
                continue;
            };
            if stat.is_kernel_thread() || filter.comm.is_some_and(|c| c.as_str() != stat.comm) {
                continue;
            }
            let rss = crate::system::procfs::statm_rss_bytes(pid).unwrap_or(0);
            if filter.min_rss.is_some_and(|m| rss < m) {
                continue;
            }
            collect::track_tgid_owned(&mut self.ebpf, pid, CONTEXT_VICTIM_EXIT, false, pid)?;
            let (victim, _) = setup::snapshot(pid, &stat.comm);
            state.order.push_back(pid);
            state.candidates.insert(
                pid,
                Candidate {
                    victim,
                    killed_by: None,
                    kill_ns: 0,
                    trigger: None,
                    caller: None,
                    oom: false,
                    natural: true,
                    exit_began_ns: None,
                    rss_start: crate::system::procfs::rss_members(pid),
                    freed_at: None,
                    events: Vec::new(),
                },
            );
            room -= 1;
        }
        Ok(())
    }

    /// Files one timeline event under the candidate it concerns, following
    /// the processes SIGKILLed or OOM-killed from now on.
    fn route_event(
        &mut self,
        event: TimelineEvent,
        candidates: &mut HashMap<u32, Candidate>,
        order: &mut VecDeque<u32>,
    ) {
        let Some(kind) = TimelineKind::from_raw(event.kind) else {
            return;
        };
        match kind {
            TimelineKind::SigKill => {
                let killed_by = Some((event.tgid, comm_of(&event.comm)));
                let c = follow(candidates, order, &event, killed_by.clone());
                if c.natural && c.killed_by.is_none() {
                    c.killed_by = killed_by;
                    c.kill_ns = event.ts_ns;
                }
                c.events.push(event);
            }
            TimelineKind::ExitGroup | TimelineKind::ProcessExit => {
                if let Some(c) = candidates.get_mut(&tag_owner(event.context)) {
                    if c.natural {
                        c.exit_began_ns.get_or_insert(event.ts_ns);
                    }
                    c.events.push(event);
                }
            }
            TimelineKind::OomMarkVictim => {
                let c = follow(candidates, order, &event, None);
                c.oom = true;
                c.kill_ns = event.ts_ns;
                c.trigger.get_or_insert_with(|| "OOM kill".into());
                c.events.push(event);
            }
            TimelineKind::MreleaseEnter | TimelineKind::MreleaseExit => {
                route_mrelease(event, kind, candidates);
            }
            TimelineKind::ProcessFree => {
                if let Some(c) = candidates.get_mut(&(event.arg as u32)) {
                    c.freed_at.get_or_insert_with(Instant::now);
                    c.events.push(event);
                }
            }
            _ => {
                let owner = tag_owner(event.context);
                if let Some(c) = candidates.get_mut(&owner) {
                    c.events.push(event);
                } else if let Some(c) = candidates.values_mut().find(|c| {
                    c.caller.as_ref().is_some_and(|(_, tgid, _)| *tgid == owner)
                        || (c.oom && event.arg == i64::from(owner))
                }) {
                    c.events.push(event);
                }
            }
        }
    }

    /// Drains the kernel aggregates into the state, unless a followed
    /// teardown is running ([`DrainPacer`]), and finishes every episode
    /// whose victim is gone (all of them when `closing`).
    fn drain_and_finish(
        &mut self,
        state: &mut WatchState,
        settings: &WatchSettings,
        closing: bool,
    ) -> anyhow::Result<()> {
        let in_flight = state.candidates.values().any(Candidate::tearing_down);
        if !state.pacer.should_drain(in_flight, closing, Instant::now()) {
            return Ok(());
        }
        let raw = collect::drain(&mut self.ebpf)?;
        state.counters.add(&raw.counters);
        state.acc.add(raw);
        self.finish_ready(state, settings, closing)
    }

    /// Finishes every episode whose victim is gone (all of them when
    /// `closing`), from aggregates just drained.
    fn finish_ready(
        &mut self,
        state: &mut WatchState,
        settings: &WatchSettings,
        closing: bool,
    ) -> anyhow::Result<()> {
        let ready: Vec<u32> = state
            .candidates
            .iter()
            .filter(|(_, c)| closing || c.freed_at.is_some_and(|t| t.elapsed() >= POLL * 2))
            .map(|(&pid, _)| pid)
            .collect();
        for pid in ready {
            let Some(c) = state.candidates.remove(&pid) else {
                continue;
            };
            collect::untrack(&mut self.ebpf, pid)?;
            let mut c = c;
            if c.trigger.is_none() && c.natural && c.freed_at.is_some() {
                c.trigger = Some(natural_trigger(&c));
                if c.killed_by.is_none() {
                    c.kill_ns = c
                        .exit_began_ns
                        .or_else(|| c.events.iter().map(|e| e.ts_ns).min())
                        .unwrap_or(c.kill_ns);
                }
            }
            if c.trigger.is_none() {
                // A plain kill: drop it (once its grace has passed). A
                // followed process still alive when the watch ends is none.
                let _ = state.acc.take(pid, CONTEXT_VICTIM_EXIT);
                if c.natural && c.freed_at.is_none() {
                    continue;
                }
                if closing || c.freed_at.is_some_and(|t| t.elapsed() >= PAIRING_GRACE) {
                    state.summary.plain_kills_ignored += 1;
                } else {
                    state.candidates.insert(pid, c);
                }
                continue;
            }
            let episode = self.watched_episode(pid, c, state, closing);
            let rss = episode
                .reclaim
                .as_ref()
                .map_or(episode.victim.rss_bytes, |r| r.rss_at_start_bytes);
            if !settings.filter.admits(&episode.victim.comm, rss) {
                state.summary.filtered_out += 1;
                continue;
            }
            state.summary.episodes_seen += 1;
            state.episodes.push_back(episode);
            while state.episodes.len() > settings.max_episodes {
                state.episodes.pop_front();
                state.summary.episodes_evicted += 1;
            }
        }
        Ok(())
    }

    /// The episode of candidate `pid`, whose trigger is known, built from
    /// the aggregates of its own contexts (and the counters accrued since
    /// the previous episode: they are system-wide in watch mode).
    fn watched_episode(
        &self,
        pid: u32,
        c: Candidate,
        state: &mut WatchState,
        closing: bool,
    ) -> Episode {
        let mut raw = state.acc.take(pid, CONTEXT_VICTIM_EXIT);
        if let Some((_, tgid, _)) = &c.caller {
            merge(&mut raw, state.acc.take(*tgid, CONTEXT_MRELEASE_CALLER));
        }
        if c.oom {
            merge(&mut raw, state.acc.take(0, CONTEXT_OOM_REAPER));
        }
        raw.counters = state.counters.since_last_episode();
        let killer = c
            .killed_by
            .as_ref()
            .filter(|_| !c.oom)
            .map(|(tgid, _)| (*tgid, *tgid));
        let mut victim = c.victim;
        if victim.comm.is_empty() {
            victim.comm = c
                .events
                .iter()
                .find(|e| e.tgid == pid)
                .map_or_else(String::new, |e| comm_of(&e.comm));
        }
        // Threads are not listed: they are gone by the time /proc is read.
        let mut setup = EpisodeSetup::new(state.summary.episodes_seen as u32, victim, Vec::new());
        setup.rss_start = c.rss_start;
        if let Some((tid, _, comm)) = &c.caller {
            setup.list_task(CONTEXT_MRELEASE_CALLER, *tid, comm);
        }
        setup.events = c.events;
        let complete = !closing || c.freed_at.is_some();
        let mut episode =
            self.build_episode(raw, setup, EpisodeEnd::killed(c.kill_ns, killer, complete));
        episode.trigger = c.trigger;
        episode
    }
}

/// The candidate `event.arg` names, followed from now on if it was not:
/// snapshotted from /proc while it still shows there.
fn follow<'a>(
    candidates: &'a mut HashMap<u32, Candidate>,
    order: &mut VecDeque<u32>,
    event: &TimelineEvent,
    killed_by: Option<(u32, String)>,
) -> &'a mut Candidate {
    let pid = event.arg as u32;
    candidates.entry(pid).or_insert_with(|| {
        order.push_back(pid);
        Candidate {
            victim: setup::snapshot(pid, "").0,
            killed_by,
            kill_ns: event.ts_ns,
            trigger: None,
            caller: None,
            oom: false,
            natural: false,
            exit_began_ns: None,
            rss_start: crate::system::procfs::rss_members(pid),
            freed_at: None,
            events: Vec::new(),
        }
    })
}

/// What ended a followed process: its own exit, or a kill no reaper
/// followed.
fn natural_trigger(c: &Candidate) -> String {
    match &c.killed_by {
        Some((tgid, comm)) => format!("SIGKILL by {comm}[{tgid}] (no reaper)"),
        None => match c
            .events
            .iter()
            .find(|e| e.kind == TimelineKind::ExitGroup as u32)
        {
            Some(e) => format!("its own exit (exit_group({}))", e.arg),
            None => "its own exit (or a signal)".to_owned(),
        },
    }
}

/// Files a process_mrelease enter/exit under the candidate its pidfd names
/// (from the caller's /proc fdinfo), else under the caller's own latest
/// kill or the victim its earlier enter named.
fn route_mrelease(
    event: TimelineEvent,
    kind: TimelineKind,
    candidates: &mut HashMap<u32, Candidate>,
) {
    let target = if kind == TimelineKind::MreleaseEnter {
        pidfd_target(event.tgid, event.arg)
    } else {
        None
    };
    let victim = target.filter(|p| candidates.contains_key(p)).or_else(|| {
        candidates
            .iter()
            .filter(|(_, c)| {
                c.caller
                    .as_ref()
                    .is_some_and(|(tid, _, _)| *tid == event.tid)
                    || c.killed_by
                        .as_ref()
                        .is_some_and(|(tgid, _)| *tgid == event.tgid)
            })
            .max_by_key(|(_, c)| c.kill_ns)
            .map(|(&pid, _)| pid)
    });
    if let Some(c) = victim.and_then(|v| candidates.get_mut(&v)) {
        let comm = comm_of(&event.comm);
        c.trigger
            .get_or_insert_with(|| format!("process_mrelease by {comm}[{}]", event.tgid));
        c.caller.get_or_insert((event.tid, event.tgid, comm));
        c.events.push(event);
    }
}
