//! `diff`'s view of issue 25: the waiter × holder tables of both sides as
//! means per episode ([`diff_table`]), and `diff -o`'s collision maps: the
//! k-th mapped episode of A next to the k-th of B, for the first few, so
//! the two walks of a without/with-patch pair are seen at a glance.

use std::collections::BTreeMap;

use crate::model::Context;
use crate::model::output::diff::{CollisionDiff, CollisionDiffRow, Sides};
use crate::report::model::Holder;
use crate::report::{collision, collision_map, collision_svg};

use super::load::RunSet;

/// One side's cells summed over its episodes with a table: (waits, ns).
#[derive(Default)]
struct Side {
    cells: BTreeMap<(Context, Holder), (u64, u64)>,
    episodes: usize,
    not_measured: Option<String>,
    logged: bool,
}

fn side(set: &RunSet) -> Side {
    let mut side = Side::default();
    for run in &set.runs {
        let Some(table) = collision::build(&run.run) else {
            continue;
        };
        side.logged = true;
        if let Some(why) = table.not_measured {
            side.not_measured.get_or_insert(why);
            continue;
        }
        for episode in table.episodes.iter().filter(|e| e.not_measured.is_none()) {
            side.episodes += 1;
            for row in &episode.rows {
                let cell = side
                    .cells
                    .entry((row.waiter, row.holder.clone()))
                    .or_default();
                cell.0 += row.count;
                cell.1 += row.total_ns;
            }
        }
    }
    side
}

/// The two sides' tables as means per episode with a table; `None` when
/// neither side's runs logged PTE-lock waits (recorded before reaper did).
pub fn diff_table(a: &RunSet, b: &RunSet) -> Option<CollisionDiff> {
    let (sa, sb) = (side(a), side(b));
    if !sa.logged && !sb.logged {
        return None;
    }
    let mut not_measured = Vec::new();
    for (name, s) in [("A", &sa), ("B", &sb)] {
        if s.episodes == 0 {
            let why = s.not_measured.as_deref().unwrap_or(
                "no run logged PTE-lock waits (recorded before reaper did, or without \
                 --exact-locks)",
            );
            not_measured.push(format!("{name}: {why}"));
        }
    }
    let mean = |s: &Side, key: &(Context, Holder)| {
        let (waits, ns) = s.cells.get(key).copied().unwrap_or_default();
        let n = s.episodes.max(1) as f64;
        (waits as f64 / n, ns as f64 / 1e6 / n)
    };
    let keys: std::collections::BTreeSet<_> = sa.cells.keys().chain(sb.cells.keys()).collect();
    let mut rows: Vec<CollisionDiffRow> = keys
        .into_iter()
        .map(|key| {
            let ((wa, ma), (wb, mb)) = (mean(&sa, key), mean(&sb, key));
            CollisionDiffRow {
                waiter: key.0,
                holder: key.1.clone(),
                waits: Sides { a: wa, b: wb },
                total_ms: Sides { a: ma, b: mb },
            }
        })
        .collect();
    rows.sort_by(|x, y| {
        let big = |r: &CollisionDiffRow| r.total_ms.a.max(r.total_ms.b);
        big(y).total_cmp(&big(x))
    });
    Some(CollisionDiff {
        not_measured,
        episodes: Sides {
            a: sa.episodes,
            b: sb.episodes,
        },
        rows,
    })
}

/// Pairs drawn at most: enough to see that a picture repeats.
const PAIRS: usize = 3;

/// `collision_map.pair_<k>.a-vs-b.svg` files, one per pair of mapped
/// episodes (none when either side logged no walker steps: `record
/// --exact-locks`).
pub fn side_by_side(a: &RunSet, b: &RunSet, labels: (&str, &str)) -> Vec<(String, Vec<u8>)> {
    let (ma, mb) = (maps(a), maps(b));
    ma.iter()
        .zip(&mb)
        .enumerate()
        .map(|(k, ((run_a, map_a), (run_b, map_b)))| {
            let la = format!("A: {} (episode {})", labels.0, map_a.episode);
            let lb = format!("B: {} (episode {})", labels.1, map_b.episode);
            let svg = collision_svg::side_by_side([(&la, run_a, map_a), (&lb, run_b, map_b)]);
            (file_name(k + 1), svg.into_bytes())
        })
        .collect()
}

/// The file name of pair `k`.
pub fn file_name(k: usize) -> String {
    format!("collision_map.pair_{k}.a-vs-b.svg")
}

/// A side's first mapped episodes, with their runs.
fn maps(set: &RunSet) -> Vec<(&crate::model::Run, collision_map::CollisionMap)> {
    set.runs
        .iter()
        .flat_map(|r| {
            collision_map::build(&r.run)
                .into_iter()
                .map(move |m| (&r.run, m))
        })
        .take(PAIRS)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::compare::load::LoadedRun;

    fn set(name: &str) -> RunSet {
        let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/report")
            .join(format!("{name}.run.json"));
        let run = crate::report::load::load_run(&path).unwrap();
        RunSet {
            path: path.clone(),
            runs: vec![LoadedRun { path, run }],
        }
    }

    /// The real 6.1 (forward) and 7.2 (reverse) runs: one side-by-side map
    /// per episode pair, both labels on it, well-formed; a side without
    /// logged steps (a run recorded before them) gives none.
    #[test]
    fn maps_pair_episodes_and_need_both_sides() {
        let (a, b) = (set("6.1-collisions"), set("7.2-collisions"));
        let files = side_by_side(&a, &b, ("6.1 <forward>", "7.2 reverse"));
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "collision_map.pair_1.a-vs-b.svg",
                "collision_map.pair_2.a-vs-b.svg"
            ]
        );
        let svg = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(svg.contains("A: 6.1 &lt;forward&gt; (episode 1)"));
        assert!(svg.contains("B: 7.2 reverse (episode 1)"));
        assert!(svg.contains("mrelease caller: 89 steps, upward"));
        assert!(svg.contains("mrelease caller: 91 steps, downward"));
        let mut reader = quick_xml::Reader::from_str(&svg);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not XML: {e}"),
            }
        }
        assert!(side_by_side(&a, &set("6.18-mrelease"), ("a", "b")).is_empty());
    }

    /// The real 6.1 (forward) and 7.2 (reverse) runs: means per episode of
    /// each side's table, largest first; a side recorded before the logs
    /// says so; two such sides give no section at all.
    #[test]
    fn diff_table_means_per_episode_and_says_which_side_has_none() {
        let d = diff_table(&set("6.1-collisions"), &set("7.2-collisions")).unwrap();
        assert_eq!((d.episodes.a, d.episodes.b), (2, 2));
        assert!(d.not_measured.is_empty());
        let first = &d.rows[0];
        assert_eq!(
            (first.waiter, &first.holder),
            (
                Context::MreleaseCaller,
                &Holder::Context(Context::VictimExit)
            )
        );
        assert_eq!(
            (first.waits.a, first.waits.b),
            (10.5, 0.0),
            "11 and 10 waits on 6.1, none on 7.2"
        );
        assert!(
            (first.total_ms.a - 122.316).abs() < 0.01,
            "{:?}",
            first.total_ms
        );
        let old = diff_table(&set("6.1-collisions"), &set("6.18-mrelease")).unwrap();
        assert_eq!(old.episodes.b, 0);
        assert!(old.not_measured[0].starts_with("B: no run logged"));
        assert!(diff_table(&set("6.18-mrelease"), &set("6.18-mrelease")).is_none());
    }
}
