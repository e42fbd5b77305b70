//! Where `record` keeps its run when no `-o` is given, so a run can always
//! be re-rendered or compared later: `$REAPER_RUNS_DIR`, else
//! `$XDG_STATE_HOME/reaper/runs`, else `~/.local/state/reaper/runs`, one
//! directory per run named by its start (UTC) and scenario. Under `sudo`
//! the invoking user's home is used (sudo's environment names root's), and
//! the files are that user's (see [`super::owner`]).

use std::path::{Path, PathBuf};

use crate::model::ScenarioKind;

/// Overrides the runs directory.
pub const RUNS_DIR_ENV: &str = "REAPER_RUNS_DIR";

/// Why there is no runs directory to save into.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoRunsDir {
    /// Under sudo, the invoking user has no home in the password database.
    #[error("the sudo user (uid {uid}) has no home directory")]
    NoSudoHome {
        /// The invoking user.
        uid: u32,
    },
    /// None of the variables that name it is set.
    #[error("neither {RUNS_DIR_ENV}, XDG_STATE_HOME nor HOME is set")]
    NoVariable,
}

/// The runs directory from the environment and the user's home.
pub fn runs_dir() -> Result<PathBuf, NoRunsDir> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(RUNS_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(owner) = super::owner::invoking_user() {
        let home = home_of(owner.uid).ok_or(NoRunsDir::NoSudoHome { uid: owner.uid })?;
        return Ok(home.join(".local/state/reaper/runs"));
    }
    if let Some(state) = var("XDG_STATE_HOME").map(PathBuf::from)
        && state.is_absolute()
    {
        return Ok(state.join("reaper/runs"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".local/state/reaper/runs"))
        .ok_or(NoRunsDir::NoVariable)
}

/// A run's directory name: `2026-12-04T22-40-05Z-victim`.
pub fn run_name(started_unix: u64, kind: ScenarioKind) -> String {
    let utc = crate::duration::utc(started_unix);
    let stamp: String = utc
        .trim_end_matches(" UTC")
        .chars()
        .map(|c| match c {
            ' ' => 'T',
            ':' => '-',
            c => c,
        })
        .collect();
    format!("{stamp}Z-{}", kind.name())
}

/// The first of `name`, `name-2`, `name-3`, ... that does not exist in `dir`.
pub fn fresh(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.join(name);
    let mut n = 2;
    while path.symlink_metadata().is_ok() {
        path = dir.join(format!("{name}-{n}"));
        n += 1;
    }
    path
}

/// The home directory of `uid` from the password database.
fn home_of(uid: u32) -> Option<PathBuf> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: pwd, buf and result are valid for the call; buf's length is
    // passed; on success the strings in pwd point into buf, which outlives
    // their use below.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir is a NUL-terminated string inside buf (see above).
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    let dir = PathBuf::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(dir.to_bytes()),
    );
    dir.is_absolute().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_named_by_its_start_and_scenario() {
        assert_eq!(
            run_name(1_764_108_245, ScenarioKind::Victim),
            "2025-11-25T22-04-05Z-victim"
        );
        // The kind is the name's last part as is: no kind could leave `dir`.
        for kind in ScenarioKind::ALL {
            let name = run_name(0, kind);
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)),
                "{name}"
            );
        }
    }

    #[test]
    fn a_taken_name_gets_a_number() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fresh(dir.path(), "r"), dir.path().join("r"));
        std::fs::create_dir(dir.path().join("r")).unwrap();
        std::fs::create_dir(dir.path().join("r-2")).unwrap();
        assert_eq!(fresh(dir.path(), "r"), dir.path().join("r-3"));
    }

    #[test]
    fn root_has_a_home() {
        assert_eq!(home_of(0), Some(PathBuf::from("/root")));
    }
}
