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

/// Records run `round` of every set, for every round, with `extra` record
/// flags; returns the time.
pub fn record_all(
    reaper: &Path,
    dir: &Path,
    sets: &[SetPlan],
    (runs, episodes): (usize, usize),
    extra: &[String],
) -> Result<Duration> {
    let start = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for round in 0..runs {
        for i in round_order(sets.len(), round) {
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
        }
        eprintln!(
            "xtask gate-check: round {}/{runs} recorded ({:.0} s)",
            round + 1,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_order() {
        assert_eq!(round_order(3, 0), [0, 1, 2]);
        assert_eq!(round_order(3, 1), [1, 2, 0]);
        assert_eq!(round_order(3, 4), [1, 2, 0]);
    }
}
