//! `reaper record`'s engine: load and attach the probes once, then run each
//! episode (spawn or pick the victim, track its contexts, kill it, race it
//! with `process_mrelease`, wait, drain) and build the [`Run`].

mod costs;
mod drain_pacing;
pub mod episode;
pub mod figure_source;
mod kernel_facts;
mod load;
pub mod natural;
pub mod oom;
pub mod preflight;
pub mod progress;
mod race;
pub mod reclaim;
mod scenario;
mod setup;
pub mod sizing;
mod warmup;
pub mod watch;
mod watch_accumulator;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use aya::Ebpf;
use reaper_common::timeline::TimelineEvent;

use self::kernel_facts::{BtfSummary, join_kallsyms_reader, spawn_kallsyms_reader};
use self::load::{fentry_btf, load_and_attach, load_before_kallsyms, rt_owners, timing_config};
use self::scenario::scenario_of;
use self::setup::{EpisodeEnd, EpisodeSetup};
use crate::interrupt;
use crate::{
    catalog,
    model::{
        Episode, HostInfo, ProbeGroup, Recording, Run, SCHEMA_VERSION, ScenarioKind,
        TimelineEventKind, ToolInfo,
    },
    probe_frames::ProbeFrames,
    probes::{
        attach, collect, function_timing, loader,
        loader::MapSizes,
        raw_tp::RawPlan,
        timeline_reader::{TimelineReader, Wake},
    },
    scenario::victim,
    size::VictimSpec,
    symbolize::KernelSymbolizer,
    system::{kernel, privileges, procfs, tracefs},
};

/// What to tear down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A fresh synthetic victim per episode.
    Victim(VictimSpec),
    /// An existing process (one episode), killed by reaper.
    Pid(u32),
    /// An existing process's own exit, waited for (one episode).
    Exit(u32),
    /// A victim the kernel's OOM killer picks inside reaper's own memcg.
    Oom(oom::OomScenario),
    /// Every teardown on the system, triggering nothing.
    Watch(watch::WatchSettings),
}

impl Target {
    /// The scenario the run file names (`scenario.kind`), which also sets
    /// the privileges a recording needs.
    pub fn kind(&self) -> ScenarioKind {
        match self {
            Self::Victim(_) => ScenarioKind::Victim,
            Self::Pid(_) => ScenarioKind::Pid,
            Self::Exit(_) => ScenarioKind::Exit,
            Self::Oom(_) => ScenarioKind::Oom,
            Self::Watch(_) => ScenarioKind::Watch,
        }
    }
}

/// Validated `reaper record` settings.
#[derive(Clone, Debug)]
pub struct RecordSettings {
    /// What to tear down.
    pub target: Target,
    /// Race the victim with a process_mrelease caller.
    pub mrelease: bool,
    /// Why the mode's process_mrelease race is off although asked for
    /// (`--degrade` on a kernel without it; see [`preflight`]).
    pub mrelease_unavailable: Option<String>,
    /// Episodes.
    pub runs: u32,
    /// Sampling frequency, Hz.
    pub freq_hz: u64,
    /// Map sizes.
    pub sizes: MapSizes,
    /// How function probes attach (`--attach`).
    pub attach: function_timing::AttachPolicy,
    /// Lost-race episodes replaced by fresh ones, at most, per run.
    pub retries: u32,
    /// Progress lines on stderr.
    pub progress: progress::Progress,
    /// The eBPF side logs its drops and skips (`-vv`).
    pub ebpf_log: loader::EbpfLog,
    /// Count each program's runs and kernel time per episode
    /// (`--program-cost`).
    pub program_cost: bool,
    /// Whether the per-page leaf functions (`--exact-leaves`), the
    /// per-batch ones (`--exact-batches`) and the lock path
    /// (`--exact-locks`) are timed per call or left to sampling.
    pub exact: function_timing::Exact,
    /// Run a warm-up teardown before the first episode (`--no-warmup`
    /// turns it off); see [`warmup`].
    pub warmup: bool,
    /// Whose PTE-lock takes are remembered (`--pte-holders-all`).
    pub holders: function_timing::Holders,
    /// Whether `--exact-locks` logs walker steps and PTE-lock waits
    /// (`--no-collision-log` turns them off).
    pub collision_log: function_timing::CollisionLog,
}

