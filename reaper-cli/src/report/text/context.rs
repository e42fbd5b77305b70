//! One context's section: simpleperf-like header, the "Period (ms)  Symbol"
//! table, the call graph, the "Children  Self  Command  Symbol" table and
//! the lock-wait table.

use std::fmt::Write;

use super::{Align, columns};
use crate::duration::{self, Precision};
use crate::report::model::{ContextReport, Header, KeyFunction, LockWaits};
use crate::report::tree;

/// comm is at most 15 characters (TASK_COMM_LEN - 1), as simpleperf shows it.
const COMM_WIDTH: usize = 15;

/// "(mean of 3 episodes)" or "(1 episode)".
pub(crate) fn over(episodes: usize) -> String {
    if episodes == 1 {
        "(1 episode)".to_owned()
    } else {
        format!("(mean of {episodes} episodes)")
    }
}

/// Renders a context's section.
pub fn render(c: &ContextReport, h: &Header) -> String {
    let mut out = String::new();
    let n = c.episodes.max(1) as u64;
    let _ = writeln!(
        out,
        "== {} ({}) {} ==",
        c.label,
        c.context,
        over(c.episodes)
    );
    let _ = writeln!(out, "Arch: {}", h.arch);
    let _ = writeln!(
        out,
        "Event: cpu-clock ({} Hz, period {} ns)",
        h.freq_hz, h.sample_period_ns
    );
    let _ = writeln!(out, "Samples: {}", (c.samples + n / 2) / n);
    let _ = writeln!(out, "Event count: {}", (c.period_ns + n / 2) / n);
    out.push('\n');
    key_functions(&c.key_functions, &mut out);
    out.push('\n');
    let g = &c.call_graph;
    let _ = writeln!(
        out,
        "Call graph (caller-based, % of parent, cut-off {:.2}%, depth {}):",
        g.percent_limit, g.max_depth
    );
    if g.total_ns == 0 {
        out.push_str("(no samples)\n");
    } else {
        out.push_str(&tree::render(g));
    }
    out.push('\n');
    symbols(c, &mut out);
    out.push('\n');
    lock_waits(&c.lock_waits, c.episodes, &mut out);
    out
}

fn key_function_name(k: &KeyFunction) -> String {
    match &k.symbol {
        Some(symbol) if k.inline_fallback => {
            format!("{symbol} ({} is inlined here)", k.concept)
        }
        Some(symbol) => symbol.clone(),
        None => format!("{} (none of {})", k.concept, k.candidates.join(", ")),
    }
}

fn period(ms: f64) -> String {
    duration::ms_value(ms, Precision::KEY_FUNCTION_PERIOD)
}

fn key_functions(rows: &[KeyFunction], out: &mut String) {
    let mut table = vec![vec!["Period (ms)".to_owned(), "Symbol".to_owned()]];
    let width = rows
        .iter()
        .filter_map(|k| k.period_ms)
        .map(|p| period(p).len())
        .max()
        .unwrap_or(0);
    for k in rows {
        let period = match k.period_ms {
            Some(p) => format!("{:>width$}", period(p)),
            None => "absent on this kernel".to_owned(),
        };
        table.push(vec![period, key_function_name(k)]);
    }
    if rows.is_empty() {
        table.push(vec!["-".to_owned(), "(no key function sampled)".to_owned()]);
    }
    out.push_str(&columns(&table, &[Align::Left]));
}

fn symbols(c: &ContextReport, out: &mut String) {
    let comm: String = c.comm.chars().take(COMM_WIDTH).collect();
    let mut table = vec![vec![
        "Children".to_owned(),
        "Self".to_owned(),
        "Command".to_owned(),
        "Symbol".to_owned(),
    ]];
    for s in &c.symbols {
        table.push(vec![
            s.children_ns.to_string(),
            s.self_ns.to_string(),
            comm.clone(),
            s.symbol.clone(),
        ]);
    }
    out.push_str(&columns(&table, &[Align::Left]));
}

fn lock_waits(l: &LockWaits, episodes: usize, out: &mut String) {
    if let Some(why) = &l.not_measured {
        let _ = writeln!(out, "Lock waits: not measured ({why})");
        return;
    }
    let source = l
        .source
        .as_ref()
        .map_or(String::new(), |s| format!(" (spinlocks, {s})"));
    if l.rows.is_empty() {
        let _ = writeln!(out, "Lock waits{source}: none (measured: 0 waits)");
        return;
    }
    let _ = writeln!(
        out,
        "Lock waits{source} by stack, top {} by total wait {}:",
        l.rows.len(),
        over(episodes)
    );
    let count = |c: f64| {
        if episodes == 1 {
            format!("{c:.0}")
        } else {
            format!("{c:.1}")
        }
    };
    let mut table = vec![vec![
        "Count".to_owned(),
        "Total (ms)".to_owned(),
        "Max (µs)".to_owned(),
        "Kind".to_owned(),
        "Waiter".to_owned(),
        "Caller".to_owned(),
    ]];
    for r in &l.rows {
        table.push(vec![
            count(r.count),
            duration::ms_value(r.total_ms, Precision::LOCK_WAIT_TOTAL),
            duration::us_value(r.max_us, Precision::PER_CALL_US),
            if r.spin { "spin" } else { "sleep" }.to_owned(),
            r.waiter.clone(),
            r.caller.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    out.push_str(&columns(
        &table,
        &[Align::Right, Align::Right, Align::Right, Align::Left],
    ));
    if l.hidden > 0 {
        let _ = writeln!(out, "({} more stacks with less wait)", l.hidden);
    }
}
