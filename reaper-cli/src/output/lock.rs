//! One recording per output directory: an advisory `flock` on the
//! directory's own descriptor, held until the recording's files are
//! written; a second `record -o` into the same directory is refused at once,
//! naming the holder's pid (from `/proc/locks`).

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

/// Takes the lock, or says who holds it: `Err(Some(pid))`, or `Err(None)`
/// when `/proc/locks` does not say.
pub fn try_lock(dir: BorrowedFd<'_>) -> Result<(), LockError> {
    match rustix::fs::flock(dir, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(Errno::WOULDBLOCK) => Err(LockError::Held(holder(dir))),
        Err(e) if no_locking(e) => Err(LockError::Unsupported(e.into())),
        Err(e) => Err(LockError::Io(e.into())),
    }
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another open of the directory holds it (its process, if known).
    Held(Option<u32>),
    /// This kernel or filesystem has no `flock` (a kernel built without
    /// `CONFIG_FILE_LOCKING`, as tinyconfig kernels are: ENOSYS; some
    /// network filesystems: EOPNOTSUPP or ENOLCK). Nothing to exclude
    /// writers with; the caller goes on and says so.
    Unsupported(std::io::Error),
    /// `flock` failed otherwise.
    Io(std::io::Error),
}

/// Whether `flock` failed because locking does not exist here, rather than
/// because of this directory.
pub fn no_locking(e: Errno) -> bool {
    matches!(e, Errno::NOSYS | Errno::OPNOTSUPP | Errno::NOLCK)
}

/// The pid `/proc/locks` gives for the `FLOCK` on this directory.
fn holder(dir: impl AsFd) -> Option<u32> {
    let st = rustix::fs::fstat(dir).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(
        &locks,
        rustix::fs::major(st.st_dev),
        rustix::fs::minor(st.st_dev),
        st.st_ino,
    )
}

/// The pid of the `FLOCK` on device `major:minor`, inode `ino` in the text
/// of `/proc/locks` (`1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF`;
/// major and minor in hex). A lock some process waits for (`->`) is not the
/// holder.
pub fn holder_in(locks: &str, major: u32, minor: u32, ino: u64) -> Option<u32> {
    let file = format!("{major:02x}:{minor:02x}:{ino}");
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, id, ..] if *id == file => pid.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let text = "1: POSIX  ADVISORY  WRITE 99 08:01:1234 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 4343 fd:01:1234 0 EOF\n";
        assert_eq!(holder_in(text, 0xfd, 1, 1234), Some(4242));
        assert_eq!(holder_in(text, 8, 1, 1234), None);
    }

    #[test]
    fn a_kernel_without_file_locking_is_told_apart_from_a_failure() {
        assert!(no_locking(Errno::NOSYS));
        assert!(no_locking(Errno::OPNOTSUPP));
        assert!(no_locking(Errno::NOLCK));
        assert!(!no_locking(Errno::BADF));
        assert!(!no_locking(Errno::INTR));
    }

    #[test]
    fn a_second_lock_on_the_same_directory_names_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            rustix::fs::open(
                dir.path(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap()
        };
        let (first, second) = (open(), open());
        try_lock(first.as_fd()).unwrap();
        match try_lock(second.as_fd()) {
            Err(LockError::Held(Some(pid))) => assert_eq!(pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        drop(first);
        try_lock(second.as_fd()).unwrap();
    }
}
