//! From a run to the derived [`Report`]: per-context tables, call graphs,
//! lock waits, and per-episode timelines and counters.
//!
//! Pure functions of `&Run` and the options; the summary rows live in
//! `summary.rs`, the stack arithmetic in `stacks.rs`.

use std::collections::BTreeMap;

use reaper_common::context::CONTEXT_NAMES;
use reaper_common::loss::Counter;

use crate::catalog::{self, frame_for};
use crate::model::{LockWaitStack, Run, SampledStack};

use super::ReportOptions;
use super::losses;
use super::model::{
    CallGraph, ContextReport, CounterLine, EpisodeReport, Header, KeyFunction, LockWaitRow,
    LockWaits, Loss, Report, SymbolCost,
};
use super::stacks::{call_tree, children_of, children_self, merge_lock_waits, merge_stacks, prune};
use super::summary::{lock_wait_status, summary};

/// Display labels of the known contexts.
const CONTEXT_LABELS: [(&str, &str); 3] = [
    ("victim_exit", "victim exit"),
    ("mrelease_caller", "mrelease caller"),
    ("oom_reaper", "oom_reaper"),
];

/// Concepts of the "Period (ms)  Symbol" table, in the thread's order, with
/// the contexts where they can appear (an absent one is listed there).
const KEY_CONCEPTS: &[(&str, &[&str])] = &[
    ("reaper_kthread", &["oom_reaper"]),
    ("mrelease_syscall", &["mrelease_caller"]),
    ("reaper_work", &["mrelease_caller", "oom_reaper"]),
    ("victim_teardown", &["victim_exit"]),
    ("victim_unmap", &["victim_exit"]),
    ("per_vma_unmap", ALL_CONTEXTS),
    ("pte_lock", ALL_CONTEXTS),
    ("page_freeing", ALL_CONTEXTS),
    ("tlb_finish", ALL_CONTEXTS),
    ("tlb_flush", ALL_CONTEXTS),
    ("rmap_removal", ALL_CONTEXTS),
    ("spin_slowpath", ALL_CONTEXTS),
];
const ALL_CONTEXTS: &[&str] = &["victim_exit", "mrelease_caller", "oom_reaper"];

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

/// The display label of a context ("victim exit"); unknown names as is.
pub fn context_label(context: &str) -> String {
    CONTEXT_LABELS
        .iter()
        .find(|(name, _)| *name == context)
        .map_or(context, |(_, label)| label)
        .to_owned()
}

/// The functions a context's stacks are rooted at, most preferred first.
pub fn anchors(run: &Run, context: &str) -> Vec<String> {
    let mut anchors: Vec<String> = match context {
        "victim_exit" => vec!["do_exit".to_owned()],
        "mrelease_caller" => {
            let mut a: Vec<String> = frame_for(&run.symbols, "mrelease_syscall")
                .map(str::to_owned)
                .into_iter()
                .collect();
            if let Some(c) = catalog::concept("mrelease_syscall") {
                a.extend(c.candidates.iter().map(|s| (*s).to_owned()));
            }
            a
        }
        "oom_reaper" => vec!["oom_reaper".to_owned(), "kthread".to_owned()],
        _ => Vec::new(),
    };
    anchors.dedup();
    anchors
}

/// Context names present in any episode: known ones in id order, then others.
pub fn contexts_in(run: &Run) -> Vec<String> {
    let mut names: Vec<String> = CONTEXT_NAMES
        .iter()
        .filter(|n| {
            run.episodes
                .iter()
                .flat_map(|e| &e.contexts)
                .any(|c| c.context == **n)
        })
        .map(|n| (*n).to_owned())
        .collect();
    let mut others: Vec<String> = run
        .episodes
        .iter()
        .flat_map(|e| &e.contexts)
        .map(|c| c.context.clone())
        .filter(|c| !CONTEXT_NAMES.contains(&c.as_str()))
        .collect();
    others.sort();
    others.dedup();
    names.extend(others);
    names
}

/// A context's stacks merged over all episodes.
pub fn merged_stacks(run: &Run, context: &str) -> Vec<SampledStack> {
    merge_stacks(
        run.episodes
            .iter()
            .flat_map(|e| &e.contexts)
            .filter(|c| c.context == context)
            .flat_map(|c| &c.stacks),
    )
}

