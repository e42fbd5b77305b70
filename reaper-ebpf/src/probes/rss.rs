//! `kmem:rss_stat` for tracked tasks that change another mm's resident
//! counters (a teardown): the bytes each context freed, and a downsampled
//! RSS track of the victim through the timeline (see `reaper_common::rss`).

use aya_ebpf::{
    macros::{map, tracepoint},
    maps::{HashMap, LruHashMap},
    programs::TracePointContext,
};
use reaper_common::{
    loss::Counter,
    rss::{MEMBERS, RSS_FREED_MAX_ENTRIES, RSS_LAST_MAX_ENTRIES, RssKey, RssLast, emit_step, pack},
    timeline::TimelineKind,
};

use super::timeline::{Scope, emit};
use crate::maps::{atomic_add, bump, current_context, offsets};

/// (mm, member) → the counter's last value seen and last value emitted.
#[map(name = "RSS_LAST")]
static RSS_LAST: LruHashMap<RssKey, RssLast> =
    LruHashMap::with_max_entries(RSS_LAST_MAX_ENTRIES, 0);

/// Tag → bytes freed (two's complement; concurrent batches of two CPUs on
/// one counter may move a batch between their tags).
#[map(name = "RSS_FREED")]
static RSS_FREED: HashMap<u32, u64> = HashMap::with_max_entries(RSS_FREED_MAX_ENTRIES, 0);

/// Reads a record field at a loader-provided offset.
#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, offset: u32) -> Option<T> {
    // SAFETY: the offset comes from this kernel's tracefs format.
    unsafe { ctx.read_at::<T>(offset as usize) }.ok()
}

/// Adds `bytes` (may be negative) to `tag`'s freed total.
#[inline(always)]
fn add_freed(tag: u32, bytes: i64) {
    if let Some(slot) = RSS_FREED.get_ptr_mut(&tag) {
        atomic_add(slot, bytes as u64);
        return;
    }
    if RSS_FREED.insert(&tag, &(bytes as u64), 0).is_err() {
        bump(Counter::RssFreedFull);
    }
}

/// `kmem:rss_stat(mm_id, curr, member, size)`.
#[tracepoint]
pub fn rss_stat(ctx: TracePointContext) -> u32 {
    let off = offsets();
    // The mm's own task (a page fault, every fault on the system): not a
    // teardown. Returns after one field read.
    if field::<u32>(&ctx, off.rss_stat_curr).is_none_or(|curr| curr != 0) {
        return 0;
    }
    let Some(tag) = current_context() else {
        return 0;
    };
    let (Some(mm_id), Some(member), Some(size)) = (
        field::<u32>(&ctx, off.rss_stat_mm_id),
        field::<i32>(&ctx, off.rss_stat_member),
        field::<i64>(&ctx, off.rss_stat_size),
    ) else {
        return 0;
    };
    let member = member as u32;
    if member >= MEMBERS {
        return 0;
    }
    let key = RssKey { mm_id, member };
    let emit_now = match RSS_LAST.get_ptr_mut(&key) {
        Some(last) => {
            // SAFETY: a map value pointer of this key; two CPUs changing the
            // same counter within the program's run can both read the old
            // value (BPF has no exchange here), which misattributes one batch.
            let last = unsafe { &mut *last };
            // A teardown only lowers counters: a higher value is another mm
            // that reuses the hashed id (a slab-reused mm_struct), so it
            // starts afresh instead of counting a negative drop.
            if size <= last.value {
                add_freed(tag, last.value - size);
            }
            last.value = size;
            let moved = (last.emitted - size).abs();
            if moved >= emit_step(last.emitted) || (size == 0 && last.emitted != 0) {
                last.emitted = size;
                true
            } else {
                false
            }
        }
        None => {
            // First sight of this counter: its drop before now is unknown
            // here (userspace attributes it from /proc), the point is emitted.
            let _ = RSS_LAST.insert(
                &key,
                &RssLast {
                    value: size,
                    emitted: size,
                },
                0,
            );
            true
        }
    };
    if emit_now {
        emit(
            &ctx,
            TimelineKind::RssStat,
            Scope::Tracked,
            pack(member, size),
        );
    }
    0
}
