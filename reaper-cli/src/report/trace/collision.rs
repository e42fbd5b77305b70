//! The trace's collision tracks (issue 25): where each walker was, and
//! who each PTE-lock wait waited for.
//!
//! - A counter track per walker, `walker: <context>`, whose value is the
//!   start address of the range it entered (kept steps only, see
//!   `Episode::teardown_steps`).
//! - Each PTE-lock wait whose end was seen is a [`SPAN_PTE_WAIT`] span on
//!   the waiter's thread; where its holder is a known thread (the lock's
//!   last taker, or the other walker inside its step) a
//!   [`SPAN_PTE_HOLDER`] span on the holder's thread runs from when it took
//!   the lock (or the wait began) to when the wait ended, and a flow goes
//!   from it to the wait.

use serde_json::json;

use crate::model::{Collisions, PteHolderSetup, PteWaitSeen};
use crate::report::model::Holder;

use super::{Episodes, Phase, TraceEvent};

/// Category of the collision events.
pub const CAT_COLLISION: &str = "collision";
/// Name prefix of a walker's counter track.
pub const WALKER_COUNTER: &str = "walker";
/// The walker counter's argument.
pub const WALKER_COUNTER_ARG: &str = "range start";
/// Span of a PTE-lock wait on the waiter's thread.
pub const SPAN_PTE_WAIT: &str = "PTE-lock wait";
/// Span on the holder's thread, from its take to the wait's end.
pub const SPAN_PTE_HOLDER: &str = "PTE lock holder";

impl Episodes<'_> {
    /// The walkers' counters, the waits and their flows.
    pub(super) fn collision_tracks(&mut self, setup: Option<&PteHolderSetup>) {
        let e = self.episode;
        let collisions = e
            .function_timing
            .as_ref()
            .and_then(|t| t.collisions.as_ref());
        let (Some(setup), Some(collisions)) = (setup, collisions) else {
            return;
        };
        for walker in &collisions.walkers {
            let name = format!("{WALKER_COUNTER}: {}", walker.context.label());
            for step in e.teardown_steps(walker).0 {
                self.push_in(
                    CAT_COLLISION,
                    name.clone(),
                    Phase::Counter,
                    step.enter_ns,
                    None,
                    0,
                    json!({ WALKER_COUNTER_ARG: step.range_start }),
                );
            }
        }
        for wait in &collisions.waits {
            self.wait(setup, collisions, wait);
        }
    }

    /// One wait, its holder's span and the flow between them.
    fn wait(&mut self, setup: &PteHolderSetup, collisions: &Collisions, wait: &PteWaitSeen) {
        let Some(duration) = wait.duration_ns else {
            return;
        };
        let holder = collisions.holder_of(setup, wait);
        let holder_thread = holder_thread(setup, collisions, wait, &holder);
        let holder_name = holder.name();
        let end = wait.start_ns + i64::try_from(duration).unwrap_or(i64::MAX);
        self.push_in(
            CAT_COLLISION,
            SPAN_PTE_WAIT.to_owned(),
            Phase::Complete,
            wait.start_ns,
            Some(duration),
            wait.tid,
            json!({ "lock": format!("{:#x}", wait.lock), "holder": holder_name }),
        );
        let Some((tid, from)) = holder_thread else {
            return;
        };
        let id = self.events.len() as u64;
        self.push_in(
            CAT_COLLISION,
            SPAN_PTE_HOLDER.to_owned(),
            Phase::Complete,
            from,
            Some(u64::try_from(end - from).unwrap_or(0)),
            tid,
            json!({ "lock": format!("{:#x}", wait.lock), "waiter": wait.context.name() }),
        );
        for (ph, t_ns, thread) in [
            (Phase::FlowStart, from, tid),
            (Phase::FlowEnd, wait.start_ns, wait.tid),
        ] {
            self.push_in(
                CAT_COLLISION,
                SPAN_PTE_WAIT.to_owned(),
                ph,
                t_ns,
                None,
                thread,
                json!(null),
            );
            let flow: &mut TraceEvent = self.events.last_mut().expect("just pushed");
            flow.id = Some(id);
            flow.bp = (ph == Phase::FlowEnd).then_some("e");
        }
    }
}

/// The holder's thread and since when it held the lock: the last taker's
/// thread from its take, or the other walker's thread inside its step from
/// the wait's start; `None` for an unknown holder.
fn holder_thread(
    setup: &PteHolderSetup,
    collisions: &Collisions,
    wait: &PteWaitSeen,
    holder: &Holder,
) -> Option<(u32, i64)> {
    if *holder == Holder::Unknown {
        return None;
    }
    if setup.last_taker_off.is_none() {
        let taker = wait.taker.as_ref()?;
        return Some((taker.tid, taker.taken_ns.min(wait.start_ns)));
    }
    let Holder::Context(context) = holder else {
        return None;
    };
    collisions
        .walkers
        .iter()
        .filter(|w| w.context == *context)
        .flat_map(|w| &w.steps)
        .find(|s| s.covers(wait.start_ns))
        .map(|s| (s.tid, wait.start_ns))
}
