//! The rounds: each condition's episode, what it measures, and the rows of
//! the result table built from every round.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use serde::Serialize;

use crate::reaper_json::Context;

use super::{
    driver::{self, Race},
    perf_script::{self, Task},
    profilers, run_json,
    sampling_timer::SamplingTimer,
};

/// After the victim is reaped, let the profilers see the exit and the final
/// free before they are stopped (the timeline ends at process_free).
const SETTLE_AFTER: Duration = Duration::from_millis(300);
/// Victims of the capacity scenario (8 × 256M at the default 2G).
const CAPACITY_VICTIMS: u64 = 8;
/// Victims of the wide capacity scenario (32 × 64M at the default 2G).
const CAPACITY_WIDE_VICTIMS: u64 = 32;

/// What every round needs.
pub struct Config {
    pub reaper: PathBuf,
    pub work: PathBuf,
    pub size: u64,
    pub freq: u32,
    /// Timed teardowns per round of A, B, C and D (`--episodes`).
    pub episodes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cond {
    None,
    Reaper,
    Perf,
    ReaperAll,
    Accuracy,
    Capacity,
    CapacityWide,
    ReaperCost,
    Timer,
}

const ORDER: [Cond; 9] = [
    Cond::None,
    Cond::Timer,
    Cond::Reaper,
    Cond::Perf,
    Cond::ReaperAll,
    Cond::Accuracy,
    Cond::Capacity,
    Cond::CapacityWide,
    Cond::ReaperCost,
];

impl Cond {
    fn label(self) -> &'static str {
        match self {
            Cond::None => "A: no profiler",
            Cond::Reaper => "B: reaper record --watch (default probes)",
            Cond::Perf => "C: perf record -a -g -e cpu-clock",
            Cond::ReaperAll => "D: reaper --watch --attach auto (every probe kind)",
            Cond::Accuracy => "E: reaper --watch + perf record together",
            Cond::Capacity => "F: capacity stress under reaper --watch",
            Cond::CapacityWide => "G: wide capacity stress under reaper --watch",
            Cond::ReaperCost => "H: reaper --watch --program-cost (B + per-program kernel time)",
            Cond::Timer => "T: bare cpu-clock timer on every CPU, no profiler (the sampling floor)",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Cond::None => "a-none",
            Cond::Reaper => "b-reaper",
            Cond::Perf => "c-perf",
            Cond::ReaperAll => "d-reaper-all",
            Cond::Accuracy => "e-accuracy",
            Cond::Capacity => "f-capacity",
            Cond::CapacityWide => "g-capacity-wide",
            Cond::ReaperCost => "h-reaper-cost",
            Cond::Timer => "t-timer",
        }
    }
}

