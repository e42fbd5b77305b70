//! Plain-text rendering of a [`Report`]: the header, the summary box, the
//! per-context tables and call graphs, the per-episode timelines and
//! counters, the exact function timing, and the "not measured" list. Columns
//! are aligned on display width ([`crate::text_width`]), so non-ASCII labels
//! (→, –, µ, and wide CJK characters) line up too.

mod collision;
mod context;
mod episode;
mod function_timing;
mod notes;
mod program_cost;
mod summary;

#[cfg(test)]
pub(crate) use collision::render as render_collisions;
pub(crate) use notes::Notes;
#[cfg(test)]
pub(crate) use program_cost::render as program_cost_text;

use std::fmt::Write;

use super::model::{Header, ReaperOrder, Report};

use crate::model::{AttachMode, ProbeOutcome};

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&report.header, &report.function_timing.order, &mut out);
    if let Some(watch) = &report.header.watch {
        out.push('\n');
        episode::watch_list(watch, &report.episodes, &mut out);
    }
    out.push('\n');
    out.push_str(&summary::render(&report.summary));
    for context in &report.contexts {
        out.push('\n');
        out.push_str(&context::render(context, &report.header));
    }
    for episode in &report.episodes {
        out.push('\n');
        out.push_str(&episode::render(episode));
    }
    out.push('\n');
    out.push_str(&function_timing::render(&report.function_timing));
    if let Some(collisions) = &report.collisions {
        out.push('\n');
        out.push_str(&collision::render(collisions));
    }
    if let Some(cost) = &report.program_cost {
        out.push('\n');
        out.push_str(&program_cost::render(cost));
    }
    out.push('\n');
    not_measured(report, &mut out);
    out
}

/// Run-level lines; the reaper order goes right under the scenario.
fn header(h: &Header, order: &ReaperOrder, out: &mut String) {
    if let Some(reason) = &h.partial {
        let _ = writeln!(out, "PARTIAL: {reason}");
    }
    if !h.losses.is_empty() {
        let _ = writeln!(out, "LOSSES: this run lost data; its figures undercount:");
        for loss in &h.losses {
            let _ = writeln!(out, "  {}", loss_line(loss));
        }
    }
    let clock = h
        .clocksource
        .as_ref()
        .map_or_else(String::new, |c| format!(", clocksource {c}"));
    let _ = writeln!(
        out,
        "{} — Linux {} {}, {} CPUs{clock}",
        h.tool, h.kernel_release, h.arch, h.cpus
    );
    let _ = writeln!(out, "Scenario: {}", h.scenario);
    let _ = writeln!(out, "{}", function_timing::order_line(order));
    episodes_lines(h, out);
    let _ = writeln!(
        out,
        "Sampling: cpu-clock at {} Hz (period {} ns)",
        h.freq_hz, h.sample_period_ns
    );
    if let Some(lockdown) = &h.lockdown {
        let _ = writeln!(
            out,
            "Kernel policy: locked down, {} (from {}); the probes the kernel refused are listed once below, with its answers (README: \"{}\"; `reaper doctor` says more)",
            lockdown.mode.map_or("level unknown", |m| m.name()),
            lockdown.source,
            crate::readme::LOCKDOWN
        );
    }
    probes(h, out);
}

/// When the run was recorded and how many episodes it holds (of how many
/// requested), and how many lost the race.
fn episodes_lines(h: &Header, out: &mut String) {
    let requested = h.episodes_requested as usize;
    let of = if requested > h.episodes {
        format!(" of {requested} requested")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Recorded: {}, {} episode{}{of}",
        crate::duration::utc(h.started_unix),
        h.episodes,
        if h.episodes == 1 { "" } else { "s" }
    );
    if let Some(warmup) = &h.warmup {
        let _ = writeln!(out, "Warm-up: {warmup}; discarded before episode 1");
    }
    if h.lost_races > 0 {
        let _ = writeln!(
            out,
            "Lost races: {} of {} episodes (process_mrelease returned ESRCH); left out of medians{}",
            h.lost_races,
            h.episodes,
            if h.episodes > h.episodes_requested as usize {
                ", and replaced by fresh episodes"
            } else {
                ""
            }
        );
    }
}