/// How issue 25's logs are set up, and the walker step function whose log
/// is drained (when its probe attached). PREEMPT_RT's owners are read at
/// the lock tracepoints, so they count only when those attached.
fn collision_setup(
    timing: &reaper_common::function_timing::FunctionTimingConfig,
    functions: &function_timing::LadderReport,
    settings: &RecordSettings,
    (rt_owners, attach): (function_timing::rt_owner::RtOwners, &attach::AttachReport),
) -> (crate::model::PteHolderSetup, Option<String>) {
    let rt_owners = rt_owners.after_lock_tracepoints(attach.refusal(ProbeGroup::LockWait.name()));
    let log = settings.collision_log;
    let walker = functions
        .attached()
        .find(|f| f.function.slot == timing.collision.walker_slot)
        .filter(|_| functions.disabled.is_none())
        .map(|f| f.function.symbol.clone());
    (
        function_timing::collision::setup_for(log, &timing.collision, functions, &rt_owners),
        walker,
    )
}

/// Longest wait for a victim to exit after SIGKILL.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to keep polling for late timeline events (sched_process_free
/// runs from an RCU callback after the victim is reaped).
const LATE_EVENT_GRACE: Duration = Duration::from_millis(300);

/// Loaded, attached probes plus what is needed to symbolize their output.
pub struct Recorder {
    /// The tokio runtime the event waits run on (the recorder itself runs
    /// on one of its blocking threads).
    runtime: tokio::runtime::Handle,
    ebpf: Ebpf,
    timeline: TimelineReader,
    symbolizer: KernelSymbolizer,
    attach: attach::AttachReport,
    /// Which tracepoints may run as raw tracepoints (for `--watch`'s
    /// signal_generate, attached later).
    raw: RawPlan,
    host: HostInfo,
    symbols: Vec<crate::model::ResolvedConcept>,
    period_ns: u64,
    /// The function-timing attach ladder's outcome.
    functions: function_timing::LadderReport,
    /// Folds reaper's own probes in symbolized stacks.
    probe_frames: ProbeFrames,
    /// The calibrated cost of a timed call per attach mode used, and the
    /// modes that could not be calibrated.
    probe_costs: (Vec<crate::model::ProbeCost>, Vec<crate::model::NotMeasured>),
    /// Where lock waits come from when not from the contention tracepoints.
    lock_wait_source: Option<crate::model::FigureSource>,
    /// How PTE-lock waits and holders are recorded (issue 25).
    pte_holders: crate::model::PteHolderSetup,
    /// The walker step function, when its probe attached: its log is
    /// drained with function timing.
    walker_function: Option<String>,
    /// The collision logs' maps and their kernel memory, read after loading.
    collision_maps: Option<Vec<crate::model::MapMemory>>,
    /// The kernel's per-program run statistics, on while recording
    /// (`--program-cost`), or why they could not be switched on.
    run_stats: Option<
        Result<crate::probes::program_stats::RunStats, crate::probes::program_stats::RunStatsError>,
    >,
    /// The programs' run statistics when recording began.
    program_runs_at_start: Option<BTreeMap<String, crate::model::ProgramCost>>,
}

impl Drop for Recorder {
    /// Detaches every probe at once rather than one by one as `Ebpf` drops
    /// them (each tracepoint detach waits for an RCU grace period).
    fn drop(&mut self) {
        attach::detach_all(&mut self.ebpf);
    }
}

