//! The "Summary of measurements (ms)" box, laid out like the thread's.
//!
//! Up to [`MAX_EPISODE_COLUMNS`] episodes get a column each; more get a
//! median and a min–max column. A row no episode could measure, for the
//! same reason, is one merged cell so the reason is printed once.

use std::fmt::Write;

use super::notes::Notes;
use crate::duration::{self, Precision};
use crate::report::MAX_EPISODE_COLUMNS;
use crate::report::model::{Cell, RowStats, Summary, SummaryRow, Value};
use crate::text_width::width;

/// The two text lines of a cell: the total, and the split (may be empty).
type Lines = (String, String);

/// Renders the box.
pub fn render(summary: &Summary) -> String {
    let mut out = String::from("Summary of measurements (ms):\n");
    if summary.episodes == 0 {
        out.push_str("  (no episodes recorded)\n");
        return out;
    }
    let per_episode = summary.episodes <= MAX_EPISODE_COLUMNS;
    let counted = summary.counted();
    let headers = headers(summary, per_episode, counted);
    let mut notes = Notes::default();
    let rows: Vec<RowText> = summary
        .rows
        .iter()
        .map(|r| row_text(r, per_episode, counted, &mut notes))
        .collect();
    let label_width = rows
        .iter()
        .flat_map(|r| [width(&r.label), width(&r.split_label) + 2])
        .chain([8])
        .max()
        .unwrap_or(0);
    let widths = column_widths(&headers, &rows);
    let inner: usize = label_width + 2 + widths.iter().map(|w| w + 1).sum::<usize>();
    let full = format!("+{}+\n", "-".repeat(inner));
    let sep = separator(label_width, &widths);
    out.push_str(&full);
    let header_cells: Vec<String> = headers.iter().map(|h| centre(h, 0)).collect();
    line(
        &mut out,
        "Category",
        label_width,
        &Cells::Each(header_cells),
        &widths,
    );
    for row in &rows {
        out.push_str(&sep);
        row_lines(&mut out, row, label_width, &widths);
    }
    out.push_str(&full);
    lost_race_line(&mut out, summary, counted, per_episode);
    notes.render(&mut out);
    out
}

/// The column headers: one per episode (lost races marked), or the median
/// of the `counted` episodes and their range.
fn headers(summary: &Summary, per_episode: bool, counted: usize) -> Vec<String> {
    if per_episode {
        (1..=summary.episodes)
            .map(|i| match summary.lost.get(i - 1) {
                Some(true) => format!("episode {i} (lost race)"),
                _ => format!("episode {i}"),
            })
            .collect()
    } else {
        vec![format!("median of {counted}"), "min–max".to_owned()]
    }
}

/// One row's lines: its totals, then its split (when it has one).
fn row_lines(out: &mut String, row: &RowText, label_width: usize, widths: &[usize]) {
    let (totals, splits) = match &row.cells {
        RowCells::Each(cells) => (
            Cells::Each(cells.iter().map(|c| c.0.clone()).collect()),
            Cells::Each(cells.iter().map(|c| c.1.clone()).collect()),
        ),
        RowCells::Merged(text) => (Cells::Merged(text.clone()), Cells::Merged(String::new())),
    };
    line(out, &row.label, label_width, &totals, widths);
    if !row.split_label.is_empty() {
        let split = format!("  {}", row.split_label);
        line(out, &split, label_width, &splits, widths);
    }
}

/// The line under the box saying how many episodes lost the race (none:
/// no line).
fn lost_race_line(out: &mut String, summary: &Summary, counted: usize, per_episode: bool) {
    let lost = summary.episodes - counted;
    if lost > 0 {
        let _ = writeln!(
            out,
            "  lost race: {lost} of {} episodes (process_mrelease returned ESRCH: every victim thread had left its mm, so the reaper side did no work); {}",
            summary.episodes,
            if per_episode {
                "its column is shown but is not the reaper's work"
            } else {
                "left out of the median and min–max"
            }
        );
    }
}

struct RowText {
    label: String,
    split_label: String,
    cells: RowCells,
}

