//! Turns one episode's raw kernel data into the run-file model: symbolized,
//! merged stacks per context, the timeline relative to the kill, and the
//! latencies derived from it. Pure functions, tested with fake symbolizers.

use std::collections::{BTreeMap, HashMap};

use reaper_common::{
    context::{CONTEXT_UNTRACKED, Context},
    sampling::{STACK_ID_LOST, STACK_ID_USER_MODE},
    timeline::{TimelineEvent, TimelineKind},
    tracking::tag_context,
};

use crate::{
    model::{
        ContextProfile, FRAME_STACK_LOST, FRAME_USER_MODE, Latencies, LockWaitStack, SampledStack,
        TaskRef, TimelineEntry, TimelineEventKind,
    },
    probes::collect::RawEpisode,
};

/// Name of a context id ("untracked" for anything else).
/// Frames (outermost first) for a stack id.
fn frames_for(
    id: i32,
    stacks: &HashMap<i32, Vec<u64>>,
    symbolize: &mut dyn FnMut(&[u64]) -> Vec<String>,
) -> Vec<String> {
    match id {
        STACK_ID_USER_MODE => vec![FRAME_USER_MODE.to_owned()],
        STACK_ID_LOST => vec![FRAME_STACK_LOST.to_owned()],
        id => stacks
            .get(&id)
            .map_or_else(|| vec![FRAME_STACK_LOST.to_owned()], |ips| symbolize(ips)),
    }
}

/// Per-context profiles. `tasks` lists the tracked tasks of each context; a
/// context with tasks is always present (possibly with no samples), the
/// oom_reaper context only when it has data, since it is tracked in every
/// episode but only works after an OOM kill.
pub fn context_profiles(
    raw: &RawEpisode,
    tasks: &BTreeMap<u32, Vec<TaskRef>>,
    symbolize: &mut dyn FnMut(&[u64]) -> Vec<String>,
) -> Vec<ContextProfile> {
    let mut cache: HashMap<i32, Vec<String>> = HashMap::new();
    let mut frames = |id: i32| {
        cache
            .entry(id)
            .or_insert_with(|| frames_for(id, &raw.stacks, symbolize))
            .clone()
    };

    let mut profiles = Vec::new();
    for ctx in Context::ALL {
        let context = ctx.id();
        let stacks = sampled_stacks(raw, context, &mut frames);
        let lock_waits = lock_wait_stacks(raw, context, &mut frames);
        let context_tasks = tasks.get(&context).cloned().unwrap_or_default();
        let has_data = !stacks.is_empty() || !lock_waits.is_empty();
        if !has_data && (context_tasks.is_empty() || ctx == Context::OomReaper) {
            continue;
        }
        profiles.push(ContextProfile {
            context: ctx,
            tasks: context_tasks,
            stacks,
            lock_waits,
        });
    }
    profiles
}

/// The sampled stacks of one context (tag `context`), merged by frames,
/// largest period first; `frames` names a stack id.
fn sampled_stacks(
    raw: &RawEpisode,
    context: u32,
    frames: &mut dyn FnMut(i32) -> Vec<String>,
) -> Vec<SampledStack> {
    let mut stacks: BTreeMap<Vec<String>, SampledStack> = BTreeMap::new();
    for (key, count) in raw
        .samples
        .iter()
        .filter(|(k, _)| tag_context(k.context) == context)
    {
        let f = frames(key.stack_id);
        let entry = stacks.entry(f.clone()).or_insert(SampledStack {
            frames: f,
            samples: 0,
            period_ns: 0,
        });
        entry.samples += count.samples;
        entry.period_ns += count.period_ns;
    }
    let mut stacks: Vec<SampledStack> = stacks.into_values().collect();
    stacks.sort_by(|a, b| {
        b.period_ns
            .cmp(&a.period_ns)
            .then_with(|| a.frames.cmp(&b.frames))
    });
    stacks
}

