//! Starting qemu on a kernel + initramfs, streaming its serial console to the
//! host's stdout through the [`ConsoleParser`], and stopping it on a panic,
//! an oops or a timeout.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;

use super::console::{ConsoleParser, Event, Fatal};
use crate::arch::Arch;

/// How long after a panic/oops the console keeps being read (for the trace).
const FATAL_GRACE: Duration = Duration::from_secs(5);
/// How long the guest may take to power off after the payload is complete.
const POWEROFF_GRACE: Duration = Duration::from_secs(15);

/// qemu's accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Accel {
    /// Software emulation: slow but works everywhere, including nested VMs.
    Tcg,
    /// Hardware virtualization (needs a working /dev/kvm and a host of the
    /// same architecture).
    Kvm,
}

/// How to run the machine.
#[derive(Debug, Clone)]
pub struct Machine {
    pub arch: Arch,
    pub accel: Accel,
    pub mem_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Printed before every console line (e.g. the matrix cell's name).
    pub console_prefix: String,
}

/// Everything observed while the guest ran.
#[derive(Debug)]
pub struct GuestRun {
    pub ready: Option<(String, String)>,
    pub exit: Option<i32>,
    pub fatal: Option<Fatal>,
    pub warnings: Vec<String>,
    pub timed_out: bool,
    pub payload_complete: bool,
    pub qemu_status: Option<ExitStatus>,
    pub qemu_stderr: Vec<String>,
    pub elapsed: Duration,
}

enum Chunk {
    Line(String),
    Eof,
}

impl Machine {
    /// The qemu command line.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.arch.qemu_binary());
        cmd.args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
        ]);
        cmd.args(["-no-reboot"]);
        match self.accel {
            Accel::Tcg => cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        };
        if let Some(machine) = self.arch.machine() {
            cmd.args(["-machine", machine]);
        }
        cmd.arg("-m").arg(format!("{}M", self.mem_mib));
        cmd.arg("-smp").arg(self.cpus.to_string());
        cmd.arg("-kernel").arg(&self.kernel);
        cmd.arg("-initrd").arg(&self.initrd);
        cmd.arg("-append").arg(self.kernel_cmdline());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// `panic=-1` reboots at once on a panic, which `-no-reboot` turns into
    /// qemu exiting; `printk.time=1` lets the parser tell kernel lines apart.
    /// `no_timer_check` (x86_64): Debian's generic and rt kernels check the
    /// IO-APIC timer at boot and panic ("IO-APIC + timer doesn't work!")
    /// when a loaded host runs the TCG guest too slowly for it.
    /// `tsc=reliable` (x86_64): under TCG the vCPUs' TSCs drift apart, so
    /// bookworm 6.1 marks the TSC unstable ("TSCs unsynchronized") and falls
    /// back to HPET, an emulated MMIO read on every `bpf_ktime_get_ns()` of
    /// every probe hit; the flag skips those checks and keeps the TSC, the
    /// cheapest clocksource (read by one instruction). The guest's run.json
    /// records the clocksource it ended on.
    fn kernel_cmdline(&self) -> String {
        let timer = match self.arch {
            Arch::X86_64 => " no_timer_check tsc=reliable",
            _ => "",
        };
        format!(
            "console={} panic=-1 printk.time=1 rdinit=/init{timer}",
            self.arch.console()
        )
    }

    /// Boots the guest and follows its console until it powers off, panics,
    /// oopses or times out.
    pub fn run(&self, parser: &mut ConsoleParser) -> Result<GuestRun> {
        self.check_accel()?;
        let started = Instant::now();
        let mut child = self.command().spawn().with_context(|| {
            format!(
                "starting {}; install qemu (apt install qemu-system-x86 qemu-system-arm)",
                self.arch.qemu_binary()
            )
        })?;
        let lines = spawn_line_reader(child.stdout.take().context("qemu stdout")?);
        let stderr = spawn_stderr_collector(child.stderr.take().context("qemu stderr")?);
        let mut run = GuestRun {
            ready: None,
            exit: None,
            fatal: None,
            warnings: Vec::new(),
            timed_out: false,
            payload_complete: false,
            qemu_status: None,
            qemu_stderr: Vec::new(),
            elapsed: Duration::ZERO,
        };
        self.follow(&lines, parser, &mut run, started, &mut child);
        run.qemu_status = child.wait().ok();
        run.qemu_stderr = stderr.join().unwrap_or_default();
        run.elapsed = started.elapsed();
        Ok(run)
    }

    fn follow(
        &self,
        lines: &Receiver<Chunk>,
        parser: &mut ConsoleParser,
        run: &mut GuestRun,
        started: Instant,
        child: &mut Child,
    ) {
        let deadline = started + self.timeout;
        let mut stop_at: Option<Instant> = None;
        let stdout = std::io::stdout();
        loop {
            let until = stop_at.map_or(deadline, |s| s.min(deadline));
            let wait = until.saturating_duration_since(Instant::now());
            match lines.recv_timeout(wait) {
                Ok(Chunk::Line(line)) => {
                    let event = parser.feed(&line);
                    if !matches!(event, Event::Payload) {
                        let mut out = stdout.lock();
                        let _ = writeln!(out, "{}{}", self.console_prefix, line.trim_end());
                    }
                    if let Some(stop) = self.apply(event, run) {
                        stop_at = Some(stop_at.map_or(stop, |s| s.min(stop)));
                    }
                }
                Ok(Chunk::Eof) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline && stop_at.is_none_or(|s| s > deadline) {
                        run.timed_out = true;
                    }
                    let _ = child.kill();
                    return;
                }
            }
        }
    }

    /// KVM only runs guests of the host's own architecture, through /dev/kvm.
    fn check_accel(&self) -> Result<()> {
        if self.accel != Accel::Kvm {
            return Ok(());
        }
        if std::env::consts::ARCH != self.arch.uname() {
            anyhow::bail!(
                "--accel kvm cannot run an {} guest on this {} host; use --accel tcg",
                self.arch,
                std::env::consts::ARCH
            );
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map(drop)
            .context("--accel kvm needs read-write access to /dev/kvm; use --accel tcg")
    }

    /// Records an event; returns when qemu should be stopped, if it should.
    fn apply(&self, event: Event, run: &mut GuestRun) -> Option<Instant> {
        match event {
            Event::Ready { release, machine } => run.ready = Some((release, machine)),
            Event::Exit(code) => run.exit = Some(code),
            Event::PayloadEnd => {
                run.payload_complete = true;
                return Some(Instant::now() + POWEROFF_GRACE);
            }
            Event::Fatal(fatal) => {
                run.fatal.get_or_insert(fatal);
                return Some(Instant::now() + FATAL_GRACE);
            }
            Event::Warning(message) => run.warnings.push(message),
            Event::Output | Event::PayloadBegin | Event::Payload => {}
        }
        None
    }
}