enum RowCells {
    Each(Vec<Lines>),
    Merged(String),
}

enum Cells {
    Each(Vec<String>),
    Merged(String),
}

fn row_text(row: &SummaryRow, per_episode: bool, episodes: usize, notes: &mut Notes) -> RowText {
    let first_why = match row.cells.first() {
        Some(Cell::NotMeasured { why }) => Some(why),
        _ => None,
    };
    let uniform = first_why.is_some_and(|why| {
        row.cells
            .iter()
            .all(|c| matches!(c, Cell::NotMeasured { why: w } if w == why))
    });
    let has_split = row.split_label.is_some();
    let cells = match first_why {
        Some(why) if uniform => RowCells::Merged(notes.cell(why)),
        _ if per_episode => RowCells::Each(
            row.cells
                .iter()
                .map(|c| cell_lines(c, has_split, notes))
                .collect(),
        ),
        _ => RowCells::Each(stats_lines(row.stats.as_ref(), episodes, has_split)),
    };
    RowText {
        label: row.label.clone(),
        split_label: row.split_label.clone().unwrap_or_default(),
        cells,
    }
}

fn ms(v: f64) -> String {
    duration::ms_value(v, Precision::SUMMARY)
}

fn waits(count: Option<u64>) -> String {
    count.map_or_else(String::new, |c| format!(" ({c} waits)"))
}

fn cell_lines(cell: &Cell, has_split: bool, notes: &mut Notes) -> Lines {
    match cell {
        Cell::NotMeasured { why } => (notes.cell(why), String::new()),
        Cell::Measured(v) => value_lines(v, has_split),
    }
}

fn value_lines(v: &Value, has_split: bool) -> Lines {
    let total = format!("{}{}", ms(v.total_ms), waits(v.count));
    let split = match v.split_ms {
        Some((a, b)) if has_split => format!("{} + {}", ms(a), ms(b)),
        _ => String::new(),
    };
    (total, split)
}

fn stats_lines(stats: Option<&RowStats>, episodes: usize, has_split: bool) -> Vec<Lines> {
    let Some(s) = stats else {
        let none = ("not measured".to_owned(), String::new());
        return vec![none.clone(), none];
    };
    let (mut median_total, median_split) = value_lines(&s.median, has_split);
    if s.measured < episodes {
        let _ = write!(median_total, " [{} of {episodes}]", s.measured);
    }
    let range = |a: f64, b: f64| format!("{}–{}", ms(a), ms(b));
    let mut range_total = range(s.min.total_ms, s.max.total_ms);
    if let (Some(lo), Some(hi)) = (s.min.count, s.max.count) {
        let _ = write!(range_total, " ({lo}–{hi} waits)");
    }
    let range_split = match (s.min.split_ms, s.max.split_ms) {
        (Some(lo), Some(hi)) if has_split => {
            format!("{} + {}", range(lo.0, hi.0), range(lo.1, hi.1))
        }
        _ => String::new(),
    };
    vec![(median_total, median_split), (range_total, range_split)]
}

fn column_widths(headers: &[String], rows: &[RowText]) -> Vec<usize> {
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h) + 2).collect();
    for row in rows {
        if let RowCells::Each(cells) = &row.cells {
            for (w, (a, b)) in widths.iter_mut().zip(cells) {
                *w = (*w).max(width(a) + 2).max(width(b) + 2);
            }
        }
    }
    // A merged cell spans every column and their separators.
    for row in rows {
        if let RowCells::Merged(text) = &row.cells {
            let span = widths.iter().sum::<usize>() + widths.len() - 1;
            let need = width(text) + 2;
            if need > span
                && let Some(last) = widths.last_mut()
            {
                *last += need - span;
            }
        }
    }
    widths
}

fn separator(label_width: usize, widths: &[usize]) -> String {
    let mut s = format!("+{}+", "-".repeat(label_width + 2));
    for w in widths {
        s.push_str(&"-".repeat(*w));
        s.push('+');
    }
    s.push('\n');
    s
}

