//! The "Probe program cost" table: what each of reaper's programs cost the
//! kernel per episode, from the kernel's own run statistics
//! (`Episode::program_costs`, recorded with `record --program-cost`).
//! The table's types are reaper-model's ([`ProgramCostReport`]).

use std::collections::BTreeMap;

use crate::model::{ProgramCost, Run};
pub use crate::report::model::{ProgramCostReport, ProgramCostRow};

/// Builds the table from the episodes that carry program costs, else from
/// the whole recording's.
pub fn build(run: &Run) -> Option<ProgramCostReport> {
    let mut episodes: Vec<&BTreeMap<String, ProgramCost>> = run
        .episodes
        .iter()
        .map(|e| &e.program_costs)
        .filter(|c| !c.is_empty())
        .collect();
    let whole_recording = episodes.is_empty();
    if whole_recording {
        if run.program_costs.is_empty() {
            return None;
        }
        episodes.push(&run.program_costs);
    }
    let sums = sums(&episodes);
    let all_ns: u64 = sums.values().map(|c| c.run_ns).sum();
    let per_episode = |program: &str, field: fn(&ProgramCost) -> u64| {
        median(
            episodes
                .iter()
                .map(|c| c.get(program).map_or(0, field))
                .collect(),
        )
    };
    let mut rows: Vec<ProgramCostRow> = sums
        .iter()
        .map(|(program, sum)| ProgramCostRow {
            program: (*program).to_owned(),
            runs_per_episode: per_episode(program, |c| c.runs),
            ns_per_episode: per_episode(program, |c| c.run_ns),
            ns_per_run: sum.run_ns as f64 / sum.runs.max(1) as f64,
            share_pct: if all_ns == 0 {
                0.0
            } else {
                100.0 * sum.run_ns as f64 / all_ns as f64
            },
        })
        .collect();
    rows.sort_by(|a, b| {
        b.ns_per_episode
            .cmp(&a.ns_per_episode)
            .then_with(|| a.program.cmp(&b.program))
    });
    Some(ProgramCostReport {
        episodes: if whole_recording { 0 } else { episodes.len() },
        rows,
        total_ns_per_episode: median(
            episodes
                .iter()
                .map(|c| c.values().map(|v| v.run_ns).sum())
                .collect(),
        ),
        collision_maps: run.recording.collision_maps.clone().unwrap_or_default(),
    })
}

/// Each program's runs and time summed over `episodes`.
fn sums<'a>(episodes: &[&'a BTreeMap<String, ProgramCost>]) -> BTreeMap<&'a str, ProgramCost> {
    let mut sums: BTreeMap<&str, ProgramCost> = BTreeMap::new();
    for costs in episodes {
        for (program, cost) in *costs {
            let sum = sums.entry(program.as_str()).or_default();
            sum.runs += cost.runs;
            sum.run_ns += cost.run_ns;
        }
    }
    sums
}

/// The median (the lower middle of an even count), 0 for none.
fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(costs: &[&[(&str, u64, u64)]]) -> Run {
        let mut run = crate::report::function_timing::tests::run_with(None);
        let template = run.episodes[0].clone();
        run.episodes = costs
            .iter()
            .map(|episode| {
                let mut e = template.clone();
                e.program_costs = episode
                    .iter()
                    .map(|&(p, runs, run_ns)| (p.to_owned(), ProgramCost { runs, run_ns }))
                    .collect();
                e
            })
            .collect();
        run
    }

    #[test]
    fn rows_are_medians_per_episode_and_shares_of_the_sums() {
        let run = run_with(&[
            &[
                ("fexit page_remove_rmap", 1000, 300_000),
                ("lock_contention_begin", 10, 5_000),
            ],
            &[("fexit page_remove_rmap", 3000, 900_000)],
            &[
                ("fexit page_remove_rmap", 2000, 600_000),
                ("lock_contention_begin", 30, 15_000),
            ],
        ]);
        let table = build(&run).unwrap();
        assert_eq!(table.episodes, 3);
        assert_eq!(table.rows[0].program, "fexit page_remove_rmap");
        assert_eq!(table.rows[0].runs_per_episode, 2000);
        assert_eq!(table.rows[0].ns_per_episode, 600_000);
        assert!((table.rows[0].ns_per_run - 300.0).abs() < 1e-9);
        // 1.8 ms of 1.82 ms in all.
        assert!((table.rows[0].share_pct - 100.0 * 1.8 / 1.82).abs() < 1e-9);
        // Absent from episode 2: 0 there, so the median is 5 µs.
        assert_eq!(table.rows[1].ns_per_episode, 5_000);
        assert_eq!(table.total_ns_per_episode, 615_000);
    }

    #[test]
    fn no_costs_no_table() {
        assert_eq!(build(&run_with(&[&[], &[]])), None);
    }

    #[test]
    fn a_watch_run_has_the_whole_recording_s_costs() {
        let mut run = run_with(&[&[], &[]]);
        run.program_costs = [(
            "sample_cpu_clock".to_owned(),
            ProgramCost {
                runs: 500,
                run_ns: 1_000_000,
            },
        )]
        .into();
        let table = build(&run).unwrap();
        assert_eq!(table.episodes, 0);
        assert_eq!(table.rows[0].runs_per_episode, 500);
        assert_eq!(table.total_ns_per_episode, 1_000_000);
    }

    /// The collision maps' kernel memory rides with the table, and its
    /// text lists each map and their sum (run files without it: nothing).
    #[test]
    fn the_collision_maps_memory_is_printed_under_the_table() {
        let mut run = run_with(&[&[("sample_cpu_clock", 10, 20_000)]]);
        let text = |run: &Run| crate::report::text::program_cost_text(&build(run).unwrap());
        assert!(!text(&run).contains("Collision logs"));
        let map = |name: &str, max_entries, memlock_bytes| crate::model::MapMemory {
            map: name.to_owned(),
            max_entries,
            memlock_bytes,
        };
        run.recording.collision_maps = Some(vec![
            map("FN_WALKER_LOG", 3, 31_056),
            map("FN_PTE_LAST_TAKER", 1, 1_072),
        ]);
        let table = build(&run).unwrap();
        assert_eq!(table.collision_maps.len(), 2);
        let out = text(&run);
        assert!(out.contains("Collision logs' kernel memory"), "{out}");
        assert!(
            out.contains("FN_WALKER_LOG           3 entries         31056 bytes"),
            "{out}"
        );
        assert!(
            out.contains("FN_PTE_LAST_TAKER       1 entry            1072 bytes"),
            "{out}"
        );
        assert!(out.contains("32128 bytes"), "{out}");
    }
}