/// The lock waits of one context (tag `context`), merged by frames (their
/// capture's own frames dropped) and flags, longest total first.
fn lock_wait_stacks(
    raw: &RawEpisode,
    context: u32,
    frames: &mut dyn FnMut(i32) -> Vec<String>,
) -> Vec<LockWaitStack> {
    let mut waits: BTreeMap<(Vec<String>, u32), LockWaitStack> = BTreeMap::new();
    for (key, stats) in raw
        .waits
        .iter()
        .filter(|(k, _)| tag_context(k.context) == context)
    {
        let f = without_capture_frames(frames(key.stack_id));
        let entry = waits
            .entry((f.clone(), key.flags))
            .or_insert(LockWaitStack {
                frames: f,
                flags: key.flags,
                count: 0,
                total_ns: 0,
                max_ns: 0,
            });
        entry.count += stats.count;
        entry.total_ns += stats.total_ns;
        entry.max_ns = entry.max_ns.max(stats.max_ns);
    }
    let mut lock_waits: Vec<LockWaitStack> = waits.into_values().collect();
    lock_waits.sort_by(|a, b| {
        b.total_ns
            .cmp(&a.total_ns)
            .then_with(|| a.frames.cmp(&b.frames))
    });
    lock_waits
}

/// A lock wait's stack without the frames of its own capture: the
/// `contention_begin` program took it from inside itself, so with a raw
/// tracepoint its leaf is reaper's program (folded to one probe label) and,
/// on kernels that call tracepoints through an iterator, `__traceiter_*`.
/// A classic tracepoint's stack starts below them, so both read alike.
fn without_capture_frames(mut frames: Vec<String>) -> Vec<String> {
    let probe = crate::probe_frames::label("");
    let probe_prefix = probe.trim_end_matches(']');
    while frames.len() > 1
        && frames
            .last()
            .is_some_and(|f| f.starts_with(probe_prefix) || f.starts_with("__traceiter_"))
    {
        frames.pop();
    }
    frames
}

/// Whether an event belongs to the episode of `victim_pid`.
fn relevant(event: &TimelineEvent, victim_pid: u32) -> bool {
    let Some(kind) = TimelineKind::from_raw(event.kind) else {
        return false;
    };
    match kind {
        TimelineKind::ProcessFree
        | TimelineKind::OomMarkVictim
        | TimelineKind::OomWakeReaper
        | TimelineKind::OomStartReaping
        | TimelineKind::OomFinishReaping
        | TimelineKind::OomSkipReaping => event.arg == i64::from(victim_pid),
        // The RSS track's points: in `Episode::reclaim`, not the table.
        TimelineKind::RssStat => false,
        _ => event.context != CONTEXT_UNTRACKED,
    }
}

fn comm_of(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Who killed the victim, for the timeline's first entry: reaper's own
/// reaper thread (`tid`, `tgid`), or `None` when the kernel's OOM killer did
/// (then `oom:mark_victim` itself is the kill).
pub type Killer = Option<(u32, u32)>;

/// The episode's timeline relative to the kill (at `kill_ns`), starting with
/// the kill itself, ordered by time.
pub fn timeline(
    events: &[TimelineEvent],
    kill_ns: u64,
    killer: Killer,
    victim_pid: u32,
) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = killer
        .map(|(tid, tgid)| TimelineEntry {
            t_ns: 0,
            kind: TimelineEventKind::Kill,
            context: None,
            tid,
            tgid,
            comm: "reaper".into(),
            arg: i64::from(victim_pid),
        })
        .into_iter()
        .collect();
    // `relevant` keeps only kinds this build decodes (the eBPF side is
    // built from the same reaper-common), so none is dropped here.
    entries.extend(
        events
            .iter()
            .filter(|e| relevant(e, victim_pid))
            .filter_map(|e| {
                Some(TimelineEntry {
                    t_ns: e.ts_ns as i64 - kill_ns as i64,
                    kind: TimelineKind::from_raw(e.kind)?.into(),
                    context: (e.context != CONTEXT_UNTRACKED)
                        .then(|| Context::from_id(tag_context(e.context)))
                        .flatten(),
                    tid: e.tid,
                    tgid: e.tgid,
                    comm: comm_of(&e.comm),
                    arg: e.arg,
                })
            }),
    );
    entries.sort_by_key(|e| e.t_ns);
    entries
}

