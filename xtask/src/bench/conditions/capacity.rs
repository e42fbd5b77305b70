//! The capacity conditions: many victims killed and `process_mrelease`d at
//! once under `reaper record --watch`, and what reaper's kernel side handled
//! and lost meanwhile (run.json's counters for the whole watch).

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use serde::Serialize;

use super::{Cond, Config, Results, SETTLE_AFTER, ns_ms, start_reaper, stop_reaper};
use crate::bench::{driver, human_size, run_json, stats::Row};

/// Smallest capacity victim, so a small --size still makes real teardowns.
const MIN_BYTES: u64 = 16 << 20;

/// Every figure of one capacity condition over the rounds.
#[derive(Default, Serialize)]
pub struct Capacity {
    pub victims: u64,
    pub victim_bytes: u64,
    pub episodes: Vec<f64>,
    pub duration: Vec<f64>,
    pub kill_to_mrelease: Vec<f64>,
    pub lock_per_s: Vec<f64>,
    pub samples_per_s: Vec<f64>,
    pub counters: Vec<BTreeMap<String, u64>>,
}

impl Capacity {
    /// `victims` victims splitting `size` between them.
    pub fn new(victims: u64, size: u64) -> Self {
        Self {
            victims,
            victim_bytes: (size / victims).max(MIN_BYTES),
            ..Self::default()
        }
    }

    fn label(&self, cond: Cond) -> String {
        format!(
            "{}: {} victims × {} at once, under reaper --watch",
            &cond.label()[..1],
            self.victims,
            human_size(self.victim_bytes)
        )
    }

    /// The rows of one capacity condition.
    pub fn rows(&self, cond: Cond, rows: &mut Vec<Row>) {
        let label = self.label(cond);
        rows.push(
            Row::new("4. episodes recorded", &label, "", &self.episodes)
                .note(format!("of {} per round", self.victims)),
        );
        rows.push(Row::new(
            "4. stress duration (first kill → last reaped)",
            &label,
            "ms",
            &self.duration,
        ));
        rows.push(Row::new(
            "4. kill → process_mrelease returned (each victim)",
            &label,
            "ms",
            &self.kill_to_mrelease,
        ));
        rows.push(
            Row::new(
                "4. lock:contention_begin handled",
                &label,
                "/s",
                &self.lock_per_s,
            )
            .note("run.json lock_begin_tracked / duration"),
        );
        rows.push(
            Row::new("4. samples handled", &label, "/s", &self.samples_per_s)
                .note("run.json samples_tracked / duration"),
        );
        let names: std::collections::BTreeSet<&String> =
            self.counters.iter().flat_map(|c| c.keys()).collect();
        for name in names.into_iter().filter(|n| run_json::is_loss(n)) {
            let values: Vec<f64> = self
                .counters
                .iter()
                .map(|c| c.get(name).copied().unwrap_or(0) as f64)
                .collect();
            let lost: f64 = values.iter().sum();
            let row = Row::new(&format!("4. loss: {name}"), &label, "", &values);
            rows.push(if lost > 0.0 {
                row.note("LOSS: data was dropped")
            } else {
                row
            });
        }
    }
}

/// One round of a capacity condition.
pub fn episode(cfg: &Config, cond: Cond, dir: &Path, res: &mut Results) -> Result<()> {
    let (victims, bytes) = {
        let cap = res.capacity(cond);
        (cap.victims, cap.victim_bytes)
    };
    let spawned = (0..victims as usize)
        .map(|i| driver::spawn_victim(&cfg.reaper, bytes, driver::victim_cpu(i)))
        .collect::<Result<Vec<_>>>()?;
    let reaper = start_reaper(cfg, cond, dir, res)?;
    let races = driver::race_all(spawned)?;
    std::thread::sleep(SETTLE_AFTER);
    let (out_dir, _) = stop_reaper(reaper, res)?;
    let start = races.iter().map(|r| r.kill_ns).min().unwrap_or(0);
    let end = races
        .iter()
        .map(|r| r.kill_ns + r.kill_to_reaped_ns)
        .max()
        .unwrap_or(0);
    let duration_s = (end - start) as f64 / 1e9;
    for race in &races {
        if race.mrelease_ret != 0 {
            res.mrelease_failures
                .entry(cond.label().to_owned())
                .or_default()
                .push(race.mrelease_ret);
        }
    }
    let run = run_json::load(&out_dir)?;
    let found = races
        .iter()
        .filter(|r| run_json::episode(&run, r.victim_pid).is_some())
        .count();
    let counters = run_json::counters(&run);
    let get = |k: &str| counters.get(k).copied().unwrap_or(0) as f64;
    let cap = res.capacity_mut(cond);
    cap.kill_to_mrelease
        .extend(races.iter().map(|r| ns_ms(r.kill_to_mrelease_ns)));
    cap.episodes.push(found as f64);
    cap.duration.push(duration_s * 1e3);
    cap.lock_per_s.push(get("lock_begin_tracked") / duration_s);
    cap.samples_per_s.push(get("samples_tracked") / duration_s);
    cap.counters.push(counters);
    Ok(())
}
