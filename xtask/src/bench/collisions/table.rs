//! The markdown table of the collision logs' cost: logs on
//! (`record --exact-locks`) against logs off (`--no-collision-log`), from
//! the two sides' figures.

use std::fmt::Write as _;

use super::figures::Side;
use crate::bench::{stats::summarize, verdict::ratio_interval};

/// The table, one row per measure, then one per collision map.
pub fn markdown(on: &Side, off: &Side) -> String {
    let mut out = String::from(
        "| measure | logs on (`--exact-locks`) | logs off (`--exact-locks --no-collision-log`) | on vs off |\n|---|---|---|---|\n",
    );
    let median = |v: &[f64]| summarize(v).map(|s| s.median);
    let cell = |v: &[f64]| match summarize(v) {
        Some(s) => format!("{:.2} ms (n={}, {:.2}–{:.2})", s.median, s.n, s.min, s.max),
        None => "not measured".to_owned(),
    };
    let ratio = |a: &[f64], b: &[f64]| match ratio_interval(a, b) {
        Some(ci) => format!("{:.2}× [{:.2}–{:.2}]", ci.ratio, ci.lo, ci.hi),
        None => match (median(a), median(b)) {
            (Some(x), Some(y)) if y != 0.0 => format!("{:.2}× (too few for an interval)", x / y),
            _ => "-".to_owned(),
        },
    };
    let _ = writeln!(
        out,
        "| kill → process_mrelease done, per episode | {} | {} | {} |",
        cell(&on.kill_to_mrelease_ms),
        cell(&off.kill_to_mrelease_ms),
        ratio(&on.kill_to_mrelease_ms, &off.kill_to_mrelease_ms)
    );
    let difference = match (median(&on.program_ms), median(&off.program_ms)) {
        (Some(a), Some(b)) => format!("{:+.3} ms (the logs' kernel CPU); ", a - b),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "| all reaper programs' run time, per episode | {} | {} | {difference}{} |",
        cell(&on.program_ms),
        cell(&off.program_ms),
        ratio(&on.program_ms, &off.program_ms)
    );
    memory_rows(&mut out, on, off);
    loss_rows(&mut out, on, off);
    out
}

/// The maps' kernel memory, summed and per map.
fn memory_rows(out: &mut String, on: &Side, off: &Side) {
    let _ = writeln!(
        out,
        "| collision maps' kernel memory (memlock) | {} | {} | {:+} bytes |",
        bytes(on.maps_bytes()),
        bytes(off.maps_bytes()),
        on.maps_bytes() as i128 - off.maps_bytes() as i128
    );
    for map in &on.maps {
        let other = off.maps.iter().find(|m| m.map == map.map);
        let _ = writeln!(
            out,
            "| &nbsp;&nbsp;{} | {} ({}) | {} | |",
            known_map(&map.map),
            bytes(map.memlock_bytes),
            entries(map.max_entries),
            other.map_or_else(
                || "-".to_owned(),
                |m| format!("{} ({})", bytes(m.memlock_bytes), entries(m.max_entries))
            )
        );
    }
}

/// A map name from a run file, as the table prints it: one of the
/// collision maps reaper defines, else a fixed placeholder (run-file text
/// never becomes markdown).
fn known_map(name: &str) -> &'static str {
    reaper_common::collision::COLLISION_MAPS
        .into_iter()
        .find(|known| *known == name)
        .unwrap_or("(a map reaper does not define)")
}

/// What the logs lost, and the episodes left out.
fn loss_rows(out: &mut String, on: &Side, off: &Side) {
    let _ = writeln!(
        out,
        "| logs' losses: walker steps, PTE-lock waits (all episodes) | {}, {} ({} waits logged in {} episodes) | {}, {} | |",
        on.steps_lost,
        on.waits_lost,
        on.waits_logged,
        on.logged_episodes,
        off.steps_lost,
        off.waits_lost
    );
    let _ = writeln!(
        out,
        "| episodes: lost races (out of the latency row), without program costs | {}, {} | {}, {} | |",
        on.lost_races, on.without_costs, off.lost_races, off.without_costs
    );
}

/// `1 entry`, `16 entries`.
fn entries(n: u32) -> String {
    format!("{n} {}", if n == 1 { "entry" } else { "entries" })
}

/// `532760` → `532,760 B (520.3 KiB)`.
fn bytes(b: u64) -> String {
    let digits = b.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped} B ({:.1} KiB)", b as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::collisions::figures::tests::run;

    /// Two run.json sets of three runs each: the table's medians, the
    /// difference of program time, the maps' memory and the losses.
    #[test]
    fn the_table_compares_the_two_sets() {
        let on_maps = [
            ("FN_WALKER_LOG", 3, 31_056),
            ("FN_PTE_LAST_TAKER", 4096, 459_712),
        ];
        let off_maps = [
            ("FN_WALKER_LOG", 1, 10_560),
            ("FN_PTE_LAST_TAKER", 1, 1_072),
        ];
        let on: Vec<_> = [(21, 4_000), (23, 4_600), (22, 4_200)]
            .iter()
            .map(|&(ms, us)| run(&[(ms * 1_000_000, us * 1_000)], &on_maps, true))
            .collect();
        let off: Vec<_> = [(20, 3_000), (21, 3_100), (22, 3_200)]
            .iter()
            .map(|&(ms, us)| run(&[(ms * 1_000_000, us * 1_000)], &off_maps, false))
            .collect();
        let table = markdown(&Side::of(&on), &Side::of(&off));
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[2].starts_with(
                "| kill → process_mrelease done, per episode | 22.00 ms (n=3, 21.00–23.00) | 21.00 ms (n=3, 20.00–22.00) | 1.05× ["
            ),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains("| 4.20 ms (n=3, 4.00–4.60) | 3.10 ms (n=3, 3.00–3.20) | +1.100 ms (the logs' kernel CPU); 1.35× ["),
            "{}",
            lines[3]
        );
        assert_eq!(
            lines[4],
            "| collision maps' kernel memory (memlock) | 490,768 B (479.3 KiB) | 11,632 B (11.4 KiB) | +479136 bytes |"
        );
        assert_eq!(
            lines[6],
            "| &nbsp;&nbsp;FN_PTE_LAST_TAKER | 459,712 B (448.9 KiB) (4096 entries) | 1,072 B (1.0 KiB) (1 entry) | |"
        );
        assert!(
            lines[7].contains("| 6, 3 (0 waits logged in 3 episodes) | 0, 0 |"),
            "{}",
            lines[7]
        );
        assert!(lines[8].ends_with("| 0, 0 | 0, 0 | |"), "{}", lines[8]);
    }

    /// A map name in a run file is data: a name reaper does not define
    /// (a `|` would split the markdown row) prints as a placeholder.
    #[test]
    fn a_map_name_from_a_run_file_never_becomes_markdown() {
        let hostile = [("A|B</td>", 1, 8)];
        let on = [run(&[(20_000_000, 3_000_000)], &hostile, true)];
        let table = markdown(&Side::of(&on), &Side::default());
        assert!(!table.contains("A|B"), "{table}");
        assert!(
            table.contains("| &nbsp;&nbsp;(a map reaper does not define) |"),
            "{table}"
        );
        assert_eq!(known_map("FN_WALKER_LOG"), "FN_WALKER_LOG");
    }

    #[test]
    fn an_empty_side_is_not_measured() {
        let table = markdown(&Side::default(), &Side::default());
        assert!(
            table.contains("| not measured | not measured | - |"),
            "{table}"
        );
    }
}
