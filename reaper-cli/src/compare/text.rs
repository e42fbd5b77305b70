//! Plain-text rendering of a [`Diff`]: the header, the thread's summary box
//! with both sides as columns, the exact-timing table and the per-context
//! function tables. Widths are counted in characters, so →, – and ↑ align.

use std::fmt::Write;

use super::clean::LossPolicy;
use super::diff::{CollisionDiff, ContextTable, Diff, Exact, MetricRow, SideInfo};
use super::metrics::Part;
use super::quantity::{
    Comparison, Coverages, DIFF_ALPHA, MIN_RUNS_FOR_TEST, Side, p_text, significance,
};
use crate::duration::ms_for_size;
use crate::report::text::Notes;

/// Split-line label, as in the thread.
const SPLIT_LABEL: &str = "  (exit_mmap + reaper work)";

fn signed_ms(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", ms_for_size(v))
    } else if v == 0.0 {
        "±0".to_owned()
    } else {
        ms_for_size(v)
    }
}

fn cell(side: &Side, notes: &mut Notes) -> String {
    match side {
        Side::Measured {
            median, min, max, ..
        } => format!(
            "{} ({}–{})",
            ms_for_size(*median),
            ms_for_size(*min),
            ms_for_size(*max)
        ),
        Side::NotMeasured { why } => notes.cell(why),
    }
}

fn median_only(side: &Side) -> String {
    side.median().map_or_else(|| "–".to_owned(), ms_for_size)
}

/// "+2.0 ms (+7.4%)", "+0.50 ms (new)", or "" when a side is missing.
pub fn delta(c: &Comparison) -> String {
    let Some(d) = c.delta_ms else {
        return String::new();
    };
    match c.delta_pct {
        Some(p) => format!("{} ms ({:+.1}%)", signed_ms(d), p),
        None if d == 0.0 => "±0 ms".to_owned(),
        None => format!("{} ms (from 0)", signed_ms(d)),
    }
}

/// "+28.5 [+20.1, +35.0]": the shift of the run medians and its 95%
/// interval in ms, "[n/a]" when the runs allow no interval, "" when a side
/// has no run.
pub fn shift(c: &Comparison) -> String {
    let Some(s) = &c.shift else {
        return String::new();
    };
    match s.ms.ci {
        Some((lo, hi)) => format!(
            "{} [{}, {}]",
            signed_ms(s.ms.estimate),
            signed_ms(lo),
            signed_ms(hi)
        ),
        None => format!("{} [n/a]", signed_ms(s.ms.estimate)),
    }
}

/// The same in percent of A's run medians: "+21.4% [+15.0, +26.0]".
pub fn shift_pct(c: &Comparison) -> String {
    let Some(s) = &c.shift else {
        return String::new();
    };
    let Some(pct) = s.pct else {
        return format!("{} ms (from 0)", signed_ms(s.ms.estimate));
    };
    match s.ci_pct {
        Some((lo, hi)) => format!("{pct:+.1}% [{lo:+.1}, {hi:+.1}]"),
        None => format!("{pct:+.1}% [n/a]"),
    }
}

/// What the shift column means, under each table that has one.
pub const SHIFT_LEGEND: &str = "Shift: Hodges-Lehmann shift of B's run medians against A's (median of all pairwise differences), ms, with its distribution-free 95% interval (Moses); [n/a]: too few runs for a 95% interval (4 against 4, or 3 against 5, at least).";

/// "↑ p=0.008" (B significantly larger), "↓ p=0.03", "~ p=0.42", for the
/// compact split line.
fn arrow(c: &Comparison) -> String {
    match &c.test {
        None => String::new(),
        Some(t) if t.p_two_sided < DIFF_ALPHA && t.p_greater < t.p_less => {
            format!("↑ {}", p_text(t.p_two_sided))
        }
        Some(t) if t.p_two_sided < DIFF_ALPHA => format!("↓ {}", p_text(t.p_two_sided)),
        Some(t) => format!("~ {}", p_text(t.p_two_sided)),
    }
}

fn pad(s: &str, width: usize) -> String {
    crate::text_width::pad_right(s, width)
}

