//! The "Summary of measurements (ms)" rows, one cell per episode.
//!
//! Rows follow the thread: total running time, time waiting for the PTE
//! spinlock, rmap-removal time (each split into the victim's `exit_mmap`
//! part and the reaper-work part), then the kill→done latencies. A value the
//! run could not measure is a `NotMeasured` cell with the reason, never 0.

use crate::catalog::{ConceptFrames, ConceptId};
use crate::duration::NS_PER_MS;
use crate::model::{Episode, Run};

use super::model::{Cell, RowId, Summary, SummaryRow, Value};
use super::rows::{
    SPLIT_LABEL, absent, row, row_stats, sampled_rows_failure, side_stacks, split_value,
    uniform_row,
};
use super::stacks::{children_of, children_within};
use super::{pte_lock, pte_lock_exact};

/// Builds the summary of a run whose concepts are resolved in `frames`
/// (`ConceptFrames::of(&run.symbols)`, resolved once per run).
pub fn summary(run: &Run, frames: &ConceptFrames) -> Summary {
    let rows = vec![
        running_time_row(run, frames),
        pte_lock::pte_wait_row(run, frames),
        pte_lock::pte_traced_wait_row(run, frames),
        pte_lock_exact::pte_exact_wait_row(run, frames),
        rmap_row(run, frames),
        latency_row(run, RowId::KillToReap, &mrelease_done_label(run), |e| {
            e.latencies.kill_to_mrelease_done_ns
        }),
        latency_row(
            run,
            RowId::KillToExitMmap,
            &exit_mmap_done_label(run),
            |e| e.latencies.kill_to_exit_mmap_done_ns,
        ),
    ];
    with_lost_races_left_out(
        Summary {
            episodes: run.episodes.len(),
            rows,
            lost: Vec::new(),
        },
        run.episodes.iter().map(Episode::lost_race).collect(),
    )
}

/// "kill → mrelease done", naming its source when it is not the syscall
/// tracepoints (see `recorder::mrelease_source`).
fn mrelease_done_label(run: &Run) -> String {
    let source = run
        .episodes
        .iter()
        .find_map(|e| e.latencies.mrelease_source.as_ref());
    match source {
        Some(source) => format!("kill → mrelease done ({})", source.label()),
        None => "kill → mrelease done".to_owned(),
    }
}

/// "kill → exit_mmap done", naming its source when it is not the
/// `mmap:exit_mmap` tracepoint (see `recorder::figure_source`). A process
/// that exited by itself (`record --pid P` without `--kill`, or an exit
/// `--watch` saw) was not killed: its t = 0 is the start of its exit, so the
/// row says "exit → exit_mmap done", or "t = 0 → …" when the episodes mix
/// kills and exits.
fn exit_mmap_done_label(run: &Run) -> String {
    let source = run
        .episodes
        .iter()
        .find_map(|e| e.latencies.exit_mmap_source.as_ref());
    let exits = run
        .episodes
        .iter()
        .filter(|e| super::rows::t0_of(&e.timeline) == super::model::TimeZero::ExitBegan)
        .count();
    let start = match exits {
        0 => "kill",
        n if n == run.episodes.len() => "exit",
        _ => "t = 0",
    };
    match source {
        Some(source) => format!("{start} → exit_mmap done ({})", source.label()),
        None => format!("{start} → exit_mmap done"),
    }
}

/// Recomputes each row's statistics without the episodes that lost the
/// mrelease race: their reaper side did no work, so they would drag the
/// median of every split toward "exit_mmap did everything".
pub fn with_lost_races_left_out(mut summary: Summary, lost: Vec<bool>) -> Summary {
    if lost.contains(&true) {
        for row in &mut summary.rows {
            let counted: Vec<Cell> = row
                .cells
                .iter()
                .zip(&lost)
                .filter(|(_, lost)| !**lost)
                .map(|(cell, _)| cell.clone())
                .collect();
            row.stats = row_stats(&counted);
        }
    }
    summary.lost = lost;
    summary
}

