//! From a run to the derived [`Report`]: per-context tables, call graphs,
//! lock waits, and per-episode timelines and counters.
//!
//! Pure functions of `&Run` and the options; the summary rows live in
//! `summary.rs`, the stack arithmetic in `stacks.rs`.

use std::collections::BTreeMap;

use reaper_common::loss::Counter;

use crate::catalog::{ConceptFrames, ConceptId};
use crate::model::{Context, LockWaitStack, Run, SampledStack};

use super::ReportOptions;
use super::losses;
use super::model::{
    CallGraph, ContextReport, CounterLine, EpisodeReport, Header, KeyFunction, LockWaitRow,
    LockWaits, Loss, Report, SymbolCost,
};
use super::stacks::{call_tree, children_of, children_self, merge_lock_waits, merge_stacks, prune};
use super::{rows::lock_wait_status, summary::summary};

/// Concepts of the "Period (ms)  Symbol" table, in the thread's order, with
/// the contexts where they can appear (an absent one is listed there).
const KEY_CONCEPTS: &[(ConceptId, &[Context])] = &[
    (ConceptId::ReaperKthread, &[Context::OomReaper]),
    (ConceptId::MreleaseSyscall, &[Context::MreleaseCaller]),
    (ConceptId::ReaperWork, &Context::REAPERS),
    (ConceptId::VictimTeardown, &[Context::VictimExit]),
    (ConceptId::VictimUnmap, &[Context::VictimExit]),
    (ConceptId::PerVmaUnmap, &Context::ALL),
    (ConceptId::PteLock, &Context::ALL),
    (ConceptId::PageFreeing, &Context::ALL),
    (ConceptId::TlbFinish, &Context::ALL),
    (ConceptId::TlbFlush, &Context::ALL),
    (ConceptId::RmapRemoval, &Context::ALL),
    (ConceptId::SpinSlowpath, &Context::ALL),
];

/// Frames that are lock primitives rather than lock users: the lock-wait
/// table names the innermost frame that matches none of these.
const LOCK_PRIMITIVE_PREFIXES: &[&str] = &[
    "_raw_",
    "__raw_",
    "do_raw_",
    "queued_",
    "native_queued_",
    "__pv_queued",
    "pv_queued",
    "mutex_lock",
    "__mutex_lock",
    "mutex_spin_on_owner",
    "osq_lock",
    "rwsem_",
    "down_read",
    "down_write",
    "__down",
    "percpu_down",
    "rt_spin_lock",
    "rt_mutex",
];

/// The functions a context's stacks are rooted at, most preferred first:
/// the context's anchor frames, the mrelease caller's led by the syscall
/// entry this run resolved.
pub fn anchors(frames: &ConceptFrames, context: Context) -> Vec<String> {
    let mut anchors: Vec<String> = match context {
        Context::MreleaseCaller => frames
            .frame(ConceptId::MreleaseSyscall)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        Context::VictimExit | Context::OomReaper => Vec::new(),
    };
    anchors.extend(context.anchor_frames().iter().map(|s| (*s).to_owned()));
    anchors.dedup();
    anchors
}

/// Contexts present in any episode, in id order.
pub fn contexts_in(run: &Run) -> Vec<Context> {
    Context::ALL
        .into_iter()
        .filter(|n| {
            run.episodes
                .iter()
                .flat_map(|e| &e.contexts)
                .any(|c| c.context == *n)
        })
        .collect()
}

/// A context's stacks merged over all episodes.
pub fn merged_stacks(run: &Run, context: Context) -> Vec<SampledStack> {
    merge_stacks(
        run.episodes
            .iter()
            .flat_map(|e| &e.contexts)
            .filter(|c| c.context == context)
            .flat_map(|c| &c.stacks),
    )
}

fn merged_lock_waits(run: &Run, context: Context) -> Vec<LockWaitStack> {
    merge_lock_waits(
        run.episodes
            .iter()
            .flat_map(|e| &e.contexts)
            .filter(|c| c.context == context)
            .flat_map(|c| &c.lock_waits),
    )
}

