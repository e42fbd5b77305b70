//! Which episodes a comparison may use: clean inputs only.
//!
//! An episode is left out of every compared metric when
//! - its `process_mrelease` lost the race (returned ESRCH: the victim had
//!   already left its mm, so there was no reaper-side work to time). Old run
//!   files without `Episode::lost_race` are read from the latencies'
//!   `mrelease_ret` or the timeline's `mrelease_exit` return value;
//! - it was cut short (`partial`);
//! - it lost data: a non-zero kernel loss counter (`Counter::is_loss`, an
//!   unknown counter name counts as a loss) or a userspace loss.
//!
//! Probe runs the kernel skipped (`Episode::skipped_probe_runs`: a probe
//! that fired while its program was already running on that CPU) are
//! reported as losses by `report` and `diff` but do not exclude an episode:
//! the kernel counts them for every task, not only the episode's, and does
//! not say whose run it skipped (sid 7.2 VMs skip 0–3 `sched_process_exit`
//! runs in some episodes); where one hid a tracked call's entry or exit,
//! function timing's unmatched-call counters (`fn_*_unmatched`) show it too.
//!
//! The first matching reason is the one counted, in that order.

use serde::Serialize;


use crate::model::Episode;
use crate::report::losses::is_loss;

/// Why an episode is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// `process_mrelease` returned ESRCH.
    LostRace,
    /// The episode was cut short.
    Partial,
    /// A loss counter was non-zero.
    DataLoss,
}

/// Whether an episode lost data.
pub fn lost_data(e: &Episode) -> bool {
    e.counters.iter().any(|(name, &v)| v > 0 && is_loss(name))
        || e.user_losses.values().any(|&v| v > 0)
}

/// Why `e` is left out, or `None` when it is used.
pub fn exclusion(e: &Episode) -> Option<Exclusion> {
    if e.lost_race() {
        Some(Exclusion::LostRace)
    } else if e.partial {
        Some(Exclusion::Partial)
    } else if lost_data(e) {
        Some(Exclusion::DataLoss)
    } else {
        None
    }
}

/// Episodes left out of one side, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Excluded {
    /// Lost `process_mrelease` races.
    pub lost_race: usize,
    /// Partial episodes.
    pub partial: usize,
    /// Episodes with data loss.
    pub data_loss: usize,
}

impl Excluded {
    /// Counts the exclusions of `episodes`.
    pub fn of<'a>(episodes: impl IntoIterator<Item = &'a Episode>) -> Self {
        let mut out = Self::default();
        for e in episodes {
            match exclusion(e) {
                Some(Exclusion::LostRace) => out.lost_race += 1,
                Some(Exclusion::Partial) => out.partial += 1,
                Some(Exclusion::DataLoss) => out.data_loss += 1,
                None => {}
            }
        }
        out
    }

    /// All left out.
    pub fn total(&self) -> usize {
        self.lost_race + self.partial + self.data_loss
    }
}

impl std::fmt::Display for Excluded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} left out ({} lost race, {} partial, {} with data loss)",
            self.total(),
            self.lost_race,
            self.partial,
            self.data_loss
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Context, TimelineEntry};

    fn episode() -> Episode {
        serde_json::from_value(serde_json::json!({
            "index": 0,
            "victim": { "pid": 1, "comm": "v", "rss_bytes": 1, "threads": 1, "vmas": 1 },
            "contexts": [], "timeline": [], "latencies": {}, "counters": {}, "partial": false
        }))
        .expect("a minimal episode decodes")
    }

    #[test]
    fn clean_episode_is_used() {
        assert_eq!(exclusion(&episode()), None);
    }

    #[test]
    fn lost_race_from_the_field_the_return_value_or_the_timeline() {
        let mut e = episode();
        e.marked_lost_race = true;
        assert_eq!(exclusion(&e), Some(Exclusion::LostRace));
        let mut e = episode();
        e.latencies.mrelease_ret = Some(-3);
        assert_eq!(exclusion(&e), Some(Exclusion::LostRace));
        let mut e = episode();
        e.timeline.push(TimelineEntry {
            t_ns: 70_000,
            kind: "mrelease_exit".into(),
            context: Some(Context::MreleaseCaller),
            tid: 9,
            tgid: 9,
            comm: "reaper".into(),
            arg: -3,
        });
        assert_eq!(exclusion(&e), Some(Exclusion::LostRace));
        e.timeline[0].arg = 0;
        assert_eq!(exclusion(&e), None);
    }

    #[test]
    fn partial_and_loss_counters() {
        let mut e = episode();
        e.partial = true;
        assert_eq!(exclusion(&e), Some(Exclusion::Partial));
        let mut e = episode();
        e.counters.insert("samples_tracked".into(), 500);
        assert_eq!(exclusion(&e), None, "a hit count is not a loss");
        e.counters.insert("sample_stack_lost".into(), 1);
        assert_eq!(exclusion(&e), Some(Exclusion::DataLoss));
        let mut e = episode();
        e.user_losses.insert("parse".into(), 2);
        assert_eq!(exclusion(&e), Some(Exclusion::DataLoss));
        let counted = Excluded::of(&[episode(), e]);
        assert_eq!(counted.data_loss, 1);
        assert_eq!(
            counted.to_string(),
            "1 left out (0 lost race, 0 partial, 1 with data loss)"
        );
    }
}
