//! The collision map's model (issue 25): per episode, each walker's
//! per-VMA steps placed on a row per address range and on the kill's
//! clock, and each PTE-lock wait placed where its waiter was walking, with
//! the holder the waiter × holder table names. Rendered by
//! [`super::collision_svg`].
//!
//! A step is kept only inside its context's teardown
//! ([`Episode::teardown_steps`]); steps left out are counted.

use std::collections::BTreeSet;

use crate::model::{
    Collisions, Context, Episode, PteHolderSetup, PteWaitSeen, Run, WalkerStepSeen, WalkerSteps,
    walk_direction,
};

use super::model::Holder;

/// One episode's map.
#[derive(Clone, Debug, PartialEq)]
pub struct CollisionMap {
    /// 1-based episode number.
    pub episode: usize,
    /// The step function (e.g. `__zap_vma_range`).
    pub function: String,
    /// The rows' range starts, ascending: row `i` is the `i`-th lowest.
    pub rows: Vec<u64>,
    /// Per walker, its kept steps.
    pub walkers: Vec<WalkerLine>,
    /// Every wait whose waiter's range is known.
    pub waits: Vec<WaitMark>,
    /// Waits that could not be placed: the waiter was in no kept step and
    /// the lock's taker named no address.
    pub unplaced_waits: usize,
    /// The latest time drawn, ns since the kill.
    pub end_ns: i64,
}

/// One walker's line.
#[derive(Clone, Debug, PartialEq)]
pub struct WalkerLine {
    /// The walking context.
    pub context: Context,
    /// Its steps in call order.
    pub steps: Vec<StepMark>,
    /// Steps the kernel log could not keep (full).
    pub lost: u64,
    /// Steps outside the context's teardown, left out.
    pub left_out: usize,
}

/// One step on the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepMark {
    /// Its row.
    pub row: usize,
    /// Its range.
    pub range_start: u64,
    /// End of its range (exclusive).
    pub range_end: u64,
    /// Entry, ns since the kill.
    pub enter_ns: i64,
    /// Return, ns since the kill, when seen.
    pub exit_ns: Option<i64>,
}

/// One wait on the map.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitMark {
    /// Who waited.
    pub waiter: Context,
    /// Who held the lock (as in the table).
    pub holder: Holder,
    /// The row the waiter was walking.
    pub row: usize,
    /// Start, ns since the kill.
    pub start_ns: i64,
    /// How long, when its end was seen.
    pub duration_ns: Option<u64>,
}

/// The maps of every episode that logged walker steps; none for runs
/// whose waits were not logged (the text says why).
pub fn build(run: &Run) -> Vec<CollisionMap> {
    let Some(setup) = run.recording.pte_holders.as_ref() else {
        return Vec::new();
    };
    // The table says why (PREEMPT_RT included): a map without its waits
    // would draw none where there were some.
    if super::collision::why_not_measured(run, setup).is_some() {
        return Vec::new();
    }
    run.episodes
        .iter()
        .enumerate()
        .filter_map(|(i, episode)| {
            let collisions = episode.function_timing.as_ref()?.collisions.as_ref()?;
            episode_map(i + 1, episode, setup, collisions)
        })
        .collect()
}

fn episode_map(
    episode_number: usize,
    episode: &Episode,
    setup: &PteHolderSetup,
    collisions: &Collisions,
) -> Option<CollisionMap> {
    let kept: Vec<_> = collisions
        .walkers
        .iter()
        .map(|w| (w, episode.teardown_steps(w)))
        .collect();
    let rows: Vec<u64> = kept
        .iter()
        .flat_map(|(_, (steps, _))| steps.iter().map(|s| s.range_start))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if rows.is_empty() {
        return None;
    }
    let walkers = kept
        .iter()
        .map(|(w, (steps, left_out))| walker_line(w, steps, *left_out, &rows))
        .collect();
    let mut map = CollisionMap {
        episode: episode_number,
        function: collisions
            .walkers
            .first()
            .map(|w| w.function.clone())
            .unwrap_or_default(),
        rows,
        walkers,
        waits: Vec::new(),
        unplaced_waits: 0,
        end_ns: 0,
    };
    for wait in &collisions.waits {
        match wait_row(&map, wait) {
            Some(row) => map.waits.push(WaitMark {
                waiter: wait.context,
                holder: collisions.holder_of(setup, wait),
                row,
                start_ns: wait.start_ns,
                duration_ns: wait.duration_ns,
            }),
            None => map.unplaced_waits += 1,
        }
    }
    map.end_ns = end_of(&map);
    Some(map)
}

/// One walker's kept steps on `rows` (ascending range starts).
fn walker_line(
    walker: &WalkerSteps,
    steps: &[&WalkerStepSeen],
    left_out: usize,
    rows: &[u64],
) -> WalkerLine {
    WalkerLine {
        context: walker.context,
        steps: steps
            .iter()
            .map(|s| StepMark {
                row: rows.partition_point(|&r| r < s.range_start),
                range_start: s.range_start,
                range_end: s.range_end,
                enter_ns: s.enter_ns,
                exit_ns: s.exit_ns,
            })
            .collect(),
        lost: walker.lost,
        left_out,
    }
}

/// The row `wait`'s waiter was walking: its own step covering the wait's
/// start, else the kept step whose range holds the address the lock's
/// last taker mapped.
fn wait_row(map: &CollisionMap, wait: &PteWaitSeen) -> Option<usize> {
    let covering = map
        .walkers
        .iter()
        .filter(|w| w.context == wait.context)
        .flat_map(|w| &w.steps)
        .find(|s| s.enter_ns <= wait.start_ns && s.exit_ns.is_some_and(|e| wait.start_ns < e));
    if let Some(step) = covering {
        return Some(step.row);
    }
    let addr = wait.taker.as_ref()?.addr;
    map.walkers
        .iter()
        .flat_map(|w| &w.steps)
        .find(|s| (s.range_start..s.range_end).contains(&addr))
        .map(|s| s.row)
}

/// The latest step exit, step entry or wait end.
fn end_of(map: &CollisionMap) -> i64 {
    let steps = map
        .walkers
        .iter()
        .flat_map(|w| &w.steps)
        .map(|s| s.exit_ns.unwrap_or(s.enter_ns));
    let waits = map
        .waits
        .iter()
        .map(|w| w.start_ns + w.duration_ns.unwrap_or(0) as i64);
    steps.chain(waits).max().unwrap_or(0).max(0)
}

/// Whether a walker's rows only go up (`Some(true)`), only down
/// (`Some(false)`), or neither (`None`).
pub fn direction(line: &WalkerLine) -> Option<bool> {
    walk_direction(line.steps.iter().map(|s| s.range_start))
}
