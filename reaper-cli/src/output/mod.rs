//! Every file reaper writes goes through here: run files, folded stacks,
//! SVGs, pprof and other formats, the gate's calibration file, markdown and
//! JUnit, the GitHub job summary, man pages and completions. Nothing else in
//! the crate creates, renames or opens a file for writing
//! (`tests/source_rules.rs` fails on any other write).
//!
//! reaper often runs as root and writes into directories that other users
//! can predict (`/tmp/...`, a shared CI workspace), so:
//! - the whole output path is resolved one component at a time through
//!   descriptors, never through a symlink or directory another user
//!   controls ([`resolve`], with the rules of [`policy`]); the directory is
//!   then used only through its descriptor;
//! - each file is created under a fresh temporary name with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` relative to that descriptor, written,
//!   `fsync`ed, and renamed over the final name: an existing symlink there
//!   is replaced, never followed, and a crash or a full disk leaves the
//!   previous file intact under the final name;
//! - a recording locks its directory ([`lock`]) and checks every name it
//!   will write before it starts; the previous run is kept by a hard link,
//!   so a complete `run.json` exists at every moment;
//! - under `sudo`, files and the directories reaper creates are handed to
//!   the invoking user ([`owner`]).

pub mod lock;
pub mod owner;
pub mod policy;
pub mod resolve;
pub mod runs;

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

use owner::Owner;
use policy::Unsafe;
use resolve::Missing;

/// Mode of new files (before the umask): readable by all, like `perf`'s.
const FILE_MODE: u32 = 0o644;
/// Temporary names tried before giving up; a collision needs another
/// writer guessing 32 random bits, so a handful is plenty.
const TEMP_ATTEMPTS: usize = 16;

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A directory on the path is not safe to go through or write into.
    #[error(
        "{}: refusing to write output here: {why}; another user could redirect or replace reaper's files. \
         Use a directory only you (or root) can write to, on a path of such directories, e.g. `-o ~/reaper-runs/NAME`",
        path.display()
    )]
    UnsafeDir {
        /// The directory or symlink refused.
        path: PathBuf,
        /// What is wrong with it.
        why: Unsafe,
    },
    /// A component of the directory path is not a directory.
    #[error("{}: not a directory; give a directory for the output (it is created if missing)", path.display())]
    NotADirectory {
        /// The component.
        path: PathBuf,
    },
    /// The name of a file to write is a directory.
    #[error("{}: is a directory; give the name of a file to write", path.display())]
    IsADirectory {
        /// The name.
        path: PathBuf,
    },
    /// A name a recording will write is taken by something it cannot
    /// replace.
    #[error("{}: {what} is in the way of a file this recording writes; remove or rename it and record again (checked before recording, nothing was recorded)", path.display())]
    Blocked {
        /// The name.
        path: PathBuf,
        /// What is there.
        what: &'static str,
    },
    /// Another reaper records into the directory.
    #[error("{}: another reaper is recording into this directory{}; wait for it to finish or use another -o directory", path.display(), holder.map_or_else(String::new, |pid| format!(" (pid {pid})")))]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The process holding the lock, if known.
        holder: Option<u32>,
    },
    /// A name that is not one plain path component.
    #[error("refusing to write a file named {name:?}: not a plain file name")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// The OS refused.
    #[error("{}: cannot {action}; check that the directory is writable and the disk is not full", path.display())]
    Io {
        /// What was being done, e.g. "create the directory".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl OutputError {
    /// Whether the command, not the machine, is at fault (exit 2): an
    /// unsafe or unusable path, a directory in use.
    pub fn is_usage(&self) -> bool {
        !matches!(self, Self::Io { .. })
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
    let path = path.to_owned();
    move |source| OutputError::Io {
        action,
        path,
        source,
    }
}

/// An output directory, resolved and checked once; every write is relative
/// to its descriptor, so renaming or re-pointing the path afterwards
/// changes nothing.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    fd: OwnedFd,
    owner: Option<Owner>,
}

