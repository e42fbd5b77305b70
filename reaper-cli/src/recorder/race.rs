//! The kill → `process_mrelease` episode (`--victim` and `--pid`): kill the
//! victim from a dedicated thread that calls `process_mrelease` right after,
//! as lmkd's reaper thread does, and profile both sides of the race.

use std::{
    sync::{Arc, Barrier, mpsc},
    time::Instant,
};

use anyhow::Context as _;
use reaper_common::{
    context::CONTEXT_MRELEASE_CALLER,
    timeline::{TimelineEvent, TimelineKind},
};

use super::{EXIT_TIMEOUT, EpisodeParts, LATE_EVENT_GRACE, Recorder};
use crate::{
    model::Episode,
    scenario::{pidfd, victim::SpawnedVictim},
    system::kernel,
};

/// comm of reaper's mrelease thread.
const MRELEASE_COMM: &str = "reaper-mrelease";

/// (mrelease thread CPU, victim CPU): the first and the last online CPU, so
/// the woken victim cannot preempt the mrelease thread between the kill and
/// the call, and the two really run in parallel; `None` on one CPU.
fn placement() -> Option<(u32, u32)> {
    let cpus = kernel::online_cpus().unwrap_or_default();
    (cpus.len() >= 2).then(|| (cpus[0], cpus[cpus.len() - 1]))
}

impl Recorder {
    /// Kills `victim_pid` (our own `child`, or an existing process) and
    /// races it with `process_mrelease` when `mrelease`.
    pub(super) fn race(
        &mut self,
        index: u32,
        victim_pid: u32,
        child: Option<&mut SpawnedVictim>,
        mrelease: bool,
    ) -> anyhow::Result<Episode> {
        let comm = crate::system::procfs::stat(victim_pid)
            .with_context(|| format!("pid {victim_pid} disappeared before the kill"))?
            .comm;
        let mut setup = self.begin_episode(victim_pid, &comm, true)?;
        let fd = pidfd::open(victim_pid).with_context(|| format!("pidfd_open({victim_pid})"))?;
        let placement = placement();
        if let Some((_, victim_cpu)) = placement {
            for &tid in &setup.threads {
                pidfd::pin_to_cpu(tid, victim_cpu);
            }
        }
        let go = Arc::new(Barrier::new(2));
        let (tid_tx, tid_rx) = mpsc::channel();
        let thread_go = Arc::clone(&go);
        let reaper = std::thread::Builder::new()
            .name(MRELEASE_COMM.into())
            .spawn(move || {
                if let Some((reaper_cpu, _)) = placement {
                    pidfd::pin_to_cpu(0, reaper_cpu);
                }
                let _ = tid_tx.send(pidfd::gettid());
                thread_go.wait();
                let kill_ns = pidfd::monotonic_ns();
                let killed = pidfd::kill(&fd);
                let ret = if mrelease && killed.is_ok() {
                    Some(pidfd::process_mrelease(&fd))
                } else {
                    None
                };
                (kill_ns, killed, ret, fd)
            })?;
        let reaper_tid = tid_rx.recv().context("the mrelease thread did not start")?;
        if mrelease {
            self.track_task(
                &mut setup,
                reaper_tid,
                CONTEXT_MRELEASE_CALLER,
                MRELEASE_COMM,
            )?;
        }
        let mut stale = Vec::new();
        self.timeline.poll(&mut stale);

        go.wait();
        let (kill_ns, killed, mrelease_ret, fd) = reaper
            .join()
            .map_err(|_| anyhow::anyhow!("the mrelease thread panicked"))?;
        killed.with_context(|| format!("pidfd_send_signal(SIGKILL) to pid {victim_pid}"))?;
        if let Some(ret) = mrelease_ret.filter(|&r| r < 0 && r != -i64::from(libc::ESRCH)) {
            log::warn!(
                "process_mrelease({victim_pid}) returned {ret} ({})",
                std::io::Error::from_raw_os_error(-ret as i32)
            );
        }

        let exited = match child {
            Some(child) => child.wait_exit(),
            None => pidfd::wait_exit(&fd, EXIT_TIMEOUT.as_millis() as i32),
        };
        let mut events: Vec<TimelineEvent> = Vec::new();
        self.wait_events(&mut events, Instant::now() + LATE_EVENT_GRACE, |e| {
            e.kind == TimelineKind::ProcessFree as u32 && e.arg == i64::from(victim_pid)
        });
        if !exited {
            log::warn!(
                "pid {victim_pid} had not exited {EXIT_TIMEOUT:?} after SIGKILL; its profile is incomplete"
            );
        }
        self.finish_episode(EpisodeParts {
            index,
            victim: setup.victim,
            tasks: setup.tasks,
            events,
            kill_ns,
            killer: Some((reaper_tid, std::process::id())),
            complete: exited,
            frozen: None,
            mrelease_ret,
        })
    }
}
