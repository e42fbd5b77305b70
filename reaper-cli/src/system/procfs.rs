//! Reading and judging processes through /proc: is a pid a live user process
//! reaper may kill, what is its size, and which task is the `oom_reaper`.

use std::path::Path;

/// `PF_KTHREAD` from include/linux/sched.h (field 9 of /proc/PID/stat).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Why a pid may not be used as a victim.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// No such process.
    #[error("pid {0} does not exist (no /proc/{0}); check the pid with `ps -p {0}`")]
    NoSuchProcess(u32),
    /// pid 1.
    #[error(
        "refusing pid 1 (init): killing it would bring the machine down, and it never exits by itself"
    )]
    Init,
    /// reaper itself.
    #[error("refusing pid {0}: it is reaper itself")]
    Myself(u32),
    /// reaper's parent (the shell or sudo that started it).
    #[error("refusing pid {0}: it is reaper's parent process")]
    MyParent(u32),
    /// A kernel thread.
    #[error(
        "refusing pid {pid} ({comm}): it is a kernel thread, which has no user address space to tear down"
    )]
    KernelThread {
        /// The pid.
        pid: u32,
        /// Its comm.
        comm: String,
    },
    /// A thread id, not a process.
    #[error("pid {pid} is a thread of process {tgid}; pass the process id {tgid}")]
    NotThreadGroupLeader {
        /// The tid given.
        pid: u32,
        /// Its process.
        tgid: u32,
    },
    /// Already exiting: nothing left to measure.
    #[error("pid {0} is already exiting (zombie or dead); nothing left to tear down")]
    Dying(u32),
}

/// The parsed fields of /proc/PID/stat that reaper uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// pid.
    pub pid: u32,
    /// comm (inside the parentheses).
    pub comm: String,
    /// State letter.
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// `task->flags`.
    pub flags: u64,
}

impl ProcStat {
    /// Parses /proc/PID/stat text. The comm may contain spaces and ')'.
    pub fn parse(text: &str) -> Option<Self> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let pid = text[..open].trim().parse().ok()?;
        let comm = text[open + 1..close].to_owned();
        let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
        // rest[0] = state (field 3), rest[1] = ppid (4), rest[6] = flags (9).
        Some(Self {
            pid,
            comm,
            state: rest.first()?.chars().next()?,
            ppid: rest.get(1)?.parse().ok()?,
            flags: rest.get(6)?.parse().ok()?,
        })
    }

    /// Whether this is a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Reads /proc/PID/stat.
