//! One side's figures (logs on, or off) from its run.json files: per
//! episode, kill → `process_mrelease` done and the sum of every program's
//! run time (`record --program-cost`); per recording, the collision maps'
//! kernel memory (`recording.collision_maps`); and what the logs lost.

use reaper_model::{MapMemory, Run};
use serde::Serialize;

/// Every figure of one side, in the order its runs were recorded.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Side {
    /// kill → `process_mrelease` done, ms, per episode that won the race.
    pub kill_to_mrelease_ms: Vec<f64>,
    /// All of reaper's programs' run time in the episode, ms.
    pub program_ms: Vec<f64>,
    /// Episodes that lost the race (left out of the latencies).
    pub lost_races: usize,
    /// Episodes without program costs (`--program-cost` refused).
    pub without_costs: usize,
    /// The collision maps of the first run that had them.
    pub maps: Vec<MapMemory>,
    /// Walker steps and PTE-lock waits the logs dropped, over every episode.
    pub steps_lost: u64,
    pub waits_lost: u64,
    /// Episodes whose run held a collision log (walkers or waits).
    pub logged_episodes: usize,
    /// PTE-lock waits logged, over every episode.
    pub waits_logged: usize,
}

impl Side {
    /// The figures of `runs`.
    pub fn of(runs: &[Run]) -> Self {
        let mut side = Side::default();
        for run in runs {
            side.add(run);
        }
        side
    }

    fn add(&mut self, run: &Run) {
        if self.maps.is_empty() {
            self.maps = run.recording.collision_maps.clone().unwrap_or_default();
        }
        for episode in &run.episodes {
            if episode.program_costs.is_empty() {
                self.without_costs += 1;
            } else {
                let ns: u64 = episode.program_costs.values().map(|c| c.run_ns).sum();
                self.program_ms.push(ns as f64 / 1e6);
            }
            let collisions = episode
                .function_timing
                .as_ref()
                .and_then(|t| t.collisions.as_ref());
            if let Some(c) = collisions {
                self.logged_episodes += 1;
                self.waits_logged += c.waits.len();
                self.waits_lost += c.waits_lost;
                self.steps_lost += c.walkers.iter().map(|w| w.lost).sum::<u64>();
            }
            if episode.lost_race() {
                self.lost_races += 1;
                continue;
            }
            if let Some(ns) = episode.latencies.kill_to_mrelease_done_ns {
                self.kill_to_mrelease_ms.push(ns as f64 / 1e6);
            }
        }
    }

    /// The collision maps' kernel memory, bytes.
    pub fn maps_bytes(&self) -> u64 {
        self.maps.iter().map(|m| m.memlock_bytes).sum()
    }
}

#[cfg(test)]
pub mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::reaper_json::fixtures;

    /// A run of one episode per `(kill → mrelease done ns, program ns)`,
    /// with `maps` as its collision maps and, when `logged`, a collision
    /// log of 3 waits (1 lost) and a walker with 2 lost steps.
    pub fn run(episodes: &[(u64, u64)], maps: &[(&str, u32, u64)], logged: bool) -> Run {
        let collisions = json!({"walkers": [{"context": "victim_exit", "function": "unmap_page_range",
            "steps": [], "lost": 2}], "waits": [], "waits_lost": 1});
        let episodes: Vec<Value> = episodes
            .iter()
            .enumerate()
            .map(|(i, &(latency, program))| {
                let mut patch = json!({
                    "latencies": {"kill_to_mrelease_done_ns": latency},
                    "program_costs": {"fexit native_queued_spin_lock_slowpath":
                        {"runs": 10, "run_ns": program}}
                });
                if logged {
                    patch["function_timing"] = json!({"functions": [], "collisions": collisions});
                }
                fixtures::episode(100 + i as u32, patch)
            })
            .collect();
        let maps: Vec<Value> = maps
            .iter()
            .map(|&(map, max_entries, memlock_bytes)| {
                json!({"map": map, "max_entries": max_entries, "memlock_bytes": memlock_bytes})
            })
            .collect();
        let run = fixtures::run(json!({
            "recording": {"collision_maps": maps},
            "episodes": episodes
        }));
        serde_json::from_value(run).unwrap()
    }

    #[test]
    fn a_side_has_per_episode_figures_and_the_first_runs_maps() {
        let on = [
            run(
                &[(20_000_000, 3_000_000)],
                &[("FN_PTE_LAST_TAKER", 4096, 459_712)],
                true,
            ),
            run(
                &[(22_000_000, 3_500_000)],
                &[("FN_PTE_LAST_TAKER", 4096, 1)],
                true,
            ),
        ];
        let side = Side::of(&on);
        assert_eq!(side.kill_to_mrelease_ms, vec![20.0, 22.0]);
        assert_eq!(side.program_ms, vec![3.0, 3.5]);
        assert_eq!(side.maps_bytes(), 459_712);
        assert_eq!((side.steps_lost, side.waits_lost), (4, 2));
        assert_eq!(side.logged_episodes, 2);
    }

    #[test]
    fn a_lost_race_keeps_its_cost_but_not_its_latency() {
        let mut lost = run(&[(1_000, 2_000_000)], &[], false);
        lost.episodes[0].marked_lost_race = true;
        let side = Side::of(&[lost]);
        assert!(side.kill_to_mrelease_ms.is_empty());
        assert_eq!(side.program_ms, vec![2.0]);
        assert_eq!(side.lost_races, 1);
        assert_eq!(side.logged_episodes, 0);
    }
}
