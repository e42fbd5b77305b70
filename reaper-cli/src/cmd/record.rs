//! `reaper record`: validate flags, record, write run.json + folded + SVGs
//! + pprof, print the report.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

use crate::{
    console::{note, say, sayln},
    output::OutputDir,
    probes::{
        function_timing::{AttachPolicy, CollisionLog, Exact, Holders},
        loader::{EbpfLog, MapSizes},
    },
    recorder::{self, RecordSettings, Target},
    report::load::{PREVIOUS_RUN_FILE_NAME, RUN_FILE_NAME},
    size::{VictimSpec, parse_size},
    system::privileges,
};

/// Arguments of `reaper record`.
#[derive(Debug, Args)]
#[command(after_help = super::help::after_help("record", ""))]
pub struct RecordArgs {
    /// Synthetic victim: SIZE[,vmas=N][,threads=T] (default 1G,vmas=64,threads=4).
    #[arg(long, value_name = "SPEC", conflicts_with = "pid")]
    pub victim: Option<String>,
    /// An existing process: without --kill, wait for its own exit (or a
    /// kill by someone else) and profile that teardown, killing nothing;
    /// with --kill, kill it now and race it with process_mrelease.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// With --pid: kill it with SIGKILL (and race it with process_mrelease)
    /// instead of waiting for its own exit.
    #[arg(long, requires = "pid")]
    pub kill: bool,
    /// Kill only; let the victim's exit_mmap do all the work (the comparison point).
    #[arg(long)]
    pub no_mrelease: bool,
    /// When this kernel lacks a mechanism the mode needs (process_mrelease
    /// before Linux 5.15), record without it instead of refusing; the rows
    /// that needed it say "not measured" and why.
    #[arg(long)]
    pub degrade: bool,
    /// Episodes to record (a fresh victim each).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub runs: u32,
    /// Replace up to N episodes whose process_mrelease lost the race
    /// (ESRCH: the victim had already left its mm) with fresh ones; the lost
    /// ones stay in run.json, marked lost_race, and out of medians.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,
    /// cpu-clock sampling frequency in Hz.
    #[arg(long, default_value_t = 4000, value_name = "HZ")]
    pub freq: u64,
    /// Output directory for run.json, folded stacks, SVGs and
    /// profile.pb.gz; a run.json already there is kept as run.json.old.
    /// Without -o, run.json alone is saved under $REAPER_RUNS_DIR (default
    /// ~/.local/state/reaper/runs/<start>-<scenario>/), and the path said.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Without -o: keep nothing (say so) instead of saving run.json under
    /// the runs directory.
    #[arg(long, conflicts_with = "output")]
    pub no_save: bool,
    /// Count each of reaper's programs' runs and kernel time per episode
    /// (the kernel's own statistics, switched on through BPF_ENABLE_STATS
    /// while recording; Linux 5.8+): what each probe costs, in the report's
    /// "Probe program cost" table. Adds two clock reads to every BPF program
    /// run on the machine while on.
    #[arg(long)]
    pub program_cost: bool,
    /// Kernel stack map entries (enlarge if stacks are lost) [default:
    /// 16384, or the run's expected samples when a --victim's size, VMAs
    /// and --runs can take more, up to 131072].
    #[arg(long, value_name = "N")]
    pub stack_map_size: Option<u32>,
    /// Sample-count map entries.
    #[arg(long, default_value_t = MapSizes::default().sample_map, value_name = "N")]
    pub sample_map_size: u32,
    /// Lock-wait map entries (the aggregate and the pending-wait maps).
    #[arg(long, default_value_t = MapSizes::default().lock_map, value_name = "N")]
    pub lock_map_size: u32,
    /// Timeline ring buffer size (power of two), e.g. 256K.
    #[arg(long, default_value = "256K", value_name = "SIZE")]
    pub ringbuf_size: String,
    /// Let the kernel's OOM killer pick the victim inside a memory cgroup
    /// reaper creates (limit below the victim's size); profiles the victim's
    /// exit against the oom_reaper kthread.
    #[arg(long, conflicts_with_all = ["pid", "no_mrelease"])]
    pub oom: bool,
    /// With --oom: freeze the victim (threads=T >= 4) in a freezer cgroup
    /// before the OOM kill, and report which threads exit.
    #[arg(long, requires = "oom")]
    pub frozen: bool,
    /// With --frozen: how long to watch the victim after the kill, seconds.
    #[arg(long, default_value_t = 10, value_name = "S")]
    pub frozen_timeout: u64,
    /// Record every teardown on the system (OOM kills, any process_mrelease
    /// call) without triggering anything, until Ctrl-C or --duration.
    #[arg(long, conflicts_with_all = ["pid", "victim", "oom", "no_mrelease", "kill"])]
    pub watch: bool,
    /// With --watch: stop after this many seconds.
    #[arg(long, value_name = "S", requires = "watch")]
    pub duration: Option<u64>,
    /// With --watch: only victims of this process name (comm, at most 15
    /// bytes); also records their ordinary exits, not only kills.
    #[arg(long, value_name = "NAME", requires = "watch")]
    pub comm: Option<String>,
    /// With --watch: only victims resident at least SIZE (e.g. 512M) when
    /// their teardown began; also records ordinary exits of such processes.
    #[arg(long, value_name = "SIZE", requires = "watch")]
    pub min_rss: Option<String>,
    /// With --watch: episodes kept; older ones are evicted and counted.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_episodes: usize,
    /// Print the derived report (tables' data) as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Exact function timing: auto (fentry/fexit, else kprobe/kretprobe, per
    /// function), fentry or kprobe (forced: failing is an error), or sampling
    /// (no function probes).
    #[arg(long, value_enum, default_value_t = AttachPolicy::Auto, value_name = "MODE")]
    pub attach: AttachPolicy,
    /// Also time the per-page leaf functions per call (rmap removal:
    /// page_remove_rmap / folio_remove_rmap_ptes, called for every page
    /// unmapped). Off by default: their probes cost more than the calls
    /// they time and inflate the teardown they measure; sampling covers
    /// them without that.
    #[arg(long)]
    pub exact_leaves: bool,
    /// Also time the per-batch functions per call (page freeing:
    /// free_pages_and_swap_cache; the TLB flush inside the walk:
    /// tlb_flush_mmu; each called once per mmu_gather batch, hundreds of
    /// times a teardown). Off by default: their probes weigh on the teardown
    /// they time; sampling covers them without that.
    #[arg(long)]
    pub exact_batches: bool,
    /// Also time the lock path per call: the spin slow path (entered on
    /// every contended spinlock acquisition on the machine) and the PTE-lock
    /// function (once per page table). Gives the exact PTE-lock wait (every
    /// contended acquisition, pending-bit spins included), the slow path's
    /// row, and lock waits on kernels without lock:contention_*. Where the
    /// PTE lock is inline (6.1, 5.x) it also times the per-batch functions,
    /// which tell the walk's PTE-lock waits from the batch freeing's. It also
    /// logs each walker's per-VMA steps and each PTE-lock wait with its
    /// holder: the waiter × holder table, the collision maps
    /// (collision_map_episode_N.svg) and their trace tracks. Off by
    /// default: both probes' exits run inside the lock's critical section
    /// and lengthen the waits they time; sampling measures the PTE-lock
    /// wait without that.
    #[arg(long)]
    pub exact_locks: bool,
    /// Skip the warm-up: by default a --victim or --pid --kill record first
    /// tears down a small victim of its own (32M, four threads, killed and
    /// process_mrelease'd like the episodes) and discards it, so the first
    /// run of the probes and of the kernel code they patched (which an
    /// emulator such as qemu TCG must first translate) is not in episode 1.
    #[arg(long)]
    pub no_warmup: bool,
    /// With --exact-locks: name every task that last took a PTE lock a
    /// tracked walker took before, not only the tracked walkers (the waiter
    /// × holder table's "other: comm" holders). Off by default: it adds a
    /// hash lookup to every task's PTE-lock call on the machine, page faults
    /// included.
    #[arg(long, requires = "exact_locks")]
    pub pte_holders_all: bool,
    /// With --exact-locks: time the lock path per call but log no walker
    /// step or PTE-lock wait (no waiter × holder table, no collision maps),
    /// and shrink the logs' kernel maps to one entry each, as recordings
    /// without --exact-locks do. What the logs cost is the difference
    /// (`cargo xtask bench --collisions-vm` measures it).
    #[arg(long, requires = "exact_locks", conflicts_with = "pte_holders_all")]
    pub no_collision_log: bool,
}

