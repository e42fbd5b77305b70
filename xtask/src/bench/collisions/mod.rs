//! `cargo xtask bench --collisions-vm KERNEL/ARCH`: what `record
//! --exact-locks`' collision logs (issue 25) cost per episode and in kernel
//! memory, measured inside a VM, since the logs need function probes and a
//! host may attach none (lockdown, no kprobes).
//!
//! One guest boot runs `--rounds` interleaved pairs of one-episode
//! recordings, logs on (`--exact-locks`) and off (`--exact-locks
//! --no-collision-log`), each with `--program-cost` ([`script`]); the run
//! files come back and give each side's figures ([`figures`]) and the table
//! ([`table`]), written to OUT/collisions.md with the machine line, and the
//! raw figures to OUT/collisions.json. Nothing is asserted on the figures:
//! only a guest that does not boot or a missing run file fails.

mod figures;
mod script;
mod table;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use reaper_model::Run;

use crate::vm::{VmSpec, kernel::KernelChoice};

/// The guest's memory: a 256M victim, reaper and its outputs in /tmp.
const VM_MEM_MIB: u32 = 3072;
/// Seconds for the boot and reaper's start, and per recording: a TCG
/// recording of one 256M episode with every function probe, its warm-up
/// and its calibration takes about a minute.
const BOOT_S: u64 = 300;
const PER_RECORDING_S: u64 = 150;

/// What the VM mode needs from `cargo xtask bench`'s arguments.
pub struct VmBench<'a> {
    /// `KERNEL/ARCH[/FLAVOUR]`, as `vm-test --only` names a cell.
    pub cell: &'a str,
    /// Pairs of recordings.
    pub pairs: u32,
    /// The victim of each recording (`record --victim`).
    pub victim: &'a str,
    /// Where collisions.md, collisions.json and the guest's files go.
    pub out: &'a Path,
}

/// Boots the cell's kernel once, records the pairs, prints and writes the table.
pub fn run(bench: &VmBench<'_>) -> Result<()> {
    let (kernel, arch) = crate::vm::matrix::parse_only(bench.cell)
        .with_context(|| format!("--collisions-vm {}", bench.cell))?;
    crate::setup::ensure(crate::setup::Task::Vm)?;
    let reaper = crate::vm::build::reaper_binary(arch)?;
    let mut spec = VmSpec::new(
        KernelChoice::Debian(kernel.clone()),
        arch,
        vec![script::guest(bench.pairs, bench.victim)],
    );
    spec.mem_mib = VM_MEM_MIB;
    spec.timeout = Duration::from_secs(BOOT_S + PER_RECORDING_S * 2 * u64::from(bench.pairs));
    spec.out_dir = bench
        .out
        .join("collisions-vm")
        .join(format!("{}-{arch}", kernel.file_name()));
    spec.console_prefix = format!("[{}] ", bench.cell);
    spec.binaries.push(("reaper".to_owned(), reaper));
    let outcome = crate::vm::boot(&spec)?;
    let on = figures::Side::of(&runs(&spec.out_dir, true, bench.pairs)?);
    let off = figures::Side::of(&runs(&spec.out_dir, false, bench.pairs)?);
    let guest = format!(
        "{} ({}), qemu {:?}, {} vCPUs, {} MiB",
        outcome.guest_release.as_deref().unwrap_or("?"),
        outcome.guest_machine.as_deref().unwrap_or("?"),
        spec.accel,
        spec.cpus,
        spec.mem_mib
    );
    let doc = document(bench, &guest, &table::markdown(&on, &off));
    println!("{doc}");
    std::fs::create_dir_all(bench.out)?;
    std::fs::write(bench.out.join("collisions.md"), &doc)?;
    let raw = serde_json::json!({
        "cell": bench.cell, "guest": guest, "pairs": bench.pairs, "victim": bench.victim,
        "logs_on": on, "logs_off": off,
    });
    std::fs::write(
        bench.out.join("collisions.json"),
        serde_json::to_string_pretty(&raw)?,
    )?;
    eprintln!(
        "xtask bench: wrote {} and collisions.json",
        bench.out.join("collisions.md").display()
    );
    Ok(())
}

/// One side's run files; a missing one means the harness broke.
fn runs(dir: &Path, logs_on: bool, pairs: u32) -> Result<Vec<Run>> {
    (1..=pairs)
        .map(|pair| {
            let path = dir.join(script::run_file(logs_on, pair));
            if !path.exists() {
                let steps = std::fs::read_to_string(dir.join(script::STEPS_FILE))
                    .unwrap_or_default();
                bail!(
                    "{} is missing (the recording failed; its output is beside it as .txt); exit statuses:\n{steps}",
                    path.display()
                );
            }
            crate::reaper_json::read(&path)
        })
        .collect()
}

/// The markdown document: machine, guest, command, commit, table, notes.
fn document(bench: &VmBench<'_>, guest: &str, table: &str) -> String {
    format!(
        "# cargo xtask bench --collisions-vm {cell}\n\n\
         {machine}\n\nGuest: {guest}; reaper at {commit}\n\n\
         Command: `cargo xtask bench --collisions-vm {cell} --rounds {pairs} --vm-victim {victim}`\n\n\
         {table}\n\
         Notes:\n\
         - {pairs} pairs of `reaper record --exact-locks --program-cost --victim {victim}` \
         (one episode each, after reaper's own warm-up teardown), logs on, and the same with \
         `--no-collision-log`, in one boot; the side that goes first alternates from pair to pair.\n\
         - kill → process_mrelease done: from run.json's latencies; episodes that lost the race \
         (ESRCH) are left out. Ratio of medians (on / off) with its 95% bootstrap interval \
         (10,000 resamples a side, fixed seed).\n\
         - Program run time: the sum over every reaper program of the kernel's run_time_ns \
         (BPF_ENABLE_STATS) in the episode; the difference of the medians is what the logs add \
         to the programs per episode (the programs' own time, not the trampoline entry).\n\
         - Kernel memory: each collision map's `memlock` in /proc/self/fdinfo after loading, as the \
         kernel accounts it; with the logs off the maps are shrunk to one entry each (the per-CPU \
         wait log's one entry is its whole size).\n",
        cell = bench.cell,
        machine = crate::bench::machine_description(),
        commit = commit(),
        pairs = bench.pairs,
        victim = bench.victim,
    )
}

/// The workspace's commit, `+dirty` when the tree has changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(crate::workspace::workspace_root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    format!("{head}{}", if dirty { "+dirty" } else { "" })
}
