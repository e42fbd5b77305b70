//! The synthetic victim: a child process (reaper re-executed with the hidden
//! `__victim` subcommand) that maps anonymous private memory in N separate
//! VMAs, touches every page, starts T threads and reports "ready".
//!
//! Chunks are separated by unmapped one-page holes so the kernel cannot
//! merge them into one VMA, and are marked MADV_NOHUGEPAGE so teardown walks
//! 4 KiB PTEs under the PTE lock, as on the Android devices in the seed
//! thread (no THP).

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Duration,
};

use super::child::OwnedChild;
use crate::size::{VictimSpec, format_size};

/// Hidden subcommand name the parent re-executes itself with.
pub const VICTIM_SUBCOMMAND: &str = "__victim";
/// comm of the victim process.
pub const VICTIM_COMM: &str = "reaper-victim";
/// Keep this much of MemAvailable free when sizing a victim.
const MEMORY_HEADROOM_PERCENT: u64 = 20;

/// Victim set-up failures.
#[derive(Debug, thiserror::Error)]
pub enum VictimError {
    /// Would not fit in memory.
    #[error(
        "a {wanted} victim does not fit: MemAvailable is {available}, and reaper keeps {MEMORY_HEADROOM_PERCENT}% of it free; choose a smaller --victim size"
    )]
    TooBig {
        /// Requested size.
        wanted: String,
        /// MemAvailable.
        available: String,
    },
    /// Could not start the child.
    #[error("could not start the victim process")]
    Spawn(#[source] std::io::Error),
    /// The child failed while populating.
    #[error("the victim failed before it was ready: {0}")]
    Failed(String),
}

/// A running synthetic victim. Its [`OwnedChild`] guard kills and reaps the
/// child when it is dropped, so no exit path (error, Ctrl-C, panic
/// unwinding) leaves a victim or a zombie behind.
pub struct SpawnedVictim {
    child: OwnedChild,
    /// Its pid.
    pub pid: u32,
    stdout: BufReader<std::process::ChildStdout>,
}

/// MemAvailable in bytes from /proc/meminfo.
pub fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// How to start a victim beyond its size.
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    /// `cgroup.procs` files the victim joins before it maps anything.
    pub join: Vec<std::path::PathBuf>,
    /// Value for /proc/self/oom_score_adj (1000: the OOM killer's first pick).
    pub oom_score_adj: Option<i32>,
    /// Wait for [`SpawnedVictim::go`] before populating, so the caller can
    /// start tracking it first (its population may end in an OOM kill).
    pub wait_go: bool,
    /// comm to use instead of `reaper-victim` (e.g. `reaper-trigger`).
    pub comm: Option<String>,
    /// Once populated, exit by itself (with the code read, default 0) at
    /// the first line on stdin: a process whose own exit tests record.
    pub exit_on_stdin: bool,
}

/// Starts a victim and waits until every page is populated.
pub fn spawn(spec: &VictimSpec) -> Result<SpawnedVictim, VictimError> {
    let mut victim = spawn_with(spec, &SpawnOptions::default())?;
    victim.wait_ready()?;
    Ok(victim)
}

/// Starts a victim and waits until it has joined its cgroups; unless
/// `wait_go`, population has started, and [`SpawnedVictim::wait_ready`]
/// waits for its end.
pub fn spawn_with(spec: &VictimSpec, options: &SpawnOptions) -> Result<SpawnedVictim, VictimError> {
    if let Some(available) = mem_available()
        && spec.bytes > available / 100 * (100 - MEMORY_HEADROOM_PERCENT)
    {
        return Err(VictimError::TooBig {
            wanted: format_size(spec.bytes),
            available: format_size(available / (1 << 20) * (1 << 20)),
        });
    }
    let exe = std::env::current_exe().map_err(VictimError::Spawn)?;
    let mut cmd = Command::new(exe);
    cmd.args([
        VICTIM_SUBCOMMAND,
        &spec.bytes.to_string(),
        &spec.vmas.to_string(),
        &spec.threads.to_string(),
    ]);
    for file in &options.join {
        cmd.arg("--join").arg(file);
    }
    if let Some(adj) = options.oom_score_adj {
        cmd.arg(format!("--oom-score-adj={adj}"));
    }
    if options.wait_go {
        cmd.arg("--wait-go");
    }
    if let Some(comm) = &options.comm {
        cmd.arg(format!("--comm={comm}"));
    }
    if let Some(owner) = super::identity::victim_identity() {
        cmd.arg(format!("--run-as={}", super::identity::format(owner)));
    }
    cmd.stdin(if options.wait_go {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped());
    let mut child = OwnedChild::spawn(&mut cmd).map_err(VictimError::Spawn)?;
    let pid = child.pid();
    let stdout = BufReader::new(child.take_stdout().expect("stdout is piped"));
    let mut victim = SpawnedVictim { child, pid, stdout };
    victim.expect_line("joined")?;
    Ok(victim)
}

impl SpawnedVictim {
    fn expect_line(&mut self, wanted: &str) -> Result<(), VictimError> {
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line);
        if line.trim() == wanted {
            return Ok(());
        }
        // The caller drops the victim with this error: its guard kills it.
        let why = match (read, line.trim()) {
            (Ok(_), msg) if !msg.is_empty() => msg.to_owned(),
            _ => "it exited without reporting (killed by a signal, e.g. Ctrl-C or the OOM killer?)"
                .to_owned(),
        };
        Err(VictimError::Failed(why))
    }

    /// Lets a `wait_go` victim start populating.
    pub fn go(&mut self) -> std::io::Result<()> {
        let stdin = self
            .child
            .stdin()
            .ok_or_else(|| std::io::Error::other("victim was not started with wait_go"))?;
        stdin.write_all(b"go\n")?;
        stdin.flush()
    }

    /// Waits until every page is populated and every thread exists.
    pub fn wait_ready(&mut self) -> Result<(), VictimError> {
        self.expect_line("ready")
    }

    /// Waits up to `timeout` for the child to exit (someone else killed
    /// it) and reaps it; false if it did not exit in time.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        self.child.wait_exit(timeout)
    }

    /// SIGKILLs the child if it still runs, and reaps it (as dropping it does).
    pub fn kill_and_reap(&mut self) {
        self.child.kill_and_reap();
    }
}