/// `--attach`'s values: the policies' names, without per-value help so the
/// flag's help stays one line.
impl clap::ValueEnum for AttachPolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// Without -o: saves run.json under the runs directory and says where, or
/// says that nothing was kept. A failure to save is a warning: the tables
/// are still printed, and the recording itself succeeded.
fn save_unasked(run: &crate::model::Run, no_save: bool) {
    if no_save {
        crate::console::info(format_args!(
            "the run was not saved (--no-save; -o DIR keeps it)"
        ));
        return;
    }
    let saved = (|| -> Result<PathBuf, SaveError> {
        let dir = crate::output::runs::runs_dir()?;
        let name =
            crate::output::runs::run_name(run.recording.started_unix, run.recording.scenario.kind);
        let path = crate::output::runs::fresh(&dir, &name);
        let out = OutputDir::create(&path)?;
        let json = serde_json::to_vec_pretty(run)?;
        Ok(out.write(RUN_FILE_NAME, &json)?)
    })();
    match saved {
        Ok(path) => crate::console::info(format_args!(
            "saved the run as {} (`reaper report {}` re-renders it, `reaper diff` compares it; -o DIR writes it there with flame graphs and pprof instead)",
            path.display(),
            path.display()
        )),
        Err(why) => note!("reaper: warning: the run was not saved ({why}); -o DIR keeps it"),
    }
}

