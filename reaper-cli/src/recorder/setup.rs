//! The set-up every episode shares, whatever triggers the kill (reaper's
//! own race, the OOM killer, a teardown seen by `--watch`): the victim's
//! snapshot (threads, RSS, VMAs), the tracked tasks listed per context for
//! the report, and the events collected until the end; plus, for triggered
//! episodes, the tracking itself (the previous episode's cleared, the victim
//! and the `oom_reaper` kthread tracked).

use std::collections::BTreeMap;

use reaper_common::{
    context::{CONTEXT_OOM_REAPER, CONTEXT_VICTIM_EXIT},
    timeline::TimelineEvent,
};

use super::{Recorder, episode::Killer};
use crate::{
    model::{FrozenOutcome, TaskRef, VictimInfo},
    probes::{collect, program_stats},
    system::procfs,
};

/// What an episode knows before its kill, and the events collected since.
pub struct EpisodeSetup {
    /// 0-based episode index.
    pub index: u32,
    /// The victim as it was at set-up.
    pub victim: VictimInfo,
    /// The victim's thread ids at set-up.
    pub threads: Vec<u32>,
    /// Tracked tasks by context id.
    pub tasks: BTreeMap<u32, Vec<TaskRef>>,
    /// Timeline events collected during the episode.
    pub events: Vec<TimelineEvent>,
    /// The programs' skipped-run counters at set-up
    /// ([`crate::probes::program_stats`]); `None` where the episode has no
    /// set-up moment to count from (`--watch` builds it afterwards).
    pub skipped_runs_before: Option<BTreeMap<String, u64>>,
    /// The programs' run statistics at set-up, when `--program-cost`
    /// switched them on; `None` otherwise.
    pub program_runs_before: Option<BTreeMap<String, crate::model::ProgramCost>>,
    /// The victim's resident counters from /proc before t = 0, for the
    /// reclaim's first drops (`None`: unreadable).
    pub rss_start: Option<super::reclaim::Members>,
    /// The owners whose tagged data belongs to this episode; `None`: all.
    /// Set when the kernel side tracked tasks by itself (owner = their
    /// tgid) beside reaper's own (owner 0).
    pub owners: Option<std::collections::BTreeSet<u32>>,
}

/// How an episode ended: with its [`EpisodeSetup`], all that
/// [`Recorder::finish_episode`] needs.
pub struct EpisodeEnd {
    /// CLOCK_MONOTONIC ns of the kill (t = 0 of the timeline).
    pub kill_ns: u64,
    /// reaper's killing thread, or `None` for the kernel's OOM killer.
    pub killer: Killer,
    /// False when the victim did not finish exiting in time.
    pub complete: bool,
    /// The frozen scenario's outcome.
    pub frozen: Option<FrozenOutcome>,
    /// What `process_mrelease` returned (negative errno), when it was called.
    pub mrelease_ret: Option<i64>,
}

impl EpisodeEnd {
    /// The end of an episode that reaper did not race with
    /// `process_mrelease` and that has no frozen outcome.
    pub fn killed(kill_ns: u64, killer: Killer, complete: bool) -> Self {
        Self {
            kill_ns,
            killer,
            complete,
            frozen: None,
            mrelease_ret: None,
        }
    }
}

/// `pid` as /proc shows it now, and its thread ids; `comm` names it when
/// /proc cannot (it may already be gone).
pub fn snapshot(pid: u32, comm: &str) -> (VictimInfo, Vec<u32>) {
    let comm = procfs::stat(pid).map_or_else(|| comm.to_owned(), |s| s.comm);
    let threads = procfs::threads(pid);
    let victim = VictimInfo {
        pid,
        comm,
        rss_bytes: procfs::rss_bytes(pid),
        threads: threads.len() as u32,
        vmas: procfs::vma_count(pid),
    };
    (victim, threads)
}

/// A context's task list: `tids`, all named `comm`.
fn task_list(tids: &[u32], comm: &str) -> Vec<TaskRef> {
    tids.iter()
        .map(|&tid| TaskRef {
            tid,
            comm: comm.to_owned(),
        })
        .collect()
}

impl EpisodeSetup {
    /// The set-up of episode `index` of `victim`, listing `threads` (its
    /// pid when none are known) as the victim's tasks.
    pub fn new(index: u32, victim: VictimInfo, threads: Vec<u32>) -> Self {
        let listed = if threads.is_empty() {
            vec![victim.pid]
        } else {
            threads.clone()
        };
        let tasks = BTreeMap::from([(CONTEXT_VICTIM_EXIT, task_list(&listed, &victim.comm))]);
        Self {
            index,
            victim,
            threads,
            tasks,
            events: Vec::new(),
            skipped_runs_before: None,
            program_runs_before: None,
            rss_start: None,
            owners: None,
        }
    }

