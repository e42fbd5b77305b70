//! Memory and freezer cgroups that reaper creates, limits, freezes, and
//! always removes again (on success, on error and on Ctrl-C, through Drop).
//!
//! cgroup v1 (separate `memory` and `freezer` hierarchies, as on the
//! development machine) and cgroup v2 (`memory.max`, `cgroup.freeze`) are both
//! handled. reaper never touches a cgroup it did not create, so OOM kills it
//! triggers stay inside its own limit.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// cgroup failures.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No usable memory controller.
    #[error(
        "no memory cgroup controller is available (neither cgroup v1 {V1_ROOT}/memory nor a cgroup v2 hierarchy with the memory controller enabled); reaper will not trigger an OOM outside a cgroup it controls"
    )]
    NoMemoryController,
    /// No usable freezer.
    #[error(
        "no cgroup freezer is available (neither {V1_ROOT}/freezer nor cgroup v2 cgroup.freeze)"
    )]
    NoFreezer,
    /// A cgroup file operation failed.
    #[error("{what} {path}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Freezing did not complete.
    #[error("the freezer cgroup {0} did not reach FROZEN within {1:?}")]
    FreezeTimeout(PathBuf, Duration),
}

const V1_ROOT: &str = "/sys/fs/cgroup";

/// Which cgroup API a hierarchy speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Legacy per-controller hierarchies.
    V1,
    /// The unified hierarchy.
    V2,
}

/// One cgroup directory reaper created.
#[derive(Debug)]
struct Dir {
    path: PathBuf,
    version: Version,
}

/// A memory cgroup (and optionally a freezer cgroup) owned by reaper.
#[derive(Debug)]
pub struct OwnedCgroup {
    memory: Dir,
    freezer: Option<Dir>,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_owned();
    move |source| CgroupError::Io { what, path, source }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io("writing", path))
}

/// The cgroup v2 root with `controller` enabled for children, if any.
fn v2_root_with(controller: &str) -> Option<PathBuf> {
    [Path::new(V1_ROOT), Path::new("/sys/fs/cgroup/unified")]
        .into_iter()
        .find_map(|root| {
            let controllers = std::fs::read_to_string(root.join("cgroup.subtree_control")).ok()?;
            controllers
                .split_whitespace()
                .any(|c| c == controller)
                .then(|| root.to_owned())
        })
}

fn memory_parent() -> Option<(PathBuf, Version)> {
    let v1 = Path::new(V1_ROOT).join("memory");
    if v1.join("memory.limit_in_bytes").exists() {
        return Some((v1, Version::V1));
    }
    v2_root_with("memory").map(|root| (root, Version::V2))
}

fn freezer_parent() -> Option<(PathBuf, Version)> {
    let v1 = Path::new(V1_ROOT).join("freezer");
    if v1.join("cgroup.procs").exists() && !Path::new(V1_ROOT).join("cgroup.freeze").exists() {
        return Some((v1, Version::V1));
    }
    // cgroup.freeze exists in every non-root v2 cgroup; the memory cgroup we
    // create doubles as the freezer there.
    v2_root_with("memory").map(|root| (root, Version::V2))
}

impl OwnedCgroup {
    /// Creates `name` under the memory hierarchy (and the freezer one when
    /// `with_freezer`).
    pub fn create(name: &str, with_freezer: bool) -> Result<Self, CgroupError> {
        let (parent, version) = memory_parent().ok_or(CgroupError::NoMemoryController)?;
        let path = parent.join(name);
        std::fs::create_dir(&path).map_err(io("creating cgroup", &path))?;
        let mut cgroup = Self {
            memory: Dir { path, version },
            freezer: None,
        };
        if with_freezer {
            let (parent, version) = freezer_parent().ok_or(CgroupError::NoFreezer)?;
            if version == Version::V2 && cgroup.memory.version == Version::V2 {
                cgroup.freezer = Some(Dir {
                    path: cgroup.memory.path.clone(),
                    version,
                });
            } else {
                let path = parent.join(name);
                std::fs::create_dir(&path).map_err(io("creating cgroup", &path))?;
                cgroup.freezer = Some(Dir { path, version });
            }
        }
        Ok(cgroup)
    }

    /// The memory cgroup's directory.
    pub fn memory_path(&self) -> &Path {
        &self.memory.path
    }

    /// `cgroup.procs` files a process must join: memory, then freezer.
    pub fn procs_files(&self, with_freezer: bool) -> Vec<PathBuf> {
        let mut files = vec![self.memory.path.join("cgroup.procs")];
        if let Some(freezer) = self
            .freezer
            .as_ref()
            .filter(|f| with_freezer && f.path != self.memory.path)
        {
            files.push(freezer.path.join("cgroup.procs"));
        }
        files
    }