fn spawn_line_reader(stdout: impl std::io::Read + Send + 'static) -> Receiver<Chunk> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send(Chunk::Line(line)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Chunk::Eof);
    });
    rx
}

fn spawn_stderr_collector(
    stderr: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("qemu: {line}");
            lines.push(line);
        }
        lines
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_command_line_uses_virt_and_ttyama0() {
        let machine = Machine {
            arch: Arch::Arm64,
            accel: Accel::Tcg,
            mem_mib: 2048,
            cpus: 2,
            timeout: Duration::from_secs(1),
            kernel: "/k".into(),
            initrd: "/i".into(),
            console_prefix: String::new(),
        };
        let cmd = machine.command();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert_eq!(cmd.get_program(), "qemu-system-aarch64");
        assert!(joined.contains("-machine virt"), "{joined}");
        assert!(
            joined.contains("-accel tcg,thread=multi -cpu max"),
            "{joined}"
        );
        assert!(joined.contains("-m 2048M -smp 2"), "{joined}");
        assert!(joined.contains("console=ttyAMA0 panic=-1"), "{joined}");
    }

    #[test]
    fn x86_64_guests_keep_the_tsc_clocksource() {
        let machine = Machine {
            arch: Arch::X86_64,
            accel: Accel::Tcg,
            mem_mib: 2048,
            cpus: 2,
            timeout: Duration::from_secs(1),
            kernel: "/k".into(),
            initrd: "/i".into(),
            console_prefix: String::new(),
        };
        let line = machine.kernel_cmdline();
        assert!(line.contains(" tsc=reliable"), "{line}");
        assert!(line.contains("console=ttyS0"), "{line}");
    }
}
