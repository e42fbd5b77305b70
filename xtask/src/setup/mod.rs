//! Setup by need: each xtask command installs only what it needs, and only
//! what is missing (each step checks first, so a ready machine costs a few
//! `--version` calls).
//!
//! - building and running reaper: the nightly toolchain's rust-src (eBPF is
//!   built with `-Z build-std=core`) and bpf-linker 0.10.3 ([`bpf_linker`]);
//! - static guest binaries and release tarballs: the musl targets;
//! - the VM harness: qemu and a static busybox ([`crate::setup_qemu`]);
//! - the host integration tests: setpriv; the benchmarks: perf
//!   ([`packages`]).
//!
//! [`needs`] is the plan (which command needs what); [`ensure`] carries it out.

pub mod bpf_linker;
pub mod packages;
mod rust;

use std::process::Command;

use anyhow::Result;

use packages::HostTool;

/// The xtask commands, as far as setup is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `cargo xtask setup`: everything any command needs (CI's first step).
    Setup,
    /// `cargo xtask run`: build reaper for this host and run it.
    Run,
    /// `cargo xtask test`, with or without the VM matrix.
    Test { vm: bool },
    /// `cargo xtask bench`.
    Bench,
    /// `cargo xtask vm` and `vm-test`.
    Vm,
    /// `cargo xtask dist`.
    Dist,
}

/// One thing a command may need installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The nightly toolchain with rust-src.
    NightlyRustSrc,
    /// bpf-linker at the pinned version.
    BpfLinker,
    /// The x86_64 and aarch64 musl targets of the stable toolchain.
    MuslTargets,
    /// qemu-system-x86_64 / -aarch64 and a static busybox.
    Qemu,
    /// A host program from a Debian package.
    Host(HostTool),
}

/// What building reaper for the host needs.
const BUILD: [Need; 2] = [Need::NightlyRustSrc, Need::BpfLinker];

/// The plan: what `task` needs, in the order it is ensured.
pub fn needs(task: Task) -> Vec<Need> {
    let mut needs = BUILD.to_vec();
    let vm = [Need::MuslTargets, Need::Qemu];
    match task {
        Task::Run => {}
        Task::Dist => needs.push(Need::MuslTargets),
        Task::Vm => needs.extend(vm),
        Task::Bench => needs.push(Need::Host(HostTool::Perf)),
        Task::Test { vm: with_vm } => {
            needs.push(Need::Host(HostTool::Setpriv));
            if with_vm {
                needs.extend([Need::MuslTargets, Need::Qemu]);
            }
        }
        Task::Setup => {
            needs.extend(vm);
            needs.extend(HostTool::ALL.map(Need::Host));
        }
    }
    needs
}

/// Installs whatever `task` needs and is missing. Host packages that cannot
/// be installed here (no apt) are named and skipped, so the parts that do
/// not need them still run; the step that needs one then fails and says so.
pub fn ensure(task: Task) -> Result<()> {
    let needs = needs(task);
    let mut host_tools = Vec::new();
    for need in &needs {
        match need {
            Need::NightlyRustSrc => rust::ensure_nightly_rust_src()?,
            Need::BpfLinker => bpf_linker::ensure()?,
            Need::MuslTargets => rust::ensure_musl_targets()?,
            Need::Qemu => reaper_lab::setup_qemu::ensure_qemu_or_explain(task == Task::Setup)?,
            Need::Host(tool) => host_tools.push(*tool),
        }
    }
    packages::ensure(&host_tools)?;
    if task == Task::Setup {
        eprintln!("xtask setup: done");
    }
    Ok(())
}

/// `cargo` with the project-local tools (bpf-linker) first on `PATH`, for
/// every build xtask starts.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.env("PATH", bpf_linker::path_with_local_tools());
    cmd
}

/// `program args`'s stdout when it succeeds.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd`, printing it first.
fn status(cmd: Command) -> Result<()> {
    reaper_lab::host::status_as("xtask setup", cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian_packages(task: Task) -> Vec<&'static str> {
        needs(task)
            .into_iter()
            .flat_map(|need| match need {
                Need::Qemu => reaper_lab::setup_qemu::PACKAGES.to_vec(),
                Need::Host(tool) => vec![tool.package()],
                _ => vec![],
            })
            .collect()
    }

    /// Issue 13: `cargo xtask run` installed qemu, busybox and perf, which
    /// the profiler does not need.
    #[test]
    fn run_installs_no_debian_package() {
        assert_eq!(needs(Task::Run), BUILD.to_vec());
        assert!(debian_packages(Task::Run).is_empty());
    }

    #[test]
    fn qemu_comes_with_the_vm_commands_only() {
        for task in [Task::Vm, Task::Test { vm: true }, Task::Setup] {
            assert!(
                debian_packages(task).contains(&"qemu-system-arm"),
                "{task:?}"
            );
            assert!(needs(task).contains(&Need::MuslTargets), "{task:?}");
        }
        for task in [Task::Run, Task::Bench, Task::Dist, Task::Test { vm: false }] {
            assert!(!needs(task).contains(&Need::Qemu), "{task:?}");
        }
    }

    #[test]
    fn perf_comes_with_bench_and_setpriv_with_the_host_tests() {
        assert_eq!(debian_packages(Task::Bench), ["linux-perf"]);
        assert_eq!(debian_packages(Task::Test { vm: false }), ["util-linux"]);
        assert_eq!(
            needs(Task::Dist),
            [BUILD.as_slice(), &[Need::MuslTargets]].concat()
        );
    }

    /// CI runs `cargo xtask setup` on a fresh machine, then `test --no-setup`
    /// and `bench --no-setup`: setup must cover both.
    #[test]
    fn setup_covers_every_command() {
        let all = needs(Task::Setup);
        for task in [
            Task::Run,
            Task::Test { vm: true },
            Task::Bench,
            Task::Vm,
            Task::Dist,
        ] {
            for need in needs(task) {
                assert!(all.contains(&need), "setup misses {need:?} of {task:?}");
            }
        }
    }
}
