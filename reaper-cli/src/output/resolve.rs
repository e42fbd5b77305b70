//! Resolving a whole output path without following what reaper does not
//! trust: one component at a time, each opened relative to the previous
//! one's descriptor without following a symlink (`openat2` with
//! `RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH` where the
//! kernel has it, 5.6+; `openat` with `O_PATH | O_NOFOLLOW` before), and
//! checked through that descriptor with `fstat` before the next step uses it.
//! What was checked is what is used: swapping a component for a symlink
//! after it was opened changes nothing.
//!
//! Trusted (README, "Files reaper writes"):
//! - every directory on the path, the start (`/`, or `.` for a relative
//!   path) and the directory finally written included, passes
//!   [`policy::check`]: owned by root or the invoking user, and not writable
//!   by other users unless sticky;
//! - a symlink on the path is followed only when owned by root or the
//!   invoking user (it sits in a directory that passed the check, so nobody
//!   else could have replaced it); its target is resolved by the same rules,
//!   at most [`MAX_LINKS`] links in all;
//! - a missing directory is created (`mkdirat` relative to its checked
//!   parent), then opened and checked like any other: one another user made
//!   first is refused.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::owner::Owner;
use super::policy::{self, DirFacts};
use super::{OutputError, io};

/// Symlinks followed on one path at most (the kernel's own `MAXSYMLINKS`).
pub const MAX_LINKS: usize = 40;
/// Mode of new directories (before the umask).
const DIR_MODE: u32 = 0o755;

/// Whether missing directories are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Create them (and hand them to the sudo user).
    Create(Option<Owner>),
    /// A missing directory is an error.
    Fail,
}

/// One step of the path still to walk.
enum Step {
    Root,
    Parent,
    Name(std::ffi::OsString),
}