/// Attached probe groups on one line (timeline tracepoints counted), then
/// one line per probe that did not attach, with the kernel's answer.
fn probes(h: &Header, out: &mut String) {
    let attached: Vec<_> = h.probes.iter().filter(|p| p.status.is_attached()).collect();
    let mut names: Vec<String> = attached
        .iter()
        .filter(|p| !p.probe.starts_with("timeline:"))
        .map(|p| format!("{} ({})", p.probe, p.mode))
        .collect();
    let timeline = attached
        .iter()
        .filter(|p| p.probe.starts_with("timeline:"))
        .count();
    if timeline > 0 {
        names.push(format!("timeline ({timeline} tracepoints)"));
    }
    if !names.is_empty() {
        let _ = writeln!(out, "Probes attached: {}", names.join(", "));
    }
    // Probes refused for the same reason share one line (on a kernel without
    // fentry and kprobes every function probe fails the same way).
    let mut refused: Vec<(&ProbeOutcome, Vec<String>)> = Vec::new();
    for p in h.probes.iter().filter(|p| !p.status.is_attached()) {
        match refused.iter_mut().find(|(status, _)| **status == p.status) {
            Some((_, probes)) => probes.push(probe_label(p)),
            None => refused.push((&p.status, vec![probe_label(p)])),
        }
    }
    for (status, probes) in refused {
        let (label, count) = if probes.len() == 1 {
            ("Probe", String::new())
        } else {
            ("Probes", format!(" ({})", probes.len()))
        };
        let _ = writeln!(
            out,
            "{label} NOT attached{count}: {}: {status}",
            probes.join(", ")
        );
    }
}

/// "lock_wait (tracepoint)", or just the name when no mode was chosen.
fn probe_label(p: &crate::model::ProbeUse) -> String {
    if p.mode == AttachMode::None {
        p.probe.clone()
    } else {
        format!("{} ({})", p.probe, p.mode)
    }
}

/// "LOST: 12 samples had no stack (...) — enlarge with --stack-map-size".
pub(crate) fn loss_line(loss: &super::model::Loss) -> String {
    match &loss.flag {
        Some(flag) => format!("LOST: {} {} — enlarge with {flag}", loss.count, loss.what),
        None => format!("LOST: {} {}", loss.count, loss.what),
    }
}

fn not_measured(report: &Report, out: &mut String) {
    if report.not_measured.is_empty() {
        let _ = writeln!(out, "Not measured: nothing; every probe group attached.");
        return;
    }
    let _ = writeln!(out, "Not measured:");
    for n in &report.not_measured {
        let _ = writeln!(out, "  - {}: {}", n.subject, n.why);
    }
}

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// Lays rows out in columns separated by two spaces; the last column is
/// not padded. Widths are terminal columns, not bytes or characters.
pub(crate) fn columns(rows: &[Vec<String>], align: &[Align]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| crate::text_width::width(c))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let last = i + 1 == row.len();
            let pad = widths[i].saturating_sub(crate::text_width::width(cell));
            let right = align.get(i).copied().unwrap_or(Align::Left) == Align::Right;
            if right {
                line.push_str(&" ".repeat(pad));
            }
            line.push_str(cell);
            if !last {
                if !right {
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str("  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_display_width() {
        let rows = vec![
            vec!["内核 6.1".to_owned(), "1".to_owned(), "x".to_owned()],
            vec!["7.2".to_owned(), "22".to_owned(), "y".to_owned()],
        ];
        let text = columns(&rows, &[Align::Left, Align::Right]);
        assert_eq!(text, "内核 6.1   1  x\n7.2       22  y\n");
    }

    #[test]
    fn columns_align_on_characters() {
        let rows = vec![
            vec!["a".to_owned(), "µs".to_owned(), "x".to_owned()],
            vec!["long".to_owned(), "1".to_owned(), "y".to_owned()],
        ];
        let text = columns(&rows, &[Align::Left, Align::Right]);
        assert_eq!(text, "a     µs  x\nlong   1  y\n");
    }
}
