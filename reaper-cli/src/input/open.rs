//! Opening untrusted input without side effects: a file is first opened
//! `O_PATH` (no driver is called, a FIFO does not block), checked with
//! `fstat`, and only a regular file is then opened for reading, through
//! `/proc/self/fd` so the file read is the inode checked. Without `/proc`,
//! it is opened again by name with `O_NOFOLLOW|O_NONBLOCK|O_NOCTTY` and
//! refused unless its device and inode are the ones checked.
//!
//! Names inside a directory (a run set's entries, `DIR/run.json`) are
//! opened relative to the directory's descriptor and never through a
//! symlink; a path given on the command line may be a symlink the user
//! chose.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode, OFlags, Stat};

/// What a path turned out to be.
#[derive(Debug)]
pub enum Opened {
    /// A regular file, open for reading; its size and identity.
    File(File, Identity),
    /// A directory (opened `O_PATH`, for [`open_in`] and [`list_dir`]).
    Dir(OwnedFd),
    /// Anything else: named for the error, never opened.
    Other(FileType),
}

/// A file's device, inode and size when it was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size`.
    pub size: u64,
}

impl Identity {
    fn of(st: &Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            size: u64::try_from(st.st_size).unwrap_or(0),
        }
    }
}

/// A file type for people: "a FIFO", "a character device", ...
pub fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink (not followed)",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "not a regular file",
    }
}

/// Opens `path` (relative to the working directory; a final symlink is
/// followed when `follow`).
pub fn open_path(path: &Path, follow: bool) -> std::io::Result<Opened> {
    open_at(CWD, path, follow)
}

/// Opens `name` inside the directory `dir`, never through a symlink.
pub fn open_in(dir: impl AsFd, name: &Path) -> std::io::Result<Opened> {
    open_at(dir, name, false)
}

/// An `O_PATH` descriptor of `path` (following a final symlink: a path
/// given on the command line), its type and identity; nothing is opened.
pub fn handle(path: &Path) -> std::io::Result<(OwnedFd, FileType, Identity)> {
    let handle = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    let st = rustix::fs::fstat(&handle)?;
    Ok((
        handle,
        FileType::from_raw_mode(st.st_mode),
        Identity::of(&st),
    ))
}

fn open_at(dir: impl AsFd, path: &Path, follow: bool) -> std::io::Result<Opened> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let dir = dir.as_fd();
    let handle = rustix::fs::openat(dir, path, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&handle)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            let identity = Identity::of(&st);
            Ok(Opened::File(
                reopen(&handle, dir, path, follow, identity)?,
                identity,
            ))
        }
        FileType::Directory => Ok(Opened::Dir(handle)),
        other => Ok(Opened::Other(other)),
    }
}

/// Opens again, for reading, a regular file found earlier: `names` from the
/// directory `root` (each one neither a symlink nor replaced meanwhile), or,
/// with no names, `root` itself (an `O_PATH` descriptor of `root_path`, a
/// file given on the command line). Refused unless it is still the inode
/// `expected` names.
pub fn open_found(
    root: &OwnedFd,
    root_path: &Path,
    names: &[PathBuf],
    expected: Identity,
) -> std::io::Result<File> {
    let changed = || std::io::Error::other("it was replaced after it was listed");
    let Some((last, dirs)) = names.split_last() else {
        return reopen(root, CWD, root_path, true, expected);
    };
    let mut dir: Option<OwnedFd> = None;
    for name in dirs {
        let next = match open_in(dir.as_ref().unwrap_or(root), name)? {
            Opened::Dir(fd) => fd,
            _ => return Err(changed()),
        };
        dir = Some(next);
    }
    match open_in(dir.as_ref().unwrap_or(root), last)? {
        Opened::File(file, id) if (id.dev, id.ino) == (expected.dev, expected.ino) => Ok(file),
        _ => Err(changed()),
    }
}

/// The regular file behind `handle`, open for reading.
fn reopen(
    handle: &OwnedFd,
    dir: rustix::fd::BorrowedFd<'_>,
    path: &Path,
    follow: bool,
    identity: Identity,
) -> std::io::Result<File> {
    let read = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let magic = format!("/proc/self/fd/{}", handle.as_raw_fd());
    match rustix::fs::openat(CWD, magic.as_str(), read, Mode::empty()) {
        Ok(fd) => return Ok(File::from(fd)),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    // No /proc: by name again, and only the same inode.
    let mut flags = read;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::openat(dir, path, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    let again = Identity::of(&st);
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || (again.dev, again.ino) != (identity.dev, identity.ino)
    {
        return Err(std::io::Error::other("it was replaced while being opened"));
    }
    Ok(File::from(fd))
}

/// The entries of the directory `dir` (an `O_PATH` descriptor), sorted by
/// name, without `.` and `..`.
pub fn list_dir(dir: &OwnedFd) -> std::io::Result<Vec<PathBuf>> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::new(fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            use std::os::unix::ffi::OsStrExt as _;
            names.push(PathBuf::from(std::ffi::OsStr::from_bytes(name)));
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn regular_files_open_and_everything_else_is_named_unopened() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.json");
        std::fs::write(&file, "{}").unwrap();
        assert!(matches!(open_path(&file, false).unwrap(), Opened::File(_, id) if id.size == 2));
        assert!(matches!(
            open_path(dir.path(), true).unwrap(),
            Opened::Dir(_)
        ));
        let null = open_path(Path::new("/dev/null"), true).unwrap();
        assert!(matches!(null, Opened::Other(FileType::CharacterDevice)));
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        // O_PATH: no reader needed, nothing blocks.
        assert!(matches!(
            open_path(&fifo, false).unwrap(),
            Opened::Other(FileType::Fifo)
        ));
    }

    #[test]
    fn symlinks_inside_directories_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real.json"), "{}").unwrap();
        symlink("/dev/zero", dir.path().join("run.json")).unwrap();
        symlink("real.json", dir.path().join("link.json")).unwrap();
        let Opened::Dir(fd) = open_path(dir.path(), true).unwrap() else {
            panic!("a directory")
        };
        for name in ["run.json", "link.json"] {
            assert!(matches!(
                open_in(&fd, Path::new(name)).unwrap(),
                Opened::Other(FileType::Symlink)
            ));
        }
        // Given on the command line, the user's symlink is followed (and
        // still checked).
        let zero = open_path(&dir.path().join("run.json"), true).unwrap();
        assert!(matches!(zero, Opened::Other(FileType::CharacterDevice)));
        assert_eq!(
            list_dir(&fd).unwrap(),
            [
                PathBuf::from("link.json"),
                "real.json".into(),
                "run.json".into()
            ]
        );
    }
}
