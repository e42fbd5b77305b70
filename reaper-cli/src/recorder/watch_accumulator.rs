//! `record --watch`'s per-owner accumulator: the kernel aggregates drained
//! so far, filed under the tgid that owns each context until the owner's
//! episode takes them.

use std::collections::HashMap;

use reaper_common::tracking::{tag_context, tag_owner};

use crate::probes::collect::RawEpisode;

/// Per-owner kernel aggregates drained so far.
#[derive(Default)]
pub(super) struct Accumulator {
    by_owner: HashMap<u32, RawEpisode>,
}

impl Accumulator {
    pub(super) fn add(&mut self, raw: RawEpisode) {
        for (key, count) in raw.samples {
            let slot = self.by_owner.entry(tag_owner(key.context)).or_default();
            match slot.samples.iter_mut().find(|(k, _)| *k == key) {
                Some((_, c)) => {
                    c.samples += count.samples;
                    c.period_ns += count.period_ns;
                }
                None => slot.samples.push((key, count)),
            }
        }
        for (key, stats) in raw.waits {
            let slot = self.by_owner.entry(tag_owner(key.context)).or_default();
            match slot.waits.iter_mut().find(|(k, _)| *k == key) {
                Some((_, s)) => {
                    s.count += stats.count;
                    s.total_ns += stats.total_ns;
                    s.max_ns = s.max_ns.max(stats.max_ns);
                }
                None => slot.waits.push((key, stats)),
            }
        }
        for (tag, bytes) in raw.freed {
            let slot = self.by_owner.entry(tag_owner(tag)).or_default();
            match slot.freed.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, b)) => *b += bytes,
                None => slot.freed.push((tag, bytes)),
            }
        }
        for slot in self.by_owner.values_mut() {
            for (id, ips) in &raw.stacks {
                slot.stacks.entry(*id).or_insert_with(|| ips.clone());
            }
        }
    }

    /// Takes an owner's data, keeping only keys of `context`.
    pub(super) fn take(&mut self, owner: u32, context: u32) -> RawEpisode {
        let Some(slot) = self.by_owner.get_mut(&owner) else {
            return RawEpisode::default();
        };
        let (samples, rest): (Vec<_>, Vec<_>) = slot
            .samples
            .drain(..)
            .partition(|(k, _)| tag_context(k.context) == context);
        slot.samples = rest;
        let (waits, rest): (Vec<_>, Vec<_>) = slot
            .waits
            .drain(..)
            .partition(|(k, _)| tag_context(k.context) == context);
        slot.waits = rest;
        let (freed, rest): (Vec<_>, Vec<_>) = slot
            .freed
            .drain(..)
            .partition(|(tag, _)| tag_context(*tag) == context);
        slot.freed = rest;
        let stacks = slot.stacks.clone();
        if slot.samples.is_empty() && slot.waits.is_empty() && slot.freed.is_empty() {
            self.by_owner.remove(&owner);
        }
        RawEpisode {
            samples,
            waits,
            stacks,
            freed,
            ..RawEpisode::default()
        }
    }
}

pub(super) fn merge(into: &mut RawEpisode, from: RawEpisode) {
    into.samples.extend(from.samples);
    into.waits.extend(from.waits);
    into.freed.extend(from.freed);
    into.stacks.extend(from.stacks);
}
