//! Who the synthetic victim runs as. It needs no privilege: it maps and
//! touches memory, then waits to be killed. reaper, when root, starts it as
//! the sudo user (`SUDO_UID`/`SUDO_GID`) or else `nobody`; in every mode the
//! victim drops all capabilities it inherited (ambient ones, or file
//! capabilities of a `setcap` reaper binary) once it has joined its
//! cgroups, which still needs reaper's privileges.

use crate::output::owner::{self, Owner};

/// `nobody`'s traditional ids, used when the passwd database has no entry.
const NOBODY: Owner = Owner {
    uid: 65534,
    gid: 65534,
};

/// The identity to give the victim, when this process may change it
/// (euid 0): the sudo user, else `nobody`. `None`: keep reaper's uid (a
/// capabilities-only reaper cannot switch users; the victim still drops
/// its capabilities).
pub fn victim_identity() -> Option<Owner> {
    if rustix::process::geteuid().as_raw() != 0 {
        return None;
    }
    Some(owner::invoking_user().unwrap_or_else(|| lookup("nobody").unwrap_or(NOBODY)))
}

/// `UID:GID`, as passed to the victim process.
pub fn format(owner: Owner) -> String {
    format!("{}:{}", owner.uid, owner.gid)
}

/// A `--run-as` value that is not `UID:GID`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{raw:?} is not UID:GID")]
pub struct NotUidGid {
    /// The value as given.
    pub raw: String,
}

/// Parses [`format`]'s output.
pub fn parse(raw: &str) -> Result<Owner, NotUidGid> {
    let bad = || NotUidGid {
        raw: raw.to_owned(),
    };
    let (uid, gid) = raw.split_once(':').ok_or_else(bad)?;
    let id = |s: &str| s.parse::<u32>().map_err(|_| bad());
    Ok(Owner {
        uid: id(uid)?,
        gid: id(gid)?,
    })
}

fn lookup(name: &str) -> Option<Owner> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the result.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(Owner {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// In the victim: become `run_as` (if given; needs euid 0) and drop every
/// capability. The parent-death signal is set again (a credential change
/// clears it) and the process stays dumpable so reaper can read its /proc
/// files.
pub fn drop_privileges(run_as: Option<Owner>) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    if let Some(owner) = run_as {
        // SAFETY: plain syscalls with integer arguments; order matters:
        // groups and gid while still root, uid last.
        unsafe {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setresgid(owner.gid, owner.gid, owner.gid))?;
            check(libc::setresuid(owner.uid, owner.uid, owner.uid))?;
        }
    }
    let header = libc_cap_header();
    let none = [CapData::default(); 2];
    // SAFETY: prctl/capset with valid arguments; capset reads `none`.
    unsafe {
        check(libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ))?;
        check(libc::syscall(libc::SYS_capset, &header, none.as_ptr()) as libc::c_int)?;
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        check(libc::prctl(libc::PR_SET_DUMPABLE, 1))?;
    }
    Ok(())
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two `CapData` words (64 capabilities).
const CAP_VERSION_3: u32 = 0x2008_0522;

fn libc_cap_header() -> CapHeader {
    CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let o = Owner {
            uid: 1000,
            gid: 100,
        };
        assert_eq!(parse(&format(o)), Ok(o));
        assert!(parse("1000").is_err());
        assert!(parse("a:b").is_err());
    }
}