impl OutputDir {
    /// Resolves `path`, creating missing directories, and checks it.
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        let owner = owner::invoking_user();
        Self::resolve(path, Missing::Create(owner), owner)
    }

    /// Resolves an existing `path` and checks it.
    pub fn existing(path: &Path) -> Result<Self, OutputError> {
        Self::resolve(path, Missing::Fail, owner::invoking_user())
    }

    fn resolve(path: &Path, missing: Missing, owner: Option<Owner>) -> Result<Self, OutputError> {
        let handle = resolve::resolve_dir(path, missing, owner::me())?;
        // A real descriptor (for flock and fsync) of the very directory
        // checked: `.` of it is itself, whatever the path became.
        let fd = rustix::fs::openat(
            &handle,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open the directory", path)(e.into()))?;
        Ok(Self {
            path: path.to_owned(),
            fd,
            owner,
        })
    }

    /// The directory as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Locks the directory for one recording, until this `OutputDir` is
    /// dropped; refused at once if another reaper holds it. Where the
    /// kernel or filesystem has no `flock` at all, the recording goes on
    /// unlocked and a note says so.
    pub fn lock(&self) -> Result<(), OutputError> {
        match lock::try_lock(self.fd.as_fd()) {
            Ok(()) => Ok(()),
            Err(lock::LockError::Held(holder)) => Err(OutputError::Locked {
                path: self.path.clone(),
                holder,
            }),
            Err(lock::LockError::Unsupported(why)) => {
                crate::console::note!(
                    "reaper: note: {}: not locked against a second recording ({why}: \
                     this kernel or filesystem has no flock, e.g. CONFIG_FILE_LOCKING=n)",
                    self.path.display()
                );
                Ok(())
            }
            Err(lock::LockError::Io(source)) => Err(io("lock the directory", &self.path)(source)),
        }
    }

    /// Checks, before anything is recorded, that every name in `names` can
    /// be written ([`check_names`](Self::check_names)), and that a file can
    /// be created here.
    pub fn check_writable(&self, names: &[String]) -> Result<(), OutputError> {
        self.check_names(names)?;
        let (temp, fd) = self.create_temp("probe", &self.path)?;
        drop(fd);
        let _ = rustix::fs::unlinkat(&self.fd, temp.as_str(), AtFlags::empty());
        Ok(())
    }

    /// Checks that every name in `names` can be written: absent, or
    /// something a rename replaces (not a directory). A set of files is
    /// checked before its first file is written, so a planted directory
    /// cannot leave it half-written.
    pub fn check_names(&self, names: &[String]) -> Result<(), OutputError> {
        for name in names {
            check_name(name)?;
            match rustix::fs::statat(&self.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    return Err(OutputError::Blocked {
                        path: self.path.join(name),
                        what: "a directory",
                    });
                }
                Ok(_) | Err(Errno::NOENT) => {}
                Err(e) => return Err(io("inspect", &self.path.join(name))(e.into())),
            }
        }
        Ok(())
    }

    /// Writes a set of files: every name checked ([`check_names`](Self::check_names))
    /// before the first is written. Returns the paths written.
    pub fn write_all(&self, files: &[(String, Vec<u8>)]) -> Result<Vec<PathBuf>, OutputError> {
        let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
        self.check_names(&names)?;
        files
            .iter()
            .map(|(name, bytes)| self.write(name, bytes))
            .collect()
    }

    /// Writes `bytes` to `name` atomically (see the module doc). Returns the
    /// path written.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        self.write_with(name, |file| file.write_all(bytes))
    }

    /// Like [`write`](Self::write), with the content produced by `fill`; if
    /// `fill` fails, the temporary file is removed and `name` is untouched.
    pub fn write_with(
        &self,
        name: &str,
        fill: impl FnOnce(&mut File) -> std::io::Result<()>,
    ) -> Result<PathBuf, OutputError> {
        check_name(name)?;
        let target = self.path.join(name);
        if let Ok(st) = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            && FileType::from_raw_mode(st.st_mode) == FileType::Directory
        {
            return Err(OutputError::IsADirectory { path: target });
        }
        let (temp, fd) = self.create_temp(name, &target)?;
        let guard = TempGuard {
            dir: &self.fd,
            name: &temp,
        };
        let mut file = File::from(fd);
        fill(&mut file).map_err(io("write", &target))?;
        file.sync_all().map_err(io("flush", &target))?;
        if let Some(owner) = self.owner {
            chown(&file, owner).map_err(io("hand the file to the sudo user", &target))?;
        }
        drop(file);
        if let Ok(st) = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            && FileType::from_raw_mode(st.st_mode) == FileType::Symlink
        {
            log::warn!(
                "{}: was a symlink (uid {}); replaced, not followed",
                target.display(),
                st.st_uid
            );
        }
        rustix::fs::renameat(&self.fd, temp.as_str(), &self.fd, name)
            .map_err(|e| io("rename the finished file into place", &target)(e.into()))?;
        std::mem::forget(guard);
        // The rename is durable once the directory is synced; a failure here
        // leaves a complete file, so it is not an error.
        let _ = rustix::fs::fsync(&self.fd);
        Ok(target)
    }

    /// Appends `bytes` to the regular file `name` (created if missing),
    /// never through a symlink and never opening anything but a regular
    /// file (GitHub's job summary, which other steps write too).
    pub fn append(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        check_name(name)?;
        let target = self.path.join(name);
        let write = OFlags::WRONLY | OFlags::APPEND | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(handle) => {
                let st =
                    rustix::fs::fstat(&handle).map_err(|e| io("inspect", &target)(e.into()))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Err(OutputError::Blocked {
                        path: target,
                        what: crate::input::open::describe(FileType::from_raw_mode(st.st_mode)),
                    });
                }
                let magic = format!("/proc/self/fd/{}", handle.as_raw_fd());
                rustix::fs::openat(CWD, magic.as_str(), write, Mode::empty())
                    .map_err(|e| io("open for appending", &target)(e.into()))?
            }
            Err(Errno::NOENT) => {
                let fd = rustix::fs::openat(
                    &self.fd,
                    name,
                    write | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(FILE_MODE),
                )
                .map_err(|e| io("create", &target)(e.into()))?;
                if let Some(owner) = self.owner {
                    chown(&fd, owner)
                        .map_err(|e| io("hand the file to the sudo user", &target)(e))?;
                }
                fd
            }
            Err(e) => return Err(io("open for appending", &target)(e.into())),
        };
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(io("append to", &target))?;
        Ok(target)
    }

    /// Keeps the regular file `name`, if there is one, as `old_name`
    /// (replacing an older one), as perf keeps `perf.data.old`: a hard link
    /// under a temporary name, renamed over `old_name`, so `name` stays in
    /// place until the caller renames a new file over it. Returns the kept
    /// file's path. A symlink or other non-file under `name` is left alone:
    /// the next write replaces it without following it. If `old_name`
    /// cannot be replaced, the previous run is kept under a unique name
    /// instead (returned), never lost.
    pub fn keep_previous(
        &self,
        name: &str,
        old_name: &str,
    ) -> Result<Option<PathBuf>, OutputError> {
        check_name(name)?;
        check_name(old_name)?;
        let from = self.path.join(name);
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {}
            Ok(_) => return Ok(None),
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io("inspect the previous run", &from)(e.into())),
        }
        let mut linked = None;
        for _ in 0..TEMP_ATTEMPTS {
            let temp = format!(".{old_name}.{:08x}.tmp", fastrand::u32(..));
            match rustix::fs::linkat(&self.fd, name, &self.fd, temp.as_str(), AtFlags::empty()) {
                Ok(()) => {
                    linked = Some(temp);
                    break;
                }
                Err(Errno::EXIST) => continue,
                // A filesystem without hard links (vfat, some FUSE): keep
                // it by renaming, as before links (a moment without `name`).
                Err(Errno::PERM | Errno::OPNOTSUPP | Errno::MLINK | Errno::NOSYS) => {
                    log::warn!(
                        "{}: this filesystem cannot hard-link it; kept by renaming instead",
                        from.display()
                    );
                    rustix::fs::renameat(&self.fd, name, &self.fd, old_name)
                        .map_err(|e| io("keep the previous run", &from)(e.into()))?;
                    return Ok(Some(self.path.join(old_name)));
                }
                Err(e) => return Err(io("keep the previous run", &from)(e.into())),
            }
        }
        let Some(temp) = linked else {
            return Err(io("keep the previous run", &from)(Errno::EXIST.into()));
        };
        match rustix::fs::renameat(&self.fd, temp.as_str(), &self.fd, old_name) {
            Ok(()) => Ok(Some(self.path.join(old_name))),
            Err(e) => {
                let unique = format!("{old_name}.{}", &temp[old_name.len() + 2..temp.len() - 4]);
                log::warn!(
                    "{}: cannot replace it ({e}); the previous run is kept as {unique} instead",
                    self.path.join(old_name).display()
                );
                match rustix::fs::renameat(&self.fd, temp.as_str(), &self.fd, unique.as_str()) {
                    Ok(()) => Ok(Some(self.path.join(unique))),
                    Err(_) => Ok(Some(self.path.join(temp))),
                }
            }
        }
    }

    fn create_temp(&self, name: &str, target: &Path) -> Result<(String, OwnedFd), OutputError> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for _ in 0..TEMP_ATTEMPTS {
            let temp = format!(".{name}.{:08x}.tmp", fastrand::u32(..));
            match rustix::fs::openat(
                &self.fd,
                temp.as_str(),
                flags,
                Mode::from_raw_mode(FILE_MODE),
            ) {
                Ok(fd) => return Ok((temp, fd)),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io("create a temporary file for", target)(e.into())),
            }
        }
        Err(io("create a temporary file for", target)(
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ))
    }
}