/// Why a run was not saved into the runs directory (a warning).
#[derive(Debug, thiserror::Error)]
enum SaveError {
    /// There is no runs directory.
    #[error(transparent)]
    NoDir(#[from] crate::output::runs::NoRunsDir),
    /// The directory or the file could not be written.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// The run did not serialize.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Most episodes per run: each spawns and kills a victim.
const MAX_RUNS: u32 = 1000;

impl RecordArgs {
    /// `--watch`'s settings from its flags.
    fn watch_settings(&self) -> anyhow::Result<crate::recorder::watch::WatchSettings> {
        Ok(crate::recorder::watch::WatchSettings {
            duration: self.duration.map(std::time::Duration::from_secs),
            max_episodes: self.max_episodes.max(1),
            filter: crate::recorder::watch::ExitFilter {
                comm: self.comm.as_deref().map(str::parse).transpose()?,
                min_rss: self
                    .min_rss
                    .as_deref()
                    .map(|s| parse_size(s).with_context(|| format!("--min-rss {s}")))
                    .transpose()?,
            },
        })
    }

    /// What to tear down: `--pid` (with or without `--kill`), `--victim`,
    /// `--oom` or `--watch`, checked.
    fn target(&self) -> anyhow::Result<Target> {
        let target = match (self.pid, &self.victim) {
            (Some(pid), _) if !self.kill => {
                crate::system::procfs::validate_target(pid)?;
                if self.no_mrelease {
                    bail!(
                        "--no-mrelease needs --kill: without it reaper waits for pid {pid}'s own exit and calls nothing"
                    );
                }
                Target::Exit(pid)
            }
            (Some(pid), _) => {
                crate::system::procfs::validate_target(pid)?;
                Target::Pid(pid)
            }
            (None, Some(spec)) => Target::Victim(
                spec.parse::<VictimSpec>()
                    .with_context(|| format!("--victim {spec}"))?,
            ),
            (None, None) => Target::Victim(VictimSpec::default()),
        };
        Ok(match target {
            _ if self.watch => Target::Watch(self.watch_settings()?),
            Target::Victim(spec) if self.oom => {
                if self.frozen && spec.threads < 4 {
                    bail!(
                        "--frozen needs a victim with at least 4 threads (e.g. --victim 512M,threads=4), so per-thread thawing shows"
                    );
                }
                Target::Oom(crate::recorder::oom::OomScenario {
                    spec,
                    frozen: self.frozen,
                    frozen_timeout: std::time::Duration::from_secs(self.frozen_timeout.max(1)),
                })
            }
            other => other,
        })
    }

    /// The map sizes: the flags', the stack map's sized for the victim and
    /// the episodes (retries included) unless given.
    fn map_sizes(&self, target: &Target) -> anyhow::Result<MapSizes> {
        let ringbuf_bytes = u32::try_from(parse_size(&self.ringbuf_size)?)
            .context("--ringbuf-size is too large")?;
        let victim = match target {
            Target::Victim(spec) => Some(spec),
            Target::Oom(oom) => Some(&oom.spec),
            Target::Pid(_) | Target::Exit(_) | Target::Watch(_) => None,
        };
        let stack_map = self.stack_map_size.unwrap_or_else(|| {
            crate::recorder::sizing::stack_map_entries(
                victim,
                self.runs.saturating_add(self.retries.min(MAX_RUNS)),
                self.freq,
            )
        });
        Ok(MapSizes {
            stack_map,
            sample_map: self.sample_map_size,
            lock_map: self.lock_map_size,
            ringbuf_bytes,
        })
    }

    /// Checks the flags and turns them into settings; `verbose` is the
    /// global -v count (-vv turns on the eBPF side's drop log).
    pub fn settings(&self, verbose: u8, quiet: bool) -> anyhow::Result<RecordSettings> {
        let target = self.target()?;
        if self.kill && self.pid.is_none() {
            bail!("--kill only goes with --pid");
        }
        if !(1..=MAX_RUNS).contains(&self.runs) {
            bail!("--runs must be between 1 and {MAX_RUNS}");
        }
        if matches!(target, Target::Pid(_) | Target::Exit(_)) && self.runs != 1 {
            bail!("--runs > 1 needs a synthetic --victim: an existing --pid exits only once");
        }
        if !(1..=100_000).contains(&self.freq) {
            bail!("--freq must be between 1 and 100000 Hz");
        }
        let sizes = self.map_sizes(&target)?;
        Ok(RecordSettings {
            target,
            mrelease: !self.no_mrelease && !self.oom && !matches!(target, Target::Exit(_)),
            mrelease_unavailable: None,
            runs: self.runs,
            freq_hz: self.freq,
            sizes,
            attach: self.attach,
            retries: self.retries.min(MAX_RUNS),
            progress: crate::recorder::progress::Progress::new(quiet),
            ebpf_log: if verbose >= 2 {
                EbpfLog::Drops
            } else {
                EbpfLog::Off
            },
            program_cost: self.program_cost,
            exact: Exact {
                leaves: self.exact_leaves,
                batches: self.exact_batches,
                locks: self.exact_locks,
            },
            warmup: !self.no_warmup,
            holders: if self.pte_holders_all {
                Holders::All
            } else {
                Holders::Tracked
            },
            collision_log: if self.no_collision_log {
                CollisionLog::Off
            } else {
                CollisionLog::On
            },
        })
    }
}

/// Every name a recording may write into its output directory.
fn output_names() -> Vec<String> {
    let mut names = vec![RUN_FILE_NAME.to_owned(), PREVIOUS_RUN_FILE_NAME.to_owned()];
    names.extend(crate::report::file_names());
    names.push(crate::report::formats::Format::Pprof.file_name().to_owned());
    names
}

/// The flags checked and turned into settings, the kernel checked for
/// what they need (before anything is spawned or killed), and the
/// privileges the recording needs.
fn checked_settings(args: &RecordArgs, verbose: u8, quiet: bool) -> anyhow::Result<RecordSettings> {
    let mut settings = args
        .settings(verbose, quiet)
        .map_err(crate::exit::UsageError)?;
    // Before anything is spawned or killed.
    recorder::preflight::check(
        &mut settings,
        crate::scenario::pidfd::mrelease_available(),
        args.degrade,
        &crate::system::kernel::host_info().kernel_release,
    )
    .map_err(|e| crate::exit::UsageError(e.into()))?;
    if let Some(why) = &settings.mrelease_unavailable {
        note!(
            "reaper: {why}: --degrade records the kill without the process_mrelease race; its rows say not measured"
        );
    }
    privileges::require(&privileges::needed(settings.target.kind()))?;
    Ok(settings)
}

/// Keeps `out`'s previous run.json as run.json.old, then writes `json` as
/// run.json.
fn keep_and_write_run(out: &OutputDir, json: &[u8]) -> anyhow::Result<()> {
    // The previous run is linked to run.json.old first, so a complete
    // run.json exists at every moment, then replaced by the rename.
    if let Some(old) = out.keep_previous(RUN_FILE_NAME, PREVIOUS_RUN_FILE_NAME)? {
        crate::console::info(format_args!(
            "kept the previous run as {} (re-render it with `reaper report {} -o DIR`)",
            old.display(),
            old.display()
        ));
    }
    out.write(RUN_FILE_NAME, json)?;
    Ok(())
}

/// Writes the report files and the pprof profile of `run` into `out`.
fn write_reports(
    run: &crate::model::Run,
    out: &OutputDir,
    report_options: &crate::report::ReportOptions,
) -> anyhow::Result<()> {
    let path = out.path().join(RUN_FILE_NAME);
    let files = crate::report::write_files(run, out, report_options)?;
    let pprof = crate::report::formats::write(crate::report::formats::Format::Pprof, run, out)
        .with_context(|| format!("writing the pprof profile to {}", out.path().display()))?;
    crate::console::info(format_args!(
        "wrote {}, {} folded/SVG files and {} to {}",
        path.display(),
        files.len(),
        pprof.display(),
        out.path().display()
    ));
    Ok(())
}

/// Records, writes the outputs and prints the report.
pub fn run(args: &RecordArgs, verbose: u8, quiet: bool) -> anyhow::Result<i32> {
    super::stdout::refuse_dash(
        args.output.as_deref(),
        "record",
        "run.json, folded stacks, flame graphs and profile.pb.gz",
    )?;
    let settings = checked_settings(args, verbose, quiet)?;
    // Every check of the output directory happens before recording, so an
    // unusable one costs no recording: the path resolved and checked, the
    // directory locked against a second recorder (held until this
    // returns), and every name it will write free of directories.
    let out = args.output.as_deref().map(OutputDir::create).transpose()?;
    if let Some(out) = &out {
        out.lock()?;
        out.check_writable(&output_names())?;
    }
    let run = recorder::Recorder::run(settings)?;
    let json = serde_json::to_vec_pretty(&run)?;
    let report_options = crate::report::ReportOptions::default();
    if let Some(why) = crate::report::formats::folded_empty_because(&run) {
        note!(
            "reaper: warning: this run holds no samples (its folded stacks, flame graphs and pprof profile are empty): {why}"
        );
    }
    if out.is_none() {
        save_unasked(&run, args.no_save);
    }
    if let Some(out) = &out {
        keep_and_write_run(out, &json)?;
    }
    // Printed and drawn is what `reaper report` would read back: the run
    // through the loader's guard (other tasks' comms are data too).
    let run = crate::report::load::reread(&json, Path::new(RUN_FILE_NAME))?;
    if let Some(out) = &out {
        write_reports(&run, out, &report_options)?;
    }
    if args.json {
        sayln!("{}", crate::report::render_json(&run, &report_options));
    } else {
        say!("{}", crate::report::render_text(&run, &report_options));
    }
    Ok(if run.partial {
        crate::exit::INTERRUPTED
    } else {
        crate::exit::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::RecordArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RecordArgs,
    }

    /// `--pte-holders-all` changes what `--exact-locks` logs; alone it would
    /// do nothing, so it is refused rather than silently ignored.
    #[test]
    fn pte_holders_all_needs_exact_locks() {
        let alone = Cli::try_parse_from(["reaper", "--victim", "64M", "--pte-holders-all"]);
        let err = alone.err().expect("refused").to_string();
        assert!(err.contains("--exact-locks"), "{err}");
        let both = Cli::try_parse_from([
            "reaper",
            "--victim",
            "64M",
            "--exact-locks",
            "--pte-holders-all",
        ]);
        assert!(both.unwrap().args.pte_holders_all);
    }

    /// `--no-collision-log` turns off what `--exact-locks` logs: alone it
    /// would do nothing, and with `--pte-holders-all` (which widens those
    /// logs) it contradicts it; both are refused.
    #[test]
    fn no_collision_log_needs_exact_locks_and_refuses_pte_holders_all() {
        let alone = Cli::try_parse_from(["reaper", "--victim", "64M", "--no-collision-log"]);
        let err = alone.err().expect("refused").to_string();
        assert!(err.contains("--exact-locks"), "{err}");
        let both = Cli::try_parse_from([
            "reaper",
            "--exact-locks",
            "--pte-holders-all",
            "--no-collision-log",
        ]);
        let err = both.err().expect("refused").to_string();
        assert!(err.contains("--pte-holders-all"), "{err}");
        let ok = Cli::try_parse_from(["reaper", "--exact-locks", "--no-collision-log"]).unwrap();
        let settings = ok.args.settings(0, true).unwrap();
        assert_eq!(
            settings.collision_log,
            crate::probes::function_timing::CollisionLog::Off
        );
        assert!(settings.exact.locks, "the lock path stays timed");
    }
}