/// Latencies from a timeline built by [`timeline`].
pub fn latencies(timeline: &[TimelineEntry]) -> Latencies {
    let first = |kind: TimelineKind, context: Context| {
        timeline
            .iter()
            .find(|e| e.kind == kind && e.context == Some(context))
    };
    let first_any = |kind: TimelineKind| timeline.iter().find(|e| e.kind == kind);
    let after_kill = |e: &TimelineEntry| u64::try_from(e.t_ns).ok();
    let between = |a: Option<&TimelineEntry>, b: Option<&TimelineEntry>| {
        a.zip(b)
            .and_then(|(a, b)| u64::try_from(b.t_ns - a.t_ns).ok())
    };
    let enter = first(TimelineKind::MreleaseEnter, Context::MreleaseCaller);
    let exit = first(TimelineKind::MreleaseExit, Context::MreleaseCaller);
    let marked = first_any(TimelineKind::OomMarkVictim);
    let start = first_any(TimelineKind::OomStartReaping);
    // A call that failed otherwise than by losing the race (ESRCH, kept and
    // marked) reaped nothing: its return is no "mrelease done" (ENOSYS on a
    // kernel without the syscall once gave a made-up figure).
    let reaped = exit.filter(|e| e.arg >= 0 || e.arg == -i64::from(libc::ESRCH));
    Latencies {
        kill_to_mrelease_done_ns: reaped.and_then(after_kill),
        kill_to_exit_mmap_done_ns: first(TimelineKind::ExitMmap, Context::VictimExit)
            .and_then(after_kill),
        mrelease_duration_ns: between(enter, reaped),
        mrelease_ret: exit.map(|e| e.arg),
        oom_reaper_delay_ns: between(marked, first_any(TimelineKind::OomWakeReaper)),
        oom_reaping_ns: between(start, first_any(TimelineKind::OomFinishReaping)),
        oom_reaper_verdict: marked.map(|_| oom_reaper_verdict(timeline, false).to_owned()),
        mrelease_source: None,
        exit_mmap_source: None,
    }
}

/// Judges the oom_reaper again once "kill → exit_mmap done" may have come
/// from a source other than the timeline's `mmap:exit_mmap` event
/// (`figure_source`, kernels before 6.1); only after an OOM kill.
pub fn judge_oom_reaper(latencies: &mut Latencies, timeline: &[TimelineEntry]) {
    if latencies.oom_reaper_verdict.is_some() {
        let exit_mmap_done = latencies.kill_to_exit_mmap_done_ns.is_some();
        latencies.oom_reaper_verdict =
            Some(oom_reaper_verdict(timeline, exit_mmap_done).to_owned());
    }
}

/// Explains what the oom_reaper did after an OOM kill; `exit_mmap_done`:
/// the victim's exit_mmap is known to have finished (from a source other
/// than the timeline's event).
///
/// The OOM killer queues the victim for the reaper with a timer (2 s on
/// 5.17+, and on 5.10/5.15 stable kernels that took the backport);
/// `wake_oom_reaper()` returns without `oom:wake_reaper` when the
/// victim's mm already has MMF_OOM_SKIP, which its own `exit_mmap` sets
/// (mm/oom_kill.c). So no wake-up after a finished teardown means the
/// victim was faster; a freed victim task (`sched_process_free`) means its
/// teardown finished too, which is all a kernel without `mmap:exit_mmap`
/// and without exit_mmap's function probe can show.
fn oom_reaper_verdict(timeline: &[TimelineEntry], exit_mmap_done: bool) -> &'static str {
    let seen = |kind: TimelineKind| timeline.iter().any(|e| e.kind == kind);
    let started = seen(TimelineKind::OomStartReaping);
    let skipped = seen(TimelineKind::OomSkipReaping);
    let woken = seen(TimelineKind::OomWakeReaper);
    let exit_mmap_done = exit_mmap_done || seen(TimelineKind::ExitMmap);
    let freed = seen(TimelineKind::ProcessFree);
    match (started, skipped, woken) {
        (true, _, _) => "reaped (oom:start_task_reaping .. finish_task_reaping)",
        (false, true, _) => {
            "skipped (oom:skip_task_reaping: nothing left to reap, or the mmap lock was busy)"
        }
        (false, false, false) if exit_mmap_done => {
            "not woken: the victim's own exit_mmap finished (MMF_OOM_SKIP) before the reaper's delay expired, so there was nothing to reap"
        }
        (false, false, false) if freed => {
            "not woken: the victim's task was freed (its exit_mmap had set MMF_OOM_SKIP) before the reaper's delay expired, so there was nothing to reap (no oom:wake_reaper)"
        }
        _ => "no oom_reaper event seen",
    }
}

