//! What each loss counter means, and which flag enlarges what overflowed.
//!
//! The counter names come from `reaper_common::loss::Counter`; a counter this
//! build does not know is still shown (as a loss, without a hint), so a newer
//! recorder's losses are never hidden.

use reaper_common::loss::Counter;

use super::model::Loss;

/// Whether a kernel counter's non-zero value is a loss. Unknown names count
/// as losses: better a spurious warning than a silent drop.
pub fn is_loss(name: &str) -> bool {
    Counter::from_name(name).is_none_or(Counter::is_loss)
}

/// What a kernel counter's loss means and the flag that enlarges what
/// overflowed; `None` for hit counters (not losses).
fn meaning(counter: Counter) -> Option<(&'static str, Option<&'static str>)> {
    Some(match counter {
        Counter::SampleStackLost => (
            "samples had no stack (KERNEL_STACKS full or collision)",
            Some("--stack-map-size"),
        ),
        Counter::SampleCountsFull => (
            "samples dropped (SAMPLE_COUNTS map full)",
            Some("--sample-map-size"),
        ),
        Counter::LockPendingFull => (
            "lock waits lost (PENDING_WAITS map full)",
            Some("--lock-map-size"),
        ),
        Counter::TrackedFull => (
            "tasks could not be tracked (TRACKED_TGIDS/TIDS full: more than 1024 live victims or callers)",
            None,
        ),
        Counter::RssFreedFull => (
            "freed bytes not attributed to a context (RSS_FREED map full: more than 1024 tracked tasks freeing memory)",
            None,
        ),
        Counter::LockWaitsFull => (
            "lock waits lost (LOCK_WAITS map full)",
            Some("--lock-map-size"),
        ),
        Counter::LockStackLost => (
            "lock waits had no stack (KERNEL_STACKS full or collision)",
            Some("--stack-map-size"),
        ),
        Counter::TimelineRingFull => (
            "timeline events lost (TIMELINE ring buffer full)",
            Some("--ringbuf-size"),
        ),
        Counter::SamplesTracked | Counter::LockBeginTracked | Counter::TimelineEvents => {
            return None;
        }
    })
}

/// Describes a non-zero loss counter, by its name in the run file.
pub fn describe(name: &str, count: u64) -> Loss {
    let (what, flag) = Counter::from_name(name)
        .and_then(meaning)
        .unwrap_or(("lost", None));
    let what = if flag.is_none() {
        format!("{what} ({name})")
    } else {
        what.to_owned()
    };
    Loss {
        counter: name.to_owned(),
        count,
        what,
        flag: flag.map(str::to_owned),
    }
}

/// Describes a non-zero userspace loss (names from the recorder).
pub fn describe_user(name: &str, count: u64) -> Loss {
    let what = match name {
        "timeline_malformed" => "timeline records could not be parsed and were dropped".to_owned(),
        "stacks_unsymbolized" => {
            "stacks could not be symbolized (kallsyms unreadable or hidden)".to_owned()
        }
        "lock_waits_unfinished" => {
            "lock waits had begun but not ended when the episode closed".to_owned()
        }
        _ => format!("records lost in userspace ({name})"),
    };
    Loss {
        counter: name.to_owned(),
        count,
        what,
        flag: None,
    }
}

/// The counter name of skipped runs of the probe `what` in episode
/// counters and diff losses: `skipped:fexit page_remove_rmap`.
pub fn skipped_counter(what: &str) -> String {
    format!("skipped:{what}")
}

/// Describes runs of the probe `what` (`fexit page_remove_rmap`) that the
/// kernel skipped (`Episode::skipped_probe_runs`).
pub fn describe_skipped(what: &str, count: u64) -> Loss {
    Loss {
        counter: skipped_counter(what),
        count,
        what: format!(
            "runs of {what} skipped by the kernel: it fired while the same program was \
             still running on that CPU (nested in it, or in a task that preempted it), so \
             those events, of any task, were not seen"
        ),
        flag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_counters_are_not_losses() {
        assert!(!is_loss("samples_tracked"));
        assert!(!is_loss("timeline_events"));
        assert!(is_loss("sample_stack_lost"));
        assert!(is_loss("some_future_counter"));
    }

    #[test]
    fn every_loss_counter_has_a_hint() {
        // TRACKED_* and RSS_FREED have a fixed size (1024 live tasks), said
        // in the text.
        for counter in Counter::ALL
            .iter()
            .filter(|c| c.is_loss() && !matches!(**c, Counter::TrackedFull | Counter::RssFreedFull))
        {
            assert!(describe(counter.name(), 1).flag.is_some(), "{counter:?}");
        }
    }
}
