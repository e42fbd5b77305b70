//! Text of the exact function timing: the "reaper order:" header line and
//! the "Exact function timing" section (per-context exact tables beside the
//! sampled period, latency histograms, probe hits, calls not timed).

use std::fmt::Write;

use crate::duration::{self, Precision};
use crate::report::model::{
    CorrectedPeriod, EpisodeExact, ExactRow, ExactTable, FunctionTimingReport, Histogram,
    OrderEvidence, OrderUnknown, ProbeOverhead, ReaperOrder,
};

/// Width of a histogram bar.
const BAR_WIDTH: u64 = 30;

/// One right-aligned numeric column of an exact table: header, width, cell.
struct Column {
    header: &'static str,
    width: usize,
    cell: fn(&ExactRow) -> String,
}

/// The exact table's numeric columns, left to right; the "Symbol (mode)"
/// column follows them. A new column is one entry here.
const COLUMNS: &[Column] = &[
    Column {
        header: "Period (ms)",
        width: 12,
        cell: |r| {
            r.sampled_period_ns.map_or_else(
                || "-".to_owned(),
                |ns| duration::ms(ns, Precision::EXACT_PERIOD),
            )
        },
    },
    Column {
        header: "Exact period (ms)",
        width: 17,
        cell: |r| duration::ms(r.exact_period_ns, Precision::EXACT_PERIOD),
    },
    Column {
        header: "Calls",
        width: 9,
        cell: |r| r.calls.to_string(),
    },
    Column {
        header: "Mean (us)",
        width: 10,
        cell: |r| duration::us(r.mean_ns, Precision::PER_CALL_US),
    },
    Column {
        header: "Max (us)",
        width: 9,
        cell: |r| duration::us(r.max_ns, Precision::PER_CALL_US),
    },
];

/// Short hex form of an address, e.g. `0x7f3a1c000000`.
fn hex(addr: u64) -> String {
    format!("{addr:#x}")
}

fn evidence(e: &OrderEvidence) -> String {
    format!(
        "{} VMAs, {}→{}, via {} in {}",
        e.vmas,
        hex(e.first),
        hex(e.last),
        e.function,
        e.context.name()
    )
}

/// The header line: "reaper order: reverse (64 VMAs, 0x7f..→0x55..)",
/// "reaper order: forward in 2 of 3 episodes (...)", "reaper order:
/// differs between episodes: ..." or "reaper order: unknown (why)".
pub fn order_line(order: &ReaperOrder) -> String {
    match order {
        ReaperOrder::Unknown {
            why: OrderUnknown::NoFunctionProbes,
        } => "reaper order: unknown (needs fentry or kprobe)".to_owned(),
        ReaperOrder::Unknown {
            why: OrderUnknown::ReaperUnmapNotSeen,
        } => "reaper order: unknown (the reaper's per-VMA unmap was not seen: it did no work, or the function did not attach)".to_owned(),
        ReaperOrder::Same {
            order,
            seen_in,
            episodes,
            evidence: e,
        } => {
            let of = if *episodes > 1 {
                format!(" in {seen_in} of {episodes} episodes")
            } else {
                String::new()
            };
            format!("reaper order: {order}{of} ({})", evidence(e))
        }
        ReaperOrder::Differs {
            counts,
            evidence: e,
        } => {
            let parts: Vec<String> = counts
                .iter()
                .map(|c| format!("{} in {}", c.order, c.episodes))
                .collect();
            format!(
                "reaper order: differs between episodes: {} (episode 1: {})",
                parts.join(", "),
                evidence(e)
            )
        }
    }
}

/// The whole "Exact function timing" section.
pub fn render(t: &FunctionTimingReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Exact function timing (in-kernel, per call):");
    if let Some(why) = &t.not_measured {
        let _ = writeln!(out, "  not measured ({why})");
        return out;
    }
    for episode in &t.episodes {
        let Some(exact) = &episode.exact else {
            let _ = writeln!(out, "Episode {}: not measured", episode.index + 1);
            continue;
        };
        let _ = writeln!(out, "Episode {}:", episode.index + 1);
        episode_exact(exact, &mut out);
    }
    out
}

fn episode_exact(e: &EpisodeExact, out: &mut String) {
    for table in &e.tables {
        exact_table(table, out);
    }
    if let Some(overhead) = &e.probe_overhead {
        probe_overhead(overhead, out);
    }
    if !e.histograms.is_empty() {
        let _ = writeln!(out, "\n  Latency histograms (PTE lock, per-VMA unmap):");
        for h in &e.histograms {
            histogram(h, out);
        }
    }
    let hits: Vec<String> = e
        .probe_hits
        .iter()
        .map(|p| format!("{} {}", p.symbol, p.hits))
        .collect();
    let _ = writeln!(
        out,
        "\n  Probe hits (entries, all tasks): {}",
        if hits.is_empty() {
            "none".to_owned()
        } else {
            hits.join(", ")
        }
    );
    let lost: Vec<String> = e
        .calls_not_timed
        .iter()
        .map(|l| format!("{} {}", l.reason, l.calls))
        .collect();
    if !lost.is_empty() {
        let _ = writeln!(out, "  Calls not timed: {}", lost.join(", "));
    }
}

