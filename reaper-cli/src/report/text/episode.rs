//! One episode's section: victim, timeline, latencies and counters (with
//! every non-zero loss spelled out).

use std::fmt::Write;

use super::{Align, columns, loss_line};
use crate::duration::{self, Precision};
use crate::report::model::{EpisodeReport, TimeZero};

const MIB: f64 = 1024.0 * 1024.0;

/// A latency, e.g. "12.345 ms".
fn ms(ns: u64) -> String {
    format!("{} ms", duration::ms(ns, Precision::TIMELINE))
}

/// Renders an episode's section.
pub fn render(e: &EpisodeReport) -> String {
    let mut out = String::new();
    let v = &e.victim;
    let size = if v.rss_bytes == 0 && v.vmas == 0 {
        "RSS not measured (gone before /proc could be read)".to_owned()
    } else {
        format!(
            "RSS {:.1} MiB, {} VMAs, {} threads",
            v.rss_bytes as f64 / MIB,
            v.vmas,
            v.threads
        )
    };
    let _ = writeln!(
        out,
        "== Episode {}: victim {} \"{}\", {size}{}{} ==",
        e.index + 1,
        v.pid,
        v.comm,
        e.trigger
            .as_deref()
            .map_or_else(String::new, |t| format!(", {t}")),
        if e.partial {
            " (PARTIAL: cut short)"
        } else {
            ""
        }
    );
    if e.lost_race {
        let _ = writeln!(
            out,
            "Lost race: process_mrelease returned ESRCH (every victim thread had left its mm before the call), so this episode has no reaper-side work and is left out of medians"
        );
    }
    timeline(e, &mut out);
    latencies(e, &mut out);
    reclaim(e, &mut out);
    counters(e, &mut out);
    out
}

/// Memory freed and reclaim throughput per context.
fn reclaim(e: &EpisodeReport, out: &mut String) {
    let r = match &e.reclaim {
        Ok(r) => r,
        Err(why) => {
            let _ = writeln!(out, "Reclaim: not measured ({why})");
            return;
        }
    };
    let _ = writeln!(
        out,
        "Reclaim (resident memory freed, kmem:rss_stat; MB = 10^6 bytes; RSS at t = 0: {:.1} MB):",
        r.rss_at_start_mb
    );
    let mut table = vec![vec![
        "  Context".to_owned(),
        "Freed (MB)".to_owned(),
        "Share".to_owned(),
        "Time (ms)".to_owned(),
        "MB/s".to_owned(),
        "Window".to_owned(),
    ]];
    for row in &r.rows {
        table.push(vec![
            format!("  {}", row.context.map_or("whole teardown", |c| c.name())),
            format!("{:.1}", row.freed_mb),
            row.share_percent
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%")),
            row.duration_ms
                .as_ref()
                .map_or_else(|_| "-".to_owned(), |ms| format!("{ms:.3}")),
            match &row.mb_per_s {
                Ok(rate) => format!("{rate:.0}"),
                Err(why) => format!("not measured ({why})"),
            },
            row.window.clone(),
        ]);
    }
    out.push_str(&columns(
        &table,
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
    ));
}

fn timeline(e: &EpisodeReport, out: &mut String) {
    if e.timeline.is_empty() {
        let _ = writeln!(out, "Timeline: no events recorded");
        return;
    }
    let _ = writeln!(out, "Timeline (ms since {}):", e.t0);
    let mut table = vec![vec![
        "  t (ms)".to_owned(),
        "Event".to_owned(),
        "Context".to_owned(),
        "comm/tid".to_owned(),
        "Arg".to_owned(),
    ]];
    for t in &e.timeline {
        table.push(vec![
            duration::ms_signed(t.t_ns, Precision::TIMELINE),
            t.kind.name().to_owned(),
            t.context.map_or("-", |c| c.name()).to_owned(),
            format!("{}/{}", t.comm, t.tid),
            t.arg.to_string(),
        ]);
    }
    out.push_str(&columns(&table, &[Align::Right]));
}

/// A figure with its source when it is not the usual tracepoint(s),
/// which are named with why they gave nothing.
fn with_source(
    figure: String,
    source: Option<&crate::model::FigureSource>,
    tracepoints_name: &str,
) -> String {
    match source {
        Some(source @ crate::model::FigureSource::FunctionProbe { tracepoints, .. }) => {
            format!(
                "{figure} ({}; {tracepoints_name}: {tracepoints})",
                source.label()
            )
        }
        None => figure,
    }
}

fn latencies(e: &EpisodeReport, out: &mut String) {
    let l = &e.latencies;
    let mut rows = teardown_rows(e);
    if let Some(verdict) = &l.oom_reaper_verdict {
        let seen =
            |v: Option<u64>| v.map_or_else(|| "not measured (event not seen)".to_owned(), ms);
        rows.push(vec![
            "  OOM kill → oom_reaper woken".to_owned(),
            seen(l.oom_reaper_delay_ns),
        ]);
        rows.push(vec![
            "  oom_reaper reaping".to_owned(),
            seen(l.oom_reaping_ns),
        ]);
        rows.push(vec!["  oom_reaper".to_owned(), verdict.clone()]);
    }
    let _ = writeln!(out, "Latencies:");
    out.push_str(&columns(&rows, &[]));
    if let Some(frozen) = &e.frozen {
        frozen_outcome(frozen, out);
    }
}

