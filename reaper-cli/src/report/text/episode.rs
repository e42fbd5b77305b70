//! One episode's section: victim, timeline, latencies and counters (with
//! every non-zero loss spelled out).

use std::fmt::Write;

use super::{Align, columns, loss_line};
use crate::report::model::EpisodeReport;

const MIB: f64 = 1024.0 * 1024.0;

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// Renders an episode's section.
pub fn render(e: &EpisodeReport) -> String {
    let mut out = String::new();
    let v = &e.victim;
    let _ = writeln!(
        out,
        "== Episode {}: victim {} \"{}\", RSS {:.1} MiB, {} VMAs, {} threads{} ==",
        e.index + 1,
        v.pid,
        v.comm,
        v.rss_bytes as f64 / MIB,
        v.vmas,
        v.threads,
        if e.partial {
            " (PARTIAL: cut short)"
        } else {
            ""
        }
    );
    timeline(e, &mut out);
    latencies(e, &mut out);
    counters(e, &mut out);
    out
}

fn timeline(e: &EpisodeReport, out: &mut String) {
    if e.timeline.is_empty() {
        let _ = writeln!(out, "Timeline: no events recorded");
        return;
    }
    let _ = writeln!(out, "Timeline (ms since the kill):");
    let mut table = vec![vec![
        "  t (ms)".to_owned(),
        "Event".to_owned(),
        "Context".to_owned(),
        "comm/tid".to_owned(),
        "Arg".to_owned(),
    ]];
    for t in &e.timeline {
        table.push(vec![
            format!("{:.3}", t.t_ns as f64 / 1e6),
            t.kind.clone(),
            t.context.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{}/{}", t.comm, t.tid),
            t.arg.to_string(),
        ]);
    }
    out.push_str(&columns(&table, &[Align::Right]));
}

fn latencies(e: &EpisodeReport, out: &mut String) {
    let l = &e.latencies;
    let missing = |mrelease: bool| {
        if mrelease && e.no_mrelease {
            "not measured (no process_mrelease in this scenario)".to_owned()
        } else {
            "not measured (event not seen)".to_owned()
        }
    };
    let rows = vec![
        vec![
            "  kill → mrelease done".to_owned(),
            l.kill_to_mrelease_done_ns.map_or_else(|| missing(true), ms),
        ],
        vec![
            "  kill → exit_mmap done".to_owned(),
            l.kill_to_exit_mmap_done_ns
                .map_or_else(|| missing(false), ms),
        ],
        vec![
            "  process_mrelease duration".to_owned(),
            l.mrelease_duration_ns.map_or_else(|| missing(true), ms),
        ],
        vec![
            "  process_mrelease returned".to_owned(),
            l.mrelease_ret
                .map_or_else(|| missing(true), |r| r.to_string()),
        ],
    ];
    let _ = writeln!(out, "Latencies:");
    out.push_str(&columns(&rows, &[]));
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
