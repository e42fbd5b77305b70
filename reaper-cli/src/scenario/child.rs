//! A child process reaper started itself (a victim, the frozen scenario's
//! trigger), held by a guard that SIGKILLs and reaps it when dropped: on
//! success, on an error (`?`), on Ctrl-C (the recorder returns normally) and
//! while a panic unwinds, so no path leaves a victim or a zombie behind.
//!
//! The guard signals through a pidfd opened right after the spawn, while the
//! child cannot have been reaped yet: once anything reaps it, the pidfd
//! answers ESRCH instead of reaching whatever process reuses the pid. It
//! never signals a pid it did not spawn.

use std::{
    io,
    os::fd::OwnedFd,
    process::{Child, ChildStdin, ChildStdout, Command},
    time::Duration,
};

use super::pidfd;

/// Longest wait for a SIGKILLed child to exit before the guard gives up on
/// reaping it: a victim of a few GiB exits in well under a second, so only a
/// child that cannot run (stuck in a cgroup v1 freezer) takes longer, and
/// the recorder must not hang on it.
pub const EXIT_AFTER_KILL: Duration = Duration::from_secs(10);

/// A spawned child that is killed and reaped on drop.
#[derive(Debug)]
pub struct OwnedChild {
    child: Child,
    /// A pidfd for the child, `None` on kernels without `pidfd_open` (< 5.3).
    pidfd: Option<OwnedFd>,
    /// Set once the child has been waited for, or given up on: from then on
    /// it is never signalled again.
    done: bool,
}

impl OwnedChild {
    /// Spawns `command` and takes ownership of the child.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        let child = command.spawn()?;
        // Not reaped before our own wait, so the pid still names our child.
        let pidfd = pidfd::open(child.id()).ok();
        Ok(Self {
            child,
            pidfd,
            done: false,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin, when it was piped.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.child.stdin.as_mut()
    }

    /// Takes the child's stdout, when it was piped.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits up to `timeout` for the child to exit (someone else killed it)
    /// and reaps it; false if it did not exit in time.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        if self.done {
            return true;
        }
        if let Some(fd) = &self.pidfd
            && !pidfd::wait_exit(fd, timeout.as_millis().try_into().unwrap_or(i32::MAX))
        {
            return false;
        }
        // Reaped, or no longer ours to reap (ECHILD): never signal it again.
        self.done = true;
        self.child.wait().is_ok()
    }

    /// SIGKILLs the child if it still runs, and reaps it (waiting at most
    /// [`EXIT_AFTER_KILL`]).
    pub fn kill_and_reap(&mut self) {
        if self.done {
            return;
        }
        let signalled = match &self.pidfd {
            Some(fd) => pidfd::kill(fd),
            // Safe without a pidfd too: the child is not reaped yet, so its
            // pid cannot have been reused.
            None => self.child.kill(),
        };
        if let Err(err) = signalled
            && err.raw_os_error() != Some(libc::ESRCH)
        {
            log::warn!("SIGKILL to child {}: {err}", self.pid());
        }
        if !self.wait_exit(EXIT_AFTER_KILL) {
            log::warn!(
                "child {} had not exited {EXIT_AFTER_KILL:?} after SIGKILL (frozen?); not waiting for it",
                self.pid()
            );
            self.done = true;
        }
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;

    /// `/proc/<pid>/stat`'s state letter, `None` once the pid is gone.
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?.1.chars().next()
    }

    fn sleeper() -> OwnedChild {
        OwnedChild::spawn(
            Command::new("sleep")
                .arg("1000")
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )
        .expect("spawning sleep")
    }

    #[test]
    fn drop_kills_and_reaps_a_running_child() {
        let child = sleeper();
        let pid = child.pid();
        assert_eq!(state(pid).map(|s| s != 'Z'), Some(true));
        drop(child);
        // Reaped, not a zombie: the pid is gone.
        assert_eq!(state(pid), None);
    }

    #[test]
    fn a_panic_unwinding_kills_and_reaps_the_child() {
        let (tx, rx) = std::sync::mpsc::channel();
        let unwound = std::panic::catch_unwind(move || {
            let child = sleeper();
            tx.send(child.pid()).unwrap();
            panic!("an error while the victim runs");
        });
        assert!(unwound.is_err());
        assert_eq!(state(rx.recv().unwrap()), None);
    }

    #[test]
    fn an_exited_child_is_reaped_once_and_not_signalled_again() {
        let mut child = OwnedChild::spawn(&mut Command::new("true")).expect("spawning true");
        assert!(child.wait_exit(Duration::from_secs(30)));
        assert!(child.done);
        let pid = child.pid();
        assert_eq!(state(pid), None);
        // Nothing left to kill; a second reap is a no-op.
        child.kill_and_reap();
        assert!(child.wait_exit(Duration::ZERO));
    }

    #[test]
    fn wait_exit_gives_up_on_a_child_that_runs_on() {
        let mut child = sleeper();
        assert!(!child.wait_exit(Duration::from_millis(1)));
        assert!(!child.done, "still ours: the drop must kill it");
    }
}
