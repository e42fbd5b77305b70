//! Text for exact function timing (fentry/fexit or kprobes): the "reaper
//! order" header line, the "Exact period (ms)" table beside the sampled
//! "Period (ms)" per context, latency histograms of the PTE-lock and per-VMA
//! unmap functions, and the probes' hit counts. Without function probes every
//! part says "not measured" with the recorder's reason, never 0.

use std::fmt::Write;

use crate::model::{Episode, FunctionTime, Run, VmaOrderSeen};

/// Concepts whose latency histograms are printed.
const HISTOGRAM_CONCEPTS: [&str; 2] = ["pte_lock", "per_vma_unmap"];
/// Contexts whose VMA order is "the reaper order".
const REAPER_CONTEXTS: [&str; 2] = ["mrelease_caller", "oom_reaper"];
/// Width of a histogram bar.
const BAR_WIDTH: u64 = 30;

/// Why function timing is missing, from the run's `not_measured`.
fn why_not_measured(run: &Run, what: &str) -> String {
    run.not_measured
        .iter()
        .find(|n| n.what.starts_with(what))
        .map_or_else(
            || "no function probe attached".to_owned(),
            |n| n.why.clone(),
        )
}

/// The reaper's VMA order in one episode (mrelease caller first).
fn reaper_order(episode: &Episode) -> Option<&VmaOrderSeen> {
    let timing = episode.function_timing.as_ref()?;
    REAPER_CONTEXTS
        .iter()
        .find_map(|c| timing.vma_orders.iter().find(|o| o.context == *c))
}

/// Short hex form of an address, e.g. `0x7f3a1c000000`.
fn hex(addr: u64) -> String {
    format!("{addr:#x}")
}

/// The header line: "reaper order: reverse (64 VMAs, 0x7f..→0x55..)",
/// "reaper order: forward in 2 of 3 episodes, mixed in 1 (...)", or
/// "reaper order: unknown (needs fentry or kprobe)".
pub fn order_line(run: &Run) -> String {
    let orders: Vec<&VmaOrderSeen> = run.episodes.iter().filter_map(reaper_order).collect();
    let Some(first) = orders.first() else {
        let measured = run.episodes.iter().any(|e| e.function_timing.is_some());
        return if measured {
            "reaper order: unknown (the reaper's per-VMA unmap was not seen: it did no work, or the function did not attach)".to_owned()
        } else {
            "reaper order: unknown (needs fentry or kprobe)".to_owned()
        };
    };
    let evidence = |o: &VmaOrderSeen| {
        format!(
            "{} VMAs, {}→{}, via {} in {}",
            o.vmas,
            hex(o.first),
            hex(o.last),
            o.function,
            o.context
        )
    };
    if orders.iter().all(|o| o.order == first.order) {
        let episodes = if run.episodes.len() > 1 {
            format!(" in {} of {} episodes", orders.len(), run.episodes.len())
        } else {
            String::new()
        };
        return format!(
            "reaper order: {}{episodes} ({})",
            first.order,
            evidence(first)
        );
    }
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for o in &orders {
        match kinds.iter_mut().find(|(k, _)| *k == o.order) {
            Some((_, n)) => *n += 1,
            None => kinds.push((&o.order, 1)),
        }
    }
    let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} in {n}")).collect();
    format!(
        "reaper order: differs between episodes: {} (episode 1: {})",
        parts.join(", "),
        evidence(first)
    )
}

