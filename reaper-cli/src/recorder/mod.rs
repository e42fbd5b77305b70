//! `reaper record`'s engine: load and attach the probes once, then run each
//! episode (spawn or pick the victim, track its contexts, kill it, race it
//! with `process_mrelease`, wait, drain) and build the [`Run`].

pub mod episode;
pub mod interrupt;
pub mod oom;
pub mod watch;

use std::{
    collections::BTreeMap,
    sync::{Arc, Barrier, mpsc},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use aya::Ebpf;
use reaper_common::{
    context::{CONTEXT_MRELEASE_CALLER, CONTEXT_OOM_REAPER, CONTEXT_VICTIM_EXIT},
    timeline::{TimelineEvent, TimelineKind},
};

use crate::{
    catalog::{self, KernelSymbols},
    model::{
        Episode, HostInfo, Recording, Run, SCHEMA_VERSION, Scenario, TaskRef, ToolInfo, VictimInfo,
    },
    probes::{
        attach, collect, function_timing, loader, loader::MapSizes, timeline_reader::TimelineReader,
    },
    scenario::{pidfd, size::VictimSpec, victim},
    symbolize::KernelSymbolizer,
    system::{kernel, privileges, procfs, tracefs},
};

/// What to tear down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A fresh synthetic victim per episode.
    Victim(VictimSpec),
    /// An existing process (one episode).
    Pid(u32),
    /// A victim the kernel's OOM killer picks inside reaper's own memcg.
    Oom(oom::OomScenario),
    /// Every teardown on the system, triggering nothing.
    Watch(watch::WatchSettings),
}

/// Validated `reaper record` settings.
#[derive(Clone, Debug)]
pub struct RecordSettings {
    /// What to tear down.
    pub target: Target,
    /// Race the victim with a process_mrelease caller.
    pub mrelease: bool,
    /// Episodes.
    pub runs: u32,
    /// Sampling frequency, Hz.
    pub freq_hz: u64,
    /// Map sizes.
    pub sizes: MapSizes,
    /// How function probes attach (`--attach`).
    pub attach: function_timing::AttachMode,
}

/// Longest wait for a victim to exit after SIGKILL.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to keep polling for late timeline events (sched_process_free
/// runs from an RCU callback after the victim is reaped).
const LATE_EVENT_GRACE: Duration = Duration::from_millis(300);

/// What an episode's scenario hands to [`Recorder::finish_episode`].
pub struct EpisodeParts {
    /// 0-based episode index.
    pub index: u32,
    /// The victim as it was before the kill.
    pub victim: VictimInfo,
    /// Tracked tasks by context id.
    pub tasks: BTreeMap<u32, Vec<TaskRef>>,
    /// Timeline events collected during the episode.
    pub events: Vec<TimelineEvent>,
    /// CLOCK_MONOTONIC ns of the kill (t = 0 of the timeline).
    pub kill_ns: u64,
    /// reaper's killing thread, or `None` for the kernel's OOM killer.
    pub killer: episode::Killer,
    /// False when the victim did not finish exiting in time.
    pub complete: bool,
    /// The frozen scenario's outcome.
    pub frozen: Option<crate::model::FrozenOutcome>,
    /// What `process_mrelease` returned (negative errno), when it was called.
    pub mrelease_ret: Option<i64>,
}

/// Loaded, attached probes plus what is needed to symbolize their output.
pub struct Recorder {
    ebpf: Ebpf,
    timeline: TimelineReader,
    symbolizer: KernelSymbolizer,
    attach: attach::AttachReport,
    host: HostInfo,
    symbols: Vec<crate::model::ResolvedConcept>,
    period_ns: u64,
    /// The function-timing attach ladder's outcome.
    functions: function_timing::LadderReport,
}

