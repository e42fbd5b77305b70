//! `reaper-lab vm`: boot a Debian kernel of any line and flavour (or your own) in qemu with a
//! busybox initramfs holding reaper, run a command, and copy the guest's
//! `/out` back to the host.
//!
//! The flow is [`boot`]: resolve the kernel ([`kernel`]), fetch busybox
//! ([`busybox`]), write the initramfs ([`initramfs`], [`guest`]), run qemu
//! ([`qemu`]) while parsing the console ([`console`]), then unpack `/out`.
//! `cargo xtask vm-test` (in xtask) runs [`boot`] for each kernel/arch cell
//! and asserts its checks on what came back.
//!
//! Environment: `REAPER_VM_CACHE` moves the download cache
//! ([`crate::paths`]); `REAPER_VM_OFFLINE=1` never touches the network once a
//! kernel is cached (otherwise apt is asked again after a day).
//!
//! Limits: `/out` travels over the emulated serial console, about 60 KB/s of
//! gzip'd data on x86_64 TCG, so keep it to a few MB (a `reaper record` run
//! is ~0.5 MB before compression). Debian 6.1 builds virtio and 9p as
//! modules, which is why no virtio device is used.

pub mod busybox;
pub mod console;
pub mod debian;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod packages;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub use crate::arch;
use crate::arch::Arch;
use crate::reapers::{ReaperArgs, ReaperSource, Reapers};
use console::{ConsoleParser, Fatal};
use kernel::{Kernel, KernelChoice};
use qemu::{Accel, GuestRun, Machine};

/// Default guest memory: room for 512 MiB+ victims next to the kernel.
pub const DEFAULT_MEM_MIB: u32 = 2048;
/// Default vCPUs: the CI machine has 2 cores.
pub const DEFAULT_CPUS: u32 = 2;
/// Default timeout: TCG is 10-50x slower than native, arm64 more so.
pub const DEFAULT_TIMEOUT_S: u64 = 600;

/// `reaper-lab vm` arguments.
#[derive(Debug, clap::Args)]
pub struct VmArgs {
    /// A Debian kernel line: bullseye (5.10), bookworm (6.1), bookworm-6.12 (bookworm-backports),
    /// trixie (6.12), trixie-backports (the newest; trixie-backports:6.19 for
    /// an older one), sid; or a path to a kernel image (bzImage for x86_64,
    /// Image for arm64).
    #[arg(long, default_value = "bookworm")]
    kernel: String,
    /// The Debian kernel flavour.
    #[arg(long, value_enum, default_value_t = kernel::Flavour::Cloud)]
    flavour: kernel::Flavour,
    /// The .config of the kernel; the guest sees it as /boot/config-$(uname -r).
    #[arg(long, value_name = "FILE")]
    kernel_config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Arch::X86_64)]
    arch: Arch,
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    accel: Accel,
    /// Guest memory, e.g. 2G or 3072M (plain numbers are MiB).
    #[arg(long, default_value = "2G")]
    mem: String,
    #[arg(long, default_value_t = DEFAULT_CPUS)]
    cpus: u32,
    /// Seconds before qemu is killed.
    #[arg(long, value_name = "S", default_value_t = DEFAULT_TIMEOUT_S)]
    timeout: u64,
    /// Where the guest's /out goes (default reaper-lab-out/vm-out/KERNEL-ARCH, emptied first).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Extra host file to put in the guest's PATH (repeatable).
    #[arg(long = "bin", value_name = "PATH")]
    bins: Vec<PathBuf>,
    /// Boot without reaper in the guest.
    #[arg(long, conflicts_with_all = ["reaper", "guest_reaper"])]
    no_reaper: bool,
    #[command(flatten)]
    reapers: ReaperArgs,
    /// The command, run by the guest's sh (words are joined by spaces).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// A validated VM run: what [`boot`] needs.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub kernel: KernelChoice,
    pub kernel_config: Option<PathBuf>,
    pub arch: Arch,
    pub accel: Accel,
    pub mem_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// Where `/out` is unpacked.
    pub out_dir: PathBuf,
    /// Empty `out_dir` before unpacking.
    pub clean_out: bool,
    /// Shell command run in the guest.
    pub command: Vec<String>,
    /// `(name in PATH, host file)` pairs copied into the guest.
    pub binaries: Vec<(String, PathBuf)>,
    /// Printed before each console line.
    pub console_prefix: String,
}

