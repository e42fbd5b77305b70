//! Whether a directory on an output path, or a symlink in one, is safe for
//! reaper (often root) to go through and write into: the checks as pure
//! functions of `fstat`, so every refusal is unit-tested without creating
//! users. `resolve` applies them to every component of the path.

use super::owner::Owner;

/// `S_ISVTX`: in a sticky directory only a file's owner may rename or
/// remove it, so other writers cannot swap reaper's files.
const STICKY: u32 = 0o1000;
/// Writable by the group / by everyone.
const GROUP_WRITE: u32 = 0o020;
const OTHER_WRITE: u32 = 0o002;

/// What `fstat` said about a directory on an output path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirFacts {
    /// The directory's owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `st_mode`.
    pub mode: u32,
}

/// Why a directory is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    /// A symlink another user planted can point anywhere.
    #[error("it is a symlink owned by uid {0}, not by you or root")]
    SymlinkOfOther(u32),
    /// Its owner can replace or re-point files in it at any time.
    #[error("it belongs to uid {0}, not to you or root")]
    OwnedByOther(u32),
    /// Anyone can plant files in it.
    #[error("every user can write to it and it has no sticky bit (mode {0:o})")]
    WorldWritable(u32),
    /// Every member of another group can plant files in it.
    #[error("group {gid} can write to it and it has no sticky bit (mode {mode:o})")]
    GroupWritable {
        /// Its group.
        gid: u32,
        /// Its mode.
        mode: u32,
    },
}

fn trusted_uid(uid: u32, me: Owner) -> bool {
    uid == 0 || uid == me.uid
}

/// Accepts a symlink only root or the invoking user (`me`) made.
pub fn check_symlink(uid: u32, me: Owner) -> Result<(), Unsafe> {
    if trusted_uid(uid, me) {
        Ok(())
    } else {
        Err(Unsafe::SymlinkOfOther(uid))
    }
}

/// Accepts a directory only the invoking user (`me`) or root can change.
pub fn check(facts: &DirFacts, me: Owner) -> Result<(), Unsafe> {
    if !trusted_uid(facts.uid, me) {
        return Err(Unsafe::OwnedByOther(facts.uid));
    }
    let mode = facts.mode & 0o7777;
    if mode & STICKY != 0 {
        return Ok(());
    }
    if mode & OTHER_WRITE != 0 {
        return Err(Unsafe::WorldWritable(mode));
    }
    if mode & GROUP_WRITE != 0 && facts.gid != 0 && facts.gid != me.gid {
        return Err(Unsafe::GroupWritable {
            gid: facts.gid,
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Owner = Owner {
        uid: 1000,
        gid: 1000,
    };

    fn dir(uid: u32, gid: u32, mode: u32) -> DirFacts {
        DirFacts {
            uid,
            gid,
            mode: 0o040000 | mode,
        }
    }

    #[test]
    fn own_and_root_directories_are_accepted() {
        assert_eq!(check(&dir(1000, 1000, 0o755), ALICE), Ok(()));
        assert_eq!(check(&dir(0, 0, 0o755), ALICE), Ok(()));
        assert_eq!(check(&dir(1000, 1000, 0o775), ALICE), Ok(()));
        // /tmp itself: world-writable but sticky.
        assert_eq!(check(&dir(0, 0, 0o1777), ALICE), Ok(()));
    }

    #[test]
    fn world_or_foreign_group_writable_without_sticky_is_refused() {
        assert_eq!(
            check(&dir(1000, 1000, 0o777), ALICE),
            Err(Unsafe::WorldWritable(0o777))
        );
        assert_eq!(
            check(&dir(1000, 50, 0o775), ALICE),
            Err(Unsafe::GroupWritable {
                gid: 50,
                mode: 0o775
            })
        );
    }

    #[test]
    fn other_users_directories_and_symlinks_are_refused() {
        assert_eq!(
            check(&dir(1001, 1001, 0o755), ALICE),
            Err(Unsafe::OwnedByOther(1001))
        );
        assert_eq!(
            check_symlink(1001, ALICE),
            Err(Unsafe::SymlinkOfOther(1001))
        );
        assert_eq!(check_symlink(1000, ALICE), Ok(()));
        assert_eq!(check_symlink(0, ALICE), Ok(()));
    }
}
