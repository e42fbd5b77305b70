//! `cargo xtask vm-test`: boot each kernel/arch cell of the matrix once, run
//! `reaper doctor --json` and a `reaper record --victim 256M,threads=4 --runs 3` scenario in it,
//! assert [`checks`](super::checks) on what came back, and print a table.
//!
//! Cells run one after the other: the CI machine has 2 cores, and each TCG
//! guest already uses both. Which cells, and what each kernel must show,
//! is data: [`table`](super::table).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::arch::Arch;
use super::checks::{
    self, BTF_FILE, CGROUPS_LEFT, CellContext, DOCTOR_JSON, FROZEN_DIR, OOM_DIR, RECORD_DIR,
    RECORD_VMAS_DIR, REFUSED_DIR, REFUSED_TEXT, STEPS_FILE, UNAME_R_FILE, UNAME_V_FILE, Verdict,
};
use super::kernel::{DebianKernel, Flavour, KernelChoice, Line};
use super::qemu::Accel;
use super::{VmSpec, build, cache};
use super::{results, table};
/// Per-cell timeout: arm64 under TCG is several times slower than x86_64.
const CELL_TIMEOUT_S: u64 = 900;

/// `cargo xtask vm-test` arguments.
#[derive(Debug, clap::Args)]
pub struct VmTestArgs {
    /// Run one cell, e.g. `sid/arm64` or `trixie-backports:6.19/x86_64/rt`
    /// (any Debian kernel `vm` accepts, by name; flavour cloud by default).
    #[arg(long, value_name = "KERNEL/ARCH[/FLAVOUR]", conflicts_with = "all")]
    only: Option<String>,
    /// Every kernel line x arch x flavour the mirrors offer, not only the CI set.
    #[arg(long)]
    all: bool,
    /// With --all: only these flavours (repeatable).
    #[arg(long = "flavour", value_enum, requires = "all")]
    flavours: Vec<Flavour>,
    /// With --all: only these architectures (repeatable).
    #[arg(long = "arch", value_enum, requires = "all")]
    arches: Vec<Arch>,
    /// Boot and check the kernels without building or running reaper.
    #[arg(long)]
    smoke: bool,
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    accel: Accel,
    /// Seconds before a cell's qemu is killed.
    #[arg(long, value_name = "S", default_value_t = CELL_TIMEOUT_S)]
    timeout: u64,
    /// Where each cell's /out goes (DIR/KERNEL-ARCH).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also write the results as a dated table, DIR/vm-test-YYYY-MM-DD.md
    /// (and .json), rewritten after each cell; a later run the same day
    /// replaces the rows of the cells it re-runs (e.g. docs/matrix).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

/// One row of the result table.
struct CellReport {
    kernel: DebianKernel,
    arch: Arch,
    /// Why the cell did not run (the mirrors do not offer it).
    skipped: Option<String>,
    release: String,
    attach: String,
    checks: Vec<(&'static str, Verdict)>,
    error: Option<String>,
    wall: Duration,
}

impl CellReport {
    fn failed(&self) -> bool {
        self.error.is_some()
            || self
                .checks
                .iter()
                .any(|(_, v)| matches!(v, Verdict::Fail(_)))
    }
}

/// Parses `--only KERNEL/ARCH[/FLAVOUR]`.
pub(crate) fn parse_only(text: &str) -> Result<(DebianKernel, Arch)> {
    let mut parts = text.split('/');
    let (Some(kernel), Some(arch)) = (parts.next(), parts.next()) else {
        bail!("--only {text:?}: expected KERNEL/ARCH[/FLAVOUR], e.g. sid/arm64");
    };
    let flavour = match parts.next() {
        Some(f) => <Flavour as clap::ValueEnum>::from_str(f, true).map_err(|_| {
            anyhow::anyhow!("--only {text:?}: flavour must be cloud, generic or rt")
        })?,
        None => Flavour::Cloud,
    };
    let KernelChoice::Debian(kernel) = KernelChoice::parse(kernel, flavour)? else {
        bail!(
            "--only {text:?}: the matrix runs Debian kernels only; use `cargo xtask vm` for a path"
        );
    };
    let arch = <Arch as clap::ValueEnum>::from_str(arch, true)
        .map_err(|_| anyhow::anyhow!("--only {text:?}: arch must be x86_64 or arm64"))?;
    Ok((kernel, arch))
}

/// The cells `--all` runs: every line x arch x flavour, in line order.
fn all_cells(flavours: &[Flavour], arches: &[Arch]) -> Vec<(DebianKernel, Arch)> {
    let flavours = if flavours.is_empty() {
        &table::ALL_FLAVOURS[..]
    } else {
        flavours
    };
    let arches = if arches.is_empty() {
        &[Arch::X86_64, Arch::Arm64][..]
    } else {
        arches
    };
    let mut cells = Vec::new();
    for &flavour in flavours {
        for line in Line::ALL {
            for &arch in arches {
                cells.push((DebianKernel::new(line, None, flavour), arch));
            }
        }
    }
    cells
}

/// The cell's main record step times the lock path too (`--exact-locks`:
/// the spin slow path and the PTE-lock function, left to sampling by
/// default), so the matrix loads and attaches every program a default
/// record does and those: the timing checks read its run. The many-VMA
/// step runs at the defaults.
///
/// The cell's victim. Under TCG a one-thread victim often drops its mm
/// before process_mrelease arrives (ESRCH: the kill and mrelease paths are
/// translated for the first time, the victim's exit path is warm), so the
/// reaper does nothing. With four threads exiting one after another on the
/// victim's CPU, some thread still holds the mm when the call arrives: 4 of
/// 4 episodes reaped on bookworm arm64 with kprobes, against 1 of 3 with one
/// thread.
const RECORD_VICTIM: &str = "256M,threads=4";
/// Episodes per cell, so one lost race does not leave a cell without data.
const RECORD_RUNS: u32 = 3;
/// The many-VMA victim, recorded at every other default: the largest
/// scenario whose stacks the default stack map must keep (the
/// `no-lost-stacks` check); 16384 VMAs make the teardown walk and unmap
/// each VMA's page tables on its own.
const RECORD_VMAS_VICTIM: &str = "256M,vmas=16384";
/// Episodes of the many-VMA victim. One: the stack map is drained after
/// every episode, so a second episode tests nothing the first did not, and
/// under arm64 TCG each one costs about a minute (building 16384 VMAs, a
/// 13 s teardown, the drain), the largest single cost of the CI matrix.
const RECORD_VMAS_RUNS: u32 = 1;
/// Where the cell script writes each step's end, as `STEP UPTIME_S` lines
/// (the guest's /proc/uptime), so the log says where a cell's time went.
const STEP_TIMES_FILE: &str = "step-times.txt";

/// The shell script each cell runs. Its steps' statuses go to
/// `/out/steps.txt`, so a failing step does not hide the next one.
pub fn cell_command(run_reaper: bool) -> String {
    let mut script = format!(
        "mark() {{ echo \"$1 $(cut -d' ' -f1 /proc/uptime)\" >> /out/{STEP_TIMES_FILE}; }}\n\
         mark start\n\
         uname -a; cat /proc/version; ls /sys/kernel/btf | head -5\n\
         uname -v > /out/{UNAME_V_FILE}; uname -r > /out/{UNAME_R_FILE}\n\
         [ -e /sys/kernel/btf/vmlinux ] && : > /out/{BTF_FILE}\n"
    );
    if run_reaper {
        // A kernel without process_mrelease (before 5.15) must refuse the
        // default mode before killing anything (the `mrelease-refusal`
        // check reads what it said); the cell then records kill-only.
        script.push_str(&format!(
            "reaper doctor --json > /out/{DOCTOR_JSON}; echo \"doctor $?\" >> /out/{STEPS_FILE}; mark doctor\n\
             mode=\n\
             if grep -q '\"process_mrelease\": *false' /out/{DOCTOR_JSON}; then\n\
             reaper record --victim {RECORD_VICTIM} --runs {RECORD_RUNS} -o /out/{REFUSED_DIR} > /out/{REFUSED_TEXT} 2>&1; echo \"refused $?\" >> /out/{STEPS_FILE}; mark refused\n\
             mode=--no-mrelease\n\
             fi\n\
             reaper record $mode --exact-locks --victim {RECORD_VICTIM} --runs {RECORD_RUNS} -o /out/{RECORD_DIR}; echo \"record $?\" >> /out/{STEPS_FILE}; mark record\n\
             reaper record $mode --victim {RECORD_VMAS_VICTIM} --runs {RECORD_VMAS_RUNS} -o /out/{RECORD_VMAS_DIR}; echo \"record-vmas $?\" >> /out/{STEPS_FILE}; mark record-vmas\n\
             reaper record --oom --victim 256M --attach sampling -o /out/{OOM_DIR}; echo \"oom $?\" >> /out/{STEPS_FILE}; mark oom\n"
        ));
        // The frozen scenario needs the legacy (v1) freezer: per-thread
        // thawing is a property of __thaw_task(), which the v2 freezer does
        // not use. Memory stays on cgroup v2 (7.x kernels may lack memcg v1).
        script.push_str(&format!(
            "umount /sys/fs/cgroup 2>/dev/null; mount -t tmpfs none /sys/fs/cgroup\n\
             mkdir -p /sys/fs/cgroup/unified /sys/fs/cgroup/freezer\n\
             mount -t cgroup2 none /sys/fs/cgroup/unified && echo +memory > /sys/fs/cgroup/unified/cgroup.subtree_control\n\
             mount -t cgroup -o freezer none /sys/fs/cgroup/freezer\n\
             reaper record --oom --frozen --victim 256M,threads=4 --frozen-timeout 10 --attach sampling -o /out/{FROZEN_DIR}; echo \"frozen $?\" >> /out/{STEPS_FILE}; mark frozen\n\
             ls -d /sys/fs/cgroup/*/reaper-* > /out/{CGROUPS_LEFT} 2>/dev/null; true\n"
        ));
    }
    script.push_str("true\n");
    script
}

/// The cells a `vm-test` run covers: `--only`'s, every cell (`--all`), or
/// CI's.
fn cells_asked(args: &VmTestArgs) -> Result<Vec<(DebianKernel, Arch)>> {
    Ok(match &args.only {
        Some(only) => vec![parse_only(only)?],
        None if args.all => all_cells(&args.flavours, &args.arches),
        None => table::CI_CELLS
            .iter()
            .map(|c| (c.kernel(), c.arch))
            .collect(),
    })
}

/// `cargo xtask vm-test`.
pub fn run_vm_test(args: VmTestArgs) -> Result<ExitCode> {
    let cells = cells_asked(&args)?;
    crate::setup_qemu::ensure_qemu()?;
    let out_root = args
        .out
        .clone()
        .unwrap_or_else(|| cache::target_dir().join("vm-test"));
    let mut results = match &args.report {
        Some(dir) => Some(results::ResultsFile::open(dir, command_line())?),
        None => None,
    };
    // One build per architecture, its failure shared by every cell of it.
    let mut reapers: HashMap<Arch, std::result::Result<PathBuf, Rc<anyhow::Error>>> =
        HashMap::new();
    let mut reports = Vec::new();
    let total = cells.len();
    for (n, (kernel, arch)) in cells.into_iter().enumerate() {
        eprintln!(
            "[{}/{total}] {} {arch}{}",
            n + 1,
            kernel.name(),
            flavour_note(kernel.flavour)
        );
        if args.all
            && let Some(why) = not_offered(&kernel, arch)
        {
            eprintln!("xtask: skipping {} {arch}: {why}", kernel.name());
            let report = CellReport::skipped(kernel, arch, why);
            put_result(&mut results, &report)?;
            reports.push(report);
            continue;
        }
        let reaper = if args.smoke {
            None
        } else {
            Some(
                reapers
                    .entry(arch)
                    .or_insert_with(|| build::reaper_binary(arch).map_err(Rc::new))
                    .clone(),
            )
        };
        let report = run_cell(&args, kernel, arch, reaper, &out_root);
        // The row as soon as the cell ends, so a run cut short still says
        // what it measured.
        eprintln!("[{}/{total}] {}", n + 1, table_row(&report).join(" | "));
        put_result(&mut results, &report)?;
        reports.push(report);
    }
    print_table(&reports);
    if let Some(results) = &results {
        eprintln!("xtask: results table: {}", results.path().display());
    }
    Ok(if reports.iter().any(CellReport::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `cargo xtask vm-test ARGS`, as this run was asked for.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", args.join(" "))
}

/// Adds a finished cell to the results file, if one is being written.
fn put_result(results: &mut Option<results::ResultsFile>, r: &CellReport) -> Result<()> {
    let Some(file) = results else {
        return Ok(());
    };
    let row = table_row(r);
    let outcome = if r.skipped.is_some() {
        results::Outcome::NotOffered
    } else if r.error.is_some() {
        results::Outcome::Error
    } else if r.failed() {
        results::Outcome::Fail
    } else {
        results::Outcome::Pass
    };
    let mut problems: Vec<String> = r
        .skipped
        .iter()
        .map(|why| format!("not offered: {why}"))
        .collect();
    problems.extend(r.error.iter().map(|e| format!("error: {e}")));
    problems.extend(r.checks.iter().filter_map(|(name, v)| match v {
        Verdict::Fail(m) => Some(format!("FAIL {name}: {m}")),
        _ => None,
    }));
    file.put(results::CellRow {
        kernel: r.kernel.name(),
        flavour: r.kernel.flavour.to_string(),
        arch: r.arch.to_string(),
        release: row[2].clone(),
        outcome,
        checks: row[5].clone(),
        attach: row[4].clone(),
        problems,
        wall_s: r.wall.as_secs_f64(),
        ran_at: results::now_utc(),
        rerun: false,
    })
}

/// ` (rt)` for flavours other than cloud, for progress lines and tables.
fn flavour_note(flavour: Flavour) -> String {
    match flavour {
        Flavour::Cloud => String::new(),
        other => format!(" ({other})"),
    }
}

/// Why `--all` skips a cell: its suite builds no such kernel, or apt could
/// not say.
fn not_offered(kernel: &DebianKernel, arch: Arch) -> Option<String> {
    match super::kernel::offered(kernel, arch) {
        Ok(Some(_)) => None,
        Ok(None) => Some(format!(
            "{} builds no {} {} kernel",
            kernel.line.suite(),
            kernel.flavour,
            arch.debian()
        )),
        Err(err) => Some(format!("could not ask apt: {err:#}")),
    }
}

impl CellReport {
    fn skipped(kernel: DebianKernel, arch: Arch, why: String) -> Self {
        CellReport {
            kernel,
            arch,
            skipped: Some(why),
            release: "-".into(),
            attach: "-".into(),
            checks: Vec::new(),
            error: None,
            wall: Duration::ZERO,
        }
    }
}

fn run_cell(
    args: &VmTestArgs,
    kernel: DebianKernel,
    arch: Arch,
    reaper: Option<std::result::Result<PathBuf, Rc<anyhow::Error>>>,
    out_root: &std::path::Path,
) -> CellReport {
    let started = Instant::now();
    let name = format!("{}/{arch}{}", kernel.name(), flavour_note(kernel.flavour));
    eprintln!("xtask: ===== vm-test cell {name} =====");
    let mut report = CellReport {
        kernel: kernel.clone(),
        arch,
        skipped: None,
        release: "?".into(),
        attach: "?".into(),
        checks: Vec::new(),
        error: None,
        wall: Duration::ZERO,
    };
    let reaper = match reaper.transpose() {
        Ok(reaper) => reaper,
        Err(err) => {
            report.error = Some(format!("{err:#}"));
            return report;
        }
    };
    let mut spec = VmSpec::new(
        KernelChoice::Debian(kernel.clone()),
        arch,
        vec![cell_command(reaper.is_some())],
    );
    spec.accel = args.accel;
    spec.timeout = Duration::from_secs(args.timeout);
    spec.out_dir = out_root.join(format!("{}-{arch}", kernel.file_name()));
    spec.console_prefix = format!("[{name}] ");
    spec.binaries
        .extend(reaper.clone().map(|p| ("reaper".to_string(), p)));
    match super::boot(&spec) {
        Ok(outcome) => {
            let release = outcome.guest_release.clone().unwrap_or_default();
            let machine = outcome.guest_machine.clone().unwrap_or_default();
            let ctx = CellContext {
                kernel: &kernel,
                arch,
                out_dir: &spec.out_dir,
                guest_release: &release,
                guest_machine: &machine,
                reaper_ran: reaper.is_some(),
            };
            report.checks = checks::run_all(&ctx);
            report.attach = checks::attach_summary(&spec.out_dir);
            report.release = release;
        }
        Err(err) => report.error = Some(format!("{err:#}")),
    }
    report.wall = started.elapsed();
    print_step_times(&name, &spec.out_dir, report.wall);
    report
}

/// The cell's wall time and its guest's time per step, on one log line.
fn print_step_times(name: &str, out_dir: &std::path::Path, wall: Duration) {
    if let Some(steps) = std::fs::read_to_string(out_dir.join(STEP_TIMES_FILE))
        .ok()
        .as_deref()
        .and_then(super::step_times::summary)
    {
        eprintln!(
            "xtask: {name}: {:.0} s on the host; in the guest: {steps}",
            wall.as_secs_f64()
        );
    }
}

fn print_table(reports: &[CellReport]) {
    let header = [
        "kernel",
        "flavour",
        "release",
        "arch",
        "attach modes",
        "checks",
        "wall",
    ]
    .map(String::from);
    let rows: Vec<[String; 7]> = reports.iter().map(table_row).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    println!();
    for row in [&header].into_iter().chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    for r in reports {
        let cell = format!("{}/{}/{}", r.kernel.name(), r.arch, r.kernel.flavour);
        if let Some(why) = &r.skipped {
            println!("skip  {cell}: {why}");
        }
        if let Some(error) = &r.error {
            println!("ERROR {cell}: {error}");
        }
        for (name, verdict) in &r.checks {
            match verdict {
                Verdict::Fail(message) => println!("FAIL  {cell} {name}: {message}"),
                Verdict::Skip(message) => println!("skip  {cell} {name}: {message}"),
                Verdict::Pass(_) => {}
            }
        }
    }
}

fn table_row(r: &CellReport) -> [String; 7] {
    let passed = r
        .checks
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Pass(_)))
        .count();
    let failed = r
        .checks
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Fail(_)))
        .count();
    let skipped = r.checks.len() - passed - failed;
    let checks = match (&r.error, skipped) {
        _ if r.skipped.is_some() => "not offered".to_string(),
        (Some(_), _) => "ERROR".to_string(),
        (None, 0) => format!("{passed} ok, {failed} failed"),
        (None, s) => format!("{passed} ok, {failed} failed, {s} skipped"),
    };
    [
        r.kernel.name(),
        r.kernel.flavour.to_string(),
        r.release.clone(),
        r.arch.to_string(),
        r.attach.clone(),
        checks,
        if r.skipped.is_some() {
            "-".to_string()
        } else {
            format!("{:.1} s", r.wall.as_secs_f64())
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepts_kernel_slash_arch() {
        assert_eq!(
            parse_only("sid/arm64").unwrap(),
            (
                DebianKernel::new(Line::Sid, None, Flavour::Cloud),
                Arch::Arm64
            )
        );
        assert_eq!(
            parse_only("bookworm/aarch64").unwrap(),
            (
                DebianKernel::new(Line::Bookworm, None, Flavour::Cloud),
                Arch::Arm64
            )
        );
        assert_eq!(
            parse_only("trixie-backports:6.19/x86_64/rt").unwrap(),
            (
                DebianKernel::new(Line::TrixieBackports, Some("6.19"), Flavour::Rt),
                Arch::X86_64
            )
        );
        assert!(parse_only("sid/arm64/fast").is_err());
        assert!(parse_only("sid").is_err());
        assert!(parse_only("sid/riscv64").is_err());
    }

    #[test]
    fn all_is_every_line_arch_and_flavour() {
        let all = all_cells(&[], &[]);
        assert_eq!(all.len(), Line::ALL.len() * 2 * table::ALL_FLAVOURS.len());
        assert!(all.iter().any(|(k, _)| k.flavour == Flavour::Rt));
        let rt_x86 = all_cells(&[Flavour::Rt], &[Arch::X86_64]);
        assert_eq!(rt_x86.len(), Line::ALL.len());
    }

    #[test]
    fn cell_command_runs_reaper_only_when_built() {
        assert!(!cell_command(false).contains("reaper"));
        let full = cell_command(true);
        assert!(full.contains("reaper doctor --json > /out/doctor.json"));
        assert!(full.contains(
            "reaper record $mode --exact-locks --victim 256M,threads=4 --runs 3 -o /out/record"
        ));
        assert!(full.contains("-o /out/refused > /out/refused.txt 2>&1; echo \"refused $?\""));
    }
}