#[cfg(test)]
mod tests {
    use reaper_common::{
        context::{CONTEXT_MRELEASE_CALLER, CONTEXT_OOM_REAPER, CONTEXT_VICTIM_EXIT},
        lock_wait::{LockWaitKey, LockWaitStats},
        sampling::{SampleCount, SampleKey},
    };

    use super::*;

    fn fake_symbolize(ips: &[u64]) -> Vec<String> {
        // Innermost first in, outermost first out; names from the address.
        ips.iter().rev().map(|ip| format!("fn_{ip:x}")).collect()
    }

    fn raw() -> RawEpisode {
        let sample = |context, stack_id, samples| {
            (
                SampleKey { context, stack_id },
                SampleCount {
                    samples,
                    period_ns: samples * 250_000,
                },
            )
        };
        RawEpisode {
            samples: vec![
                sample(CONTEXT_VICTIM_EXIT, 1, 10),
                sample(CONTEXT_VICTIM_EXIT, 2, 5),
                sample(CONTEXT_MRELEASE_CALLER, 3, 7),
                sample(CONTEXT_MRELEASE_CALLER, STACK_ID_USER_MODE, 1),
            ],
            waits: vec![(
                LockWaitKey {
                    context: CONTEXT_MRELEASE_CALLER,
                    stack_id: 3,
                    flags: 1,
                    _pad: 0,
                },
                LockWaitStats {
                    count: 4,
                    total_ns: 4000,
                    max_ns: 2000,
                },
            )],
            // Stacks 1 and 2 differ only in offsets: same functions.
            stacks: HashMap::from([
                (1, vec![0xb, 0xa]),
                (2, vec![0xb, 0xa]),
                (3, vec![0xc, 0xa]),
            ]),
            ..RawEpisode::default()
        }
    }

    #[test]
    fn stacks_with_the_same_functions_merge() {
        let tasks = BTreeMap::from([(
            CONTEXT_VICTIM_EXIT,
            vec![TaskRef {
                tid: 10,
                comm: "v".into(),
            }],
        )]);
        let profiles = context_profiles(&raw(), &tasks, &mut fake_symbolize);
        assert_eq!(profiles.len(), 2);
        let victim = &profiles[0];
        assert_eq!(victim.context, Context::VictimExit);
        assert_eq!(victim.stacks.len(), 1);
        assert_eq!(victim.stacks[0].frames, ["fn_a", "fn_b"]);
        assert_eq!(victim.stacks[0].samples, 15);
        assert_eq!(victim.stacks[0].period_ns, 15 * 250_000);
    }

    #[test]
    fn user_mode_and_waits_are_kept() {
        let profiles = context_profiles(&raw(), &BTreeMap::new(), &mut fake_symbolize);
        let caller = profiles
            .iter()
            .find(|p| p.context == Context::MreleaseCaller)
            .unwrap();
        assert!(caller.stacks.iter().any(|s| s.frames == [FRAME_USER_MODE]));
        assert_eq!(caller.lock_waits.len(), 1);
        assert_eq!(caller.lock_waits[0].count, 4);
        assert_eq!(caller.lock_waits[0].frames, ["fn_a", "fn_c"]);
    }