    /// Lists `tid` as the one task of `context` (tracked by the caller).
    pub fn list_task(&mut self, context: u32, tid: u32, comm: &str) {
        self.tasks.insert(context, task_list(&[tid], comm));
    }

    /// Whether the `oom_reaper` kthread was found and tracked.
    pub fn tracks_oom_reaper(&self) -> bool {
        self.tasks.contains_key(&CONTEXT_OOM_REAPER)
    }
}

impl Recorder {
    /// Episode `index`'s set-up: clears tracking, snapshots `pid` and tracks
    /// it as the victim (`armed`: counted from now; unarmed: from the
    /// kernel's first OOM event for it) and the `oom_reaper` kthread. `comm`
    /// names the victim when /proc cannot.
    pub(super) fn begin_episode(
        &mut self,
        index: u32,
        pid: u32,
        comm: &str,
        armed: bool,
    ) -> anyhow::Result<EpisodeSetup> {
        collect::clear_tracking(&mut self.ebpf)?;
        let (victim, threads) = snapshot(pid, comm);
        collect::track_tgid_armed(&mut self.ebpf, pid, CONTEXT_VICTIM_EXIT, armed)?;
        let mut setup = EpisodeSetup::new(index, victim, threads);
        setup.rss_start = procfs::rss_members(pid);
        setup.skipped_runs_before = Some(program_stats::recursion_misses(&self.ebpf));
        setup.program_runs_before = self.program_runs_now();
        if let Some(tid) = self.track_oom_reaper()? {
            setup.list_task(
                CONTEXT_OOM_REAPER,
                tid,
                reaper_common::context::OOM_REAPER_KTHREAD,
            );
        }
        Ok(setup)
    }

    /// The runs of reaper's programs the kernel skipped since `before` (a
    /// [`program_stats::recursion_misses`] reading), by what each program
    /// probes (`fexit page_remove_rmap`).
    pub(super) fn probe_runs_skipped_since(
        &self,
        before: &BTreeMap<String, u64>,
    ) -> BTreeMap<String, u64> {
        let now = program_stats::recursion_misses(&self.ebpf);
        program_stats::skipped_since(before, &now)
            .into_iter()
            .map(|(program, runs)| (self.probe_frames.describe(&program), runs))
            .collect()
    }

    /// Tracks the `oom_reaper` kthread, when there is one; returns its tid.
    pub(super) fn track_oom_reaper(&mut self) -> anyhow::Result<Option<u32>> {
        let tid = procfs::find_oom_reaper();
        if let Some(tid) = tid {
            collect::track_tid(&mut self.ebpf, tid, CONTEXT_OOM_REAPER)?;
        }
        Ok(tid)
    }

    /// Tracks one more task of reaper's own (the mrelease caller thread).
    pub(super) fn track_task(
        &mut self,
        setup: &mut EpisodeSetup,
        tid: u32,
        context: u32,
        comm: &str,
    ) -> anyhow::Result<()> {
        collect::track_tid(&mut self.ebpf, tid, context)?;
        setup.list_task(context, tid, comm);
        Ok(())
    }

    /// Drops the timeline events queued so far (the set-up's own, or a
    /// previous episode's late ones): the episode's start from here.
    pub(super) fn drop_stale_events(&mut self) {
        self.timeline.poll(&mut Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn victim(pid: u32) -> VictimInfo {
        VictimInfo {
            pid,
            comm: "victim".into(),
            rss_bytes: 0,
            threads: 0,
            vmas: 0,
        }
    }

    #[test]
    fn the_victim_lists_its_threads_or_else_its_pid() {
        let setup = EpisodeSetup::new(0, victim(7), vec![7, 8, 9]);
        let tids: Vec<u32> = setup.tasks[&CONTEXT_VICTIM_EXIT]
            .iter()
            .map(|t| t.tid)
            .collect();
        assert_eq!(tids, [7, 8, 9]);
        let setup = EpisodeSetup::new(0, victim(7), Vec::new());
        assert_eq!(setup.tasks[&CONTEXT_VICTIM_EXIT].len(), 1);
        assert_eq!(setup.tasks[&CONTEXT_VICTIM_EXIT][0].tid, 7);
        assert_eq!(setup.tasks[&CONTEXT_VICTIM_EXIT][0].comm, "victim");
    }

    #[test]
    fn a_listed_task_replaces_its_context_list() {
        let mut setup = EpisodeSetup::new(0, victim(7), Vec::new());
        assert!(!setup.tracks_oom_reaper());
        setup.list_task(CONTEXT_OOM_REAPER, 32, "oom_reaper");
        setup.list_task(CONTEXT_OOM_REAPER, 33, "oom_reaper");
        assert!(setup.tracks_oom_reaper());
        assert_eq!(setup.tasks[&CONTEXT_OOM_REAPER].len(), 1);
        assert_eq!(setup.tasks[&CONTEXT_OOM_REAPER][0].tid, 33);
    }
}
