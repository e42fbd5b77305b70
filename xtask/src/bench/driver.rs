//! The benchmark's own kill→mrelease driver, independent of reaper's numbers:
//! spawns `reaper __victim` children, pins victim and driver thread to
//! different CPUs, and times `pidfd_send_signal(SIGKILL)` → `process_mrelease`
//! return → victim reaped with CLOCK_MONOTONIC.

use std::{
    io::{BufRead as _, BufReader},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Barrier},
};

use anyhow::{Context as _, Result, bail, ensure};

/// VMAs per victim: reaper's own default (`--victim SIZE,vmas=64`).
const VICTIM_VMAS: u32 = 64;
/// Extra threads per victim: reaper's own default (`threads=1`).
const VICTIM_THREADS: u32 = 1;
/// The driver thread's CPU; victims go to the other CPUs.
const DRIVER_CPU: usize = 0;

/// A victim that has mapped and touched its memory and printed "ready".
pub struct Victim {
    child: Child,
    pid: u32,
}

/// One timed kill → mrelease → reaped race.
#[derive(Debug, Clone, Copy)]
pub struct Race {
    pub victim_pid: u32,
    /// The thread that called process_mrelease.
    pub mrelease_tid: u32,
    /// CLOCK_MONOTONIC just before pidfd_send_signal.
    pub kill_ns: u64,
    pub kill_to_mrelease_ns: u64,
    pub kill_to_reaped_ns: u64,
    /// 0 or the negative errno of process_mrelease.
    pub mrelease_ret: i64,
}

/// Spawns `reaper __victim BYTES VMAS THREADS` and waits for its "ready" line.
pub fn spawn_victim(reaper: &Path, bytes: u64, victim_cpu: usize) -> Result<Victim> {
    let mut child = Command::new(reaper)
        .args([
            "__victim",
            &bytes.to_string(),
            &VICTIM_VMAS.to_string(),
            &VICTIM_THREADS.to_string(),
        ])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("spawning {} __victim", reaper.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().context("victim stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.trim() == "ready" => break,
            Some(Ok(_)) => {}
            Some(Err(err)) => bail!("reading victim {pid}'s stdout: {err}"),
            None => {
                let status = child.wait()?;
                bail!("victim {pid} exited before \"ready\" ({status}); not enough memory for it?");
            }
        }
    }
    pin_process(pid, victim_cpu);
    Ok(Victim { child, pid })
}

/// Pins every thread of `pid` to `cpu` (best effort, as reaper does).
fn pin_process(pid: u32, cpu: usize) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
            pin_to_cpu(tid, cpu);
        }
    }
}

/// Pins thread `tid` (0 = the caller) to `cpu`; false when refused.
fn pin_to_cpu(tid: libc::pid_t, cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays inside it for cpu < 1024.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The CPU victims are pinned to: the last one, unless there is only one.
pub fn victim_cpu(index: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus <= 1 { 0 } else { 1 + index % (cpus - 1) }
}

/// CLOCK_MONOTONIC in ns (the clock of bpf_ktime_get_ns and perf timestamps).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn pidfd_open(pid: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    ensure!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Kills `victim` and calls process_mrelease on it from the calling thread,
/// which is pinned to the driver CPU first; then waits for the victim.
fn race_here(victim: Victim, barrier: Option<&Barrier>) -> Result<Race> {
    pin_to_cpu(0, DRIVER_CPU);
    let mut victim = victim;
    let pid = victim.pid;
    let pidfd = pidfd_open(pid)?;
    // SAFETY: no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    if let Some(barrier) = barrier {
        barrier.wait();
    }
    let kill_ns = monotonic_ns();
    // SAFETY: plain syscalls on a valid pidfd.
    let killed = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    // SAFETY: as above.
    let ret = unsafe { libc::syscall(libc::SYS_process_mrelease, pidfd.as_raw_fd(), 0) };
    let mrelease_ns = monotonic_ns();
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    ensure!(
        killed == 0,
        "pidfd_send_signal({pid}): {}",
        std::io::Error::last_os_error()
    );
    victim
        .child
        .wait()
        .with_context(|| format!("waiting for victim {pid}"))?;
    let reaped_ns = monotonic_ns();
    Ok(Race {
        victim_pid: pid,
        mrelease_tid: tid,
        kill_ns,
        kill_to_mrelease_ns: mrelease_ns - kill_ns,
        kill_to_reaped_ns: reaped_ns - kill_ns,
        mrelease_ret: if ret < 0 { -i64::from(errno) } else { ret },
    })
}

/// One race on a dedicated driver thread (so its tid is the mrelease caller's).
pub fn race(victim: Victim) -> Result<Race> {
    std::thread::Builder::new()
        .name("bench-mrelease".into())
        .spawn(move || race_here(victim, None))
        .context("spawning the driver thread")?
        .join()
        .map_err(|_| anyhow::anyhow!("the driver thread panicked"))?
}

/// Many races at once: one driver thread per victim, released together.
pub fn race_all(victims: Vec<Victim>) -> Result<Vec<Race>> {
    let barrier = Arc::new(Barrier::new(victims.len()));
    let handles: Vec<_> = victims
        .into_iter()
        .map(|victim| {
            let barrier = Arc::clone(&barrier);
            std::thread::Builder::new()
                .name("bench-mrelease".into())
                .spawn(move || race_here(victim, Some(&barrier)))
        })
        .collect::<std::io::Result<_>>()
        .context("spawning driver threads")?;
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a driver thread panicked"))?
        })
        .collect()
}

impl Drop for Victim {
    fn drop(&mut self) {
        // Only reached when a round fails before the race: don't leak the memory.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
