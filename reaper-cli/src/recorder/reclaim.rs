//! An episode's [`Reclaim`]: the resident memory each context freed and the
//! victim's RSS over time, from the kernel's freed-bytes totals and the
//! `rss_stat` timeline events (see `reaper_common::rss`). Pure: tested with
//! hand-made events.

use std::collections::BTreeMap;

use reaper_common::{
    context::Context,
    rss::{self, MEMBERS},
    timeline::{TimelineEvent, TimelineKind},
    tracking::tag_context,
};

use crate::model::{Reclaim, RssPoint};

/// Resident counters, bytes, indexed by `rss::MEMBER_*`.
pub type Members = [u64; MEMBERS as usize];

/// Builds the reclaim of an episode whose t = 0 is `t0_ns`.
///
/// `freed` holds the kernel's totals per tag, `events` the episode's
/// timeline (only `rss_stat` events are read), `start` /proc's resident
/// counters read before t = 0 (when it could be read), and `keep` says
/// which tags belong to this episode (all of them outside `--watch`).
pub fn build(
    t0_ns: u64,
    freed: &[(u32, i64)],
    events: &[TimelineEvent],
    start: Option<Members>,
    keep: impl Fn(u32) -> bool,
) -> Reclaim {
    let mut freed_bytes: BTreeMap<Context, i64> = BTreeMap::new();
    for &(tag, bytes) in freed.iter().filter(|(tag, _)| keep(*tag)) {
        if let Some(context) = Context::from_id(tag_context(tag)) {
            *freed_bytes.entry(context).or_default() += bytes;
        }
    }
    let points = rss_points(events, &keep);
    let mut current = starting_counters(&points, start, &mut freed_bytes);
    let rss_at_start_bytes = resident(&current);
    let mut rss_track = vec![RssPoint {
        t_ns: 0,
        bytes: rss_at_start_bytes,
    }];
    for &(ts, member, bytes, _) in &points {
        current[member as usize] = bytes;
        let point = RssPoint {
            t_ns: ts as i64 - t0_ns as i64,
            bytes: resident(&current),
        };
        match rss_track.last_mut() {
            Some(last) if last.t_ns == point.t_ns => *last = point,
            _ => rss_track.push(point),
        }
    }
    Reclaim {
        rss_at_start_bytes,
        freed_bytes,
        rss_track,
    }
}

/// One resident counter's new value: (time, `rss::MEMBER_*`, bytes, the
/// context that changed it).
type RssChange = (u64, u32, u64, Option<Context>);

/// The episode's resident-counter changes (`rss_stat` events of kept
/// tags), in time order.
fn rss_points(events: &[TimelineEvent], keep: &impl Fn(u32) -> bool) -> Vec<RssChange> {
    let mut points: Vec<RssChange> = events
        .iter()
        .filter(|e| e.kind == TimelineKind::RssStat as u32 && keep(e.context))
        .map(|e| {
            let (member, bytes) = rss::unpack(e.arg);
            (
                e.ts_ns,
                member,
                bytes,
                Context::from_id(tag_context(e.context)),
            )
        })
        .filter(|p| p.1 < MEMBERS && rss::is_resident(p.1))
        .collect();
    points.sort_by_key(|p| p.0);
    points
}

/// The counters at t = 0. Each counter starts at /proc's value (`start`),
/// unless /proc showed less than the teardown's first value (read while the
/// victim still grew); its first drop goes to the context that made it
/// (added to `freed_bytes`).
fn starting_counters(
    points: &[RssChange],
    start: Option<Members>,
    freed_bytes: &mut BTreeMap<Context, i64>,
) -> Members {
    let mut current: Members = start.unwrap_or_default();
    let mut seen = [false; MEMBERS as usize];
    for &(_, member, bytes, context) in points {
        let m = member as usize;
        if seen[m] {
            continue;
        }
        seen[m] = true;
        match start {
            Some(start) if start[m] >= bytes => {
                if let Some(context) = context {
                    *freed_bytes.entry(context).or_default() += (start[m] - bytes) as i64;
                }
            }
            _ => current[m] = bytes,
        }
    }
    current
}