/// Removes an unfinished temporary file (an error or a panic mid-write).
struct TempGuard<'a> {
    dir: &'a OwnedFd,
    name: &'a str,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::unlinkat(self.dir, self.name, AtFlags::empty());
    }
}

fn chown(fd: impl rustix::fd::AsFd, owner: Owner) -> std::io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(owner.uid)),
        Some(rustix::fs::Gid::from_raw(owner.gid)),
    )
    .map_err(Into::into)
}

/// One plain path component: not empty, `.` or `..`, no `/` or NUL.
fn check_name(name: &str) -> Result<(), OutputError> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    if plain {
        Ok(())
    } else {
        Err(OutputError::BadName {
            name: name.to_owned(),
        })
    }
}

/// A file path split into its directory and its name.
fn split(path: &Path) -> Result<(&Path, &str), OutputError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| OutputError::BadName {
            name: path.display().to_string(),
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// Writes one file given by its full path (e.g. `gate --junit FILE`),
/// through its directory's [`OutputDir`] (created if missing).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<PathBuf, OutputError> {
    let (dir, name) = split(path)?;
    OutputDir::create(dir)?.write(name, bytes)?;
    Ok(path.to_owned())
}

/// Appends to one file given by its full path, in an existing directory
/// (see [`OutputDir::append`]).
pub fn append_file(path: &Path, bytes: &[u8]) -> Result<PathBuf, OutputError> {
    let (dir, name) = split(path)?;
    OutputDir::existing(dir)?.append(name, bytes)?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests;
