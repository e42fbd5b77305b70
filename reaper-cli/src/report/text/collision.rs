//! Text of the "PTE-lock waits by holder" table (issue 25).

use std::fmt::Write;

use crate::duration::{self, Precision};
use crate::report::model::{CollisionReport, EpisodeCollisions, HolderRow, HolderSource};
use crate::text_width::{pad_right, width};

/// Renders the table per episode and summed, or why it is not measured.
pub fn render(t: &CollisionReport) -> String {
    let mut out = String::new();
    let title = match t.named_by {
        HolderSource::RtOwner => {
            "PTE-lock waits by waiter × holder (sleeping rt_spin_lock waits from the PTE-lock call site)"
        }
        _ => "PTE-lock waits by waiter × holder (spin slow-path calls from the PTE-lock call site)",
    };
    if let Some(why) = &t.not_measured {
        let _ = writeln!(out, "{title}: not measured ({why})");
        return out;
    }
    let _ = writeln!(out, "{title}:");
    let how = match t.named_by {
        HolderSource::LastTaker => {
            "holder = the lock's last taker, recorded at the PTE-lock function's return".to_owned()
        }
        HolderSource::WalkerInStep => format!(
            "holder = the other tracked walker when inside its per-VMA step as the wait began \
             (last taker not measured: {})",
            t.last_taker_off.as_deref().unwrap_or("")
        ),
        HolderSource::RtOwner => "holder = the lock's owner (PREEMPT_RT rt_mutex), read by \
             lock:contention_begin as the wait began"
            .to_owned(),
    };
    let _ = writeln!(out, "  {how}");
    let all_rows = t
        .episodes
        .iter()
        .flat_map(|e| &e.rows)
        .chain(&t.summed)
        .collect::<Vec<_>>();
    let holder_width = all_rows
        .iter()
        .map(|r| width(&r.holder.name()))
        .chain([width("Holder")])
        .max()
        .unwrap_or(0);
    for e in &t.episodes {
        episode(e, holder_width, &mut out);
    }
    if t.episodes.len() > 1 {
        let _ = writeln!(out, "  All episodes:");
        rows(&t.summed, holder_width, &mut out);
    }
    out
}

/// One episode's rows and losses.
fn episode(e: &EpisodeCollisions, holder_width: usize, out: &mut String) {
    if let Some(why) = &e.not_measured {
        let _ = writeln!(out, "  Episode {}: not measured ({why})", e.episode);
        return;
    }
    let _ = writeln!(out, "  Episode {}:", e.episode);
    if e.rows.is_empty() {
        let _ = writeln!(out, "    no PTE-lock wait of a tracked context");
    } else {
        rows(&e.rows, holder_width, out);
    }
    let losses = [
        (e.waits_lost, "waits lost (the per-CPU wait log was full)"),
        (e.waits_open, "waits whose end was not seen"),
        (
            e.steps_lost,
            "walker steps lost (the per-context log was full)",
        ),
    ];
    for (n, what) in losses.into_iter().filter(|(n, _)| *n > 0) {
        let _ = writeln!(out, "    LOSS: {n} {what}");
    }
}

/// A table of rows with its header.
fn rows(rows: &[HolderRow], holder_width: usize, out: &mut String) {
    let ms = |ns: u64| duration::ms_value(ns as f64 / duration::NS_PER_MS, Precision::EXACT_PERIOD);
    let waiter_width = crate::model::Context::ALL
        .iter()
        .map(|c| width(c.name()))
        .chain([width("Waiter")])
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "    {}  {}  {:>6}  {:>10}  {:>10}  {:>5}",
        pad_right("Waiter", waiter_width),
        pad_right("Holder", holder_width),
        "Waits",
        "Total ms",
        "Max ms",
        "Locks"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "    {}  {}  {:>6}  {:>10}  {:>10}  {:>5}",
            pad_right(r.waiter.name(), waiter_width),
            pad_right(&r.holder.name(), holder_width),
            r.count,
            ms(r.total_ns),
            ms(r.max_ns),
            r.distinct_locks
        );
    }
}