fn running_time_row(run: &Run, frames: &ConceptFrames) -> SummaryRow {
    let (id, label) = (RowId::Total, "Total running time".to_owned());
    if let Some(why) = sampled_rows_failure(run) {
        return uniform_row(run, id, label, why);
    }
    let Some(victim_fn) = frames.frame(ConceptId::VICTIM_TEARDOWN) else {
        return uniform_row(run, id, label, absent(ConceptId::VICTIM_TEARDOWN));
    };
    let Some(reaper_fn) = frames.frame(ConceptId::REAPER_WORK) else {
        return uniform_row(run, id, label, absent(ConceptId::REAPER_WORK));
    };
    let cells = run
        .episodes
        .iter()
        .map(|e| {
            let (victim, reaper) = side_stacks(e);
            Cell::Measured(split_value(
                children_of(&victim, victim_fn),
                children_of(&reaper, reaper_fn),
                None,
            ))
        })
        .collect();
    row(id, label, Some(SPLIT_LABEL), cells)
}

fn rmap_row(run: &Run, frames: &ConceptFrames) -> SummaryRow {
    let id = RowId::Rmap;
    let Some(rmap_fn) = frames.frame(ConceptId::RMAP_REMOVAL) else {
        let label = "rmap removal time".to_owned();
        return uniform_row(run, id, label, absent(ConceptId::RMAP_REMOVAL));
    };
    let label = format!("{rmap_fn} time");
    if let Some(why) = sampled_rows_failure(run) {
        return uniform_row(run, id, label, why);
    }
    let victim_fn = frames
        .frame(ConceptId::VICTIM_TEARDOWN)
        .unwrap_or("exit_mmap");
    let reaper_fn = frames
        .frame(ConceptId::REAPER_WORK)
        .unwrap_or("__oom_reap_task_mm");
    let cells = run
        .episodes
        .iter()
        .map(|e| {
            let (victim, reaper) = side_stacks(e);
            Cell::Measured(split_value(
                children_within(&victim, victim_fn, rmap_fn),
                children_within(&reaper, reaper_fn, rmap_fn),
                None,
            ))
        })
        .collect();
    row(id, label, Some(SPLIT_LABEL), cells)
}

fn latency_row(
    run: &Run,
    id: RowId,
    label: &str,
    get: impl Fn(&Episode) -> Option<u64>,
) -> SummaryRow {
    let cells = run
        .episodes
        .iter()
        .map(|e| match get(e) {
            Some(ns) => Cell::Measured(Value {
                total_ms: ns as f64 / NS_PER_MS,
                ..Value::default()
            }),
            None if id == RowId::KillToReap => Cell::NotMeasured {
                why: super::latency_why::mrelease_done(run, e),
            },
            None => Cell::NotMeasured {
                why: super::latency_why::exit_mmap_done(run),
            },
        })
        .collect();
    row(id, label.to_owned(), None, cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(total: f64, split: (f64, f64), count: u64) -> Cell {
        Cell::Measured(Value {
            total_ms: total,
            split_ms: Some(split),
            count: Some(count),
        })
    }

    #[test]
    fn stats_are_component_wise_and_skip_not_measured() {
        let cells = [
            measured(10.0, (6.0, 4.0), 3),
            Cell::NotMeasured { why: "x".into() },
            measured(30.0, (10.0, 20.0), 9),
            measured(20.0, (2.0, 18.0), 5),
        ];
        let s = row_stats(&cells).unwrap();
        assert_eq!(s.measured, 3);
        assert_eq!(s.median.total_ms, 20.0);
        assert_eq!(s.median.split_ms, Some((6.0, 18.0)));
        assert_eq!(s.median.count, Some(5));
        assert_eq!(s.min.split_ms, Some((2.0, 4.0)));
        assert_eq!(s.max.total_ms, 30.0);
        assert_eq!(s.max.count, Some(9));
    }

    #[test]
    fn lost_races_are_left_out_of_the_statistics() {
        let summary = Summary {
            episodes: 3,
            rows: vec![row(
                RowId::Total,
                "Total".into(),
                None,
                vec![
                    measured(10.0, (10.0, 0.0), 1),
                    measured(30.0, (10.0, 20.0), 9),
                    measured(20.0, (2.0, 18.0), 5),
                ],
            )],
            lost: Vec::new(),
        };
        let summary = with_lost_races_left_out(summary, vec![true, false, false]);
        let stats = summary.rows[0].stats.unwrap();
        assert_eq!(stats.measured, 2);
        assert_eq!(stats.median.total_ms, 25.0);
        assert_eq!(stats.min.split_ms, Some((2.0, 18.0)));
        assert_eq!(summary.counted(), 2);
    }

    #[test]
    fn no_measured_cell_means_no_stats() {
        assert_eq!(row_stats(&[Cell::NotMeasured { why: "x".into() }]), None);
    }
}