/// Sampled inclusive period of `symbol` in a context, ns.
pub(crate) fn sampled_ns(episode: &Episode, context: &str, symbol: &str) -> Option<u64> {
    let profile = episode.contexts.iter().find(|c| c.context == context)?;
    Some(
        profile
            .stacks
            .iter()
            .filter(|s| s.frames.iter().any(|f| f == symbol))
            .map(|s| s.period_ns)
            .sum(),
    )
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// One episode's exact table per context.
fn exact_tables(run: &Run, episode: &Episode, out: &mut String) {
    let Some(timing) = &episode.function_timing else {
        return;
    };
    let mut contexts: Vec<&str> = timing
        .functions
        .iter()
        .map(|f| f.context.as_str())
        .collect();
    contexts.dedup();
    for context in contexts {
        let _ = writeln!(out, "  [{context}]");
        let _ = writeln!(
            out,
            "  {:>12}  {:>17}  {:>9}  {:>10}  {:>9}  Symbol (mode)",
            "Period (ms)", "Exact period (ms)", "Calls", "Mean (us)", "Max (us)"
        );
        for f in timing.functions.iter().filter(|f| f.context == context) {
            let sampled =
                sampled_ns(episode, context, &f.symbol).map_or_else(|| "-".to_owned(), ms);
            let mean = f.total_ns.checked_div(f.calls).unwrap_or(0);
            let _ = writeln!(
                out,
                "  {:>12}  {:>17}  {:>9}  {:>10}  {:>9}  {} ({})",
                sampled,
                ms(f.total_ns),
                f.calls,
                us(mean),
                us(f.max_ns),
                f.symbol,
                f.mode
            );
        }
    }
    let _ = run;
}

/// A bcc-style log2 histogram.
fn histogram(f: &FunctionTime, out: &mut String) {
    let max = f.hist_log2_ns.iter().copied().max().unwrap_or(0).max(1);
    let first = f.hist_log2_ns.iter().position(|&c| c > 0).unwrap_or(0);
    let _ = writeln!(
        out,
        "  {} in {} ({} calls, {}):",
        f.symbol, f.context, f.calls, f.mode
    );
    let _ = writeln!(out, "  {:>25} : {:<9} distribution", "ns", "count");
    for (i, &count) in f.hist_log2_ns.iter().enumerate().skip(first) {
        let low: u64 = if i == 0 { 0 } else { 1 << i };
        let high: u64 = (1u64 << (i + 1)) - 1;
        let bar = "*".repeat((count * BAR_WIDTH / max) as usize);
        let _ = writeln!(
            out,
            "  {:>11} -> {:<11} : {:<9} |{:<width$}|",
            low,
            high,
            count,
            bar,
            width = BAR_WIDTH as usize
        );
    }
}

/// The whole function-timing section of a run's text report.
pub fn render(run: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Exact function timing (in-kernel, per call):");
    if run.episodes.iter().all(|e| e.function_timing.is_none()) {
        let _ = writeln!(
            out,
            "  not measured ({})",
            why_not_measured(run, "exact per-function timing")
        );
        return out;
    }
    for episode in &run.episodes {
        let Some(timing) = &episode.function_timing else {
            let _ = writeln!(out, "Episode {}: not measured", episode.index + 1);
            continue;
        };
        let _ = writeln!(out, "Episode {}:", episode.index + 1);
        exact_tables(run, episode, &mut out);
        super::probe_cost::render(run, episode, &mut out);
        let hist: Vec<&FunctionTime> = timing
            .functions
            .iter()
            .filter(|f| HISTOGRAM_CONCEPTS.contains(&f.concept.as_str()))
            .collect();
        if !hist.is_empty() {
            let _ = writeln!(out, "\n  Latency histograms (PTE lock, per-VMA unmap):");
            for f in hist {
                histogram(f, &mut out);
            }
        }
        let hits: Vec<String> = timing
            .probe_hits
            .iter()
            .map(|(symbol, hits)| format!("{symbol} {hits}"))
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
        let lost: Vec<String> = timing
            .losses
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        if !lost.is_empty() {
            let _ = writeln!(out, "  Calls not timed: {}", lost.join(", "));
        }
    }
    out
}

/// Adds the function-timing parts to a rendered text report: the order line
/// after the "Scenario:" header line, and the section before the closing
/// "Not measured" list (appended when the report has none).
pub fn splice(run: &Run, report: &str) -> String {
    let mut lines: Vec<String> = report.lines().map(str::to_owned).collect();
    if let Some(i) = lines.iter().position(|l| l.starts_with("Scenario:")) {
        lines.insert(i + 1, order_line(run));
    } else {
        lines.insert(0, order_line(run));
    }
    let section: Vec<String> = render(run).lines().map(str::to_owned).collect();
    match lines.iter().rposition(|l| l.starts_with("Not measured")) {
        Some(i) => {
            let mut block = section;
            block.push(String::new());
            lines.splice(i..i, block);
        }
        None => {
            lines.push(String::new());
            lines.extend(section);
        }
    }
    let mut out = lines.join("\n");
    if report.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{FunctionTiming, NotMeasured};

    fn run_with(timing: Option<FunctionTiming>) -> Run {
        let text = std::fs::read_to_string(format!(
            "{}/tests/data/report/6.18-mrelease.run.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut run: Run = serde_json::from_str(&text).unwrap();
        run.episodes.truncate(1);
        run.episodes[0].function_timing = timing;
        run.not_measured.push(NotMeasured {
            what: "exact per-function timing (calls, inclusive ns, histograms)".into(),
            why: "fentry load: BPF_PROG_LOAD refused [EPERM 1]".into(),
        });
        run
    }

    fn timing() -> FunctionTiming {
        FunctionTiming {
            functions: vec![FunctionTime {
                context: "mrelease_caller".into(),
                concept: "per_vma_unmap".into(),
                symbol: "zap_vma_for_reaping".into(),
                mode: "fentry".into(),
                calls: 3,
                total_ns: 3_000_000,
                max_ns: 1_500_000,
                hist_log2_ns: vec![0, 0, 1, 2],
            }],
            vma_orders: vec![VmaOrderSeen {
                context: "mrelease_caller".into(),
                function: "zap_vma_for_reaping".into(),
                order: "reverse".into(),
                vmas: 64,
                first: 0x7f00_0000_0000,
                last: 0x5500_0000_0000,
                forward_steps: 0,
                reverse_steps: 63,
                addresses: vec![],
            }],
            probe_hits: BTreeMap::from([("zap_vma_for_reaping".to_owned(), 70)]),
            ..FunctionTiming::default()
        }
    }

    #[test]
    fn splice_puts_the_order_under_the_scenario_and_the_section_before_not_measured() {
        let run = run_with(None);
        let text = splice(&run, "tool\nScenario: x\nbody\n\nNot measured:\n  a\n");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "reaper order: unknown (needs fentry or kprobe)");
        let section = lines
            .iter()
            .position(|l| l.starts_with("Exact function timing"))
            .unwrap();
        let not = lines
            .iter()
            .position(|l| l.starts_with("Not measured"))
            .unwrap();
        assert!(section < not);
        assert!(text.ends_with('\n'));
    }

    fn real(name: &str) -> Run {
        let path = format!(
            "{}/tests/data/function_timing/{name}.run.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
    }

    #[test]
    fn real_sid_x86_64_run_is_reverse_with_fentry() {
        let run = real("sid-x86_64");
        assert_eq!(
            order_line(&run),
            "reaper order: reverse in 2 of 3 episodes (78 VMAs, 0x7ffd26ec6000→0x555560740000, via zap_vma_for_reaping in mrelease_caller)"
        );
        let text = render(&run);
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
        let run = real("bookworm-arm64");
        assert_eq!(
            order_line(&run),
            "reaper order: forward in 1 of 3 episodes (76 VMAs, 0x200000→0xfffff139e000, via unmap_page_range in mrelease_caller)"
        );
        let text = render(&run);
        assert!(text.contains("__oom_reap_task_mm (kprobe)"), "{text}");
        assert!(
            !text.contains("pte_offset_map_lock"),
            "6.1 has no PTE-lock function"
        );
    }

    #[test]
    fn without_probes_it_says_not_measured_and_why() {
        let run = run_with(None);
        assert_eq!(
            order_line(&run),
            "reaper order: unknown (needs fentry or kprobe)"
        );
        let text = render(&run);
        assert!(
            text.contains("not measured (fentry load: BPF_PROG_LOAD refused [EPERM 1])"),
            "{text}"
        );
        assert!(!text.contains(" 0.00 "), "{text}");
    }

    #[test]
    fn with_probes_it_prints_order_exact_period_histogram_and_hits() {
        let run = run_with(Some(timing()));
        assert_eq!(
            order_line(&run),
            "reaper order: reverse (64 VMAs, 0x7f0000000000→0x550000000000, via zap_vma_for_reaping in mrelease_caller)"
        );
        let text = render(&run);
        assert!(text.contains("Exact period (ms)"), "{text}");
        assert!(text.contains("3.00"), "{text}");
        assert!(text.contains("zap_vma_for_reaping (fentry)"), "{text}");
        assert!(text.contains("4 -> 7"), "{text}");
        assert!(
            text.contains("Probe hits (entries, all tasks): zap_vma_for_reaping 70"),
            "{text}"
        );
    }
}
