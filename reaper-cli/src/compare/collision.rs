//! `diff -o`'s collision maps (issue 25): the k-th mapped episode of A
//! next to the k-th of B, for the first few, so the two walks of a
//! without/with-patch pair are seen at a glance.

use crate::report::{collision_map, collision_svg};

use super::load::RunSet;

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
}