fn centre(text: &str, width: usize) -> String {
    let len = crate::text_width::width(text);
    if len >= width {
        return text.to_owned();
    }
    let left = (width - len) / 2;
    format!(
        "{}{text}{}",
        " ".repeat(left),
        " ".repeat(width - len - left)
    )
}

fn line(out: &mut String, label: &str, label_width: usize, cells: &Cells, widths: &[usize]) {
    let pad = label_width.saturating_sub(width(label));
    let _ = write!(out, "| {label}{} |", " ".repeat(pad));
    match cells {
        Cells::Each(cells) => {
            for (cell, w) in cells.iter().zip(widths) {
                let _ = write!(out, "{}|", centre(cell, *w));
            }
        }
        Cells::Merged(text) => {
            let span = widths.iter().sum::<usize>() + widths.len() - 1;
            let _ = write!(out, "{}|", centre(text, span));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rows::row_stats;

    fn split(total: f64, a: f64, b: f64) -> Cell {
        Cell::Measured(Value {
            total_ms: total,
            split_ms: Some((a, b)),
            count: None,
        })
    }

    fn summary(rows: Vec<(&str, Option<&str>, Vec<Cell>)>) -> Summary {
        let episodes = rows[0].2.len();
        Summary {
            episodes,
            rows: rows
                .into_iter()
                .map(|(label, split_label, cells)| SummaryRow {
                    id: Some(crate::report::model::RowId::Total),
                    label: label.to_owned(),
                    split_label: split_label.map(str::to_owned),
                    stats: row_stats(&cells),
                    cells,
                })
                .collect(),
            lost: Vec::new(),
        }
    }

    #[test]
    fn one_column_per_episode() {
        let s = summary(vec![
            (
                "Total running time",
                Some("(exit_mmap + reaper work)"),
                vec![split(132.6, 72.4, 60.2), split(167.1, 90.7, 76.4)],
            ),
            (
                "kill → exit_mmap done",
                None,
                vec![
                    Cell::Measured(Value {
                        total_ms: 80.25,
                        ..Value::default()
                    }),
                    Cell::NotMeasured {
                        why: "event not seen".into(),
                    },
                ],
            ),
        ]);
        let expected = "\
Summary of measurements (ms):
+---------------------------------------------------------------------------+
| Category                    |  episode 1  |           episode 2           |
+-----------------------------+-------------+-------------------------------+
| Total running time          |    132.6    |             167.1             |
|   (exit_mmap + reaper work) | 72.4 + 60.2 |          90.7 + 76.4          |
+-----------------------------+-------------+-------------------------------+
| kill → exit_mmap done       |    80.2     | not measured (event not seen) |
+---------------------------------------------------------------------------+
";
        assert_eq!(render(&s), expected);
    }

    #[test]
    fn median_and_range_columns_beyond_five_episodes() {
        let mut cells: Vec<Cell> = (1..=5)
            .map(|i| split(f64::from(i) * 10.0, f64::from(i) * 6.0, f64::from(i) * 4.0))
            .collect();
        cells.push(Cell::NotMeasured {
            why: "event not seen".into(),
        });
        let uniform = vec![
            Cell::NotMeasured {
                why: "the run has no lock_wait probe".into()
            };
            6
        ];
        let s = summary(vec![
            (
                "Total running time",
                Some("(exit_mmap + reaper work)"),
                cells,
            ),
            (
                "Time waiting for pte spinlock",
                Some("(exit_mmap + reaper work)"),
                uniform,
            ),
        ]);
        let expected = "\
Summary of measurements (ms):
+---------------------------------------------------------------------+
| Category                      |  median of 6  |       min–max       |
+-------------------------------+---------------+---------------------+
| Total running time            | 30.0 [5 of 6] |      10.0–50.0      |
|   (exit_mmap + reaper work)   |  18.0 + 12.0  | 6.0–30.0 + 4.0–20.0 |
+-------------------------------+---------------+---------------------+
| Time waiting for pte spinlock |          not measured [1]           |
|   (exit_mmap + reaper work)   |                                     |
+---------------------------------------------------------------------+
[1] not measured (the run has no lock_wait probe)
";
        assert_eq!(render(&s), expected);
    }
}
