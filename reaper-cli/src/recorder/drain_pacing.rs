//! When `record --watch` drains the kernel's aggregates: not while a
//! teardown it follows is still running, within a bound.
//!
//! A drain walks every sample and lock-wait aggregate with a few syscalls
//! per entry, deletes them (so the probes re-insert what they were
//! updating) and copies each stack out. On a small machine that CPU time
//! is taken from the tasks whose teardown is being measured, so the
//! watcher holds the drain back while a followed process has been killed
//! (or began its exit) and is not yet freed. The aggregates keep
//! accruing in the kernel meanwhile (full maps are counted as losses, as
//! always), and the drain after the free picks them up before the episode
//! is finished. A teardown that never ends (a zombie nobody waits for)
//! holds drains back for at most [`MAX_HOLD`] at a time.

use std::time::{Duration, Instant};

/// Longest a drain is held back.
pub const MAX_HOLD: Duration = Duration::from_secs(1);

/// Whether to drain now; remembers since when drains are held back.
#[derive(Debug, Default)]
pub struct DrainPacer {
    held_since: Option<Instant>,
}

impl DrainPacer {
    /// Whether the watcher drains at `now`: always when `closing` or no
    /// teardown is `in_flight`, else once drains have been held back for
    /// [`MAX_HOLD`].
    pub fn should_drain(&mut self, in_flight: bool, closing: bool, now: Instant) -> bool {
        if closing || !in_flight {
            self.held_since = None;
            return true;
        }
        let since = *self.held_since.get_or_insert(now);
        if now.duration_since(since) >= MAX_HOLD {
            self.held_since = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_are_held_back_during_a_teardown_for_at_most_max_hold() {
        let t0 = Instant::now();
        let mut pacer = DrainPacer::default();
        assert!(pacer.should_drain(false, false, t0), "nothing in flight");
        assert!(!pacer.should_drain(true, false, t0), "a teardown runs");
        let before = t0 + MAX_HOLD - Duration::from_millis(1);
        assert!(!pacer.should_drain(true, false, before));
        assert!(
            pacer.should_drain(true, false, t0 + MAX_HOLD),
            "bound reached"
        );
        let later = t0 + MAX_HOLD + Duration::from_millis(100);
        assert!(
            !pacer.should_drain(true, false, later),
            "held anew after a drain"
        );
        assert!(
            pacer.should_drain(true, true, later),
            "closing always drains"
        );
        assert!(
            !pacer.should_drain(true, false, later),
            "closing reset the hold"
        );
        assert!(pacer.should_drain(false, false, later), "teardown over");
    }
}
