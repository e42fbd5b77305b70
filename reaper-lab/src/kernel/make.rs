//! Running the kernel's `make` for one tree and arch, in the tree or with
//! the objects in a separate directory (`O=`): quiet configuration steps,
//! and the long image build with a progress line on stderr and the full log
//! in the output directory (`reaper-lab-build.log`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::arch::Arch;

/// Default parallel jobs: one per CPU, and one more to hide I/O waits.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 1
}
/// How often the progress line is printed while building.
const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// `make` in one kernel tree for one arch.
pub struct Make {
    pub tree: PathBuf,
    /// The build directory (`make O=DIR`), or `None` to build in the tree.
    pub objdir: Option<PathBuf>,
    pub arch: Arch,
    /// `make -jN`.
    pub jobs: usize,
}

impl Make {
    /// ARCH and CROSS_COMPILE for the kernel's build system.
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        match self.arch {
            Arch::X86_64 => vec![("ARCH", "x86_64")],
            Arch::Arm64 => vec![("ARCH", "arm64"), ("CROSS_COMPILE", "aarch64-linux-gnu-")],
        }
    }

    /// The make target and the image it leaves, relative to the tree.
    pub fn image_target(&self) -> (&'static str, &'static str) {
        match self.arch {
            Arch::X86_64 => ("bzImage", "arch/x86/boot/bzImage"),
            Arch::Arm64 => ("Image", "arch/arm64/boot/Image"),
        }
    }

    /// Where `.config`, the objects and the image are: the build directory,
    /// else the tree.
    pub fn out_dir(&self) -> &Path {
        self.objdir.as_deref().unwrap_or(&self.tree)
    }

    /// `make ARGS` (with `O=` when building out of the tree).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("make");
        if let Some(objdir) = &self.objdir {
            cmd.arg(format!("O={}", objdir.display()));
        }
        cmd.args(args).current_dir(&self.tree).envs(self.env());
        cmd
    }

    /// A short make step (configuration); output is shown only on failure.
    pub fn quiet(&self, args: &[&str]) -> Result<()> {
        crate::apt::run_captured(self.command(args), &format!("make {}", args.join(" "))).map(drop)
    }

    /// Builds the image, printing progress; returns the image path and the
    /// number of objects make compiled (`CC`/`AS` steps).
    pub fn build_image(&self, what: &str) -> Result<(PathBuf, usize)> {
        let (target, image) = self.image_target();
        let log_path = self.out_dir().join("reaper-lab-build.log");
        let mut log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = self
            .command(&[&format!("-j{}", self.jobs), target])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting make; install build-essential")?;
        let stderr = child.stderr.take().context("make stderr")?;
        let err_thread = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let started = Instant::now();
        let stdout = child.stdout.take().context("make stdout")?;
        let compiled = follow_build(stdout, &mut log, what, started);
        let status = child.wait().context("waiting for make")?;
        let errors = err_thread.join().unwrap_or_default();
        for line in &errors {
            let _ = writeln!(log, "{line}");
        }
        if !status.success() {
            let tail: Vec<&String> = errors.iter().rev().take(25).collect();
            let tail: Vec<&str> = tail.into_iter().rev().map(String::as_str).collect();
            bail!(
                "building {what} failed ({status}); last errors:\n{}\nfull log: {}",
                tail.join("\n"),
                log_path.display()
            );
        }
        eprintln!(
            "reaper-lab: kernel: built {what} in {:.0} s ({compiled} objects compiled)",
            started.elapsed().as_secs_f64()
        );
        Ok((self.out_dir().join(image), compiled))
    }
}

/// Copies make's output into `log`, printing progress every
/// [`PROGRESS_EVERY`] since `started`; hands back the number of objects
/// compiled (`CC`/`AS` steps).
fn follow_build(
    stdout: std::process::ChildStdout,
    log: &mut std::fs::File,
    what: &str,
    started: Instant,
) -> usize {
    let mut last = started;
    let (mut compiled, mut last_step) = (0usize, String::new());
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let _ = writeln!(log, "{line}");
        let step = line.trim_start();
        if step.starts_with("CC ") || step.starts_with("AS ") {
            compiled += 1;
        }
        if !step.is_empty() {
            last_step = step.to_string();
        }
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            eprintln!(
                "reaper-lab: kernel: building {what}: {:>4.0} s, {compiled} objects, now: {last_step}",
                started.elapsed().as_secs_f64()
            );
        }
    }
    compiled
}

/// (command, Debian package) pairs the kernel build needs.
pub fn build_deps(arch: Arch) -> Vec<(&'static str, &'static str)> {
    let mut deps = vec![
        ("gcc", "build-essential"),
        ("make", "build-essential"),
        ("flex", "flex"),
        ("bison", "bison"),
        ("bc", "bc"),
        ("pahole", "dwarves"),
        ("patch", "patch"),
        ("xz", "xz-utils"),
    ];
    if arch == Arch::Arm64 {
        deps.push(("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"));
    }
    deps
}

/// Headers (not commands) the build needs: libelf for objtool/resolve_btfids,
/// libssl for the module signing tools.
const HEADER_DEPS: &[(&str, &str)] = &[
    ("/usr/include/libelf.h", "libelf-dev"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
];

/// Installs missing build dependencies through setup's apt step (named
/// first, sudo when not root, skipped with a message without apt).
pub fn ensure_build_deps(arch: Arch) -> Result<()> {
    let mut missing: Vec<&str> = build_deps(arch)
        .into_iter()
        .filter(|(cmd, _)| crate::host::find_in_path(cmd).is_none())
        .map(|(_, pkg)| pkg)
        .collect();
    missing.extend(
        HEADER_DEPS
            .iter()
            .filter(|(h, _)| !std::path::Path::new(h).exists())
            .map(|(_, p)| *p),
    );
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = missing
        .iter()
        .map(|p| format!("{p} (to build the kernel)"))
        .collect();
    crate::host::install(&listed, &missing)
}