/// "not measured (why)", the event not seen when no reason was kept.
fn missing(why: &Option<String>) -> String {
    format!(
        "not measured ({})",
        why.as_deref().unwrap_or("event not seen")
    )
}

/// The latency rows every episode has: kill (or exit) to the end of
/// process_mrelease and of exit_mmap, and the syscall's duration and
/// return value.
fn teardown_rows(e: &EpisodeReport) -> Vec<Vec<String>> {
    let l = &e.latencies;
    let mrelease = |ns: u64| {
        with_source(
            ms(ns),
            l.mrelease_source.as_ref(),
            "syscalls:*_process_mrelease tracepoints",
        )
    };
    vec![
        vec![
            "  kill → mrelease done".to_owned(),
            l.kill_to_mrelease_done_ns
                .map_or_else(|| missing(&e.mrelease_not_measured), mrelease),
        ],
        vec![
            // A process that exited by itself was not killed.
            if e.t0 == TimeZero::ExitBegan {
                "  exit → exit_mmap done".to_owned()
            } else {
                "  kill → exit_mmap done".to_owned()
            },
            l.kill_to_exit_mmap_done_ns.map_or_else(
                || missing(&e.exit_mmap_not_measured),
                |ns| {
                    with_source(
                        ms(ns),
                        l.exit_mmap_source.as_ref(),
                        "mmap:exit_mmap tracepoint",
                    )
                },
            ),
        ],
        vec![
            "  process_mrelease duration".to_owned(),
            l.mrelease_duration_ns
                .map_or_else(|| missing(&e.mrelease_not_measured), mrelease),
        ],
        vec![
            "  process_mrelease returned".to_owned(),
            match (l.mrelease_ret, &e.mrelease_not_measured) {
                (Some(r), _) => r.to_string(),
                (None, why) => missing(why),
            },
        ],
    ]
}

fn frozen_outcome(f: &crate::model::FrozenOutcome, out: &mut String) {
    let _ = writeln!(
        out,
        "Frozen victim ({} threads, watched {:.1} s after the OOM kill):",
        f.threads,
        f.timeout_ms as f64 / 1e3
    );
    match f.all_exited_ms {
        Some(ms) => {
            let _ = writeln!(
                out,
                "  every thread exited, the last {ms} ms after the OOM kill"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  {} of {} threads still present after the timeout: {}",
                f.still_present_at_timeout.len(),
                f.threads,
                f.thread_exits
                    .iter()
                    .filter(|t| t.exited_ms.is_none())
                    .map(|t| format!("{} (state {})", t.tid, t.state_at_timeout.unwrap_or('?')))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for t in &f.thread_exits {
        let _ = writeln!(
            out,
            "  thread {:>7}  {}",
            t.tid,
            t.exited_ms.map_or_else(
                || "did not exit".to_owned(),
                |ms| format!("exited at {ms} ms")
            )
        );
    }
}

fn counters(e: &EpisodeReport, out: &mut String) {
    let _ = writeln!(out, "Counters:");
    if e.counters.is_empty() {
        let _ = writeln!(out, "  none recorded");
        return;
    }
    let rows: Vec<Vec<String>> = e
        .counters
        .iter()
        .map(|c| {
            let mut row = vec![format!("  {}", c.name), c.value.to_string()];
            if let Some(loss) = &c.loss {
                row.push(loss_line(loss));
            }
            row
        })
        .collect();
    out.push_str(&columns(&rows, &[Align::Left, Align::Right]));
}

/// The list of episodes a `record --watch` saw, before the details.
pub fn watch_list(w: &crate::model::WatchSummary, episodes: &[EpisodeReport], out: &mut String) {
    let filtered = if w.filtered_out > 0 {
        format!(", {} left out by --comm/--min-rss", w.filtered_out)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Watched {} s: {} episodes ({} evicted to bound memory, {} plain SIGKILLs without a reaper ignored{filtered})",
        w.watched_s, w.episodes_seen, w.episodes_evicted, w.plain_kills_ignored
    );
    for (what, &runs) in &w.skipped_probe_runs {
        let loss = crate::report::losses::describe_skipped(what, runs);
        let _ = writeln!(out, "  {}", super::loss_line(&loss));
    }
    if episodes.is_empty() {
        return;
    }
    let mut table = vec![vec![
        "  #".to_owned(),
        "Victim".to_owned(),
        "Trigger (t = 0)".to_owned(),
        "t = 0 → exit_mmap done".to_owned(),
        "t = 0 → mrelease done".to_owned(),
    ]];
    let opt_ms = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), ms);
    for e in episodes {
        table.push(vec![
            format!("{}", e.index + 1),
            format!("{} {}", e.victim.pid, e.victim.comm),
            match (&e.trigger, e.lost_race) {
                (Some(t), true) => format!("{t} (lost race)"),
                (None, true) => "(lost race)".to_owned(),
                (t, false) => t.clone().unwrap_or_default(),
            },
            opt_ms(e.latencies.kill_to_exit_mmap_done_ns),
            opt_ms(e.latencies.kill_to_mrelease_done_ns),
        ]);
    }
    out.push_str(&columns(&table, &[Align::Right]));
}