impl Recorder {
    /// Checks privileges, mounts tracefs, loads and attaches everything.
    pub fn start(settings: &RecordSettings) -> anyhow::Result<Self> {
        privileges::require_recording_privileges()?;
        remove_stale_cgroups();
        settings
            .progress
            .say(format_args!("loading and attaching the probes"));
        let kallsyms = spawn_kallsyms_reader();
        let (tracefs_root, _) = tracefs::ensure_mounted()?;
        let mut offsets = tracefs::probe_offsets(&tracefs_root);
        let btf = BtfSummary::read(&mut offsets);
        let function_id = |f: &str| btf.function_id(f);
        let early = load_before_kallsyms(settings, &offsets, &btf.raw)?;
        let (kernel_symbols, mut symbolizer) = join_kallsyms_reader(kallsyms)?;
        let symbols = catalog::resolve_all_with_btf(&kernel_symbols, btf.facts.as_ref());
        let plan = function_timing::plan(&symbols, settings.exact);
        let (timing, order_off) = timing_config(&tracefs_root, &plan, btf.facts.as_ref(), settings);
        let rt_owners = rt_owners(early.is_some(), &timing, &btf, &symbols, &symbolizer);
        let fentry_btf = fentry_btf(settings, &plan, btf.has_btf, function_id);
        let (mut ebpf, attach) = match early {
            Some(loaded) => loaded,
            None => load_and_attach(settings, &offsets, (&timing, &rt_owners.global()), &btf.raw)?,
        };
        let (functions, probe_costs) =
            time_functions(&mut ebpf, settings, &plan, order_off, &fentry_btf)?;
        drop(fentry_btf);
        let timeline = TimelineReader::new(&mut ebpf)?;
        symbolizer.set_programs(crate::probes::program_symbols::of_loaded(&ebpf));
        let probe_frames = ProbeFrames::for_recording(
            ebpf.programs().map(|(name, _)| name),
            &functions,
            function_id,
        );
        let lock_wait_source = figure_source::lock_waits(
            timing.lock_slot != reaper_common::function_timing::SLOT_NONE,
            &attach.probes,
            &functions.function_probes(),
        );
        let (pte_holders, walker_function) =
            collision_setup(&timing, &functions, settings, (rt_owners, &attach));
        Ok(Self {
            collision_maps: crate::probes::collision_maps::memory(&ebpf),
            pte_holders,
            walker_function,
            run_stats: costs::run_stats(settings),
            program_runs_at_start: None,
            probe_frames,
            lock_wait_source,
            runtime: tokio::runtime::Handle::current(),
            functions,
            probe_costs,
            ebpf,
            timeline,
            symbolizer,
            attach,
            raw: btf.raw,
            host: kernel::host_info(),
            symbols,
            period_ns: period_ns(settings),
        })
    }

    /// What the run could not measure: probes that did not attach,
    /// functions not timed, calibrations not made, and `--program-cost`
    /// when the kernel refused run statistics.
    fn not_measured(&self) -> Vec<crate::model::NotMeasured> {
        let mut not_measured = self.attach.not_measured.clone();
        not_measured.extend(self.functions.not_measured());
        not_measured.extend(self.probe_costs.1.iter().cloned());
        not_measured.extend(self.program_cost_refused());
        not_measured
    }