/// The resident total of counters `c`, bytes.
fn resident(c: &Members) -> u64 {
    (0..MEMBERS)
        .filter(|&m| rss::is_resident(m))
        .map(|m| c[m as usize])
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reaper_common::{
        context::{CONTEXT_MRELEASE_CALLER, CONTEXT_VICTIM_EXIT},
        rss::{MEMBER_ANON, MEMBER_FILE, MEMBER_SWAP},
        tracking::tag,
    };

    const MIB: u64 = 1 << 20;

    fn rss_event(ts_ns: u64, context: u32, member: u32, bytes: u64) -> TimelineEvent {
        TimelineEvent {
            ts_ns,
            arg: rss::pack(member, bytes as i64),
            kind: TimelineKind::RssStat as u32,
            context: tag(context, 0),
            ..TimelineEvent::default()
        }
    }

    fn start(file: u64, anon: u64) -> Members {
        let mut m = [0; MEMBERS as usize];
        m[MEMBER_FILE as usize] = file;
        m[MEMBER_ANON as usize] = anon;
        m
    }

    /// A victim of 256 MiB anon + 8 MiB file: each side's kernel total, plus
    /// the first drop of each counter given to whoever made it.
    #[test]
    fn freed_bytes_add_each_counters_first_drop_to_its_context() {
        let victim = tag(CONTEXT_VICTIM_EXIT, 0);
        let caller = tag(CONTEXT_MRELEASE_CALLER, 0);
        let freed = [(victim, (100 * MIB) as i64), (caller, (140 * MIB) as i64)];
        let events = [
            rss_event(1_000, CONTEXT_MRELEASE_CALLER, MEMBER_ANON, 254 * MIB),
            rss_event(1_500, CONTEXT_VICTIM_EXIT, MEMBER_FILE, 6 * MIB),
            rss_event(9_000, CONTEXT_VICTIM_EXIT, MEMBER_ANON, 0),
            rss_event(9_500, CONTEXT_VICTIM_EXIT, MEMBER_FILE, 0),
            rss_event(9_700, CONTEXT_VICTIM_EXIT, MEMBER_SWAP, 0),
        ];
        let r = build(
            500,
            &freed,
            &events,
            Some(start(8 * MIB, 256 * MIB)),
            |_| true,
        );
        assert_eq!(r.rss_at_start_bytes, 264 * MIB);
        assert_eq!(r.freed_bytes[&Context::VictimExit], (102 * MIB) as i64);
        assert_eq!(r.freed_bytes[&Context::MreleaseCaller], (142 * MIB) as i64);
        let track: Vec<(i64, u64)> = r.rss_track.iter().map(|p| (p.t_ns, p.bytes)).collect();
        assert_eq!(
            track,
            [
                (0, 264 * MIB),
                (500, 262 * MIB),
                (1_000, 260 * MIB),
                (8_500, 6 * MIB),
                (9_000, 0)
            ]
        );
    }

    /// /proc read while the victim still grew (an OOM victim at set-up):
    /// the counters' first values are the start, nothing is added.
    #[test]
    fn a_stale_proc_reading_is_not_a_drop() {
        let events = [rss_event(
            2_000,
            CONTEXT_VICTIM_EXIT,
            MEMBER_ANON,
            400 * MIB,
        )];
        let r = build(1_000, &[], &events, Some(start(0, 10 * MIB)), |_| true);
        assert_eq!(r.rss_at_start_bytes, 400 * MIB);
        assert!(r.freed_bytes.is_empty());
        let r = build(1_000, &[], &events, None, |_| true);
        assert_eq!(r.rss_at_start_bytes, 400 * MIB);
    }

    #[test]
    fn other_episodes_tags_are_left_out() {
        let mine = tag(CONTEXT_VICTIM_EXIT, 7);
        let theirs = tag(CONTEXT_VICTIM_EXIT, 8);
        let freed = [(mine, 5), (theirs, 9)];
        let r = build(0, &freed, &[], None, |t| t == mine);
        assert_eq!(r.freed_bytes[&Context::VictimExit], 5);
        assert_eq!(r.rss_track.len(), 1);
    }
}