/// The child side: join, drop privileges (to `run_as` if given), populate,
/// report, wait to be killed. Never returns.
pub fn run_child(
    bytes: u64,
    vmas: u32,
    threads: u32,
    options: &SpawnOptions,
    run_as: Option<crate::output::owner::Owner>,
) -> ! {
    die_with_parent_named(options);
    if let Err(why) = join_and_drop_privileges(options, run_as) {
        // One line, the step and the kernel's answer: "joining PATH: ...".
        println!("{:#}", anyhow::Error::new(why));
        std::process::exit(1);
    }
    println!("joined");
    let _ = std::io::stdout().flush();
    if options.wait_go {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_err() || line.trim() != "go" {
            std::process::exit(1);
        }
    }
    match populate(bytes, vmas) {
        Ok(()) => {}
        Err(err) => {
            println!("mapping victim memory failed: {err}");
            std::process::exit(1);
        }
    }
    start_threads(threads);
    println!("ready");
    let _ = std::io::stdout().flush();
    if options.exit_on_stdin {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        std::process::exit(line.trim().parse().unwrap_or(0));
    }
    loop {
        // SAFETY: pause() has no preconditions.
        unsafe { libc::pause() };
    }
}

/// Makes the child die with reaper and names it (`reaper-victim`, or
/// `options.comm`).
fn die_with_parent_named(options: &SpawnOptions) {
    // SAFETY: prctl with constant arguments; the victim dies with reaper.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"reaper-victim".as_ptr());
    }
    if let Some(comm) = options
        .comm
        .as_deref()
        .and_then(|c| std::ffi::CString::new(c).ok())
    {
        // SAFETY: PR_SET_NAME copies at most 16 bytes from a valid C string.
        unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr()) };
    }
}

/// Starts the victim's other threads (each pausing forever) and waits
/// until all `threads` exist: every one must before the parent kills the
/// victim.
fn start_threads(threads: u32) {
    for _ in 1..threads {
        // SAFETY: pause() has no preconditions.
        std::thread::spawn(|| {
            loop {
                unsafe { libc::pause() };
            }
        });
    }
    while super::super::system::procfs::threads(std::process::id()).len() < threads as usize {
        std::thread::yield_now();
    }
}

/// The step of the child's set-up that failed, with the kernel's answer.
#[derive(Debug, thiserror::Error)]
enum ChildSetupError {
    /// Writing its pid into a cgroup's procs file.
    #[error("joining {}", file.display())]
    Join {
        /// The procs file.
        file: std::path::PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Writing `/proc/self/oom_score_adj`.
    #[error("setting oom_score_adj {adj}")]
    OomScoreAdj {
        /// The value asked for.
        adj: i32,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Switching to the `--run-as` user.
    #[error("dropping privileges")]
    DropPrivileges(#[source] std::io::Error),
}

/// The child joins its cgroups, sets its oom_score_adj and drops its
/// privileges; on failure, the step to report to the parent.
fn join_and_drop_privileges(
    options: &SpawnOptions,
    run_as: Option<crate::output::owner::Owner>,
) -> Result<(), ChildSetupError> {
    let me = std::process::id().to_string();
    for file in &options.join {
        std::fs::write(file, &me).map_err(|source| ChildSetupError::Join {
            file: file.clone(),
            source,
        })?;
    }
    if let Some(adj) = options.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|source| ChildSetupError::OomScoreAdj { adj, source })?;
    }
    super::identity::drop_privileges(run_as).map_err(ChildSetupError::DropPrivileges)
}

fn populate(bytes: u64, vmas: u32) -> std::io::Result<()> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let chunk = (bytes as usize / vmas as usize) / page * page;
    let stride = chunk + page;
    let total = stride * vmas as usize;
    let prot_rw = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a fresh reservation; every later call stays inside it.
    unsafe {
        let base = libc::mmap(std::ptr::null_mut(), total, libc::PROT_NONE, flags, -1, 0);
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        for i in 0..vmas as usize {
            let start = base.add(i * stride);
            if libc::mmap(start.cast(), chunk, prot_rw, flags | libc::MAP_FIXED, -1, 0)
                == libc::MAP_FAILED
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::munmap(start.add(chunk).cast(), page);
            libc::madvise(start.cast(), chunk, libc::MADV_NOHUGEPAGE);
            for offset in (0..chunk).step_by(page) {
                start.add(offset).write_volatile(1);
            }
        }
    }
    Ok(())
}