    /// Records on a tokio runtime: the recorder runs on a blocking thread,
    /// its event waits and the Ctrl-C/SIGTERM watcher on the runtime.
    pub fn run(settings: RecordSettings) -> anyhow::Result<Run> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let signals = tokio::spawn(interrupt::watch_signals());
            let recorded =
                tokio::task::spawn_blocking(move || Self::start(&settings)?.record(&settings))
                    .await;
            signals.abort();
            recorded?
        })
    }

    /// Runs every episode and returns the run (partial if interrupted or if
    /// an episode failed after others succeeded).
    pub fn record(mut self, settings: &RecordSettings) -> anyhow::Result<Run> {
        let warmup = self.warm_up(settings);
        self.start_program_costs();
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let started_unix = since_epoch.as_secs();
        let started_unix_ms = u64::try_from(since_epoch.as_millis()).ok();
        let mut episodes = Vec::new();
        let mut partial_reason = None;
        let mut watch_summary = None;
        if let Target::Watch(watch) = settings.target {
            // Ctrl-C is how a watch without --duration ends: not partial.
            let (watched, summary, _interrupted) = self.watch_loop(&watch)?;
            episodes = watched;
            watch_summary = Some(summary);
        } else {
            partial_reason = self.episodes(settings, &mut episodes)?;
        }
        let scenario = scenario_of(settings);
        Ok(Run {
            schema_version: SCHEMA_VERSION,
            tool: ToolInfo {
                name: "reaper".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            host: self.host.clone(),
            recording: Recording {
                started_unix,
                started_unix_ms,
                stack_map_entries: Some(settings.sizes.stack_map),
                freq_hz: settings.freq_hz,
                sample_period_ns: self.period_ns,
                // The sampler weighs each sample by the cpu-clock count.
                periods_counted: true,
                probes: self
                    .attach
                    .probes
                    .iter()
                    .cloned()
                    .chain(self.functions.probe_uses())
                    .collect(),
                scenario,
                lock_wait_source: self.lock_wait_source.clone(),
                warmup,
                pte_holders: Some(self.pte_holders.clone()),
                collision_maps: self.collision_maps.clone(),
            },
            symbols: self.symbols.clone(),
            episodes,
            not_measured: self.not_measured(),
            partial: partial_reason.is_some(),
            partial_reason,
            function_probes: self.functions.function_probes(),
            watch: watch_summary,
            probe_costs: self.probe_costs.0.clone(),
            program_costs: self.run_program_costs(),
        })
        // Dropping `self` detaches every probe and unloads the programs.
    }

    /// Records `settings.runs` episodes into `episodes`, replacing each one
    /// that lost the mrelease race by a fresh one (at most `retries` in the
    /// run). Returns why the run is partial, if it is.
    fn episodes(
        &mut self,
        settings: &RecordSettings,
        episodes: &mut Vec<Episode>,
    ) -> anyhow::Result<Option<String>> {
        let progress = settings.progress;
        let mut counted = 0u32;
        let mut replaced = 0u32;
        while counted < settings.runs {
            let index = episodes.len() as u32;
            if interrupt::stop_requested() {
                return Ok(Some(format!(
                    "interrupted (Ctrl-C) after {counted} of {} episodes",
                    settings.runs
                )));
            }
            let label = progress::episode_label(
                counted,
                settings.runs,
                (replaced > 0 && index > counted).then_some((replaced, settings.retries)),
            );
            match self.episode(index, settings, &label) {
                Ok(episode) => {
                    let cut = episode.partial;
                    let lost = episode.lost_race();
                    say_done(progress, &label, &episode);
                    episodes.push(episode);
                    if cut {
                        return Ok(Some(format!(
                            "interrupted (Ctrl-C) during episode {}",
                            index + 1
                        )));
                    }
                    if lost && replace_lost(progress, &label, &mut replaced, settings.retries) {
                        continue;
                    }
                    counted += 1;
                }
                Err(err) if episodes.is_empty() && !interrupt::stop_requested() => {
                    return Err(err);
                }
                Err(err) => {
                    return Ok(Some(if interrupt::stop_requested() {
                        format!("interrupted (Ctrl-C) during episode {}", index + 1)
                    } else {
                        format!("episode {} failed: {err:#}", index + 1)
                    }));
                }
            }
        }
        Ok(None)
    }

    fn episode(
        &mut self,
        index: u32,
        settings: &RecordSettings,
        label: &str,
    ) -> anyhow::Result<Episode> {
        match settings.target {
            Target::Victim(spec) => {
                // Dropped on every path: the child is killed and reaped.
                let mut spawned = victim::spawn(&spec)?;
                settings.progress.say(format_args!(
                    "{label}: victim {spec} ready (pid {}, RSS {} MiB)",
                    spawned.pid,
                    procfs::rss_bytes(spawned.pid) >> 20
                ));
                self.race(index, spawned.pid, Some(&mut spawned), settings.mrelease)
            }
            Target::Pid(pid) => {
                let pid = procfs::validate_target(pid)?.pid;
                self.race(index, pid, None, settings.mrelease)
            }
            Target::Exit(pid) => self.natural_exit(index, pid, settings.progress),
            Target::Oom(scenario) => {
                settings.progress.say(format_args!(
                    "{label}: letting the OOM killer pick a {} victim in reaper's own memory cgroup",
                    scenario.spec
                ));
                self.oom_episode(index, &scenario)
            }
            Target::Watch(_) => anyhow::bail!("watch mode has no numbered episodes"),
        }
    }

    /// Collects timeline events into `events` until one matches `done`,
    /// `deadline` passes or the user stops (one tokio `select!`, see
    /// [`TimelineReader::wait`]), blocking this recorder thread meanwhile.
    fn wait_events(
        &mut self,
        events: &mut Vec<TimelineEvent>,
        deadline: Instant,
        done: impl Fn(&TimelineEvent) -> bool,
    ) -> Wake {
        let deadline = tokio::time::Instant::from_std(deadline);
        self.runtime
            .block_on(self.timeline.wait(events, deadline, done))
    }

    /// Stops tracking, drains the kernel aggregates and builds the episode.
    fn finish_episode(&mut self, setup: EpisodeSetup, end: EpisodeEnd) -> anyhow::Result<Episode> {
        collect::clear_tracking(&mut self.ebpf)?;
        let mut raw = collect::drain(&mut self.ebpf)?;
        let mut setup = setup;
        if let Some(owners) = &setup.owners {
            raw.keep_owners(owners);
            setup.events.retain(|e| {
                e.context == reaper_common::context::CONTEXT_UNTRACKED
                    || owners.contains(&reaper_common::tracking::tag_owner(e.context))
            });
        }
        let function_timing = self.drain_function_timing(end.kill_ns)?;
        let mut episode = self.build_episode(raw, setup, end);
        let function_probes = self.functions.function_probes();
        figure_source::fall_back(
            &mut episode.latencies,
            function_timing.as_ref(),
            &self.attach.probes,
            &function_probes,
        );
        figure_source::exit_mmap_fall_back(
            &mut episode.latencies,
            function_timing.as_ref(),
            &self.attach.probes,
            &function_probes,
        );
        episode::judge_oom_reaper(&mut episode.latencies, &episode.timeline);
        episode.function_timing = function_timing;
        Ok(episode)
    }

    /// Drains exact function timing, when any function probe attached; the
    /// longest calls are placed relative to the kill at `kill_ns`.
    fn drain_function_timing(
        &mut self,
        kill_ns: u64,
    ) -> anyhow::Result<Option<crate::model::FunctionTiming>> {
        if self.functions.attached().next().is_none() {
            return Ok(None);
        }
        let raw = function_timing::drain(&mut self.ebpf)?;
        let mut timing = function_timing::to_model(&raw, &self.functions);
        timing.longest_calls = function_timing::place_calls(&raw, &self.functions, kill_ns);
        if let Some(walker) = &self.walker_function {
            let raw = function_timing::collision::drain(&mut self.ebpf)?;
            timing.collisions = Some(function_timing::collision::to_model(&raw, walker, kill_ns));
        }
        Ok(Some(timing))
    }

    /// Symbolizes drained data and assembles the episode.
    fn build_episode(
        &self,
        raw: collect::RawEpisode,
        setup: EpisodeSetup,
        end: EpisodeEnd,
    ) -> Episode {
        let symbolizer = &self.symbolizer;
        let mut failures = 0u64;
        let mut symbolize = |ips: &[u64]| match symbolizer.frames(ips) {
            Ok(frames) => self.probe_frames.fold(frames),
            Err(_) => {
                failures += 1;
                vec![crate::model::FRAME_STACK_LOST.to_owned()]
            }
        };
        let contexts = episode::context_profiles(&raw, &setup.tasks, &mut symbolize);
        let timeline = episode::timeline(&setup.events, end.kill_ns, end.killer, setup.victim.pid);
        let reclaim = self.attach.attached(ProbeGroup::Reclaim.name()).then(|| {
            reclaim::build(
                end.kill_ns,
                &raw.freed,
                &setup.events,
                setup.rss_start,
                |_| true,
            )
        });
        let latencies = episode::latencies(&timeline);
        let (skipped_probe_runs, program_costs) = self.program_accounts(&setup);
        let mut user_losses = BTreeMap::new();
        for (name, value) in [
            ("timeline_malformed", self.timeline.malformed),
            ("stacks_unsymbolized", failures),
            ("lock_waits_unfinished", raw.unfinished_waits),
        ] {
            if value > 0 {
                user_losses.insert(name.to_owned(), value);
            }
        }
        Episode {
            index: setup.index,
            victim: setup.victim,
            contexts,
            timeline,
            latencies,
            counters: raw.counters,
            user_losses,
            skipped_probe_runs,
            program_costs,
            partial: !end.complete || interrupt::stop_requested(),
            trigger: None,
            frozen: end.frozen,
            function_timing: None,
            marked_lost_race: end.mrelease_ret == Some(-i64::from(libc::ESRCH)),
            reclaim,
        }
    }
}