impl Recorder {
    /// Checks privileges, mounts tracefs, loads and attaches everything.
    pub fn start(settings: &RecordSettings) -> anyhow::Result<Self> {
        privileges::require_recording_privileges()?;
        let (tracefs_root, _) = tracefs::ensure_mounted()?;
        let offsets = tracefs::probe_offsets(&tracefs_root);
        let symbolizer = KernelSymbolizer::new()?;
        let kernel_symbols = KernelSymbols::running().context("reading /proc/kallsyms")?;
        let btf = crate::probes::btf::KernelBtf::from_sys_fs()
            .map(|btf| catalog::BtfFacts::from_btf(&btf))
            .ok();
        let symbols = catalog::resolve_all_with_btf(&kernel_symbols, btf.as_ref());
        let plan = function_timing::plan(&symbols);
        let (timing, order_off) = function_timing::config_for(&plan, btf.as_ref());
        let mut ebpf = loader::load_with_timing(&offsets, &settings.sizes, &timing)?;
        if let Err(err) = aya_log::EbpfLogger::init(&mut ebpf) {
            log::debug!("eBPF logging unavailable: {err}");
        }
        let cpus = kernel::online_cpus().context("reading the online CPUs")?;
        let period_ns = 1_000_000_000 / settings.freq_hz.max(1);
        let attach = attach::attach_all(&mut ebpf, &cpus, period_ns);
        if !attach.attached("sampling") && !attach.attached("lock_wait") {
            let reasons: Vec<String> = attach
                .not_measured
                .iter()
                .map(|n| format!("  {}: {}", n.what, n.why))
                .collect();
            bail!(
                "neither cpu-clock sampling nor the lock contention tracepoints attached on this kernel, so there is nothing to measure:\n{}",
                reasons.join("\n")
            );
        }
        let functions = if matches!(settings.target, Target::Watch(_)) {
            // Function aggregates are per context, not per episode; watch
            // episodes overlap, so they would mix.
            function_timing::LadderReport::disabled(
                &plan,
                "not recorded in --watch mode (in-kernel aggregates are per context, and watched episodes overlap)",
            )
        } else {
            function_timing::attach_ladder(&mut ebpf, &plan, settings.attach, order_off)?
        };
        let timeline = TimelineReader::new(&mut ebpf).map_err(anyhow::Error::msg)?;
        Ok(Self {
            functions,
            ebpf,
            timeline,
            symbolizer,
            attach,
            host: kernel::host_info(),
            symbols,
            period_ns,
        })
    }