    /// Sets the memory limit (None: unlimited).
    pub fn set_memory_limit(&self, bytes: Option<u64>) -> Result<(), CgroupError> {
        let (file, value) = match (self.memory.version, bytes) {
            (Version::V1, Some(b)) => ("memory.limit_in_bytes", b.to_string()),
            (Version::V1, None) => ("memory.limit_in_bytes", "-1".to_owned()),
            (Version::V2, Some(b)) => ("memory.max", b.to_string()),
            (Version::V2, None) => ("memory.max", "max".to_owned()),
        };
        write(&self.memory.path.join(file), &value)
    }

    /// Memory charged to the cgroup, bytes.
    pub fn memory_usage(&self) -> u64 {
        let file = match self.memory.version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        std::fs::read_to_string(self.memory.path.join(file))
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Freezes the freezer cgroup and waits until it is frozen. The cgroup
    /// stays frozen while the returned guard lives and thaws when it is
    /// dropped (also when freezing times out): a cgroup v1 freezer holds
    /// even SIGKILLed tasks, so they must thaw before anyone waits for them.
    pub fn freeze(&self, timeout: Duration) -> Result<Frozen<'_>, CgroupError> {
        let freezer = self.freezer.as_ref().ok_or(CgroupError::NoFreezer)?;
        let (file, value, state_file, frozen) = match freezer.version {
            Version::V1 => ("freezer.state", "FROZEN", "freezer.state", "FROZEN"),
            Version::V2 => ("cgroup.freeze", "1", "cgroup.events", "frozen 1"),
        };
        write(&freezer.path.join(file), value)?;
        let guard = Frozen { cgroup: self };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let state = std::fs::read_to_string(freezer.path.join(state_file)).unwrap_or_default();
            if state.lines().any(|l| l.trim() == frozen) {
                return Ok(guard);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(CgroupError::FreezeTimeout(freezer.path.clone(), timeout))
    }

    /// Thaws the freezer cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        let Some(freezer) = &self.freezer else {
            return Ok(());
        };
        match freezer.version {
            Version::V1 => write(&freezer.path.join("freezer.state"), "THAWED"),
            Version::V2 => write(&freezer.path.join("cgroup.freeze"), "0"),
        }
    }

    /// Pids still in the memory cgroup.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.memory.path.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Lifts the limit, thaws, SIGKILLs what is left inside (only processes
    /// reaper started can be there), waits for them and removes the
    /// directories. Errors are collected, not fatal: cleanup goes on.
    pub fn remove(mut self) -> Vec<String> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let _ = self.set_memory_limit(None);
        if let Err(e) = self.thaw() {
            problems.push(e.to_string());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!(
                    "processes {pids:?} did not leave {}",
                    self.memory.path.display()
                ));
                break;
            }
            for pid in pids {
                // SAFETY: kill(2) on a pid inside reaper's own cgroup.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut dirs = vec![self.memory.path.clone()];
        if let Some(f) = self.freezer.take().filter(|f| f.path != self.memory.path) {
            dirs.push(f.path);
        }
        for dir in dirs {
            // rmdir can race the last task's exit for a moment.
            let mut result = std::fs::remove_dir(&dir);
            for _ in 0..50 {
                if result.is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                result = std::fs::remove_dir(&dir);
            }
            if let Err(e) = result
                && dir.exists()
            {
                problems.push(format!("removing {}: {e}", dir.display()));
            }
        }
        self.memory.path = PathBuf::new();
        problems
    }
}

/// A frozen [`OwnedCgroup`]: thawed by [`Frozen::thaw`] or, on any other
/// path (an error, a panic unwinding), when dropped.
#[must_use = "the cgroup thaws when this guard is dropped"]
#[derive(Debug)]
pub struct Frozen<'a> {
    cgroup: &'a OwnedCgroup,
}

impl Frozen<'_> {
    /// Thaws the cgroup now.
    pub fn thaw(self) -> Result<(), CgroupError> {
        let result = self.cgroup.thaw();
        std::mem::forget(self);
        result
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.cgroup.thaw() {
            log::warn!("thawing the frozen cgroup: {err}");
        }
    }
}

/// The name of the cgroup that reaper process `owner` creates for its
/// episode `episode` (`reaper-<owner>-<episode>`).
pub fn owned_name(owner: u32, episode: u32) -> String {
    format!("{NAME_PREFIX}{owner}-{episode}")
}

const NAME_PREFIX: &str = "reaper-";

