//! The kill → `process_mrelease` episode (`--victim` and `--pid`): kill the
//! victim from a dedicated thread that calls `process_mrelease` right after,
//! as lmkd's reaper thread does, and profile both sides of the race.

use std::{
    os::fd::OwnedFd,
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use reaper_common::{context::CONTEXT_MRELEASE_CALLER, timeline::TimelineKind};

use super::{
    EXIT_TIMEOUT, LATE_EVENT_GRACE, Recorder,
    setup::{EpisodeEnd, EpisodeSetup},
};
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

/// What the mrelease thread did.
struct Shot {
    /// CLOCK_MONOTONIC ns just before the kill.
    kill_ns: u64,
    /// The SIGKILL's result.
    killed: std::io::Result<()>,
    /// What `process_mrelease` returned, when it was called.
    mrelease_ret: Option<i64>,
    /// The victim's pidfd, back from the thread.
    fd: OwnedFd,
}

/// reaper's mrelease thread, started and parked until [`Killer::fire`]. If
/// it is dropped unfired (an error in between), the thread ends without
/// killing anything.
struct Killer {
    /// The thread's tid, to track it.
    tid: u32,
    go: mpsc::Sender<()>,
    thread: JoinHandle<Option<Shot>>,
}

impl Killer {
    /// Starts the thread on its CPU; it kills through `fd` once fired, and
    /// calls `process_mrelease` right after when `mrelease`.
    fn start(fd: OwnedFd, cpu: Option<u32>, mrelease: bool) -> anyhow::Result<Self> {
        let (go, go_rx) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(MRELEASE_COMM.into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    pidfd::pin_to_cpu(0, cpu);
                }
                let _ = tid_tx.send(pidfd::gettid());
                go_rx.recv().ok()?;
                let kill_ns = pidfd::monotonic_ns();
                let killed = pidfd::kill(&fd);
                let mrelease_ret =
                    (mrelease && killed.is_ok()).then(|| pidfd::process_mrelease(&fd));
                Some(Shot {
                    kill_ns,
                    killed,
                    mrelease_ret,
                    fd,
                })
            })?;
        let tid = tid_rx.recv().context("the mrelease thread did not start")?;
        Ok(Self { tid, go, thread })
    }

    /// Lets the thread kill, and waits for it.
    fn fire(self) -> anyhow::Result<Shot> {
        self.go
            .send(())
            .ok()
            .and_then(|()| self.thread.join().ok().flatten())
            .ok_or_else(|| anyhow::anyhow!("the mrelease thread panicked"))
    }
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
        let mut setup = self.begin_episode(index, victim_pid, &comm, true)?;
        let fd = pidfd::open(victim_pid).with_context(|| format!("pidfd_open({victim_pid})"))?;
        let placement = placement();
        if let Some((_, victim_cpu)) = placement {
            for &tid in &setup.threads {
                pidfd::pin_to_cpu(tid, victim_cpu);
            }
        }
        let killer = Killer::start(fd, placement.map(|(cpu, _)| cpu), mrelease)?;
        let killer_tid = killer.tid;
        if mrelease {
            self.track_task(
                &mut setup,
                killer_tid,
                CONTEXT_MRELEASE_CALLER,
                MRELEASE_COMM,
            )?;
        }
        self.drop_stale_events();

        let shot = killer.fire()?;
        shot.killed
            .with_context(|| format!("pidfd_send_signal(SIGKILL) to pid {victim_pid}"))?;
        warn_mrelease_failure(victim_pid, shot.mrelease_ret);
        let exited = match child {
            Some(child) => child.wait_exit(EXIT_TIMEOUT),
            None => pidfd::wait_exit(&shot.fd, EXIT_TIMEOUT.as_millis() as i32),
        };
        self.wait_for_free(&mut setup, LATE_EVENT_GRACE);
        if !exited {
            log::warn!(
                "pid {victim_pid} had not exited {EXIT_TIMEOUT:?} after SIGKILL; its profile is incomplete"
            );
        }
        let end = EpisodeEnd {
            mrelease_ret: shot.mrelease_ret,
            ..EpisodeEnd::killed(shot.kill_ns, Some((killer_tid, std::process::id())), exited)
        };
        self.finish_episode(setup, end)
    }

    /// Collects events until the victim's task_struct is freed, for at most
    /// `grace`.
    fn wait_for_free(&mut self, setup: &mut EpisodeSetup, grace: Duration) {
        let pid = i64::from(setup.victim.pid);
        self.wait_events(&mut setup.events, Instant::now() + grace, |e| {
            e.kind == TimelineKind::ProcessFree as u32 && e.arg == pid
        });
    }
}

/// Says what a failed `process_mrelease` returned (ESRCH, a lost race, is
/// named in the episode instead).
fn warn_mrelease_failure(victim_pid: u32, ret: Option<i64>) {
    if let Some(ret) = ret.filter(|&r| r < 0 && r != -i64::from(libc::ESRCH)) {
        log::warn!(
            "process_mrelease({victim_pid}) returned {ret} ({})",
            std::io::Error::from_raw_os_error(-ret as i32)
        );
    }
}
