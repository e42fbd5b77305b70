//! `reaper record`: validate flags, record, write run.json + folded + SVGs
//! + pprof, print the report.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::{
    output::OutputDir,
    probes::{
        function_timing::AttachPolicy,
        loader::{EbpfLog, MapSizes},
    },
    recorder::{self, RecordSettings, Target},
    report::load::{PREVIOUS_RUN_FILE_NAME, RUN_FILE_NAME},
    scenario::size::{VictimSpec, parse_size},
    system::privileges::{self, RecordKind},
};

/// Arguments of `reaper record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Synthetic victim: SIZE[,vmas=N][,threads=T] (default 1G,vmas=64,threads=4).
    #[arg(long, value_name = "SPEC", conflicts_with = "pid")]
    pub victim: Option<String>,
    /// An existing process to tear down (needs --kill).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Confirms that --pid may be killed with SIGKILL.
    #[arg(long)]
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
    /// No progress lines on stderr (warnings and errors still print).
    #[arg(short, long)]
    pub quiet: bool,
    /// cpu-clock sampling frequency in Hz.
    #[arg(long, default_value_t = 4000, value_name = "HZ")]
    pub freq: u64,
    /// Output directory for run.json, folded stacks and SVGs; a run.json
    /// already there is kept as run.json.old.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Kernel stack map entries (enlarge if stacks are lost).
    #[arg(long, default_value_t = MapSizes::default().stack_map, value_name = "N")]
    pub stack_map_size: u32,
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
    /// With --watch: episodes kept; older ones are evicted and counted.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_episodes: usize,
    /// Print the derived report (tables' data) as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Exact function timing: auto (fentry/fexit, else kprobe/kretprobe, per
    /// function), fentry or kprobe (forced: failing is an error), or sampling
    /// (no function probes).
    #[arg(long, default_value = "auto", value_name = "MODE",
          value_parser = clap::builder::PossibleValuesParser::new(AttachPolicy::NAMES))]
    pub attach: String,
}

/// Most episodes per run: each spawns and kills a victim.
const MAX_RUNS: u32 = 1000;

impl RecordArgs {
    /// Checks the flags and turns them into settings; `verbose` is the
    /// global -v count (-vv turns on the eBPF side's drop log).
    pub fn settings(&self, verbose: u8) -> anyhow::Result<RecordSettings> {
        let target = match (self.pid, &self.victim) {
            (Some(_), _) if !self.kill => {
                bail!("--pid sends SIGKILL to that process; add --kill to confirm")
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
        let target = match target {
            _ if self.watch => Target::Watch(crate::recorder::watch::WatchSettings {
                duration: self.duration.map(std::time::Duration::from_secs),
                max_episodes: self.max_episodes.max(1),
            }),
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
        };
        if self.kill && self.pid.is_none() {
            bail!("--kill only goes with --pid");
        }
        if !(1..=MAX_RUNS).contains(&self.runs) {
            bail!("--runs must be between 1 and {MAX_RUNS}");
        }
        if matches!(target, Target::Pid(_)) && self.runs != 1 {
            bail!(
                "--runs > 1 needs a synthetic --victim: an existing --pid can be killed only once"
            );
        }
        if !(1..=100_000).contains(&self.freq) {
            bail!("--freq must be between 1 and 100000 Hz");
        }
        let ringbuf_bytes = u32::try_from(parse_size(&self.ringbuf_size)?)
            .context("--ringbuf-size is too large")?;
        let sizes = MapSizes {
            stack_map: self.stack_map_size,
            sample_map: self.sample_map_size,
            lock_map: self.lock_map_size,
            ringbuf_bytes,
        };
        Ok(RecordSettings {
            target,
            mrelease: !self.no_mrelease && !self.oom,
            mrelease_unavailable: None,
            runs: self.runs,
            freq_hz: self.freq,
            sizes,
            attach: self.attach.parse().map_err(anyhow::Error::msg)?,
            retries: self.retries.min(MAX_RUNS),
            progress: crate::recorder::progress::Progress::new(self.quiet),
            ebpf_log: if verbose >= 2 {
                EbpfLog::Drops
            } else {
                EbpfLog::Off
            },
        })
    }
}

/// Records, writes the outputs and prints the report.
pub fn run(args: &RecordArgs, verbose: u8) -> anyhow::Result<i32> {
    let mut settings = args.settings(verbose).map_err(crate::cli::UsageError)?;
    // Before anything is spawned or killed.
    recorder::preflight::check(
        &mut settings,
        crate::scenario::pidfd::mrelease_available(),
        args.degrade,
        &crate::system::kernel::host_info().kernel_release,
    )
    .map_err(|e| crate::cli::UsageError(e.into()))?;
    if let Some(why) = &settings.mrelease_unavailable {
        eprintln!(
            "reaper: {why}: --degrade records the kill without the process_mrelease race; its rows say not measured"
        );
    }
    privileges::require(&privileges::needed(match settings.target {
        Target::Victim(_) => RecordKind::Victim,
        Target::Oom(_) => RecordKind::Oom,
        Target::Pid(_) => RecordKind::Pid,
        Target::Watch(_) => RecordKind::Watch,
    }))?;
    // Opened and checked before recording, so an unusable directory costs
    // no recording.
    let out = args.output.as_deref().map(OutputDir::create).transpose()?;
    let run = recorder::Recorder::run(settings)?;
    let report_options = crate::report::ReportOptions::default();
    if let Some(out) = &out {
        if let Some(old) = out.keep_previous(RUN_FILE_NAME, PREVIOUS_RUN_FILE_NAME)? {
            eprintln!(
                "reaper: kept the previous run as {} (re-render it with `reaper report {} -o DIR`)",
                old.display(),
                old.display()
            );
        }
        let path = out.write(RUN_FILE_NAME, &serde_json::to_vec_pretty(&run)?)?;
        let files = crate::report::write_files(&run, out, &report_options)?;
        let pprof = crate::report::formats::write(crate::report::formats::Format::Pprof, &run, out)
            .with_context(|| format!("writing the pprof profile to {}", out.path().display()))?;
        eprintln!(
            "reaper: wrote {}, {} folded/SVG files and {} to {}",
            path.display(),
            files.len(),
            pprof.display(),
            out.path().display()
        );
    }
    if args.json {
        println!("{}", crate::report::render_json(&run, &report_options));
    } else {
        print!("{}", crate::report::render_text(&run, &report_options));
    }
    Ok(if run.partial {
        crate::cli::exit::INTERRUPTED
    } else {
        crate::cli::exit::SUCCESS
    })
}