    #[test]
    fn a_raw_tracepoint_lock_stack_reads_like_a_classic_one() {
        let raw = vec![
            "exit_mmap".to_owned(),
            "rwsem_down_write_slowpath".to_owned(),
            "__traceiter_contention_begin".to_owned(),
            crate::probe_frames::label("raw_contention_begin"),
        ];
        assert_eq!(
            without_capture_frames(raw),
            ["exit_mmap", "rwsem_down_write_slowpath"]
        );
        let classic = vec!["zap_pte_range".to_owned(), "_raw_spin_lock".to_owned()];
        assert_eq!(without_capture_frames(classic.clone()), classic);
    }

    #[test]
    fn evicted_stack_is_marked_lost() {
        let mut raw = raw();
        raw.stacks.remove(&3);
        let profiles = context_profiles(&raw, &BTreeMap::new(), &mut fake_symbolize);
        let caller = profiles
            .iter()
            .find(|p| p.context == Context::MreleaseCaller)
            .unwrap();
        assert!(caller.stacks.iter().any(|s| s.frames == [FRAME_STACK_LOST]));
    }

    #[test]
    fn idle_oom_reaper_context_is_omitted_but_tracked_victim_is_not() {
        let tasks = BTreeMap::from([
            (
                CONTEXT_OOM_REAPER,
                vec![TaskRef {
                    tid: 31,
                    comm: "oom_reaper".into(),
                }],
            ),
            (
                CONTEXT_VICTIM_EXIT,
                vec![TaskRef {
                    tid: 10,
                    comm: "v".into(),
                }],
            ),
        ]);
        let profiles = context_profiles(&RawEpisode::default(), &tasks, &mut fake_symbolize);
        assert_eq!(
            profiles.iter().map(|p| p.context).collect::<Vec<_>>(),
            [Context::VictimExit]
        );
    }

    fn event(ts_ns: u64, kind: TimelineKind, context: u32, arg: i64) -> TimelineEvent {
        TimelineEvent {
            ts_ns,
            arg,
            kind: kind as u32,
            context,
            tid: 5,
            tgid: 5,
            comm: *b"reaper-victim\0\0\0",
        }
    }