/// Every figure of every round, in ms unless named otherwise.
#[derive(Default, Serialize)]
pub struct Results {
    kill_to_mrelease: BTreeMap<String, Vec<f64>>,
    kill_to_reaped: BTreeMap<String, Vec<f64>>,
    mrelease_failures: BTreeMap<String, Vec<i64>>,
    reaper_stop_to_exit: Vec<f64>,
    reaper_report: Vec<f64>,
    perf_stop_to_exit: Vec<f64>,
    perf_script_fold_svg: Vec<f64>,
    perf_report_tables: Vec<f64>,
    reaper_startup: Vec<f64>,
    perf_startup: Vec<f64>,
    reaper_rss_mib: Vec<f64>,
    perf_rss_mib: Vec<f64>,
    /// Episodes reaper's watch run.json lacked (victim pid not found).
    reaper_missed_episodes: u32,
    function_probes_attached: Vec<usize>,
    /// F (8 victims) and G (32 victims).
    capacity: [capacity::Capacity; 2],
    acc_exit_mmap_reaper: Vec<f64>,
    acc_exit_mmap_perf: Vec<f64>,
    acc_reap_reaper: Vec<f64>,
    acc_reap_perf: Vec<f64>,
    acc_exit_mmap_rel_pct: Vec<f64>,
    acc_reap_rel_pct: Vec<f64>,
    /// H: each program's (runs, run ns) per round, by what it probes.
    program_costs: BTreeMap<String, Vec<(u64, u64)>>,
    /// H rounds whose run.json had program costs.
    program_cost_rounds: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ns_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Runs every round; each round runs every condition once, rotated.
pub fn run_rounds(cfg: &Config, rounds: u32) -> Result<Results> {
    let mut res = Results {
        capacity: [
            capacity::Capacity::new(CAPACITY_VICTIMS, cfg.size),
            capacity::Capacity::new(CAPACITY_WIDE_VICTIMS, cfg.size),
        ],
        ..Results::default()
    };
    for round in 0..rounds as usize {
        for i in 0..ORDER.len() {
            let cond = ORDER[(i + round) % ORDER.len()];
            eprintln!(
                "xtask bench: round {}/{rounds}: {}",
                round + 1,
                cond.label()
            );
            let dir = cfg
                .work
                .join(format!("round-{:02}", round + 1))
                .join(cond.slug());
            std::fs::create_dir_all(&dir)?;
            episode(cfg, cond, &dir, &mut res)
                .with_context(|| format!("round {}, {}", round + 1, cond.label()))?;
        }
    }
    Ok(res)
}

fn episode(cfg: &Config, cond: Cond, dir: &Path, res: &mut Results) -> Result<()> {
    match cond {
        Cond::None => {
            for n in 0..cfg.episodes {
                if n > 0 {
                    std::thread::sleep(SETTLE_AFTER);
                }
                let victim = driver::spawn_victim(&cfg.reaper, cfg.size, driver::victim_cpu(0))?;
                let race = driver::race(victim)?;
                res.push_race(cond, &race);
            }
        }
        Cond::Reaper | Cond::ReaperAll | Cond::ReaperCost => reaper_episode(cfg, cond, dir, res)?,
        Cond::Perf => perf_episode(cfg, dir, res)?,
        Cond::Accuracy => accuracy_episode(cfg, dir, res)?,
        Cond::Capacity | Cond::CapacityWide => capacity::episode(cfg, cond, dir, res)?,
        Cond::Timer => timer_episode(cfg, res)?,
    }
    Ok(())
}

/// T: the teardowns under the bare sampling timer (see [`SamplingTimer`]).
fn timer_episode(cfg: &Config, res: &mut Results) -> Result<()> {
    let victim = driver::spawn_victim(&cfg.reaper, cfg.size, driver::victim_cpu(0))?;
    let timer = SamplingTimer::start(cfg.freq)?;
    let races = races(cfg, victim, episodes_of(cfg, Cond::Timer))?;
    ensure!(
        timer.counted_ns()? > 0,
        "the sampling floor's cpu-clock events counted no time: the timers did not run"
    );
    drop(timer);
    for race in &races {
        res.push_race(Cond::Timer, race);
    }
    Ok(())
}

fn reaper_args(cfg: &Config, cond: Cond) -> Vec<String> {
    let mut args = vec!["--freq".to_owned(), cfg.freq.to_string()];
    if cond == Cond::ReaperAll {
        args.extend(["--attach".to_owned(), "auto".to_owned()]);
    }
    if cond == Cond::ReaperCost {
        args.push("--program-cost".to_owned());
    }
    args
}

fn start_reaper(
    cfg: &Config,
    cond: Cond,
    dir: &Path,
    res: &mut Results,
) -> Result<profilers::Reaper> {
    let args = reaper_args(cfg, cond);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reaper = profilers::start_reaper(&cfg.reaper, &dir.join("reaper"), &args)?;
    res.reaper_startup.push(ms(reaper.startup));
    Ok(reaper)
}

fn stop_reaper(reaper: profilers::Reaper, res: &mut Results) -> Result<(PathBuf, Duration)> {
    let out_dir = reaper.out_dir.clone();
    let stopped = reaper.stop()?;
    res.reaper_rss_mib.push(stopped.max_rss_kib as f64 / 1024.0);
    Ok((out_dir, stopped.stop_to_exit))
}

/// How many timed teardowns a round of `cond` runs under one profiler
/// session: `--episodes` for the overhead conditions, else one (H's
/// per-program costs are per round of one teardown).
fn episodes_of(cfg: &Config, cond: Cond) -> u32 {
    match cond {
        Cond::None | Cond::Timer | Cond::Reaper | Cond::Perf | Cond::ReaperAll => cfg.episodes,
        _ => 1,
    }
}

/// `episodes` races one after the other, the first victim already ready;
/// each later victim is made (untimed) after the previous one settled.
fn races(cfg: &Config, first: driver::Victim, episodes: u32) -> Result<Vec<Race>> {
    let mut races = vec![driver::race(first)?];
    for _ in 1..episodes {
        std::thread::sleep(SETTLE_AFTER);
        let victim = driver::spawn_victim(&cfg.reaper, cfg.size, driver::victim_cpu(0))?;
        races.push(driver::race(victim)?);
    }
    std::thread::sleep(SETTLE_AFTER);
    Ok(races)
}

fn reaper_episode(cfg: &Config, cond: Cond, dir: &Path, res: &mut Results) -> Result<()> {
    let victim = driver::spawn_victim(&cfg.reaper, cfg.size, driver::victim_cpu(0))?;
    let reaper = start_reaper(cfg, cond, dir, res)?;
    let races = races(cfg, victim, episodes_of(cfg, cond))?;
    let (out_dir, stop_to_exit) = stop_reaper(reaper, res)?;
    let run = run_json::load(&out_dir)?;
    for race in &races {
        res.push_race(cond, race);
        if run_json::episode(&run, race.victim_pid).is_none() {
            res.reaper_missed_episodes += 1;
        }
    }
    if cond == Cond::ReaperAll {
        res.function_probes_attached
            .push(run_json::function_probes_attached(&run));
        return Ok(());
    }
    if cond == Cond::ReaperCost {
        res.push_program_costs(&run);
        return Ok(());
    }
    res.reaper_stop_to_exit.push(ms(stop_to_exit));
    let t = Instant::now();
    let status = Command::new(&cfg.reaper)
        .arg("report")
        .arg(out_dir.join("run.json"))
        .arg("-o")
        .arg(dir.join("report"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("report.txt"))?)
        .stderr(std::fs::File::create(dir.join("report.stderr"))?)
        .status()
        .context("running reaper report")?;
    res.reaper_report.push(ms(t.elapsed()));
    ensure!(status.success(), "reaper report failed ({status})");
    Ok(())
}

fn perf_episode(cfg: &Config, dir: &Path, res: &mut Results) -> Result<()> {
    let victim = driver::spawn_victim(&cfg.reaper, cfg.size, driver::victim_cpu(0))?;
    let perf = profilers::start_perf(&dir.join("perf.data"), cfg.freq)?;
    res.perf_startup.push(ms(perf.startup));
    let races = races(cfg, victim, episodes_of(cfg, Cond::Perf))?;
    let data = perf.data.clone();
    let stopped = perf.stop()?;
    for race in &races {
        res.push_race(Cond::Perf, race);
    }
    res.perf_rss_mib.push(stopped.max_rss_kib as f64 / 1024.0);
    res.perf_stop_to_exit.push(ms(stopped.stop_to_exit));
    let times = perf_script::pipeline(&data, dir)?;
    res.perf_script_fold_svg.push(ms(times.script_fold_svg));
    res.perf_report_tables.push(ms(times.report_tables));
    Ok(())
}

fn rel_pct(reaper: f64, perf: f64) -> f64 {
    if perf == 0.0 {
        f64::NAN
    } else {
        (reaper - perf) / perf * 100.0
    }
}

fn accuracy_episode(cfg: &Config, dir: &Path, res: &mut Results) -> Result<()> {
    let victim = driver::spawn_victim(&cfg.reaper, cfg.size, driver::victim_cpu(0))?;
    let reaper = start_reaper(cfg, Cond::Accuracy, dir, res)?;
    let perf = profilers::start_perf(&dir.join("perf.data"), cfg.freq)?;
    res.perf_startup.push(ms(perf.startup));
    let race = driver::race(victim)?;
    std::thread::sleep(SETTLE_AFTER);
    let data = perf.data.clone();
    perf.stop()?;
    let (out_dir, _) = stop_reaper(reaper, res)?;
    res.push_race(Cond::Accuracy, &race);
    let run = run_json::load(&out_dir)?;
    let Some(ep) = run_json::episode(&run, race.victim_pid) else {
        res.reaper_missed_episodes += 1;
        return Ok(());
    };
    let pids = format!("{},{}", race.victim_pid, std::process::id());
    let script = perf_script::perf_script(
        &data,
        &[
            "-F",
            "comm,pid,tid,cpu,time,period,event,ip,sym",
            "--pid",
            &pids,
        ],
    )?;
    let samples = perf_script::parse(&script);
    let default_period = 1_000_000_000 / u64::from(cfg.freq.max(1));
    let perf_exit = perf_script::period_with_symbol(
        &samples,
        Task::Process(race.victim_pid),
        "exit_mmap",
        default_period,
    );
    let perf_reap = perf_script::period_with_symbol(
        &samples,
        Task::Thread(race.mrelease_tid),
        "__oom_reap_task_mm",
        default_period,
    );
    let reaper_exit =
        run_json::period_with_symbol(ep, Context::VictimExit, "exit_mmap").unwrap_or(0);
    let reaper_reap =
        run_json::period_with_symbol(ep, Context::MreleaseCaller, "__oom_reap_task_mm")
            .unwrap_or(0);
    res.acc_exit_mmap_reaper.push(ns_ms(reaper_exit));
    res.acc_exit_mmap_perf.push(ns_ms(perf_exit));
    res.acc_reap_reaper.push(ns_ms(reaper_reap));
    res.acc_reap_perf.push(ns_ms(perf_reap));
    res.acc_exit_mmap_rel_pct
        .push(rel_pct(reaper_exit as f64, perf_exit as f64));
    res.acc_reap_rel_pct
        .push(rel_pct(reaper_reap as f64, perf_reap as f64));
    Ok(())
}

impl Results {
    /// The figures of a capacity condition (F or G).
    fn capacity(&self, cond: Cond) -> &capacity::Capacity {
        &self.capacity[usize::from(cond == Cond::CapacityWide)]
    }