    /// Runs every episode and returns the run (partial if interrupted or if
    /// an episode failed after others succeeded).
    pub fn record(mut self, settings: &RecordSettings) -> anyhow::Result<Run> {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut episodes = Vec::new();
        let mut partial_reason = None;
        let mut watch_summary = None;
        if let Target::Watch(watch) = settings.target {
            // Ctrl-C is how a watch without --duration ends: not partial.
            let (watched, summary, _interrupted) = self.watch_loop(&watch)?;
            episodes = watched;
            watch_summary = Some(summary);
        } else {
            for index in 0..settings.runs {
                if interrupt::stop_requested() {
                    partial_reason = Some(format!(
                        "interrupted (Ctrl-C) after {index} of {} episodes",
                        settings.runs
                    ));
                    break;
                }
                match self.episode(index, settings) {
                    Ok(episode) => {
                        let cut = episode.partial;
                        episodes.push(episode);
                        if cut {
                            partial_reason =
                                Some(format!("interrupted (Ctrl-C) during episode {}", index + 1));
                            break;
                        }
                    }
                    Err(err) if episodes.is_empty() && !interrupt::stop_requested() => {
                        return Err(err);
                    }
                    Err(err) => {
                        partial_reason = Some(if interrupt::stop_requested() {
                            format!("interrupted (Ctrl-C) during episode {}", index + 1)
                        } else {
                            format!("episode {} failed: {err:#}", index + 1)
                        });
                        break;
                    }
                }
            }
        }
        let mut not_measured = self.attach.not_measured.clone();
        not_measured.extend(self.functions.not_measured());
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
                freq_hz: settings.freq_hz,
                sample_period_ns: self.period_ns,
                probes: self
                    .attach
                    .probes
                    .iter()
                    .cloned()
                    .chain(self.functions.probe_uses())
                    .collect(),
                scenario,
            },
            symbols: self.symbols.clone(),
            episodes,
            not_measured,
            partial: partial_reason.is_some(),
            partial_reason,
            function_probes: self.functions.function_probes(),
            watch: watch_summary,
        })
        // Dropping `self` detaches every probe and unloads the programs.
    }

    fn episode(&mut self, index: u32, settings: &RecordSettings) -> anyhow::Result<Episode> {
        let (victim_pid, mut child) = match settings.target {
            Target::Victim(spec) => {
                let spawned = victim::spawn(&spec)?;
                (spawned.pid, Some(spawned.child))
            }
            Target::Pid(pid) => (procfs::validate_target(pid)?.pid, None),
            Target::Oom(scenario) => return self.oom_episode(index, &scenario),
            Target::Watch(_) => anyhow::bail!("watch mode has no numbered episodes"),
        };
        let result = self.race(index, victim_pid, child.as_mut(), settings.mrelease);
        if let Some(mut child) = child {
            // Our own child: make sure it is gone and reaped, whatever happened.
            let _ = child.kill();
            let _ = child.wait();
        }
        result
    }

    fn race(
        &mut self,
        index: u32,
        victim_pid: u32,
        child: Option<&mut std::process::Child>,
        mrelease: bool,
    ) -> anyhow::Result<Episode> {
        let stat = procfs::stat(victim_pid)
            .with_context(|| format!("pid {victim_pid} disappeared before the kill"))?;
        let thread_ids = procfs::threads(victim_pid);
        let victim_info = VictimInfo {
            pid: victim_pid,
            comm: stat.comm.clone(),
            rss_bytes: procfs::rss_bytes(victim_pid),
            threads: thread_ids.len() as u32,
            vmas: procfs::vma_count(victim_pid),
        };
        let fd = pidfd::open(victim_pid).with_context(|| format!("pidfd_open({victim_pid})"))?;

        let mut tasks: BTreeMap<u32, Vec<TaskRef>> = BTreeMap::new();
        collect::clear_tracking(&mut self.ebpf)?;
        collect::track_tgid(&mut self.ebpf, victim_pid, CONTEXT_VICTIM_EXIT)?;
        tasks.insert(
            CONTEXT_VICTIM_EXIT,
            thread_ids
                .iter()
                .map(|&tid| TaskRef {
                    tid,
                    comm: stat.comm.clone(),
                })
                .collect(),
        );
        if let Some(oom_reaper) = procfs::find_oom_reaper() {
            collect::track_tid(&mut self.ebpf, oom_reaper, CONTEXT_OOM_REAPER)?;
            tasks.insert(
                CONTEXT_OOM_REAPER,
                vec![TaskRef {
                    tid: oom_reaper,
                    comm: "oom_reaper".into(),
                }],
            );
        }

        // The reaper thread kills and then immediately calls process_mrelease,
        // as lmkd's reaper thread does. With two or more CPUs the victim and
        // the reaper run on different ones, so the woken victim cannot
        // preempt the reaper between the kill and the mrelease call and the
        // two really run in parallel.
        let cpus = kernel::online_cpus().unwrap_or_default();
        let placement = (cpus.len() >= 2).then(|| (cpus[0], cpus[cpus.len() - 1]));
        if let Some((_, victim_cpu)) = placement {
            for &tid in &thread_ids {
                pidfd::pin_to_cpu(tid, victim_cpu);
            }
        }
        let go = Arc::new(Barrier::new(2));
        let (tid_tx, tid_rx) = mpsc::channel();
        let thread_go = Arc::clone(&go);
        let reaper = std::thread::Builder::new()
            .name("reaper-mrelease".into())
            .spawn(move || {
                if let Some((reaper_cpu, _)) = placement {
                    pidfd::pin_to_cpu(0, reaper_cpu);
                }
                let _ = tid_tx.send(pidfd::gettid());
                thread_go.wait();
                let kill_ns = pidfd::monotonic_ns();
                let killed = pidfd::kill(&fd);
                let ret = if mrelease && killed.is_ok() {
                    Some(pidfd::process_mrelease(&fd))
                } else {
                    None
                };
                (kill_ns, killed, ret, fd)
            })?;
        let reaper_tid = tid_rx.recv().context("the mrelease thread did not start")?;
        if mrelease {
            collect::track_tid(&mut self.ebpf, reaper_tid, CONTEXT_MRELEASE_CALLER)?;
            tasks.insert(
                CONTEXT_MRELEASE_CALLER,
                vec![TaskRef {
                    tid: reaper_tid,
                    comm: "reaper-mrelease".into(),
                }],
            );
        }
        let mut stale = Vec::new();
        self.timeline.poll(&mut stale);

        go.wait();
        let (kill_ns, killed, mrelease_ret, fd) = reaper
            .join()
            .map_err(|_| anyhow::anyhow!("the mrelease thread panicked"))?;
        killed.with_context(|| format!("pidfd_send_signal(SIGKILL) to pid {victim_pid}"))?;
        if let Some(ret) = mrelease_ret.filter(|&r| r < 0) {
            log::warn!(
                "process_mrelease({victim_pid}) returned {ret} ({})",
                std::io::Error::from_raw_os_error(-ret as i32)
            );
        }

        let exited = match child {
            Some(child) => child.wait().is_ok(),
            None => pidfd::wait_exit(&fd, EXIT_TIMEOUT.as_millis() as i32),
        };
        let mut events: Vec<TimelineEvent> = Vec::new();
        self.poll_timeline_until(&mut events, Instant::now() + LATE_EVENT_GRACE, |e| {
            e.kind == TimelineKind::ProcessFree as u32 && e.arg == i64::from(victim_pid)
        });
        if !exited {
            log::warn!(
                "pid {victim_pid} had not exited {EXIT_TIMEOUT:?} after SIGKILL; its profile is incomplete"
            );
        }
        self.finish_episode(EpisodeParts {
            index,
            victim: victim_info,
            tasks,
            events,
            kill_ns,
            killer: Some((reaper_tid, std::process::id())),
            complete: exited,
            frozen: None,
            mrelease_ret,
        })
    }

    /// Polls the timeline into `events` until an event matches `done` or
    /// `deadline` passes, then once more.
    fn poll_timeline_until(
        &mut self,
        events: &mut Vec<TimelineEvent>,
        deadline: Instant,
        done: impl Fn(&TimelineEvent) -> bool,
    ) {
        while Instant::now() < deadline && !events.iter().any(&done) {
            self.timeline.poll(events);
            std::thread::sleep(Duration::from_millis(10));
        }
        self.timeline.poll(events);
    }

    /// Stops tracking, drains the kernel aggregates and builds the episode.
    fn finish_episode(&mut self, parts: EpisodeParts) -> anyhow::Result<Episode> {
        collect::clear_tracking(&mut self.ebpf)?;
        let raw = collect::drain(&mut self.ebpf)?;
        let function_timing = self.drain_function_timing()?;
        let mut episode = self.build_episode(raw, parts);
        episode.function_timing = function_timing;
        Ok(episode)
    }

    /// Drains exact function timing, when any function probe attached.
    fn drain_function_timing(&mut self) -> anyhow::Result<Option<crate::model::FunctionTiming>> {
        if self.functions.attached().next().is_none() {
            return Ok(None);
        }
        let raw = function_timing::drain(&mut self.ebpf)?;
        Ok(Some(function_timing::to_model(&raw, &self.functions)))
    }

    /// Symbolizes drained data and assembles the episode.
    fn build_episode(&self, raw: collect::RawEpisode, parts: EpisodeParts) -> Episode {
        let symbolizer = &self.symbolizer;
        let mut failures = 0u64;
        let mut symbolize = |ips: &[u64]| {
            symbolizer.frames(ips).unwrap_or_else(|_| {
                failures += 1;
                vec![crate::model::FRAME_STACK_LOST.to_owned()]
            })
        };
        let contexts = episode::context_profiles(&raw, &parts.tasks, &mut symbolize);
        let timeline =
            episode::timeline(&parts.events, parts.kill_ns, parts.killer, parts.victim.pid);
        let latencies = episode::latencies(&timeline);
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
            index: parts.index,
            victim: parts.victim,
            contexts,
            timeline,
            latencies,
            counters: raw.counters,
            user_losses,
            partial: !parts.complete || interrupt::stop_requested(),
            trigger: None,
            frozen: parts.frozen,
            function_timing: None,
            lost_race: parts.mrelease_ret == Some(-i64::from(libc::ESRCH)),
        }
    }
}

