//! Background profilers started before a round's episode and stopped with
//! SIGINT after it: `reaper record --watch` and `perf record -a -g`.

use std::{
    fs::File,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};

/// How long reaper may take to attach before the round is called broken.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long perf may take to enable its events (on a loaded 2-CPU machine a
/// fixed 1 s sleep was not enough: perf once missed a whole episode).
const PERF_ENABLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The line reaper prints on stderr once every probe is attached.
const WATCHING: &str = "reaper: watching every teardown";

/// What happened to a background profiler between start and exit.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    /// SIGINT → the process exited (its files written).
    pub stop_to_exit: Duration,
    /// Peak RSS of the profiler process (wait4's ru_maxrss), KiB.
    pub max_rss_kib: i64,
}

/// A running `reaper record --watch`.
pub struct Reaper {
    pid: libc::pid_t,
    pub out_dir: PathBuf,
    /// Spawn → the "watching" line (all probes attached).
    pub startup: Duration,
}

/// A running `perf record`.
pub struct Perf {
    pid: libc::pid_t,
    pub data: PathBuf,
    /// Spawn → perf acknowledged "enable" (its events are counting).
    pub startup: Duration,
}

/// Starts `reaper record --watch -o OUT_DIR EXTRA...` and waits until it is
/// attached.
pub fn start_reaper(reaper: &Path, out_dir: &Path, extra: &[&str]) -> Result<Reaper> {
    std::fs::create_dir_all(out_dir)?;
    let log = File::create(out_dir.join("reaper.stdout"))?;
    let started = Instant::now();
    let mut child = Command::new(reaper)
        .args(["record", "--watch", "-o"])
        .arg(out_dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {} record --watch", reaper.display()))?;
    let stderr = child.stderr.take().context("reaper stderr")?;
    let (tx, rx) = mpsc::channel();
    let err_log = out_dir.join("reaper.stderr");
    std::thread::spawn(move || {
        let mut copy = File::create(err_log).ok();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with(WATCHING) {
                let _ = tx.send(Instant::now());
            }
            if let Some(f) = copy.as_mut() {
                use std::io::Write as _;
                let _ = writeln!(f, "{line}");
            }
        }
    });
    let pid = child.id() as libc::pid_t;
    // The std handle is dropped without waiting: wait4 below reaps the child.
    drop(child);
    match rx.recv_timeout(ATTACH_TIMEOUT) {
        Ok(at) => Ok(Reaper {
            pid,
            out_dir: out_dir.to_owned(),
            startup: at - started,
        }),
        Err(_) => {
            let _ = stop(pid);
            bail!(
                "reaper record --watch did not print {WATCHING:?} within {ATTACH_TIMEOUT:?}; see {}",
                out_dir.join("reaper.stderr").display()
            )
        }
    }
}

impl Reaper {
    /// SIGINT, then wait for reaper to write run.json, tables and SVGs.
    pub fn stop(self) -> Result<Stopped> {
        stop(self.pid)
    }
}

/// Starts `perf record -a -g -e cpu-clock -F FREQ -o DATA` with its events
/// disabled (`-D -1`) and a control FIFO, enables them, and returns once perf
/// has acknowledged: from then on every CPU is being sampled.
pub fn start_perf(data: &Path, freq: u32) -> Result<Perf> {
    let log = File::create(data.with_extension("log"))?;
    let ctl = data.with_extension("ctl");
    let ack = data.with_extension("ack");
    for fifo in [&ctl, &ack] {
        let _ = std::fs::remove_file(fifo);
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid NUL-terminated path.
        ensure!(
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0,
            "mkfifo {}: {}",
            fifo.display(),
            std::io::Error::last_os_error()
        );
    }
    let started = Instant::now();
    let child = Command::new("perf")
        .args(["record", "-a", "-g", "-e", "cpu-clock", "-D", "-1", "-F"])
        .arg(freq.to_string())
        .arg(format!(
            "--control=fifo:{},{}",
            ctl.display(),
            ack.display()
        ))
        .arg("-o")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("spawning perf record (is linux-perf installed? `cargo xtask setup`)")?;
    let pid = child.id() as libc::pid_t;
    drop(child);
    if let Err(err) = enable_perf(&ctl, &ack, started) {
        let _ = stop(pid);
        return Err(err.context(format!("see {}", data.with_extension("log").display())));
    }
    Ok(Perf {
        pid,
        data: data.to_owned(),
        startup: started.elapsed(),
    })
}

/// Writes "enable" to perf's control FIFO and waits for its "ack".
fn enable_perf(ctl: &Path, ack: &Path, started: Instant) -> Result<()> {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    // perf opens both FIFOs read-write while parsing its options; until then
    // a non-blocking open for writing fails with ENXIO.
    let mut ctl_file = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(ctl)
        {
            Ok(f) => break f,
            Err(_) if started.elapsed() < PERF_ENABLE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => bail!("perf never opened its control FIFO: {err}"),
        }
    };
    ctl_file.write_all(b"enable\n")?;
    let mut ack_file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(ack)?;
    let mut buf = [0u8; 16];
    loop {
        match ack_file.read(&mut buf) {
            Ok(n) if n > 0 && buf[..n].starts_with(b"ack") => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err.into()),
        }
        ensure!(
            started.elapsed() < PERF_ENABLE_TIMEOUT,
            "perf did not acknowledge \"enable\" within {PERF_ENABLE_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Perf {
    /// SIGINT, then wait for perf to finish writing perf.data.
    pub fn stop(self) -> Result<Stopped> {
        let stopped = stop(self.pid)?;
        ensure!(
            self.data.exists(),
            "perf record wrote no {}; see {}",
            self.data.display(),
            self.data.with_extension("log").display()
        );
        Ok(stopped)
    }
}

/// Sends SIGINT to `pid` and reaps it with wait4, timing the exit.
fn stop(pid: libc::pid_t) -> Result<Stopped> {
    let t = Instant::now();
    // SAFETY: pid is our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let mut status = 0;
    // SAFETY: rusage is plain data written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointers; pid is our child.
    let ret = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let stop_to_exit = t.elapsed();
    ensure!(
        ret == pid,
        "wait4({pid}): {}",
        std::io::Error::last_os_error()
    );
    // 0, 130 (reaper marks a Ctrl-C'd run partial) or death by the re-raised
    // SIGINT (perf record does that after writing perf.data): all wrote files.
    let clean = (libc::WIFEXITED(status) && matches!(libc::WEXITSTATUS(status), 0 | 130))
        || (libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGINT);
    ensure!(
        clean,
        "profiler {pid} ended badly (wait status {status:#x})"
    );
    Ok(Stopped {
        stop_to_exit,
        max_rss_kib: usage.ru_maxrss,
    })
}