    fn capacity_mut(&mut self, cond: Cond) -> &mut capacity::Capacity {
        &mut self.capacity[usize::from(cond == Cond::CapacityWide)]
    }

    /// H's run-level program costs (the whole watch), one entry per round;
    /// a program that did not run in a round counts (0, 0) there.
    fn push_program_costs(&mut self, run: &crate::reaper_json::Run) {
        if run.program_costs.is_empty() {
            return;
        }
        let round = self.program_cost_rounds;
        for (program, cost) in &run.program_costs {
            let rounds = self.program_costs.entry(program.clone()).or_default();
            rounds.resize(round, (0, 0));
            rounds.push((cost.runs, cost.run_ns));
        }
        self.program_cost_rounds += 1;
        for rounds in self.program_costs.values_mut() {
            rounds.resize(self.program_cost_rounds, (0, 0));
        }
    }

    /// A race's latencies, unless its `process_mrelease` failed: then the
    /// victim's exit had already finished (ESRCH), no mrelease teardown
    /// ran, and its sub-millisecond "kill → mrelease returned" would pull
    /// the row's median down (it once made a 1.08× run read 1.00×). The
    /// failure is counted and named in the row's note instead.
    fn push_race(&mut self, cond: Cond, race: &Race) {
        let key = cond.label().to_owned();
        if race.mrelease_ret != 0 {
            self.mrelease_failures
                .entry(key)
                .or_default()
                .push(race.mrelease_ret);
            return;
        }
        self.kill_to_mrelease
            .entry(key.clone())
            .or_default()
            .push(ns_ms(race.kill_to_mrelease_ns));
        self.kill_to_reaped
            .entry(key.clone())
            .or_default()
            .push(ns_ms(race.kill_to_reaped_ns));
    }

