//! The set-up every episode shares, whatever triggers the kill: clear the
//! previous episode's tracking, snapshot the victim (threads, RSS, VMAs),
//! track it and the `oom_reaper` kthread, and list the tracked tasks per
//! context for the report.

use std::collections::BTreeMap;

use reaper_common::context::{CONTEXT_OOM_REAPER, CONTEXT_VICTIM_EXIT};

use super::Recorder;
use crate::{
    model::{TaskRef, VictimInfo},
    probes::collect,
    system::procfs,
};

/// What an episode knows before its kill.
pub struct EpisodeSetup {
    /// The victim as it was at set-up.
    pub victim: VictimInfo,
    /// The victim's thread ids at set-up.
    pub threads: Vec<u32>,
    /// Tracked tasks by context id.
    pub tasks: BTreeMap<u32, Vec<TaskRef>>,
}

impl EpisodeSetup {
    /// Whether the `oom_reaper` kthread was found and tracked.
    pub fn tracks_oom_reaper(&self) -> bool {
        self.tasks.contains_key(&CONTEXT_OOM_REAPER)
    }
}

impl Recorder {
    /// Clears tracking and tracks `pid` as the victim (`armed`: counted from
    /// now; unarmed: from the kernel's first OOM event for it) and the
    /// `oom_reaper` kthread. `comm` names the victim when /proc cannot.
    pub(super) fn begin_episode(
        &mut self,
        pid: u32,
        comm: &str,
        armed: bool,
    ) -> anyhow::Result<EpisodeSetup> {
        collect::clear_tracking(&mut self.ebpf)?;
        let comm = procfs::stat(pid).map_or_else(|| comm.to_owned(), |s| s.comm);
        let threads = procfs::threads(pid);
        let victim = VictimInfo {
            pid,
            comm: comm.clone(),
            rss_bytes: procfs::rss_bytes(pid),
            threads: threads.len() as u32,
            vmas: procfs::vma_count(pid),
        };
        collect::track_tgid_armed(&mut self.ebpf, pid, CONTEXT_VICTIM_EXIT, armed)?;
        let mut tasks = BTreeMap::new();
        let listed = if threads.is_empty() {
            vec![pid]
        } else {
            threads.clone()
        };
        tasks.insert(
            CONTEXT_VICTIM_EXIT,
            listed
                .iter()
                .map(|&tid| TaskRef {
                    tid,
                    comm: comm.clone(),
                })
                .collect(),
        );
        if let Some(tid) = procfs::find_oom_reaper() {
            collect::track_tid(&mut self.ebpf, tid, CONTEXT_OOM_REAPER)?;
            tasks.insert(
                CONTEXT_OOM_REAPER,
                vec![TaskRef {
                    tid,
                    comm: reaper_common::context::OOM_REAPER_KTHREAD.into(),
                }],
            );
        }
        Ok(EpisodeSetup {
            victim,
            threads,
            tasks,
        })
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
        setup.tasks.insert(
            context,
            vec![TaskRef {
                tid,
                comm: comm.into(),
            }],
        );
        Ok(())
    }
}
