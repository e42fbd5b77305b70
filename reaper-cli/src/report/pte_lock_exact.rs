//! The summary's exact PTE-lock wait: the spin slow path's calls made
//! directly from the PTE-lock call site, timed by function timing
//! (fentry/fexit or kprobes) and read from its call edges.
//!
//! Why a third PTE-lock row: `lock:contention_begin` fires in
//! `queued_spin_lock_slowpath` only after the `queue:` label
//! (kernel/locking/qspinlock.c), so a waiter that spins on the pending bit
//! (the only waiter there is when two CPUs contend, the usual exit_mmap vs
//! reaper race) is never traced; measured on the 6.1 kernels `cargo xtask
//! kernel build` makes, in 2-vCPU guests, contention_begin saw 25% (arm64)
//! and 20% (x86_64) of the reaper's slow-path calls under
//! `unmap_page_range`. The slow path's own entry and exit see every
//! contended acquisition. The PTE-lock call site is the probed parent of
//! the call: the PTE-lock function where the kernel has one
//! (`__pte_offset_map_lock`), else the per-VMA unmap function into which
//! 6.1 inlines `zap_pte_range` (there, the slow-path calls whose nearest
//! probed caller is `unmap_page_range` are the page-table walk's locks: the
//! PTE locks, and the PMD lock of a huge page).
//!
//! Since the batch freeing went to sampling by default (issue 29), that
//! holds only when `tlb_flush_mmu` and `free_pages_and_swap_cache` are
//! timed too: their lruvec and zone lock waits would otherwise have the
//! per-VMA unmap as nearest timed caller. `record --exact-locks` times them
//! on such kernels, and the row says "not measured" when a run did not.
//!
//! The figure is inclusive wall time of each call, probe cost included
//! (in a TCG guest far longer than the sampled spin time); the label names
//! its source, so a diff whose sides differ in it says so.

use reaper_common::context::Context;

use crate::catalog::{ConceptFrames, ConceptId};
use crate::model::{Episode, Run};

use super::model::{Cell, RowId, SummaryRow};
use super::pte_lock::PteLockKind;
use super::rows::{Absent, SPLIT_LABEL, row, split_value, uniform_row};

/// Where the exact figure comes from: the slow path and its probed caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactSource<'a> {
    /// The spin slow path (`queued_spin_lock_slowpath`, ...).
    pub slowpath: &'a str,
    /// The probed function that takes the PTE lock.
    pub caller: &'a str,
}

impl<'a> ExactSource<'a> {
    /// The slow path and the PTE-lock call site of a run: the PTE-lock
    /// function when it is a symbol, else the per-VMA unmap function.
    /// `Err(why)` when the run did not resolve one of them.
    pub fn of(frames: &'a ConceptFrames) -> Result<Self, Absent> {
        let slowpath = frames
            .symbol(ConceptId::SpinSlowpath)
            .ok_or(Absent(ConceptId::SpinSlowpath))?;
        let caller = frames
            .symbol(ConceptId::PteLock)
            .or_else(|| frames.symbol(ConceptId::PerVmaUnmap))
            .ok_or(Absent(ConceptId::PerVmaUnmap))?;
        Ok(Self { slowpath, caller })
    }

    /// The row label, naming the source's caller (the slow path is the
    /// spin_slowpath concept, named in the exact-timing tables).
    pub fn label(&self) -> String {
        format!("PTE-lock wait, exact (slow path from {})", self.caller)
    }

    /// One episode's (victim ns, reaper ns, calls), `None` without function
    /// timing in that episode.
    pub fn episode(&self, episode: &Episode) -> Option<(u64, u64, u64)> {
        let timing = episode.function_timing.as_ref()?;
        let mut out = (0, 0, 0);
        for edge in timing
            .edges
            .iter()
            .filter(|e| e.parent == self.caller && e.child == self.slowpath)
        {
            if edge.context.is_reaper() {
                out.1 += edge.total_ns;
            } else if edge.context == Context::VictimExit {
                out.0 += edge.total_ns;
            } else {
                continue;
            }
            out.2 += edge.calls;
        }
        Some(out)
    }
}