pub fn stat(pid: u32) -> Option<ProcStat> {
    ProcStat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The thread-group id of a pid, from /proc/PID/status.
pub fn tgid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Checks that `pid` is a live user process that reaper may kill.
pub fn validate_target(pid: u32) -> Result<ProcStat, TargetError> {
    let me = std::process::id();
    if pid == 1 {
        return Err(TargetError::Init);
    }
    if pid == me {
        return Err(TargetError::Myself(pid));
    }
    // SAFETY: getppid has no preconditions.
    if pid == unsafe { libc::getppid() } as u32 {
        return Err(TargetError::MyParent(pid));
    }
    let stat = stat(pid).ok_or(TargetError::NoSuchProcess(pid))?;
    if stat.is_kernel_thread() {
        return Err(TargetError::KernelThread {
            pid,
            comm: stat.comm,
        });
    }
    if let Some(tgid) = tgid(pid).filter(|&t| t != pid) {
        return Err(TargetError::NotThreadGroupLeader { pid, tgid });
    }
    if matches!(stat.state, 'Z' | 'X' | 'x') {
        return Err(TargetError::Dying(pid));
    }
    Ok(stat)
}

/// Resident set size in bytes (VmRSS of /proc/PID/status), 0 if unknown.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The resident counters of `/proc/PID/status` (`RssFile`, `RssAnon`,
/// `RssShmem`, Linux 4.5+), in bytes, indexed like the kernel's
/// `MM_*PAGES` (`reaper_common::rss::MEMBER_*`; swap left at 0); `None`
/// when the process is gone or the kernel does not split them.
pub fn rss_members(pid: u32) -> Option<[u64; reaper_common::rss::MEMBERS as usize]> {
    parse_rss_members(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// [`rss_members`] of a status file's text.
pub fn parse_rss_members(status: &str) -> Option<[u64; reaper_common::rss::MEMBERS as usize]> {
    use reaper_common::rss::{MEMBER_ANON, MEMBER_FILE, MEMBER_SHMEM};
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let mut members = [0; reaper_common::rss::MEMBERS as usize];
    members[MEMBER_FILE as usize] = kb("RssFile:")?;
    members[MEMBER_ANON as usize] = kb("RssAnon:")?;
    members[MEMBER_SHMEM as usize] = kb("RssShmem:")?;
    Some(members)
}

/// Resident bytes from `/proc/PID/statm` (its second field, in pages): one
/// short line, cheaper than `status` when every process is scanned.
pub fn statm_rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The page size (`sysconf(_SC_PAGESIZE)`).
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// Every process id /proc lists now.
pub fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Thread ids of a process.
pub fn threads(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Number of VMAs (lines of /proc/PID/maps).
pub fn vma_count(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |m| m.lines().count() as u32)
}

/// The `oom_reaper` kernel thread's pid, found by comm and the kthread flag.
pub fn find_oom_reaper() -> Option<u32> {
    find_kthread_in(
        Path::new("/proc"),
        reaper_common::context::OOM_REAPER_KTHREAD,
    )
}

fn find_kthread_in(proc_root: &Path, comm: &str) -> Option<u32> {
    std::fs::read_dir(proc_root)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = ProcStat::parse(&std::fs::read_to_string(entry.path().join("stat")).ok()?)?;
            (stat.comm == comm && stat.is_kernel_thread()).then_some(pid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_tricky_comm() {
        let s = ProcStat::parse("42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0").unwrap();
        assert_eq!(s.pid, 42);
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert!(!s.is_kernel_thread());
    }

    #[test]
    fn resident_counters_come_from_status() {
        let status = "VmRSS:\t  274520 kB\nRssAnon:\t  264424 kB\nRssFile:\t   10096 kB\nRssShmem:\t       0 kB\n";
        assert_eq!(
            parse_rss_members(status),
            Some([10096 * 1024, 264424 * 1024, 0, 0])
        );
        assert_eq!(parse_rss_members("VmRSS: 1 kB\n"), None);
    }

    #[test]
    fn kthread_flag_is_detected() {
        let s = ProcStat::parse("31 (oom_reaper) S 2 0 0 0 -1 2129984 0 0 0 0").unwrap();
        assert!(s.is_kernel_thread());
    }

    #[test]
    fn refuses_init_self_and_parent() {
        assert_eq!(validate_target(1), Err(TargetError::Init));
        let me = std::process::id();
        assert_eq!(validate_target(me), Err(TargetError::Myself(me)));
        let parent = unsafe { libc::getppid() } as u32;
        assert_eq!(validate_target(parent), Err(TargetError::MyParent(parent)));
    }

    #[test]
    fn refuses_missing_pid() {
        // pid_max is at most 2^22, so this pid cannot exist.
        assert_eq!(
            validate_target(9_999_999),
            Err(TargetError::NoSuchProcess(9_999_999))
        );
    }

    #[test]
    fn refuses_kernel_threads() {
        // kthreadd is pid 2 on every Linux system with a normal init.
        if let Some(stat) = stat(2).filter(ProcStat::is_kernel_thread) {
            assert!(
                matches!(
                    validate_target(2),
                    Err(TargetError::KernelThread { pid: 2, .. })
                ),
                "{stat:?}"
            );
        }
    }
}