/// The owner pid in a name made by [`owned_name`]; `None` for any other name.
pub fn owner_of(name: &str) -> Option<u32> {
    let (owner, episode) = name.strip_prefix(NAME_PREFIX)?.split_once('-')?;
    episode.parse::<u32>().ok()?;
    owner.parse().ok()
}

/// A cgroup left behind by a reaper process that no longer exists.
#[derive(Debug)]
pub struct StaleCgroup {
    /// Its name, `reaper-<pid>-<n>`.
    pub name: String,
    /// The directories removed (memory, freezer).
    pub removed: Vec<PathBuf>,
    /// What could not be cleaned up.
    pub problems: Vec<String>,
}

/// Removes every `reaper-<pid>-<n>` cgroup whose owner `pid` is gone (a
/// `kill -9`ed `record --oom` cannot run its Drop). A cgroup whose owner
/// still runs is never touched: other reaper processes may be recording.
/// Frozen leftovers are thawed and their processes (reaper's own victims,
/// stuck frozen) killed first.
pub fn remove_stale() -> Vec<StaleCgroup> {
    let parents: Vec<PathBuf> = [memory_parent(), freezer_parent()]
        .into_iter()
        .flatten()
        .map(|(p, _)| p)
        .collect();
    let mut names: Vec<String> = parents
        .iter()
        .filter_map(|p| std::fs::read_dir(p).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| owner_of(name).is_some_and(|pid| !pid_alive(pid)))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let cgroup = OwnedCgroup::adopt(&name)?;
            let removed = cgroup.dirs();
            let problems = cgroup.remove();
            Some(StaleCgroup {
                name,
                removed,
                problems,
            })
        })
        .collect()
}

fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

impl OwnedCgroup {
    /// Takes over existing cgroups named `name` (memory and/or freezer), to
    /// remove them.
    fn adopt(name: &str) -> Option<Self> {
        let existing = |parent: Option<(PathBuf, Version)>| {
            parent
                .map(|(p, version)| Dir {
                    path: p.join(name),
                    version,
                })
                .filter(|d| d.path.is_dir())
        };
        let memory = existing(memory_parent());
        let freezer = existing(freezer_parent());
        // A freezer-only leftover stands in for the memory directory too:
        // cleanup's memory-limit write fails harmlessly there.
        let memory = memory.or_else(|| {
            freezer.as_ref().map(|f| Dir {
                path: f.path.clone(),
                version: f.version,
            })
        })?;
        Some(Self { memory, freezer })
    }

    /// The directories this cgroup consists of.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.memory.path.clone()];
        dirs.extend(
            self.freezer
                .as_ref()
                .filter(|f| f.path != self.memory.path)
                .map(|f| f.path.clone()),
        );
        dirs
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        if !self.memory.path.as_os_str().is_empty() {
            for problem in self.cleanup() {
                log::warn!("cgroup cleanup: {problem}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIGKILLed task in a cgroup v1 freezer stays frozen (6.18 measured:
    /// state D) until thawed, so a victim's guard that reaps it must run
    /// after the freezer's guard: declared earlier, dropped later.
    #[test]
    fn a_frozen_child_is_thawed_before_its_guard_reaps_it() {
        use std::process::{Command, Stdio};

        use crate::scenario::child::OwnedChild;

        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: creating a freezer cgroup needs root");
            return;
        }
        let name = owned_name(std::process::id(), u32::MAX);
        let cgroup = match OwnedCgroup::create(&name, true) {
            Ok(cgroup) => cgroup,
            Err(err) => {
                eprintln!("skipped: {err}");
                return;
            }
        };
        let pid;
        {
            let child = OwnedChild::spawn(
                Command::new("sleep")
                    .arg("1000")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            )
            .expect("spawning sleep");
            pid = child.pid();
            for file in cgroup.procs_files(true) {
                write(&file, &pid.to_string()).expect("joining the test cgroup");
            }
            let _frozen = cgroup.freeze(Duration::from_secs(5)).expect("freezing");
            // Dropped here: `_frozen` thaws, then `child` kills and reaps.
        }
        assert!(
            !Path::new("/proc").join(pid.to_string()).exists(),
            "the child was reaped"
        );
        assert!(cgroup.remove().is_empty());
    }

    #[test]
    fn only_reaper_names_have_an_owner() {
        assert_eq!(owner_of(&owned_name(4242, 3)), Some(4242));
        assert_eq!(owner_of("reaper-17-0"), Some(17));
        assert_eq!(owner_of("reaper-17"), None);
        assert_eq!(owner_of("reaper-x-0"), None);
        assert_eq!(owner_of("reaper-17-0x"), None);
        assert_eq!(owner_of("system.slice"), None);
    }
}