/// Label when the row cannot be built from the run's concepts.
const LABEL: &str = "PTE-lock wait, exact";

/// Why a function the row needs was not timed, from the run's probe
/// lists: record's own reason (`not timed: ... record --exact-locks ...`)
/// when it chose not to, else that no probe attached.
fn not_timed(run: &Run, concept: ConceptId, symbol: &str) -> Option<String> {
    let attached = run
        .function_probe_uses()
        .any(|p| p.function() == Some(symbol) && p.attached());
    if attached {
        return None;
    }
    Some(match run.not_timed_why(concept) {
        Some(why) => format!("{symbol} not timed: {why}"),
        None => format!("{symbol} was not timed (no function probe attached to it)"),
    })
}

/// Where the PTE lock is inline, the slow path's calls whose nearest timed
/// caller is the per-VMA unmap are the walk's lock waits only when the
/// batch freeing inside the walk (`tlb_flush_mmu` →
/// `free_pages_and_swap_cache` → lruvec and zone locks) was timed too;
/// `None` when it was, or the kernel has no such function.
fn batch_freeing_untimed(run: &Run, frames: &ConceptFrames) -> Option<String> {
    [ConceptId::TlbFlush, ConceptId::PageFreeing]
        .into_iter()
        .filter_map(|c| frames.symbol(c).map(|s| (c, s)))
        .find_map(|(c, s)| not_timed(run, c, s))
        .map(|why| {
            format!(
                "the PTE lock is inline on this kernel, so the slow path's calls from the \
                 per-VMA unmap include the batch freeing's lock waits unless it is timed too \
                 ({why})"
            )
        })
}

/// The exact PTE-lock wait row: per episode, the inclusive time of the spin
/// slow path's calls made directly from the PTE-lock call site, split into
/// the victim's and the reaper's part, with the call count.
pub fn pte_exact_wait_row(run: &Run, frames: &ConceptFrames) -> SummaryRow {
    let id = RowId::PteLockWaitExact;
    if PteLockKind::of(run) == PteLockKind::Sleeping {
        let why =
            "PREEMPT_RT: the PTE lock sleeps in rt_spin_lock, not in the timed spin slow path";
        return uniform_row(run, id, LABEL.to_owned(), why.to_owned());
    }
    let source = match ExactSource::of(frames) {
        Ok(source) => source,
        Err(why) => return uniform_row(run, id, LABEL.to_owned(), why.to_string()),
    };
    let label = source.label();
    if !run.episodes.iter().any(|e| e.function_timing.is_some()) {
        let why = super::function_timing::why_not_measured(run);
        return uniform_row(run, id, label, why);
    }
    let caller_concept = if frames.symbol(ConceptId::PteLock).is_some() {
        ConceptId::PteLock
    } else {
        ConceptId::PerVmaUnmap
    };
    let untimed = [
        (ConceptId::SpinSlowpath, source.slowpath),
        (caller_concept, source.caller),
    ]
    .into_iter()
    .find_map(|(c, s)| not_timed(run, c, s))
    .or_else(|| {
        (caller_concept == ConceptId::PerVmaUnmap)
            .then(|| batch_freeing_untimed(run, frames))
            .flatten()
    });
    if let Some(why) = untimed {
        return uniform_row(run, id, label, why);
    }
    let cells = run
        .episodes
        .iter()
        .map(|e| match source.episode(e) {
            Some((victim, reaper, calls)) => {
                Cell::Measured(split_value(victim, reaper, Some(calls)))
            }
            None => Cell::NotMeasured {
                why: "no function timing in this episode".to_owned(),
            },
        })
        .collect();
    row(id, label, Some(SPLIT_LABEL), cells)
}
