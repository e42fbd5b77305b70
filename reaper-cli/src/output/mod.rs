//! Every file reaper writes goes through here.
//!
//! reaper often runs as root and writes into directories that other users
//! can predict (`/tmp/...`, a shared CI workspace), so:
//! - the output directory is opened once and checked ([`policy`]): a
//!   symlink or directory another user controls is refused;
//! - each file is created under a fresh temporary name with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` relative to that directory's descriptor,
//!   written, `fsync`ed, and renamed over the final name: an existing
//!   symlink there is replaced, never followed, and a crash or a full disk
//!   leaves the previous file intact under the final name;
//! - under `sudo`, files and the directories reaper creates are handed to
//!   the invoking user ([`owner`]).

pub mod owner;
pub mod policy;
pub mod runs;

use std::fs::File;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};

use owner::Owner;
use policy::{DirFacts, Unsafe};

/// Mode of new files (before the umask): readable by all, like `perf`'s.
const FILE_MODE: u32 = 0o644;
/// Mode of new directories (before the umask).
const DIR_MODE: u32 = 0o755;
/// Temporary names tried before giving up; a collision needs another
/// writer guessing 32 random bits, so a handful is plenty.
const TEMP_ATTEMPTS: usize = 16;

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The directory is not safe to write into.
    #[error(
        "{}: refusing to write output here: {why}; another user could redirect or replace reaper's files. \
         Use a directory only you (or root) can write to, e.g. `-o ~/reaper-runs/NAME`",
        path.display()
    )]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: Unsafe,
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

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
    let path = path.to_owned();
    move |source| OutputError::Io {
        action,
        path,
        source,
    }
}

/// An output directory, opened once and checked; every write is relative to
/// this descriptor, so renaming or re-pointing the path afterwards changes
/// nothing.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    fd: OwnedFd,
    owner: Option<Owner>,
}

impl OutputDir {
    /// Creates `path` (and missing parents) if needed, opens and checks it.
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        let owner = owner::invoking_user();
        create_missing(path, owner)?;
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open the directory", path)(e.into()))?;
        let link = rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io("inspect the directory", path)(e.into()))?;
        let stat =
            rustix::fs::fstat(&fd).map_err(|e| io("inspect the directory", path)(e.into()))?;
        let facts = DirFacts {
            symlink_owner: (FileType::from_raw_mode(link.st_mode) == FileType::Symlink)
                .then_some(link.st_uid),
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode,
        };
        policy::check(&facts, owner::me()).map_err(|why| OutputError::UnsafeDir {
            path: path.to_owned(),
            why,
        })?;
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

    /// Keeps the regular file `name`, if there is one, as `old_name`
    /// (replacing an older one), as perf keeps `perf.data.old`. Returns the
    /// kept file's path. A symlink or other non-file under `name` is left
    /// alone: the next write replaces it without following it.
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
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io("inspect the previous run", &from)(e.into())),
        }
        rustix::fs::renameat(&self.fd, name, &self.fd, old_name)
            .map_err(|e| io("keep the previous run", &from)(e.into()))?;
        Ok(Some(self.path.join(old_name)))
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
                Err(rustix::io::Errno::EXIST) => continue,
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

/// Creates the missing directories of `path`, deepest last, and hands the
/// ones it created to `owner`.
fn create_missing(path: &Path, owner: Option<Owner>) -> Result<(), OutputError> {
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty()) {
        match std::fs::symlink_metadata(p) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(p),
            Err(e) => return Err(io("inspect", p)(e)),
        }
        at = p.parent();
    }
    for dir in missing.into_iter().rev() {
        match rustix::fs::mkdir(dir, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => {
                if let Some(owner) = owner {
                    std::os::unix::fs::lchown(dir, Some(owner.uid), Some(owner.gid))
                        .map_err(io("hand the directory to the sudo user", dir))?;
                }
            }
            // Someone else made it meanwhile; the checks on open decide.
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io("create the directory", dir)(e.into())),
        }
    }
    Ok(())
}

/// Writes one file given by its full path (e.g. `gate --junit FILE`),
/// through its directory's [`OutputDir`].
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<PathBuf, OutputError> {
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
    OutputDir::create(dir)?.write(name, bytes)?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests;