fn exact_table(table: &ExactTable, out: &mut String) {
    let _ = writeln!(out, "  [{}]", table.context.name());
    let mut line = String::from(" ");
    for c in COLUMNS {
        let _ = write!(line, " {:>w$} ", c.header, w = c.width);
    }
    let _ = writeln!(out, "{line} Symbol (mode)");
    for row in &table.rows {
        let mut line = String::from(" ");
        for c in COLUMNS {
            let _ = write!(line, " {:>w$} ", (c.cell)(row), w = c.width);
        }
        let _ = writeln!(out, "{line} {} ({})", row.symbol, row.mode);
    }
}

/// A bcc-style log2 histogram.
fn histogram(h: &Histogram, out: &mut String) {
    let max = h.buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let _ = writeln!(
        out,
        "  {} in {} ({} calls, {}):",
        h.symbol,
        h.context.name(),
        h.calls,
        h.mode
    );
    let _ = writeln!(out, "  {:>25} : {:<9} distribution", "ns", "count");
    for b in &h.buckets {
        let bar = "*".repeat((b.count.saturating_mul(BAR_WIDTH) / max) as usize);
        let _ = writeln!(
            out,
            "  {:>11} -> {:<11} : {:<9} |{:<width$}|",
            b.low_ns,
            b.high_ns,
            b.count,
            bar,
            width = BAR_WIDTH as usize
        );
    }
}