fn scenario_of(settings: &RecordSettings) -> Scenario {
    let reaper = if settings.mrelease {
        " + process_mrelease"
    } else {
        " (no process_mrelease)"
    };
    match settings.target {
        Target::Victim(spec) => Scenario {
            kind: "victim".into(),
            description: format!("victim {spec}{reaper}"),
            victim_bytes: Some(spec.bytes),
            vmas: Some(spec.vmas),
            threads: Some(spec.threads),
            mrelease: settings.mrelease,
            runs: settings.runs,
        },
        Target::Pid(pid) => Scenario {
            kind: "pid".into(),
            description: format!("pid {pid}{reaper}"),
            victim_bytes: None,
            vmas: None,
            threads: None,
            mrelease: settings.mrelease,
            runs: settings.runs,
        },
        Target::Watch(watch) => Scenario {
            kind: "watch".into(),
            description: match watch.duration {
                Some(d) => format!(
                    "watch every teardown for {} s (triggering nothing)",
                    d.as_secs()
                ),
                None => "watch every teardown until Ctrl-C (triggering nothing)".into(),
            },
            victim_bytes: None,
            vmas: None,
            threads: None,
            mrelease: true,
            runs: 0,
        },
        Target::Oom(oom) => Scenario {
            kind: "oom".into(),
            description: if oom.frozen {
                format!(
                    "memcg OOM kill of frozen victim {} (watched {} s)",
                    oom.spec,
                    oom.frozen_timeout.as_secs()
                )
            } else {
                format!(
                    "memcg OOM kill of victim {} (limit 90% of its size)",
                    oom.spec
                )
            },
            victim_bytes: Some(oom.spec.bytes),
            vmas: Some(oom.spec.vmas),
            threads: Some(oom.spec.threads),
            mrelease: false,
            runs: settings.runs,
        },
    }
}
