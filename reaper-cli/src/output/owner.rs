//! Whose files reaper writes: under `sudo`, the invoking user's
//! (`SUDO_UID`/`SUDO_GID`), so `out/` stays the user's own; otherwise this
//! process's identity, which the kernel gives every new file anyway.

/// A uid/gid pair files and directories are handed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// The user behind `sudo reaper ...`: only when this process runs with
/// euid 0 and sudo's variables name a non-root user. Anything else (no sudo,
/// garbage in the variables, sudo to root) is `None`: files keep the
/// identity the kernel gives them.
pub fn from_env(euid: u32, sudo_uid: Option<&str>, sudo_gid: Option<&str>) -> Option<Owner> {
    if euid != 0 {
        return None;
    }
    let uid: u32 = sudo_uid?.trim().parse().ok()?;
    let gid: u32 = sudo_gid?.trim().parse().ok()?;
    (uid != 0).then_some(Owner { uid, gid })
}

/// [`from_env`] for this process.
pub fn invoking_user() -> Option<Owner> {
    let var = |name| std::env::var(name).ok();
    from_env(
        rustix::process::geteuid().as_raw(),
        var("SUDO_UID").as_deref(),
        var("SUDO_GID").as_deref(),
    )
}

/// The identity whose files count as the user's own: the sudo user if any,
/// else this process's effective ids.
pub fn me() -> Owner {
    invoking_user().unwrap_or_else(|| Owner {
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_user_owns_files_only_when_root_through_sudo() {
        let alice = Some(Owner {
            uid: 1000,
            gid: 1000,
        });
        assert_eq!(from_env(0, Some("1000"), Some("1000")), alice);
        assert_eq!(from_env(1000, Some("1000"), Some("1000")), None);
        assert_eq!(from_env(0, None, None), None);
        assert_eq!(from_env(0, Some("0"), Some("0")), None);
        assert_eq!(from_env(0, Some("x"), Some("1000")), None);
        assert_eq!(from_env(0, Some("1000"), None), None);
    }
}
