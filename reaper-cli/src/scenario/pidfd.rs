//! Thin wrappers over the pidfd syscalls: `pidfd_open`, `pidfd_send_signal`,
//! `process_mrelease`, and waiting for a pidfd to become readable (exit).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

/// Opens a pidfd for `pid`.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by the caller.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends SIGKILL through the pidfd.
pub fn kill(pidfd: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Calls `process_mrelease(pidfd, 0)`; returns 0 or the negative errno.
pub fn process_mrelease(pidfd: &OwnedFd) -> i64 {
    // SAFETY: plain syscall on a valid fd.
    let ret = unsafe { libc::syscall(libc::SYS_process_mrelease, pidfd.as_raw_fd(), 0) };
    if ret < 0 {
        -i64::from(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        ret
    }
}

/// Waits up to `timeout_ms` for the process to exit; true if it did. A
/// signal handled meanwhile (Ctrl-C) does not cut the wait short.
pub fn wait_exit(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if ready >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return ready > 0;
        }
    }
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// CLOCK_MONOTONIC in ns, the clock of `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether this kernel has `process_mrelease` (5.15+): calling it with an
/// invalid fd gives EBADF when it exists and ENOSYS when it does not.
pub fn mrelease_available() -> bool {
    // SAFETY: -1 is never a valid fd; the call only validates it.
    let ret = unsafe { libc::syscall(libc::SYS_process_mrelease, -1, 0) };
    !(ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// Pins thread `tid` (0 = the caller) to one CPU; false if the kernel refused.
pub fn pin_to_cpu(tid: u32, cpu: u32) -> bool {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within it for cpu < 1024.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(tid as libc::pid_t, size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