fn merged_lock_waits(run: &Run, context: &str) -> Vec<LockWaitStack> {
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
    let episodes: Vec<EpisodeReport> = run
        .episodes
        .iter()
        .map(|e| episode_report(run, e))
        .collect();
    Report {
        header: header(run, &episodes),
        summary: summary(run),
        contexts: contexts_in(run)
            .iter()
            .map(|c| context_report(run, c, opts))
            .collect(),
        episodes,
        not_measured: run.not_measured.clone(),
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
        lost_races: run.episodes.iter().filter(|e| e.lost_race).count(),
    }
}

/// Per-episode mean of a sum, rounded to the nearest integer.
fn mean(total: u64, episodes: usize) -> u64 {
    let n = episodes.max(1) as u64;
    (total + n / 2) / n
}

fn context_report(run: &Run, context: &str, opts: &ReportOptions) -> ContextReport {
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
        context: context.to_owned(),
        label: context_label(context),
        episodes: n,
        comm,
        samples: stacks.iter().map(|s| s.samples).sum(),
        period_ns: stacks.iter().map(|s| s.period_ns).sum(),
        key_functions: key_functions(run, context, &stacks, n),
        symbols: symbol_costs(&stacks, n, opts.top),
        call_graph: call_graph(run, context, &stacks, opts),
        lock_waits: lock_waits(run, context, n, opts.lock_top),
    }
}

fn key_functions(run: &Run, context: &str, stacks: &[SampledStack], n: usize) -> Vec<KeyFunction> {
    let period_ms = |symbol: &str| mean(children_of(stacks, symbol), n) as f64 / 1e6;
    let mut rows = Vec::new();
    if context == "victim_exit" && children_of(stacks, "do_exit") > 0 {
        rows.push(KeyFunction {
            concept: "anchor".to_owned(),
            symbol: Some("do_exit".to_owned()),
            inline_fallback: false,
            candidates: Vec::new(),
            period_ms: Some(period_ms("do_exit")),
        });
    }
    let mut absent = Vec::new();
    for (id, contexts) in KEY_CONCEPTS {
        let resolved = run.symbols.iter().find(|r| r.concept == *id);
        let candidates = resolved.map(|r| r.candidates.clone()).unwrap_or_default();
        match frame_for(&run.symbols, id) {
            Some(frame) => {
                let listed = rows.iter().any(|r| r.symbol.as_deref() == Some(frame));
                if !listed && children_of(stacks, frame) > 0 {
                    rows.push(KeyFunction {
                        concept: (*id).to_owned(),
                        symbol: Some(frame.to_owned()),
                        inline_fallback: resolved.is_some_and(|r| r.symbol.is_none()),
                        candidates,
                        period_ms: Some(period_ms(frame)),
                    });
                }
            }
            None if contexts.contains(&context) => absent.push(KeyFunction {
                concept: (*id).to_owned(),
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
    run: &Run,
    context: &str,
    stacks: &[SampledStack],
    opts: &ReportOptions,
) -> CallGraph {
    let anchors = anchors(run, context);
    let anchors: Vec<&str> = anchors.iter().map(String::as_str).collect();
    let mut forest = call_tree(context, stacks, &anchors);
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

/// The innermost frame that is not a lock primitive, and its caller.
pub fn lock_waiter(frames: &[String]) -> (String, Option<String>) {
    let is_primitive = |f: &str| LOCK_PRIMITIVE_PREFIXES.iter().any(|p| f.starts_with(p));
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

fn lock_waits(run: &Run, context: &str, n: usize, top: usize) -> LockWaits {
    if let Err(why) = lock_wait_status(run) {
        return LockWaits {
            not_measured: Some(why),
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
        rows,
        hidden,
    }
}

fn episode_report(run: &Run, episode: &crate::model::Episode) -> EpisodeReport {
    let mut counters: Vec<CounterLine> = episode
        .counters
        .iter()
        .map(|(name, &value)| CounterLine {
            name: name.clone(),
            value,
            loss: (value > 0 && losses::is_loss(name)).then(|| losses::describe(name, value)),
        })
        .collect();
    // Kernel counters in their index order (hits before the losses they
    // explain), unknown names after them.
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
    let mut timeline = episode.timeline.clone();
    timeline.sort_by_key(|t| t.t_ns);
    EpisodeReport {
        index: episode.index,
        victim: episode.victim.clone(),
        partial: episode.partial,
        lost_race: episode.lost_race,
        timeline,
        latencies: episode.latencies.clone(),
        no_mrelease: !run.recording.scenario.mrelease,
        counters,
        frozen: episode.frozen.clone(),
        trigger: episode.trigger.clone(),
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
