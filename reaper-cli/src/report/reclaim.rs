//! Reclaim throughput per context: the resident memory each context freed
//! (`Episode::reclaim`, from `kmem:rss_stat`) over the time its part of the
//! teardown took, as the `process_mrelease` work quoted it (MB/s freed by
//! the victim's own exit against the reaper's). MB are 10^6 bytes.
//!
//! Each context's window comes from the timeline: the victim's is t = 0
//! (the kill, or its own exit's start) → `exit_mmap` done, the mrelease
//! caller's its `process_mrelease` call, the `oom_reaper`'s
//! `oom:start_task_reaping` → `finish_task_reaping`; the whole teardown's is
//! t = 0 → the last of them. A rate over a window that is not known, or
//! zero, is not measured (and says why), never 0.

use crate::model::{Context, Episode, Latencies, Run};

use super::model::{ReclaimNotMeasured, ReclaimReport, ReclaimRow};

/// Bytes in an MB.
const MB: f64 = 1e6;

/// The reclaim of an episode, or why it has none.
pub fn report(run: &Run, episode: &Episode) -> Result<ReclaimReport, ReclaimNotMeasured> {
    let Some(reclaim) = &episode.reclaim else {
        return Err(not_measured_why(run));
    };
    let l = &episode.latencies;
    let start = reclaim.rss_at_start_bytes;
    let share = |bytes: i64| (start > 0).then(|| bytes as f64 * 100.0 / start as f64);
    let mut rows: Vec<ReclaimRow> = reclaim
        .freed_bytes
        .iter()
        .map(|(&context, &bytes)| {
            let (window, duration_ns) = window(context, l);
            row(Some(context), bytes, share(bytes), window, duration_ns)
        })
        .collect();
    let total: i64 = reclaim.freed_bytes.values().sum();
    let end = episode
        .teardown_end_ns()
        .ok_or(ReclaimNotMeasured::NoTeardownEnd);
    rows.push(row(
        None,
        total,
        share(total),
        "t = 0 → the last context done".to_owned(),
        end,
    ));
    Ok(ReclaimReport {
        rss_at_start_mb: start as f64 / MB,
        rows,
    })
}

fn row(
    context: Option<Context>,
    bytes: i64,
    share_percent: Option<f64>,
    window: String,
    duration_ns: Result<u64, ReclaimNotMeasured>,
) -> ReclaimRow {
    let mb_per_s = match &duration_ns {
        Ok(0) => Err(ReclaimNotMeasured::EmptyWindow),
        Ok(ns) => Ok(bytes as f64 / MB / (*ns as f64 / 1e9)),
        Err(why) => Err(why.clone()),
    };
    ReclaimRow {
        context,
        freed_mb: bytes as f64 / MB,
        share_percent,
        window,
        duration_ms: duration_ns.map(|ns| ns as f64 / 1e6),
        mb_per_s,
    }
}

/// The window a context's freeing is divided by, and its length.
fn window(context: Context, l: &Latencies) -> (String, Result<u64, ReclaimNotMeasured>) {
    match context {
        Context::VictimExit => (
            "t = 0 → exit_mmap done".to_owned(),
            l.kill_to_exit_mmap_done_ns
                .ok_or(ReclaimNotMeasured::NoExitMmap),
        ),
        Context::MreleaseCaller => (
            "the process_mrelease call".to_owned(),
            l.mrelease_duration_ns.ok_or(ReclaimNotMeasured::NoMrelease),
        ),
        Context::OomReaper => (
            "oom:start_task_reaping → finish_task_reaping".to_owned(),
            l.oom_reaping_ns.ok_or(ReclaimNotMeasured::NoOomReaping),
        ),
    }
}

/// Why a run has no reclaim figures: its `kmem:rss_stat` refusal, or an
/// older run.
fn not_measured_why(run: &Run) -> ReclaimNotMeasured {
    super::rows::probe_failure(run, crate::model::ProbeGroup::Reclaim).map_or(
        ReclaimNotMeasured::BeforeRssStat,
        ReclaimNotMeasured::ProbeFailed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Reclaim;
    use std::collections::BTreeMap;

    fn run_with(reclaim: Option<Reclaim>, latencies: Latencies) -> (Run, Episode) {
        let run: Run = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/report/6.18-mrelease.run.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let mut episode = run.episodes[0].clone();
        episode.reclaim = reclaim;
        episode.latencies = latencies;
        (run, episode)
    }

    #[test]
    fn each_context_is_divided_by_its_own_window() {
        let reclaim = Reclaim {
            rss_at_start_bytes: 400_000_000,
            freed_bytes: BTreeMap::from([
                (Context::VictimExit, 100_000_000),
                (Context::MreleaseCaller, 300_000_000),
            ]),
            rss_track: Vec::new(),
        };
        let latencies = Latencies {
            kill_to_exit_mmap_done_ns: Some(50_000_000),
            kill_to_mrelease_done_ns: Some(40_000_000),
            mrelease_duration_ns: Some(30_000_000),
            ..Latencies::default()
        };
        let (run, episode) = run_with(Some(reclaim), latencies);
        let r = report(&run, &episode).unwrap();
        assert_eq!(r.rss_at_start_mb, 400.0);
        let rates: Vec<(Option<Context>, f64)> = r
            .rows
            .iter()
            .map(|row| (row.context, row.mb_per_s.clone().unwrap()))
            .collect();
        assert_eq!(
            rates,
            [
                (Some(Context::VictimExit), 2000.0),
                (Some(Context::MreleaseCaller), 10_000.0),
                (None, 8000.0)
            ]
        );
        assert_eq!(r.rows[1].share_percent, Some(75.0));
    }

    #[test]
    fn an_unknown_window_is_not_measured_not_zero() {
        let reclaim = Reclaim {
            rss_at_start_bytes: 1,
            freed_bytes: BTreeMap::from([(Context::VictimExit, 1)]),
            rss_track: Vec::new(),
        };
        let (run, episode) = run_with(Some(reclaim), Latencies::default());
        let r = report(&run, &episode).unwrap();
        assert!(r.rows.iter().all(|row| row.mb_per_s.is_err()));
        let (run, episode) = run_with(None, Latencies::default());
        let why = report(&run, &episode).unwrap_err();
        assert_eq!(why, ReclaimNotMeasured::BeforeRssStat);
        assert!(why.to_string().contains("rss_stat"), "{why}");
    }
}
