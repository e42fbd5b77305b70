//! Text of the "Probe program cost" table (`record --program-cost`).

use std::fmt::Write;

use crate::duration::{self, Precision};
use crate::report::program_cost::ProgramCostReport;
use crate::text_width::{pad_right, width};

/// Renders the table: one row per program, the most expensive first.
pub fn render(t: &ProgramCostReport) -> String {
    let mut out = String::new();
    let ms = |ns: u64| duration::ms_value(ns as f64 / duration::NS_PER_MS, Precision::EXACT_PERIOD);
    let scope = match t.episodes {
        0 => "over the whole recording".to_owned(),
        1 => "in its one episode".to_owned(),
        n => format!("median per episode over {n} episodes"),
    };
    let _ = writeln!(
        out,
        "Probe program cost (the kernel's run statistics of reaper's programs, {scope}):"
    );
    let name_width = t
        .rows
        .iter()
        .map(|r| width(&r.program))
        .chain([width("Program"), width("all programs")])
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "  {}  {:>10}  {:>9}  {:>10}  {:>6}",
        pad_right("Program", name_width),
        "Runs",
        "ns/run",
        "ms",
        "Share"
    );
    for r in &t.rows {
        let _ = writeln!(
            out,
            "  {}  {:>10}  {:>9.1}  {:>10}  {:>5.1}%",
            pad_right(&r.program, name_width),
            r.runs_per_episode,
            r.ns_per_run,
            ms(r.ns_per_episode),
            r.share_pct
        );
    }
    let _ = writeln!(
        out,
        "  {}  {:>10}  {:>9}  {:>10}  {:>6}",
        pad_right("all programs", name_width),
        "",
        "",
        ms(t.total_ns_per_episode),
        "100%"
    );
    let _ = writeln!(
        out,
        "  Counted by the kernel around each run (run_cnt, run_time_ns) while BPF_ENABLE_STATS was on: \
         the programs' own time, not the trampoline, kprobe or perf-event entry around them."
    );
    out.push_str(&collision_maps(&t.collision_maps));
    out
}

/// The collision logs' maps with their kernel memory, under the table;
/// empty when the run does not say.
fn collision_maps(maps: &[crate::model::MapMemory]) -> String {
    if maps.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "  Collision logs' kernel memory (each map's memlock, as the kernel accounts it; \
         one entry each when the logs are off):\n",
    );
    let name_width = maps.iter().map(|m| width(&m.map)).max().unwrap_or(0);
    for m in maps {
        let _ = writeln!(
            out,
            "    {}  {:>6} {:<7}  {:>12} bytes",
            pad_right(&m.map, name_width),
            m.max_entries,
            if m.max_entries == 1 {
                "entry"
            } else {
                "entries"
            },
            m.memlock_bytes
        );
    }
    let total: u64 = maps.iter().map(|m| m.memlock_bytes).sum();
    let _ = writeln!(
        out,
        "    {}  {:>14}  {total:>12} bytes",
        pad_right("all", name_width),
        ""
    );
    out
}