/// Builds the whole report.
pub fn analyze(run: &Run, opts: &ReportOptions) -> Report {
    let frames = ConceptFrames::of(&run.symbols);
    let episodes: Vec<EpisodeReport> = run
        .episodes
        .iter()
        .map(|e| episode_report(run, e))
        .collect();
    Report {
        header: header(run, &episodes),
        summary: summary(run, &frames),
        contexts: contexts_in(run)
            .into_iter()
            .map(|c| context_report(run, &frames, c, opts))
            .collect(),
        episodes,
        not_measured: run.not_measured.clone(),
        function_timing: super::function_timing::build(run),
        program_cost: super::program_cost::build(run),
        collisions: super::collision::build(run),
    }
}

fn header(run: &Run, episodes: &[EpisodeReport]) -> Header {
    let mut losses: BTreeMap<String, Loss> = BTreeMap::new();
    for loss in episodes
        .iter()
        .flat_map(|e| &e.counters)
        .filter_map(|c| c.loss.as_ref())
    {
        losses
            .entry(loss.counter.clone())
            .and_modify(|l| l.count += loss.count)
            .or_insert_with(|| loss.clone());
    }
    Header {
        watch: run.watch.clone(),
        tool: format!("{} {}", run.tool.name, run.tool.version),
        kernel_release: run.host.kernel_release.clone(),
        arch: run.host.arch.clone(),
        cpus: run.host.cpus,
        clocksource: run.host.clocksource.clone(),
        lockdown: run.host.lockdown.clone(),
        freq_hz: run.recording.freq_hz,
        sample_period_ns: run.recording.sample_period_ns,
        scenario: run.recording.scenario.description.clone(),
        started_unix: run.recording.started_unix,
        episodes: run.episodes.len(),
        episodes_requested: run.recording.scenario.runs,
        partial: run.partial.then(|| {
            run.partial_reason
                .clone()
                .unwrap_or_else(|| "the run was cut short (no reason recorded)".to_owned())
        }),
        probes: run.recording.probes.clone(),
        losses: losses.into_values().collect(),
        lost_races: run.episodes.iter().filter(|e| e.lost_race()).count(),
        warmup: run.recording.warmup.clone(),
    }
}

/// Per-episode mean of a sum, rounded to the nearest integer.
fn mean(total: u64, episodes: usize) -> u64 {
    let n = episodes.max(1) as u64;
    (total + n / 2) / n
}

fn context_report(
    run: &Run,
    frames: &ConceptFrames,
    context: Context,
    opts: &ReportOptions,
) -> ContextReport {
    let stacks = merged_stacks(run, context);
    let n = run.episodes.len().max(1);
    let comm = run
        .episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .filter(|c| c.context == context)
        .flat_map(|c| &c.tasks)
        .map(|t| t.comm.clone())
        .next()
        .unwrap_or_else(|| "unknown".to_owned());
    ContextReport {
        context,
        label: context.label().to_owned(),
        episodes: n,
        comm,
        samples: stacks.iter().map(|s| s.samples).sum(),
        period_ns: stacks.iter().map(|s| s.period_ns).sum(),
        key_functions: key_functions(frames, context, &stacks, n),
        symbols: symbol_costs(&stacks, n, opts.top),
        call_graph: call_graph(frames, context, &stacks, opts),
        lock_waits: lock_waits(run, context, n, opts.lock_top),
    }
}

fn key_functions(
    frames: &ConceptFrames,
    context: Context,
    stacks: &[SampledStack],
    n: usize,
) -> Vec<KeyFunction> {
    let period_ms = |symbol: &str| mean(children_of(stacks, symbol), n) as f64 / 1e6;
    let mut rows = Vec::new();
    // The victim's own root (do_exit) leads its table.
    if context == Context::VictimExit {
        let anchor = context.anchor_frames()[0];
        if children_of(stacks, anchor) > 0 {
            rows.push(KeyFunction {
                concept: "anchor".to_owned(),
                symbol: Some(anchor.to_owned()),
                inline_fallback: false,
                candidates: Vec::new(),
                period_ms: Some(period_ms(anchor)),
            });
        }
    }
    let mut absent = Vec::new();
    for (id, contexts) in KEY_CONCEPTS {
        let candidates = frames.candidates(*id).to_vec();
        match frames.frame(*id) {
            Some(frame) => {
                let listed = rows.iter().any(|r| r.symbol.as_deref() == Some(frame));
                if !listed && children_of(stacks, frame) > 0 {
                    rows.push(KeyFunction {
                        concept: id.name().to_owned(),
                        symbol: Some(frame.to_owned()),
                        inline_fallback: frames.listed(*id) && frames.symbol(*id).is_none(),
                        candidates,
                        period_ms: Some(period_ms(frame)),
                    });
                }
            }
            None if contexts.contains(&context) => absent.push(KeyFunction {
                concept: id.name().to_owned(),
                symbol: None,
                inline_fallback: false,
                candidates,
                period_ms: None,
            }),
            None => {}
        }
    }
    rows.sort_by(|a, b| {
        b.period_ms
            .unwrap_or_default()
            .total_cmp(&a.period_ms.unwrap_or_default())
    });
    rows.extend(absent);
    rows
}