impl VmSpec {
    /// A spec with the defaults of `reaper-lab vm`, writing to
    /// `vm-out/KERNEL-ARCH` under the output root ([`crate::paths::out_root`]).
    pub fn new(kernel: KernelChoice, arch: Arch, command: Vec<String>) -> Self {
        let out_dir = default_out_dir(&kernel, arch);
        VmSpec {
            kernel,
            kernel_config: None,
            arch,
            accel: Accel::Tcg,
            mem_mib: DEFAULT_MEM_MIB,
            cpus: DEFAULT_CPUS,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_S),
            out_dir,
            clean_out: true,
            command,
            binaries: Vec::new(),
            console_prefix: String::new(),
        }
    }
}

/// What a finished guest run produced.
#[derive(Debug)]
pub struct VmOutcome {
    pub kernel: Kernel,
    /// `uname -r` / `uname -m` reported by the guest.
    pub guest_release: Option<String>,
    pub guest_machine: Option<String>,
    /// The command's exit status in the guest.
    pub exit_status: i32,
    /// Files copied back from `/out`.
    pub out_files: usize,
    pub warnings: Vec<String>,
    /// qemu's wall time (boot + command + copy-back).
    pub qemu_time: Duration,
}

/// Builds the initramfs, boots the guest, follows it to the end and unpacks
/// `/out`. Panics, oopses, timeouts and a guest that never reports its exit
/// status are errors; a failing command is not (see `exit_status`).
pub fn boot(spec: &VmSpec) -> Result<VmOutcome> {
    crate::setup_qemu::ensure_qemu()?;
    let kernel = kernel::resolve(&spec.kernel, spec.arch, spec.kernel_config.as_deref())?;
    let busybox = busybox::busybox(spec.arch)?;
    let nonce = guest::new_nonce();
    let initrd = write_initramfs(spec, &kernel, &busybox, &nonce)?;
    let machine = Machine {
        arch: spec.arch,
        accel: spec.accel,
        mem_mib: spec.mem_mib,
        cpus: spec.cpus,
        timeout: spec.timeout,
        kernel: kernel.image.clone(),
        initrd: initrd.clone(),
        console_prefix: spec.console_prefix.clone(),
    };
    let mut parser = ConsoleParser::new(&nonce);
    let run = machine.run(&mut parser);
    std::fs::remove_file(&initrd).ok();
    let run = run?;
    let exit_status = judge(spec, &run)?;
    let out_files = copy_back(spec, &run, &parser)?;
    let (guest_release, guest_machine) = run.ready.clone().unzip();
    Ok(VmOutcome {
        kernel,
        guest_release,
        guest_machine,
        exit_status,
        out_files,
        warnings: run.warnings,
        qemu_time: run.elapsed,
    })
}

fn write_initramfs(spec: &VmSpec, kernel: &Kernel, busybox: &Path, nonce: &str) -> Result<PathBuf> {
    let dir = crate::paths::work_dir()?;
    let path = dir.join(format!(
        "initramfs-{}-{}-{nonce}.cpio.gz",
        spec.kernel.label(),
        spec.arch
    ));
    let contents = initramfs::Contents {
        busybox: busybox.to_path_buf(),
        init_script: guest::init_script(nonce),
        command_script: guest::command_script(&spec.command),
        binaries: spec.binaries.clone(),
        kernel_config: kernel.config.clone(),
    };
    initramfs::build(&contents, &path)?;
    Ok(path)
}

/// Turns what was seen into the guest's exit status, or the error that
/// stopped it.
fn judge(spec: &VmSpec, run: &GuestRun) -> Result<i32> {
    let guest = format!("{} {} guest", spec.kernel.label(), spec.arch);
    match &run.fatal {
        Some(Fatal::Panic(message)) => {
            bail!("kernel panic in the {guest}: {message:?}; qemu was stopped, the trace is above")
        }
        Some(Fatal::Oops(message)) => {
            bail!("kernel oops in the {guest}: {message:?}; qemu was killed, the trace is above")
        }
        None => {}
    }
    if run.timed_out {
        bail!(
            "the {guest} did not finish within {} s; qemu was killed. The console is above; \
             raise --timeout if it was only slow (TCG emulation is far slower than native)",
            spec.timeout.as_secs()
        );
    }
    let Some(status) = run.exit else {
        let stderr = run
            .qemu_stderr
            .iter()
            .rev()
            .take(5)
            .rev()
            .cloned()
            .collect::<Vec<_>>();
        bail!(
            "the {guest} stopped before reporting the command's exit status (qemu: {}){}; \
             see the console above{}",
            run.qemu_status
                .map_or("killed".to_string(), |s| s.to_string()),
            if stderr.is_empty() {
                String::new()
            } else {
                format!(", stderr: {}", stderr.join(" | "))
            },
            if spec.accel == Accel::Kvm {
                " (nested KVM often fails like this: try --accel tcg)"
            } else {
                ""
            }
        );
    };
    Ok(status)
}