/// What calibration measured, and what it could not.
type ProbeCosts = (Vec<crate::model::ProbeCost>, Vec<crate::model::NotMeasured>);

/// The function probes of a recording: the probe cost measured before
/// the attach ladder (while every slot is free), the ladder itself, then
/// the costs of the modes it used. None in watch mode: function aggregates
/// are per context, not per episode, and watched episodes overlap.
fn time_functions(
    ebpf: &mut Ebpf,
    settings: &RecordSettings,
    plan: &function_timing::Plan,
    order_off: Option<String>,
    fentry_btf: &crate::probes::kernel_btf::FentryBtf,
) -> anyhow::Result<(function_timing::LadderReport, ProbeCosts)> {
    if matches!(settings.target, Target::Watch(_)) {
        let functions = function_timing::LadderReport::disabled(
            plan,
            "not recorded in --watch mode (in-kernel aggregates are per context, and watched episodes overlap)",
        );
        let probe_costs = crate::probes::calibrate::for_record(
            ebpf,
            &functions,
            (Vec::new(), Vec::new()),
            fentry_btf,
        );
        return Ok((functions, probe_costs));
    }
    let calibrated = crate::probes::calibrate::before_ladder(ebpf, settings.attach, fentry_btf);
    let functions =
        function_timing::attach_ladder(ebpf, plan, settings.attach, order_off, fentry_btf)?;
    let probe_costs =
        crate::probes::calibrate::for_record(ebpf, &functions, calibrated, fentry_btf);
    Ok((functions, probe_costs))
}

