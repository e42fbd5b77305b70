//! Refuse or degrade before acting: the kernel mechanisms a `record` mode
//! needs are checked before any victim is spawned or killed, so a kernel
//! that lacks one costs nothing and never yields a figure for a mechanism
//! that did not run.
//!
//! Today that is `process_mrelease(2)` (Linux 5.15; Android backported it to
//! its 5.10 GKI for lmkd): the default `--victim` and `--pid` modes race the
//! kill with it. Without it `record` refuses (exit 2) and names the modes
//! that work, unless `--degrade` asks it to go on without the race; the
//! scenario then carries why, and every row derived from the call says
//! "not measured (why)".

use super::{RecordSettings, Target};

/// What the kernel answered for `process_mrelease`, for messages and the
/// run file.
pub const MRELEASE_MISSING: &str =
    "process_mrelease is missing on this kernel (ENOSYS; it arrived in Linux 5.15)";

/// A mechanism the requested mode needs is missing, and `--degrade` was not
/// given; nothing was spawned or killed.
#[derive(Debug, thiserror::Error)]
#[error(
    "{MRELEASE_MISSING} ({release}), and `record` {what} races the kill with it, so nothing was \
     killed. Modes that work on this kernel:\n  \
     reaper record --no-mrelease ...   kill only: the victim's own exit_mmap does all the work\n  \
     reaper record --oom ...           the kernel's OOM killer and its oom_reaper, in a memory \
     cgroup of reaper's own\n  \
     reaper record --watch             record the teardowns the system triggers\n\
     or add --degrade to record this scenario without the process_mrelease race (its rows then \
     say \"not measured\" and why)"
)]
pub struct MechanismMissing {
    /// `uname -r`.
    release: String,
    /// Which mode: "--victim (the default)" or "--pid".
    what: &'static str,
}

/// Checks `settings` against what the kernel offers (`mrelease_available`:
/// whether `process_mrelease` exists). With `degrade`, a missing mechanism
/// is dropped from the settings and recorded as unavailable; without, it is
/// an error.
pub fn check(
    settings: &mut RecordSettings,
    mrelease_available: bool,
    degrade: bool,
    release: &str,
) -> Result<(), MechanismMissing> {
    // --watch triggers nothing: it records the calls others make, and a
    // kernel without the syscall has none to record.
    let races = matches!(settings.target, Target::Victim(_) | Target::Pid(_));
    if !settings.mrelease || !races || mrelease_available {
        return Ok(());
    }
    if degrade {
        settings.mrelease = false;
        settings.mrelease_unavailable = Some(MRELEASE_MISSING.to_owned());
        return Ok(());
    }
    Err(MechanismMissing {
        release: release.to_owned(),
        what: match settings.target {
            Target::Pid(_) => "--pid",
            _ => "--victim (the default)",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::record::RecordArgs;
    use clap::Parser as _;

    fn settings(args: &[&str]) -> RecordSettings {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            record: RecordArgs,
        }
        let mut argv = vec!["record"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).record.settings(0, false).unwrap()
    }

    /// Regression: the scenario said "victim victim 1G,..." (the victim's
    /// description already names it).
    #[test]
    fn a_victims_scenario_names_it_once() {
        let scenario = super::super::scenario::scenario_of(&settings(&["--victim", "64M"]));
        assert_eq!(
            scenario.description,
            "victim 64M,vmas=64,threads=4 + process_mrelease"
        );
    }

    #[test]
    fn a_missing_mrelease_refuses_the_default_mode_and_names_what_works() {
        let mut s = settings(&["--victim", "256M"]);
        let err = check(&mut s, false, false, "5.10.0-32-cloud-amd64").unwrap_err();
        let message = err.to_string();
        for needle in [
            "ENOSYS",
            "5.10.0-32-cloud-amd64",
            "nothing was killed",
            "--no-mrelease",
            "--oom",
            "--degrade",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        assert!(s.mrelease, "a refusal changes nothing");
    }

    #[test]
    fn degrade_drops_the_race_and_says_why() {
        let mut s = settings(&["--victim", "256M"]);
        check(&mut s, false, true, "5.10").unwrap();
        assert!(!s.mrelease);
        assert_eq!(s.mrelease_unavailable.as_deref(), Some(MRELEASE_MISSING));
    }

    #[test]
    fn modes_without_mrelease_and_kernels_with_it_pass_unchanged() {
        for args in [&["--no-mrelease"][..], &["--oom"], &["--watch"]] {
            let mut s = settings(args);
            check(&mut s, false, false, "5.10").unwrap();
            assert_eq!(s.mrelease_unavailable, None, "{args:?}");
        }
        let mut s = settings(&[]);
        check(&mut s, true, false, "6.1").unwrap();
        assert!(s.mrelease);
    }
}