    /// Everything, for raw.json.
    pub fn raw_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

mod capacity;
mod rows;

/// The machine line: kernel, CPUs, memory, date.
pub fn machine_description() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let perf = Command::new("perf")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "Machine: Linux {kernel} {}, {cpus} CPUs ({model}), {mem_gib:.0} GiB; {perf}; date {date}",
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::{Cond, Config, Race, Results, episodes_of};

    #[test]
    fn only_the_overhead_conditions_time_several_teardowns_a_round() {
        let cfg = Config {
            reaper: "reaper".into(),
            work: "work".into(),
            size: 1 << 30,
            freq: 4000,
            episodes: 3,
        };
        for cond in [
            Cond::None,
            Cond::Timer,
            Cond::Reaper,
            Cond::Perf,
            Cond::ReaperAll,
        ] {
            assert_eq!(episodes_of(&cfg, cond), 3, "{cond:?}");
        }
        for cond in [
            Cond::Accuracy,
            Cond::Capacity,
            Cond::CapacityWide,
            Cond::ReaperCost,
        ] {
            assert_eq!(episodes_of(&cfg, cond), 1, "{cond:?}");
        }
    }

    fn race(kill_to_mrelease_ns: u64, mrelease_ret: i64) -> Race {
        Race {
            victim_pid: 100,
            mrelease_tid: 101,
            kill_ns: 0,
            kill_to_mrelease_ns,
            kill_to_reaped_ns: kill_to_mrelease_ns + 1_000_000,
            mrelease_ret,
        }
    }

    #[test]
    fn a_failed_mrelease_is_counted_not_timed() {
        let mut res = Results::default();
        res.push_race(Cond::Reaper, &race(45_000_000, 0));
        res.push_race(Cond::Reaper, &race(800_000, -3));
        let key = Cond::Reaper.label();
        assert_eq!(res.kill_to_mrelease[key], vec![45.0]);
        assert_eq!(res.kill_to_reaped[key], vec![46.0]);
        assert_eq!(res.mrelease_failures[key], vec![-3]);
    }
}