    #[test]
    fn timeline_and_latencies() {
        let kill = 1_000_000;
        let events = [
            event(
                kill + 2_000,
                TimelineKind::MreleaseEnter,
                CONTEXT_MRELEASE_CALLER,
                3,
            ),
            event(
                kill + 70_000_000,
                TimelineKind::ExitMmap,
                CONTEXT_VICTIM_EXIT,
                0,
            ),
            event(
                kill + 60_000_000,
                TimelineKind::MreleaseExit,
                CONTEXT_MRELEASE_CALLER,
                0,
            ),
            event(
                kill + 80_000_000,
                TimelineKind::ProcessFree,
                CONTEXT_UNTRACKED,
                42,
            ),
            event(
                kill + 90_000_000,
                TimelineKind::ProcessFree,
                CONTEXT_UNTRACKED,
                4242,
            ),
            event(kill + 5, TimelineKind::MreleaseEnter, CONTEXT_UNTRACKED, 9),
        ];
        let entries = timeline(&events, kill, Some((7, 7)), 42);
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.name()).collect();
        assert_eq!(
            kinds,
            [
                "kill",
                "mrelease_enter",
                "mrelease_exit",
                "exit_mmap_done",
                "process_free"
            ]
        );
        assert_eq!(entries[3].comm, "reaper-victim");
        let l = latencies(&entries);
        assert_eq!(l.kill_to_mrelease_done_ns, Some(60_000_000));
        assert_eq!(l.kill_to_exit_mmap_done_ns, Some(70_000_000));
        assert_eq!(l.mrelease_duration_ns, Some(60_000_000 - 2_000));
        assert_eq!(l.mrelease_ret, Some(0));
    }

    #[test]
    fn oom_timeline_starts_at_mark_victim_and_measures_the_reaper_delay() {
        let mark = 5_000_000_000;
        let events = [
            event(mark, TimelineKind::OomMarkVictim, CONTEXT_UNTRACKED, 42),
            event(
                mark + 30_000_000,
                TimelineKind::ExitMmap,
                CONTEXT_VICTIM_EXIT,
                0,
            ),
            event(
                mark + 2_000_000_000,
                TimelineKind::OomWakeReaper,
                CONTEXT_UNTRACKED,
                42,
            ),
            event(
                mark + 2_000_100_000,
                TimelineKind::OomSkipReaping,
                CONTEXT_OOM_REAPER,
                42,
            ),
        ];
        let entries = timeline(&events, mark, None, 42);
        assert_eq!(entries[0].kind, TimelineKind::OomMarkVictim);
        assert!(
            latencies(&entries[..2])
                .oom_reaper_verdict
                .unwrap()
                .starts_with("not woken: the victim's own exit_mmap")
        );
        assert_eq!(entries[0].t_ns, 0);
        let l = latencies(&entries);
        assert_eq!(l.oom_reaper_delay_ns, Some(2_000_000_000));
        assert!(l.oom_reaper_verdict.unwrap().starts_with("skipped"));
        assert_eq!(l.oom_reaping_ns, None);
        assert_eq!(l.kill_to_exit_mmap_done_ns, Some(30_000_000));
    }

    /// 5.10: no mmap:exit_mmap tracepoint and a delayed reaper that
    /// traces nothing when the victim was faster (mm/oom_kill.c,
    /// wake_oom_reaper); the victim's free, or exit_mmap's probe, says so.
    #[test]
    fn a_delayed_reaper_that_found_the_victim_gone_is_named_without_exit_mmap_events() {
        let mark = 1_000;
        let events = [
            event(mark, TimelineKind::OomMarkVictim, CONTEXT_UNTRACKED, 42),
            event(mark + 9, TimelineKind::ProcessExit, CONTEXT_VICTIM_EXIT, 0),
        ];
        let entries = timeline(&events, mark, None, 42);
        let mut l = latencies(&entries);
        assert_eq!(
            l.oom_reaper_verdict.as_deref(),
            Some("no oom_reaper event seen")
        );
        l.kill_to_exit_mmap_done_ns = Some(9);
        judge_oom_reaper(&mut l, &entries);
        assert!(
            l.oom_reaper_verdict
                .as_deref()
                .unwrap()
                .starts_with("not woken: the victim's own exit_mmap finished")
        );
        let freed = [
            events[0],
            event(mark + 20, TimelineKind::ProcessFree, CONTEXT_UNTRACKED, 42),
        ];
        let entries = timeline(&freed, mark, None, 42);
        assert!(
            latencies(&entries)
                .oom_reaper_verdict
                .unwrap()
                .starts_with("not woken: the victim's task was freed")
        );
        // Not after a kill of reaper's own: no verdict at all.
        let mut none = Latencies::default();
        judge_oom_reaper(&mut none, &entries);
        assert_eq!(none.oom_reaper_verdict, None);
    }

    /// Regression: on 5.10 the raw syscall tracepoint saw the ENOSYS
    /// return of a process_mrelease that does not exist, and the table read
    /// "kill → mrelease done 1.8 ms".
    #[test]
    fn a_failed_process_mrelease_is_no_mrelease_done() {
        let kill = 1_000;
        let events = [
            event(
                kill + 5,
                TimelineKind::MreleaseEnter,
                CONTEXT_MRELEASE_CALLER,
                3,
            ),
            event(
                kill + 1_800_000,
                TimelineKind::MreleaseExit,
                CONTEXT_MRELEASE_CALLER,
                -38,
            ),
        ];
        let l = latencies(&timeline(&events, kill, Some((7, 7)), 42));
        assert_eq!(l.kill_to_mrelease_done_ns, None);
        assert_eq!(l.mrelease_duration_ns, None);
        assert_eq!(l.mrelease_ret, Some(-38));
        let lost = [
            events[0],
            event(
                kill + 90,
                TimelineKind::MreleaseExit,
                CONTEXT_MRELEASE_CALLER,
                -3,
            ),
        ];
        let l = latencies(&timeline(&lost, kill, Some((7, 7)), 42));
        assert_eq!(
            l.kill_to_mrelease_done_ns,
            Some(90),
            "a lost race is kept, marked"
        );
    }

    #[test]
    fn missing_events_give_no_latency() {
        let entries = timeline(&[], 0, Some((1, 1)), 2);
        assert_eq!(latencies(&entries), Latencies::default());
    }
}