fn copy_back(spec: &VmSpec, run: &GuestRun, parser: &ConsoleParser) -> Result<usize> {
    if !run.payload_complete {
        bail!(
            "the {} {} guest reported exit status {:?} but did not send /out back \
             (the console ended early); see the console above",
            spec.kernel.label(),
            spec.arch,
            run.exit
        );
    }
    let tar = parser.payload_tar()?;
    if spec.clean_out && spec.out_dir.exists() {
        std::fs::remove_dir_all(&spec.out_dir)
            .with_context(|| format!("emptying {}", spec.out_dir.display()))?;
    }
    console::unpack_tar(&tar, &spec.out_dir)
}

fn default_out_dir(kernel: &KernelChoice, arch: Arch) -> PathBuf {
    crate::paths::out_root()
        .join("vm-out")
        .join(format!("{}-{arch}", kernel.label()))
}

/// Parses `2G`, `2048M` or `2048` (MiB) into MiB.
pub fn parse_mem(text: &str) -> Result<u32> {
    let text = text.trim();
    let (digits, factor) = match text.chars().last() {
        Some('G' | 'g') => (&text[..text.len() - 1], 1024),
        Some('M' | 'm') => (&text[..text.len() - 1], 1),
        _ => (text, 1),
    };
    let value: u32 = digits
        .parse()
        .with_context(|| format!("--mem {text:?}: expected e.g. 2G, 3072M or 2048 (MiB)"))?;
    Ok(value * factor)
}

/// `reaper-lab vm`; the guest's reaper comes from the flags, else `source`.
pub fn run_vm(args: VmArgs, source: &dyn ReaperSource) -> Result<ExitCode> {
    let spec = spec_from_args(args, source)?;
    let started = Instant::now();
    let outcome = boot(&spec)?;
    eprintln!(
        "reaper-lab: {}{} ({}) {}: command exited with {}; {} file(s) from /out in {}; \
         qemu {:.1} s, total {:.1} s",
        spec.kernel.label(),
        outcome
            .kernel
            .version
            .as_ref()
            .map_or(String::new(), |v| format!(" {v}")),
        outcome.guest_release.as_deref().unwrap_or("?"),
        outcome.guest_machine.as_deref().unwrap_or("?"),
        outcome.exit_status,
        outcome.out_files,
        spec.out_dir.display(),
        outcome.qemu_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    for warning in &outcome.warnings {
        eprintln!("reaper-lab: warning: the guest kernel warned: {warning}");
    }
    Ok(ExitCode::from(outcome.exit_status.clamp(0, 255) as u8))
}

fn spec_from_args(args: VmArgs, source: &dyn ReaperSource) -> Result<VmSpec> {
    let kernel = KernelChoice::parse(&args.kernel, args.flavour)?;
    let mut spec = VmSpec::new(kernel, args.arch, args.command);
    spec.kernel_config = args.kernel_config;
    spec.accel = args.accel;
    spec.mem_mib = parse_mem(&args.mem)?;
    spec.cpus = args.cpus;
    spec.timeout = Duration::from_secs(args.timeout);
    if let Some(out) = args.out {
        spec.out_dir = out;
        spec.clean_out = false;
    }
    if !args.no_reaper {
        let reapers = Reapers::resolve(&args.reapers, source, args.arch, false)?;
        spec.binaries.push(("reaper".to_string(), reapers.guest));
    }
    for bin in args.bins {
        let name = bin
            .file_name()
            .with_context(|| format!("--bin {}: not a file path", bin.display()))?
            .to_string_lossy()
            .into_owned();
        if !bin.is_file() {
            bail!("--bin {}: no such file", bin.display());
        }
        spec.binaries.push((name, bin));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_sizes() {
        assert_eq!(parse_mem("2G").unwrap(), 2048);
        assert_eq!(parse_mem("3072M").unwrap(), 3072);
        assert_eq!(parse_mem("1024").unwrap(), 1024);
        assert!(parse_mem("lots").is_err());
    }
}