/// The calibration line: each mode's cost per timed call.
fn calibration(o: &ProbeOverhead) -> String {
    if let Some(why) = &o.not_calibrated {
        return format!("not measured ({why})");
    }
    o.costs
        .iter()
        .map(|c| {
            format!(
                "{} {:.0} ns per timed call ({} calls of {}: {:.0} vs {:.0} ns unprobed)",
                c.mode, c.per_call_ns, c.calls_per_batch, c.function, c.probed_ns, c.unprobed_ns
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One episode's estimate table, after its exact tables: exact minus the
/// calibrated probe cost beside the sampled period minus the probes'
/// sampled frames (like with like), and their ratio.
fn probe_overhead(o: &ProbeOverhead, out: &mut String) {
    let ms = exact_ms;
    let _ = writeln!(
        out,
        "\n  Probe overhead (estimate; calibrated cost: {}):",
        calibration(o)
    );
    if o.rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  {:>17}  {:>11}  {:>15}  {:>19}  {:>12}  {:>17}  {:>15}  {:>21}  {:>6}  {:>19}  {:>6}  Symbol (context)",
        "Exact period (ms)",
        "Probe hits",
        "Probe cost (ms)",
        "Exact - probes (ms)",
        "Period (ms)",
        "Probe frames (ms)",
        "Frames/hit (ns)",
        "Period - frames (ms)",
        "Ratio",
        "Exact - frames (ms)",
        "Ratio"
    );
    for r in &o.rows {
        overhead_row(r, out);
    }
    let counted = o.samples_counted_ns.map_or_else(
        || "not measured (recorded before periods were counted)".to_owned(),
        |ns| format!("{} ms", ms(ns as f64)),
    );
    let _ = writeln!(
        out,
        "  Samples: {}; by the cpu-clock count between samples {}; as samples x period {} ms",
        o.samples,
        counted,
        ms(o.samples_nominal_ns as f64)
    );
    let _ = writeln!(
        out,
        "  (Probe frames: sampled [reaper probe: ...] frames under the function, the probes' \
         on-CPU cost in situ. Ratios: (exact - probes) / (period - frames), then \
         (exact - frames) / (period - frames). Exact periods are wall time, sampled ones \
         on-CPU time. -: no estimate, the probes' cost reaches the whole exact period, as \
         for a function shorter than its probes.)"
    );
}

/// Milliseconds of an exact period `ns`, at exact-period precision.
fn exact_ms(ns: f64) -> String {
    duration::ms_value(ns / duration::NS_PER_MS, Precision::EXACT_PERIOD)
}

/// One function's line of the probe-overhead table.
fn overhead_row(r: &CorrectedPeriod, out: &mut String) {
    let ms = exact_ms;
    let opt_ms = |ns: Option<u64>| ns.map_or_else(|| "-".to_owned(), |ns| ms(ns as f64));
    let per_hit = r
        .sampled_per_hit_ns()
        .map_or_else(|| "-".to_owned(), |ns| format!("{ns:.0}"));
    let ratio = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
    let _ = writeln!(
        out,
        "  {:>17}  {:>11.0}  {:>15}  {:>19}  {:>12}  {:>17}  {:>15}  {:>21}  {:>6}  {:>19}  {:>6}  {} ({})",
        ms(r.exact_ns as f64),
        r.probe_hits,
        ms(r.overhead_ns),
        r.corrected_ns.map_or_else(|| "-".to_owned(), ms),
        opt_ms(r.sampled_period_ns),
        opt_ms(r.sampled_probe_ns),
        per_hit,
        opt_ms(r.sampled_without_probes_ns),
        ratio(r.ratio()),
        r.corrected_in_situ_ns().map_or_else(|| "-".to_owned(), ms),
        ratio(r.ratio_in_situ()),
        r.symbol,
        r.context.name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::function_timing::build;
    use crate::report::function_timing::tests::{real, run_with, timing};
    use crate::report::{ReportOptions, render_text};

    #[test]
    fn the_order_sits_under_the_scenario_and_the_section_before_not_measured() {
        let text = render_text(&run_with(None), &ReportOptions::default());
        let lines: Vec<&str> = text.lines().collect();
        let scenario = lines
            .iter()
            .position(|l| l.starts_with("Scenario:"))
            .unwrap();
        assert_eq!(
            lines[scenario + 1],
            "reaper order: unknown (needs fentry or kprobe)"
        );
        let section = lines
            .iter()
            .position(|l| l.starts_with("Exact function timing"))
            .unwrap();
        let not = lines
            .iter()
            .rposition(|l| l.starts_with("Not measured"))
            .unwrap();
        assert_eq!(lines[section - 1], "", "a blank line before the section");
        assert_eq!(not, section + 3, "section, reason, blank line");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn real_sid_x86_64_run_is_reverse_with_fentry() {
        let t = build(&real("sid-x86_64"));
        assert_eq!(
            order_line(&t.order),
            "reaper order: reverse in 2 of 3 episodes (78 VMAs, 0x7ffd26ec6000→0x555560740000, via zap_vma_for_reaping in mrelease_caller)"
        );
        let text = render(&t);
        assert!(
            text.contains("zap_vma_for_reaping in mrelease_caller (78 calls, fentry)"),
            "{text}"
        );
        assert!(
            text.contains("pte_offset_map_lock in mrelease_caller"),
            "{text}"
        );
    }

    #[test]
    fn real_bookworm_arm64_run_is_forward_with_kprobes() {
        let t = build(&real("bookworm-arm64"));
        assert_eq!(
            order_line(&t.order),
            "reaper order: forward in 1 of 3 episodes (76 VMAs, 0x200000→0xfffff139e000, via unmap_page_range in mrelease_caller)"
        );
        let text = render(&t);
        assert!(text.contains("__oom_reap_task_mm (kprobe)"), "{text}");
        assert!(
            !text.contains("pte_offset_map_lock"),
            "6.1 has no PTE-lock function"
        );
    }

    #[test]
    fn without_probes_it_says_not_measured_and_why() {
        let t = build(&run_with(None));
        let text = render(&t);
        assert!(
            text.contains("not measured (fentry load: BPF_PROG_LOAD refused [EPERM 1])"),
            "{text}"
        );
        assert!(!text.contains(" 0.00 "), "{text}");
    }

    #[test]
    fn with_probes_it_prints_order_exact_period_histogram_and_hits() {
        let t = build(&run_with(Some(timing())));
        assert_eq!(
            order_line(&t.order),
            "reaper order: reverse (64 VMAs, 0x7f0000000000→0x550000000000, via zap_vma_for_reaping in mrelease_caller)"
        );
        let text = render(&t);
        assert!(
            text.contains(
                "  Period (ms)  Exact period (ms)      Calls   Mean (us)   Max (us)  Symbol (mode)\n          0.00               3.00          3      1000.0     1500.0  zap_vma_for_reaping (fentry)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "            4 -> 7           : 1         |***************               |"
            ),
            "{text}"
        );
        assert!(
            text.contains("Probe hits (entries, all tasks): zap_vma_for_reaping 70"),
            "{text}"
        );
        assert!(!text.contains("Calls not timed"), "{text}");
    }

    #[test]
    fn a_context_without_samples_shows_a_dash_not_zero() {
        let mut run = run_with(Some(timing()));
        run.episodes[0].contexts.clear();
        let text = render(&build(&run));
        assert!(text.contains("             -               3.00"), "{text}");
    }
}