fn symbol_costs(stacks: &[SampledStack], n: usize, top: usize) -> Vec<SymbolCost> {
    let mut costs: Vec<SymbolCost> = children_self(stacks)
        .into_iter()
        .map(|(symbol, cost)| SymbolCost {
            symbol,
            children_ns: mean(cost.children_ns, n),
            self_ns: mean(cost.self_ns, n),
        })
        .collect();
    costs.sort_by(|a, b| {
        b.children_ns
            .cmp(&a.children_ns)
            .then(b.self_ns.cmp(&a.self_ns))
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    costs.truncate(top);
    costs
}

fn call_graph(
    frames: &ConceptFrames,
    context: Context,
    stacks: &[SampledStack],
    opts: &ReportOptions,
) -> CallGraph {
    let anchors = anchors(frames, context);
    let anchors: Vec<&str> = anchors.iter().map(String::as_str).collect();
    let mut forest = call_tree(context.name(), stacks, &anchors);
    let total_roots = forest.children.len();
    // The roots are depth 0, so the pseudo-root above them gets one more level.
    prune(
        &mut forest,
        opts.percent_limit,
        opts.max_depth.saturating_add(1),
    );
    let kept = forest.children.len();
    CallGraph {
        total_ns: forest.total_ns,
        roots: forest.children,
        hidden_roots: total_roots - kept,
        percent_limit: opts.percent_limit,
        max_depth: opts.max_depth,
    }
}

/// Frames a stack taken at `lock:contention_begin` has above the lock
/// primitives: the tracepoint's own call (`__traceiter_contention_begin`,
/// twice on arm64 6.1), its perf handler, and on x86 the fentry trampoline
/// of a timed slow path; a raw-tracepoint program adds `__bpf_trace_*` and
/// `bpf_trace_run*`. They are never the waiter.
const TRACING_FRAME_PREFIXES: &[&str] = &[
    "__traceiter_",
    "trace_contention_",
    "perf_trace_",
    "__bpf_trace_",
    "bpf_trace_run",
    "bpf_trampoline_",
];

/// The innermost frame that is not a lock primitive (nor the tracing that
/// took the stack), and its caller.
pub fn lock_waiter(frames: &[String]) -> (String, Option<String>) {
    let is_primitive = |f: &str| {
        LOCK_PRIMITIVE_PREFIXES
            .iter()
            .chain(TRACING_FRAME_PREFIXES)
            .any(|p| f.starts_with(p))
    };
    match frames.iter().rposition(|f| !is_primitive(f)) {
        Some(at) => (
            frames[at].clone(),
            at.checked_sub(1).map(|c| frames[c].clone()),
        ),
        None => (
            frames
                .last()
                .cloned()
                .unwrap_or_else(|| "[stack lost]".to_owned()),
            None,
        ),
    }
}

fn lock_waits(run: &Run, context: Context, n: usize, top: usize) -> LockWaits {
    if let Err(why) = lock_wait_status(run) {
        return LockWaits {
            not_measured: Some(why.to_string()),
            source: None,
            rows: Vec::new(),
            hidden: 0,
        };
    }
    let mut waits = merged_lock_waits(run, context);
    waits.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(b.count.cmp(&a.count)));
    let hidden = waits.len().saturating_sub(top);
    let rows = waits
        .into_iter()
        .take(top)
        .map(|w| {
            let (waiter, caller) = lock_waiter(&w.frames);
            LockWaitRow {
                waiter,
                caller,
                spin: w.flags & reaper_common::lock_wait::LCB_F_SPIN != 0,
                count: w.count as f64 / n as f64,
                total_ms: w.total_ns as f64 / n as f64 / 1e6,
                max_us: w.max_ns as f64 / 1e3,
                frames: w.frames,
            }
        })
        .collect();
    LockWaits {
        not_measured: None,
        source: run
            .recording
            .lock_wait_source
            .as_ref()
            .map(crate::model::FigureSource::label),
        rows,
        hidden,
    }
}

/// An episode's counter lines: the kernel's in their index order (hits
/// before the losses they explain, unknown names after them), then user
/// space's losses and the probe runs the kernel skipped.
fn counter_lines(episode: &crate::model::Episode) -> Vec<CounterLine> {
    let mut counters: Vec<CounterLine> = episode
        .counters
        .iter()
        .map(|(name, &value)| CounterLine {
            name: name.clone(),
            value,
            loss: (value > 0 && losses::is_loss(name)).then(|| losses::describe(name, value)),
        })
        .collect();
    counters.sort_by_key(|c| {
        let index = Counter::ALL.iter().position(|k| k.name() == c.name);
        (index.unwrap_or(Counter::ALL.len()), c.name.clone())
    });
    counters.extend(
        episode
            .user_losses
            .iter()
            .map(|(name, &value)| CounterLine {
                name: format!("user:{name}"),
                value,
                loss: (value > 0).then(|| losses::describe_user(name, value)),
            }),
    );
    counters.extend(
        episode
            .skipped_probe_runs
            .iter()
            .map(|(what, &value)| CounterLine {
                name: losses::skipped_counter(what),
                value,
                loss: (value > 0).then(|| losses::describe_skipped(what, value)),
            }),
    );
    counters
}

fn episode_report(run: &Run, episode: &crate::model::Episode) -> EpisodeReport {
    let counters = counter_lines(episode);
    let mut timeline = episode.timeline.clone();
    timeline.sort_by_key(|t| t.t_ns);
    EpisodeReport {
        index: episode.index,
        victim: episode.victim.clone(),
        partial: episode.partial,
        lost_race: episode.lost_race(),
        timeline,
        latencies: episode.latencies.clone(),
        no_mrelease: !run.recording.scenario.mrelease,
        mrelease_not_measured: episode
            .latencies
            .kill_to_mrelease_done_ns
            .is_none()
            .then(|| super::latency_why::mrelease_done(run, episode)),
        exit_mmap_not_measured: episode
            .latencies
            .kill_to_exit_mmap_done_ns
            .is_none()
            .then(|| super::latency_why::exit_mmap_done(run)),
        counters,
        frozen: episode.frozen.clone(),
        trigger: episode.trigger.clone(),
        reclaim: super::reclaim::report(run, episode),
        t0: super::rows::t0_of(&episode.timeline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(s: &str) -> Vec<String> {
        s.split(';').map(str::to_owned).collect()
    }

    #[test]
    fn waiter_is_the_caller_of_the_lock_primitives() {
        let (waiter, caller) = lock_waiter(&frames(
            "zap_pte_range;__pte_offset_map_lock;_raw_spin_lock;native_queued_spin_lock_slowpath",
        ));
        assert_eq!(waiter, "__pte_offset_map_lock");
        assert_eq!(caller.as_deref(), Some("zap_pte_range"));
        // Regression: arm64 6.1 stacks end in the tracepoint's frames, x86
        // ones in the slow path's fentry trampoline; both were the waiter.
        let (waiter, caller) = lock_waiter(&frames(
            "__oom_reap_task_mm;unmap_page_range;__raw_spin_lock;queued_spin_lock_slowpath;__traceiter_contention_begin;__traceiter_contention_begin",
        ));
        assert_eq!(waiter, "unmap_page_range");
        assert_eq!(caller.as_deref(), Some("__oom_reap_task_mm"));
        let (waiter, _) = lock_waiter(&frames(
            "unmap_page_range;_raw_spin_lock;bpf_trampoline_6442460208;queued_spin_lock_slowpath",
        ));
        assert_eq!(waiter, "unmap_page_range");
        let (waiter, caller) = lock_waiter(&frames("_raw_spin_lock"));
        assert_eq!((waiter.as_str(), caller), ("_raw_spin_lock", None));
    }

    #[test]
    fn means_round_to_nearest() {
        assert_eq!(mean(10, 4), 3);
        assert_eq!(mean(9, 4), 2);
        assert_eq!(mean(7, 0), 7);
    }
}