fn steps(path: &Path) -> Vec<Step> {
    path.components()
        .filter_map(|c| match c {
            Component::RootDir => Some(Step::Root),
            Component::ParentDir => Some(Step::Parent),
            Component::Normal(name) => Some(Step::Name(name.to_owned())),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Opens one component of a directory without following a symlink: an
/// `O_PATH` descriptor of the directory, file or symlink itself.
fn open_component(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::BENEATH;
    match rustix::fs::openat2(dir, name, flags, Mode::empty(), resolve) {
        // No openat2 (before 5.6, or filtered by a seccomp policy).
        Err(Errno::NOSYS | Errno::PERM) => rustix::fs::openat(dir, name, flags, Mode::empty()),
        other => other,
    }
}

/// Checks a directory through its descriptor.
fn check_dir(fd: &OwnedFd, shown: &Path, me: Owner) -> Result<(), OutputError> {
    let st = rustix::fs::fstat(fd).map_err(|e| io("inspect", shown)(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(OutputError::NotADirectory {
            path: shown.to_owned(),
        });
    }
    let facts = DirFacts {
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode,
    };
    policy::check(&facts, me).map_err(|why| OutputError::UnsafeDir {
        path: shown.to_owned(),
        why,
    })
}

fn open_dir(at: &OwnedFd, name: &str, shown: &Path) -> Result<OwnedFd, OutputError> {
    rustix::fs::openat(
        at,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", shown)(e.into()))
}

/// Resolves `path` to an `O_PATH` descriptor of a trusted directory (see
/// the module doc); `me` is whose files count as the user's own.
pub fn resolve_dir(path: &Path, missing: Missing, me: Owner) -> Result<OwnedFd, OutputError> {
    let cwd = rustix::fs::openat(
        CWD,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open the working directory", Path::new("."))(e.into()))?;
    let mut walk = Walk {
        dir: cwd,
        shown: PathBuf::from(if path.is_absolute() { "/" } else { "." }),
        pending: Vec::new(),
        links: 0,
        missing,
        me,
    };
    if !path.is_absolute() {
        check_dir(&walk.dir, &walk.shown, me)?;
    }
    walk.pending = steps(path);
    walk.pending.reverse();
    while let Some(step) = walk.pending.pop() {
        match step {
            Step::Root => walk.enter("/", PathBuf::from("/"))?,
            Step::Parent => {
                let shown = walk.shown.join("..");
                walk.enter("..", shown)?;
            }
            Step::Name(name) => walk.name(name)?,
        }
    }
    Ok(walk.dir)
}

/// Where [`resolve_dir`] stands: the checked directory reached so far, its
/// path as shown in messages, the steps left (last first) and the
/// symlinks followed.
struct Walk {
    dir: OwnedFd,
    shown: PathBuf,
    pending: Vec<Step>,
    links: usize,
    missing: Missing,
    me: Owner,
}

impl Walk {
    /// Moves to `name` (`/` or `..`) from the current directory, shown as
    /// `shown`, and checks it.
    fn enter(&mut self, name: &str, shown: PathBuf) -> Result<(), OutputError> {
        self.shown = shown;
        self.dir = open_dir(&self.dir, name, &self.shown)?;
        check_dir(&self.dir, &self.shown, self.me)
    }

    /// Steps into the component `name`: a checked directory, a symlink
    /// followed, or a missing directory made (when `missing` allows) and
    /// then stepped into.
    fn name(&mut self, name: std::ffi::OsString) -> Result<(), OutputError> {
        let here = self.shown.join(&name);
        let fd = match open_component(&self.dir, &name) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                let Missing::Create(owner) = self.missing else {
                    return Err(io("open", &here)(Errno::NOENT.into()));
                };
                make_dir(&self.dir, &name, &here, owner)?;
                self.pending.push(Step::Name(name));
                return Ok(());
            }
            Err(e) => return Err(io("open", &here)(e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io("inspect", &here)(e.into()))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                check_dir(&fd, &here, self.me)?;
                self.dir = fd;
                self.shown = here;
                Ok(())
            }
            FileType::Symlink => self.follow(&fd, st.st_uid, &here),
            _ => Err(OutputError::NotADirectory { path: here }),
        }
    }

    /// Follows the symlink `link` (owned by `uid`, shown as `here`): its
    /// target's steps come next. A relative target continues from the
    /// link's directory, which `dir` and `shown` still are.
    fn follow(&mut self, link: &OwnedFd, uid: u32, here: &Path) -> Result<(), OutputError> {
        policy::check_symlink(uid, self.me).map_err(|why| OutputError::UnsafeDir {
            path: here.to_path_buf(),
            why,
        })?;
        self.links += 1;
        if self.links > MAX_LINKS {
            return Err(io("resolve", here)(Errno::LOOP.into()));
        }
        let target = rustix::fs::readlinkat(link, "", Vec::new())
            .map_err(|e| io("read the symlink", here)(e.into()))?;
        let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
        let mut more = steps(&target);
        more.reverse();
        self.pending.extend(more);
        Ok(())
    }
}

/// Makes the missing directory `name` in `dir` and hands it to `owner`;
/// the caller opens and checks it like any other.
fn make_dir(
    dir: &OwnedFd,
    name: &OsStr,
    shown: &Path,
    owner: Option<Owner>,
) -> Result<(), OutputError> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(DIR_MODE)) {
        Ok(()) => {}
        // Someone made it meanwhile: the check on open decides.
        Err(Errno::EXIST) => return Ok(()),
        Err(e) => return Err(io("create the directory", shown)(e.into())),
    }
    let Some(owner) = owner else {
        return Ok(());
    };
    let fd = open_component(dir, name).map_err(|e| io("open", shown)(e.into()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io("inspect", shown)(e.into()))?;
    // Only the directory just made, never one swapped in for it.
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory
        && st.st_uid == rustix::process::geteuid().as_raw()
    {
        rustix::fs::chownat(
            &fd,
            "",
            Some(rustix::fs::Uid::from_raw(owner.uid)),
            Some(rustix::fs::Gid::from_raw(owner.gid)),
            AtFlags::EMPTY_PATH,
        )
        .map_err(|e| io("hand the directory to the sudo user", shown)(e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    use super::*;

    fn me() -> Owner {
        Owner {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }

    fn same_dir(fd: &OwnedFd, path: &Path) -> bool {
        let a = rustix::fs::fstat(fd).unwrap();
        let b = rustix::fs::stat(path).unwrap();
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    }

    #[test]
    fn own_symlinks_are_followed_relative_and_absolute() {
        let scratch = tempfile::tempdir().unwrap();
        let real = scratch.path().join("real/deeper");
        std::fs::create_dir_all(&real).unwrap();
        symlink("real", scratch.path().join("rel")).unwrap();
        symlink(&real, scratch.path().join("abs")).unwrap();
        let fd = resolve_dir(&scratch.path().join("rel/deeper"), Missing::Fail, me()).unwrap();
        assert!(same_dir(&fd, &real));
        let fd = resolve_dir(&scratch.path().join("abs"), Missing::Fail, me()).unwrap();
        assert!(same_dir(&fd, &real));
        let fd = resolve_dir(&scratch.path().join("abs/../deeper"), Missing::Fail, me()).unwrap();
        assert!(same_dir(&fd, &real), "`..` is the target's parent");
    }

    #[test]
    fn missing_directories_are_made_and_files_are_not_directories() {
        let scratch = tempfile::tempdir().unwrap();
        let deep = scratch.path().join("a/b/c");
        assert!(resolve_dir(&deep, Missing::Fail, me()).is_err());
        let fd = resolve_dir(&deep, Missing::Create(None), me()).unwrap();
        assert!(same_dir(&fd, &deep));
        std::fs::write(scratch.path().join("file"), "x").unwrap();
        let err =
            resolve_dir(&scratch.path().join("file"), Missing::Create(None), me()).unwrap_err();
        assert!(matches!(err, OutputError::NotADirectory { .. }), "{err}");
    }

    #[test]
    fn an_open_ancestor_is_refused_wherever_it_is() {
        let scratch = tempfile::tempdir().unwrap();
        let open = scratch.path().join("open");
        std::fs::create_dir_all(open.join("inner")).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = resolve_dir(&open.join("inner"), Missing::Fail, me()).unwrap_err();
        assert!(
            matches!(&err, OutputError::UnsafeDir { path, .. } if path == &open),
            "{err}"
        );
        // Through a link to it, too.
        symlink(&open, scratch.path().join("link")).unwrap();
        assert!(resolve_dir(&scratch.path().join("link/inner"), Missing::Fail, me()).is_err());
    }

    #[test]
    fn link_loops_end() {
        let scratch = tempfile::tempdir().unwrap();
        symlink("b", scratch.path().join("a")).unwrap();
        symlink("a", scratch.path().join("b")).unwrap();
        let err = resolve_dir(&scratch.path().join("a"), Missing::Create(None), me()).unwrap_err();
        assert!(err.to_string().contains("resolve"), "{err}");
    }
}