/// The sampling period for `--freq`.
fn period_ns(settings: &RecordSettings) -> u64 {
    1_000_000_000 / settings.freq_hz.max(1)
}

/// Removes the cgroups of reaper processes that died without cleaning up
/// (`kill -9` during `record --oom`), and says so: not quiet-able, since it
/// changes the system.
fn remove_stale_cgroups() {
    for stale in crate::scenario::cgroup::remove_stale() {
        let dirs: Vec<String> = stale
            .removed
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        if stale.problems.is_empty() {
            crate::console::note!(
                "reaper: removed stale cgroup {} left by a reaper process that is gone ({})",
                stale.name,
                dirs.join(", ")
            );
        } else {
            crate::console::note!(
                "reaper: could not fully remove stale cgroup {} left by a reaper process that is gone: {}",
                stale.name,
                stale.problems.join("; ")
            );
        }
    }
}

/// Whether an episode that lost the mrelease race is replaced by a fresh
/// one (while `retries` last; `replaced` counts them), saying so either way.
fn replace_lost(
    progress: progress::Progress,
    label: &str,
    replaced: &mut u32,
    retries: u32,
) -> bool {
    if *replaced < retries {
        *replaced += 1;
        progress.say(format_args!(
            "{label}: lost the race (process_mrelease: ESRCH, the victim had left its mm); replacing it with a fresh episode ({replaced} of --retries {retries})"
        ));
        return true;
    }
    progress.say(format_args!(
        "{label}: lost the race, and all {retries} retries are used; it stays in the run, marked lost"
    ));
    false
}

/// "episode 1/3: killed pid 812; process_mrelease done 21.4 ms after the
/// kill, exit_mmap 38.0 ms".
fn say_done(progress: progress::Progress, label: &str, episode: &Episode) {
    let l = &episode.latencies;
    if !episode
        .timeline
        .iter()
        .any(|e| e.kind == TimelineEventKind::Kill)
        && episode.latencies.oom_reaper_verdict.is_none()
    {
        progress.say(format_args!(
            "{label}: pid {} exited: {}; exit_mmap done {} after its exit began{}",
            episode.victim.pid,
            episode.trigger.as_deref().unwrap_or("its own exit"),
            progress::ms(l.kill_to_exit_mmap_done_ns),
            if episode.partial { " (cut short)" } else { "" }
        ));
        return;
    }
    let mrelease = match l.mrelease_ret {
        Some(_) if episode.lost_race() => "process_mrelease lost the race (ESRCH), ".to_owned(),
        Some(ret) if ret < 0 => format!("process_mrelease returned {ret}, "),
        Some(_) => format!(
            "process_mrelease done {} after the kill, ",
            progress::ms(l.kill_to_mrelease_done_ns)
        ),
        None => String::new(),
    };
    let (killed, reaper) = match &l.oom_reaper_verdict {
        Some(verdict) => ("OOM-killed", format!("; oom_reaper: {verdict}")),
        None => ("killed", String::new()),
    };
    progress.say(format_args!(
        "{label}: {killed} pid {}; {mrelease}exit_mmap done {} after the kill{reaper}{}",
        episode.victim.pid,
        progress::ms(l.kill_to_exit_mmap_done_ns),
        if episode.partial { " (cut short)" } else { "" }
    ));
}
