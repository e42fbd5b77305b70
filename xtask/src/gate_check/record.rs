//! Recording the run sets of `cargo xtask gate-check`, interleaved.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};

use super::SetPlan;

/// The order of the sets in round `round`: rotated by the round, so no set
/// is always recorded first or last (drift within a round hits all alike).
pub fn round_order(sets: usize, round: usize) -> Vec<usize> {
    (0..sets).map(|i| (i + round) % sets).collect()
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// (set, run) in recording order: interleaved, round r recording run r of
/// every set in [`round_order`]; or blocked, every run of a set before the
/// next set.
pub fn recording_order(sets: usize, runs: usize, blocked: bool) -> Vec<(usize, usize)> {
    if blocked {
        (0..sets)
            .flat_map(|s| (0..runs).map(move |r| (s, r)))
            .collect()
    } else {
        (0..runs)
            .flat_map(|r| round_order(sets, r).into_iter().map(move |s| (s, r)))
            .collect()
    }
}

/// Records every run of every set in [`recording_order`], with `extra`
/// record flags; returns the time.
pub fn record_all(
    reaper: &Path,
    dir: &Path,
    sets: &[SetPlan],
    (runs, episodes): (usize, usize),
    blocked: bool,
    extra: &[String],
) -> Result<Duration> {
    let start = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let order = recording_order(sets.len(), runs, blocked);
    for (n, &(i, round)) in order.iter().enumerate() {
        let set = &sets[i];
        let out = dir.join(&set.name).join(format!("run-{}", round + 1));
        let log_path = dir.join(format!("{}-run-{}.log", set.name, round + 1));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let status = Command::new(reaper)
            .args([
                "record",
                "--victim",
                &set.victim,
                "--runs",
                &episodes.to_string(),
                "-o",
            ])
            .arg(&out)
            .args(extra)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .status()
            .with_context(|| format!("running {} record", reaper.display()))?;
        ensure!(
            status.success(),
            "reaper record --victim {} failed ({status}); see {}",
            set.victim,
            log_path.display()
        );
        if (n + 1) % sets.len() == 0 {
            eprintln!(
                "xtask gate-check: {}/{} runs recorded ({:.0} s)",
                n + 1,
                order.len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_and_interleaved_orders() {
        assert_eq!(
            recording_order(2, 2, true),
            [(0, 0), (0, 1), (1, 0), (1, 1)]
        );
        assert_eq!(
            recording_order(2, 2, false),
            [(0, 0), (1, 0), (1, 1), (0, 1)]
        );
    }

    #[test]
    fn rounds_rotate_the_order() {
        assert_eq!(round_order(3, 0), [0, 1, 2]);
        assert_eq!(round_order(3, 1), [1, 2, 0]);
        assert_eq!(round_order(3, 4), [1, 2, 0]);
    }
}