/// Renders rows as a boxed table; a `None` row is a separator.
fn boxed(header: &[String], rows: &[Option<Vec<String>>], out: &mut String) {
    let mut widths: Vec<usize> = header.iter().map(|h| crate::text_width::width(h)).collect();
    for row in rows.iter().flatten() {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(crate::text_width::width(c));
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| "-".repeat(w + 2))
        .collect::<Vec<_>>()
        .join("+");
    let rule = format!("+{rule}+\n");
    let line = |cells: &[String]| {
        let inner: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {} ", pad(c, *w)))
            .collect();
        format!("|{}|\n", inner.join("|"))
    };
    out.push_str(&rule);
    out.push_str(&line(header));
    out.push_str(&rule);
    for row in rows {
        match row {
            Some(cells) => out.push_str(&line(cells)),
            None => out.push_str(&rule),
        }
    }
    if !matches!(rows.last(), Some(None)) {
        out.push_str(&rule);
    }
}

/// "sampled 5 of 5, latency 3 of 5 (2 lost race)".
pub fn usage_text(s: &SideInfo, policy: &LossPolicy) -> String {
    s.usage
        .iter()
        .map(|u| format!("{} {}", u.scope.label(), u.coverage.text(policy)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "45 of 4122 (1.1%; at most 2.4% in one episode; 0 over the 3% tolerance)".
pub fn stack_loss_text(s: &SideInfo, policy: &LossPolicy) -> String {
    let l = &s.stack_loss;
    if l.lost == 0 {
        return format!("0 of {}", l.samples);
    }
    let share = if l.samples == 0 {
        100.0
    } else {
        l.lost as f64 / l.samples as f64 * 100.0
    };
    format!(
        "{} of {} ({share:.1}%; at most {:.1}% in one episode; {} episode{} over the {}% tolerance)",
        l.lost,
        l.samples,
        l.worst_episode_pct,
        l.over_tolerance,
        if l.over_tolerance == 1 { "" } else { "s" },
        policy.max_stack_loss_pct
    )
}

fn side_line(name: &str, s: &SideInfo, policy: &LossPolicy, out: &mut String) {
    let _ = writeln!(
        out,
        "{name}: {} — {} ({} run{}, {} episode{})",
        s.label,
        s.path,
        s.runs,
        if s.runs == 1 { "" } else { "s" },
        s.episodes,
        if s.episodes == 1 { "" } else { "s" },
    );
    let _ = writeln!(
        out,
        "   Linux {} {}, {} CPUs, {}, victim {}, function probes: {}, {}",
        s.kernels.join(", "),
        s.archs.join(", "),
        s.cpus.join(", "),
        s.freqs.join(", "),
        s.victim_sizes.join(", "),
        s.function_probes.join(", "),
        s.tools.join(", ")
    );
    let _ = writeln!(out, "   reaper VMA order: {}", s.reaper_order);
    let _ = writeln!(out, "   episodes used: {}", usage_text(s, policy));
    if s.stack_loss.samples > 0 || s.stack_loss.lost > 0 {
        let _ = writeln!(
            out,
            "   samples without a stack: {}",
            stack_loss_text(s, policy)
        );
    }
    if s.partial_runs > 0 {
        let _ = writeln!(
            out,
            "   PARTIAL: {} run(s) were cut short; their partial episodes are left out",
            s.partial_runs
        );
    }
    if !s.losses.is_empty() {
        let lost: Vec<String> = s.losses.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let _ = writeln!(
            out,
            "   LOSSES: {} (each leaves an episode out only of the figures it can bias; see `reaper report` for what to enlarge)",
            lost.join(", ")
        );
    }
}

/// "5/5 · 3/5", with a note reference when episodes were left out.
fn used_cell(c: &Coverages, policy: &LossPolicy, notes: &mut Notes) -> String {
    let cell = format!(
        "{}/{} · {}/{}",
        c.a.used, c.a.episodes, c.b.used, c.b.episodes
    );
    let why: Vec<String> = [("A", &c.a), ("B", &c.b)]
        .iter()
        .filter_map(|(name, cov)| {
            let r = cov.reasons(policy);
            (!r.is_empty()).then(|| format!("{name}: {r}"))
        })
        .collect();
    if why.is_empty() {
        cell
    } else {
        format!(
            "{cell} {}",
            notes.mark(&format!("not used: {}", why.join("; ")))
        )
    }
}

/// The line under a table whose rows all use the same episodes.
fn used_line(c: &Coverages, policy: &LossPolicy, out: &mut String) {
    let _ = writeln!(
        out,
        "Episodes used by every row: A {}, B {}",
        c.a.text(policy),
        c.b.text(policy)
    );
}

fn header(d: &Diff, out: &mut String) {
    side_line("A", &d.header.a, &d.header.policy, out);
    side_line("B", &d.header.b, &d.header.policy, out);
    if d.header.differences.is_empty() {
        let _ = writeln!(
            out,
            "Same kernel, arch, CPUs, sampling, scenario, function probes and tool."
        );
    } else {
        let _ = writeln!(out, "Differences: {}", d.header.differences.join("; "));
    }
    for note in &d.header.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    for warning in super::design::warnings(&d.design, ("A", "B")) {
        let _ = writeln!(out, "WARNING: {warning}");
    }
}

fn column(name: &str, s: &SideInfo) -> String {
    format!("{name}: {}", s.label)
}

fn summary_rows(
    metrics: &[MetricRow],
    policy: &LossPolicy,
    notes: &mut Notes,
) -> Vec<Option<Vec<String>>> {
    let mut rows = Vec::new();
    for total in metrics.iter().filter(|m| m.part == Part::Total) {
        let c = &total.comparison;
        rows.push(Some(vec![
            total.label.clone(),
            cell(&c.a, notes),
            cell(&c.b, notes),
            delta(c),
            shift(c),
            significance(c),
            used_cell(&c.coverage, policy, notes),
        ]));
        let part = |p: Part| metrics.iter().find(|m| m.row == total.row && m.part == p);
        if let (Some(victim), Some(reaper)) = (part(Part::ExitMmap), part(Part::Reaper)) {
            let (v, r) = (&victim.comparison, &reaper.comparison);
            let both = |f: &dyn Fn(&Comparison) -> String| format!("{} + {}", f(v), f(r));
            let split_delta = match (v.delta_ms, r.delta_ms) {
                (Some(x), Some(y)) => format!("{} + {} ms", signed_ms(x), signed_ms(y)),
                _ => String::new(),
            };
            let sig = if v.test.is_some() {
                format!("{} / {}", arrow(v), arrow(r))
            } else {
                String::new()
            };
            let measured = v.a.median().is_some() || v.b.median().is_some();
            if measured {
                rows.push(Some(vec![
                    SPLIT_LABEL.to_owned(),
                    both(&|c| median_only(&c.a)),
                    both(&|c| median_only(&c.b)),
                    split_delta,
                    String::new(),
                    sig,
                    String::new(),
                ]));
            }
        }
        rows.push(None);
    }
    rows
}

fn summary(d: &Diff, out: &mut String) {
    let _ = writeln!(
        out,
        "Summary of measurements (ms): median over episodes (min–max), delta = B − A"
    );
    let mut notes = Notes::default();
    let rows = summary_rows(&d.metrics, &d.header.policy, &mut notes);
    let head = [
        "Category".to_owned(),
        column("A", &d.header.a),
        column("B", &d.header.b),
        "Delta".to_owned(),
        "Shift [95% CI]".to_owned(),
        "Significance (Mann-Whitney U)".to_owned(),
        "Episodes used (A · B)".to_owned(),
    ];
    boxed(&head, &rows, out);
    let _ = writeln!(
        out,
        "Significance: the run is the unit: two-sided Mann-Whitney U of the run medians at p<{DIFF_ALPHA} when both sides have ≥{MIN_RUNS_FOR_TEST} runs; split line: ↑ B larger, ↓ B smaller, ~ within the noise."
    );
    let _ = writeln!(out, "{SHIFT_LEGEND}");
    notes.render(out);
}

fn plain_table(head: &[&str], rows: &[Vec<String>], out: &mut String) {
    let mut widths: Vec<usize> = head.iter().map(|h| crate::text_width::width(h)).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(crate::text_width::width(c));
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    out.push_str(&line(head.iter().map(|h| (*h).to_owned()).collect()));
    for row in rows {
        out.push_str(&line(row.clone()));
    }
}

fn comparison_cells(c: &Comparison, notes: &mut Notes) -> [String; 5] {
    [
        cell(&c.a, notes),
        cell(&c.b, notes),
        delta(c),
        shift(c),
        significance(c),
    ]
}

fn exact(e: &Exact, policy: &LossPolicy, out: &mut String) {
    if let Some(why) = &e.not_measured {
        let _ = writeln!(out, "Exact function timing: not measured ({why})");
        return;
    }
    let _ = writeln!(
        out,
        "Exact function timing (ms): inclusive time per episode, median (min–max)"
    );
    used_line(&e.coverage, policy, out);
    let mut notes = Notes::default();
    let rows: Vec<Vec<String>> = e
        .rows
        .iter()
        .map(|r| {
            let mut row = vec![r.context.clone(), r.function.clone()];
            row.extend(comparison_cells(&r.comparison, &mut notes));
            row
        })
        .collect();
    plain_table(
        &[
            "Context",
            "Function",
            "A",
            "B",
            "Delta",
            "Shift [95% CI]",
            "Significance",
        ],
        &rows,
        out,
    );
    notes.render(out);
}

/// The waiter × holder tables of both sides (means, no test: the cells
/// are sparse counts; the exact PTE-lock row above carries the statistics).
fn collisions(c: &CollisionDiff, out: &mut String) {
    let title = "PTE-lock waits by waiter × holder, mean per episode";
    let _ = writeln!(
        out,
        "{title} (A: {} episodes, B: {}):",
        c.episodes.a, c.episodes.b
    );
    for why in &c.not_measured {
        let _ = writeln!(out, "  not measured on {why}");
    }
    if c.rows.is_empty() {
        let _ = writeln!(
            out,
            "  no PTE-lock wait of a tracked context on either side"
        );
        return;
    }
    let rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|r| {
            vec![
                r.waiter.name().to_owned(),
                r.holder.name(),
                format!("{:.1}", r.waits.a),
                format!("{:.2}", r.total_ms.a),
                format!("{:.1}", r.waits.b),
                format!("{:.2}", r.total_ms.b),
                signed_ms(r.total_ms.b - r.total_ms.a),
            ]
        })
        .collect();
    plain_table(
        &[
            "Waiter", "Holder", "A waits", "A ms", "B waits", "B ms", "Delta ms",
        ],
        &rows,
        out,
    );
}

fn context(t: &ContextTable, policy: &LossPolicy, out: &mut String) {
    let _ = writeln!(
        out,
        "== {} ({}): sampled period (ms), median per episode (min–max) ==",
        t.label, t.context
    );
    used_line(&t.coverage, policy, out);
    if t.rows.is_empty() {
        let _ = writeln!(out, "no samples on either side");
        return;
    }
    let mut notes = Notes::default();
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| {
            let name = match r.concept {
                Some(c) => format!("{} [{c}]", r.name),
                None => r.name.clone(),
            };
            let mut row = vec![name];
            row.extend(comparison_cells(&r.comparison, &mut notes));
            row
        })
        .collect();
    plain_table(
        &[
            "Symbol",
            "A",
            "B",
            "Delta",
            "Shift [95% CI]",
            "Significance",
        ],
        &rows,
        out,
    );
    notes.render(out);
}

/// Renders the whole diff.
pub fn render(d: &Diff) -> String {
    let mut out = String::new();
    header(d, &mut out);
    out.push('\n');
    summary(d, &mut out);
    out.push('\n');
    exact(&d.exact, &d.header.policy, &mut out);
    if let Some(c) = &d.collisions {
        out.push('\n');
        collisions(c, &mut out);
    }
    for t in &d.contexts {
        out.push('\n');
        context(t, &d.header.policy, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_milliseconds_keep_the_precision_of_their_size() {
        assert_eq!(signed_ms(2.0), "+2.00");
        assert_eq!(signed_ms(-12.0), "-12.0");
    }

    #[test]
    fn deltas() {
        let c = super::super::quantity::comparison(
            &[vec![10.0]],
            &[vec![12.0]],
            String::new,
            String::new,
        );
        assert_eq!(delta(&c), "+2.00 ms (+20.0%)");
        let c = super::super::quantity::comparison(
            &[vec![0.0]],
            &[vec![0.5]],
            String::new,
            String::new,
        );
        assert_eq!(delta(&c), "+0.50 ms (from 0)");
        let c = super::super::quantity::comparison(
            &[vec![0.0]],
            &[vec![0.0]],
            String::new,
            String::new,
        );
        assert_eq!(delta(&c), "±0 ms");
    }

    #[test]
    fn long_reasons_become_notes() {
        let mut notes = Notes::default();
        assert_eq!(notes.cell("short"), "not measured (short)");
        let long = "the lock_wait probe did not attach: tracepoint missing";
        assert_eq!(notes.cell(long), "not measured [1]");
        assert_eq!(notes.cell(long), "not measured [1]");
        assert_eq!(notes.0.len(), 1);
    }
}
