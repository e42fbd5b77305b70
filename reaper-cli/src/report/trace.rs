//! Chrome trace-event JSON (`trace.json`) of a run's timelines, for
//! ui.perfetto.dev and chrome://tracing.
//!
//! One process per episode (its victim in the name), one thread track per
//! task that an event fired in (named by its context when tracked), with
//! timestamps in µs after the earliest event of the run (each episode's
//! kill is placed at the same offset, so episodes line up at the kill).
//!
//! What is drawn, and from what:
//! - instant events for every timeline entry (kill, `oom:mark_victim`,
//!   process exit and free, `exit_mmap` done, ...);
//! - a span for the `process_mrelease` call (its enter/exit tracepoints),
//!   for the oom_reaper's reaping (`oom:start_task_reaping` →
//!   `oom:finish_task_reaping`);
//! - where function timing ran, a span for each kept call of each probed
//!   function on the thread that made it (the kernel keeps each function's
//!   longest calls per context, `FunctionTiming::longest_calls`; each span
//!   says how many calls of its function are not drawn). Perfetto nests them
//!   by time: `exit_mmap` → `unmap_vmas` → ... on the victim's track.
//!   Run files recorded before reaper kept calls have none; for those the
//!   victim's `exit_mmap` is drawn from its aggregate when it ran once (it
//!   ends at `mmap:exit_mmap`, which fires at the end of `exit_mmap()`).
//! - a counter track of the victim's resident memory (`RSS victim[pid]`,
//!   bytes) from `kmem:rss_stat` (`Episode::reclaim`), where it attached;
//! - with `record --exact-locks` (issue 25), a counter track per walker
//!   of the address range it is tearing down, each PTE-lock wait as a span
//!   on its waiter's thread, and a flow to it from a "PTE lock holder"
//!   span on the holder's thread ([`collision`]);
//! - The heaviest functions of each context (by total time, at most
//!   [`MAX_FUNCTIONS`], with the count of those left out) are also attached
//!   as arguments to that context's span, where Perfetto shows them on click.

use reaper_common::timeline::TimelineKind;
use serde::Serialize;
use serde_json::{Value, json};

use crate::catalog::ConceptId;
use crate::model::{Context, Episode, FunctionCalls, FunctionTime, Run, TimelineEntry};

/// The file name `report --format trace` writes.
pub const FILE_NAME: &str = "trace.json";

/// Functions attached to a context's span; teardown has about ten probed
/// functions per context, so this shows them all on today's catalog while
/// bounding a larger one.
pub const MAX_FUNCTIONS: usize = 12;

/// The span argument holding a context's heaviest functions, heaviest first.
pub const FUNCTIONS_ARG: &str =
    "functions (kernel aggregates, heaviest first; calls are not placed in time)";

/// Span name of the `process_mrelease` call.
pub const SPAN_MRELEASE: &str = "process_mrelease";
/// Span name of the victim's `exit_mmap()` call.
pub const SPAN_EXIT_MMAP: &str = "exit_mmap";
/// Span name of the oom_reaper's reaping.
pub const SPAN_OOM_REAPING: &str = "oom_reaper reaping";
/// Name prefix of a victim's RSS counter track.
pub const RSS_COUNTER: &str = "RSS";
/// The counter's argument (Perfetto names the track after it too).
pub const RSS_COUNTER_ARG: &str = "resident bytes";
/// Category of the per-call function spans.
pub const CAT_FUNCTION: &str = "function";
/// The span argument counting a function's calls that are not drawn.
pub const LEFT_OUT_ARG: &str = "calls of this function in this context not drawn";
/// The catalog concept of the victim's `exit_mmap()`.
const CONCEPT_EXIT_MMAP: ConceptId = ConceptId::VictimTeardown;

/// A trace-event phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// A complete event: a span with `dur`.
    #[serde(rename = "X")]
    Complete,
    /// An instant event.
    #[serde(rename = "i")]
    Instant,
    /// Metadata (process and thread names, sort order).
    #[serde(rename = "M")]
    Metadata,
    /// A counter sample (a process-scoped counter track).
    #[serde(rename = "C")]
    Counter,
    /// A flow's start, bound to the enclosing slice on its thread.
    #[serde(rename = "s")]
    FlowStart,
    /// A flow's end, bound to the slice that starts at it (`bp: "e"`).
    #[serde(rename = "f")]
    FlowEnd,
}

/// One trace event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEvent {
    /// Event name.
    pub name: String,
    /// Category.
    pub cat: &'static str,
    /// Phase.
    pub ph: Phase,
    /// µs.
    pub ts: f64,
    /// µs, complete events only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur: Option<f64>,
    /// The episode's process.
    pub pid: u32,
    /// The task's track.
    pub tid: u32,
    /// Instant scope ("t": thread).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s: Option<&'static str>,
    /// Arguments shown on click.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub args: Value,
    /// A flow's id (its start and end share it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// A flow end's binding point ("e": the enclosing slice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bp: Option<&'static str>,
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// Events.
    pub trace_events: Vec<TraceEvent>,
    /// Display unit.
    pub display_time_unit: &'static str,
    /// Where the run comes from.
    pub other_data: Value,
}

/// The trace of a run.
pub fn trace(run: &Run) -> Trace {
    let calls = run
        .episodes
        .iter()
        .flat_map(|e| &e.function_timing)
        .flat_map(|f| &f.longest_calls)
        .flat_map(|f| &f.calls)
        .map(|c| c.start_ns);
    let earliest = run
        .episodes
        .iter()
        .flat_map(|e| &e.timeline)
        .map(|t| t.t_ns)
        .chain(calls)
        .min()
        .unwrap_or(0)
        .min(0);
    let mut events = Vec::new();
    for episode in &run.episodes {
        Episodes {
            events: &mut events,
            origin_ns: earliest,
            episode,
            pte_holders: run.recording.pte_holders.as_ref(),
        }
        .draw();
    }
    Trace {
        trace_events: events,
        display_time_unit: "ms",
        other_data: json!({
            "kernel": run.host.kernel_release,
            "arch": run.host.arch,
            "scenario": run.recording.scenario.description,
            "recorded_by": format!("{} {}", run.tool.name, run.tool.version),
            "written_by": format!("reaper {}", env!("CARGO_PKG_VERSION")),
            "clock": "µs after the earliest event; every episode's kill is at the same time",
        }),
    }
}

/// The trace as pretty JSON.
pub fn render(run: &Run) -> String {
    serde_json::to_string_pretty(&trace(run)).expect("a trace serializes") + "\n"
}

/// Draws one episode.
struct Episodes<'a> {
    events: &'a mut Vec<TraceEvent>,
    origin_ns: i64,
    episode: &'a Episode,
    /// How the run logged PTE-lock waits (`None`: it did not).
    pte_holders: Option<&'a crate::model::PteHolderSetup>,
}

impl Episodes<'_> {
    fn pid(&self) -> u32 {
        self.episode.index + 1
    }

    fn ts(&self, t_ns: i64) -> f64 {
        (t_ns - self.origin_ns) as f64 / 1000.0
    }

    fn push(
        &mut self,
        name: String,
        ph: Phase,
        t_ns: i64,
        dur_ns: Option<u64>,
        tid: u32,
        args: Value,
    ) {
        self.push_in("reaper", name, ph, t_ns, dur_ns, tid, args);
    }

    #[expect(clippy::too_many_arguments, reason = "one trace event's fields")]
    fn push_in(
        &mut self,
        cat: &'static str,
        name: String,
        ph: Phase,
        t_ns: i64,
        dur_ns: Option<u64>,
        tid: u32,
        args: Value,
    ) {
        let event = TraceEvent {
            name,
            cat,
            ph,
            ts: if ph == Phase::Metadata {
                0.0
            } else {
                self.ts(t_ns)
            },
            dur: dur_ns.map(|d| d as f64 / 1000.0),
            pid: self.pid(),
            tid,
            s: (ph == Phase::Instant).then_some("t"),
            args,
            id: None,
            bp: None,
        };
        self.events.push(event);
    }

    fn draw(mut self) {
        let e = self.episode;
        let victim = &e.victim;
        let mut title = format!("episode {}: {}[{}]", e.index, victim.comm, victim.pid);
        if e.lost_race() {
            title.push_str(" (mrelease lost the race)");
        }
        self.push(
            "process_name".into(),
            Phase::Metadata,
            0,
            None,
            0,
            json!({ "name": title }),
        );
        self.push(
            "process_sort_index".into(),
            Phase::Metadata,
            0,
            None,
            0,
            json!({ "sort_index": e.index }),
        );
        self.name_threads();
        for entry in &e.timeline {
            let args = json!({ "arg": entry.arg, "comm": entry.comm, "tgid": entry.tgid });
            self.push(
                entry.kind.name().to_owned(),
                Phase::Instant,
                entry.t_ns,
                None,
                entry.tid,
                args,
            );
        }
        self.spans();
        self.function_calls();
        self.rss_track();
        self.collision_tracks(self.pte_holders);
    }

    /// The victim's resident memory over time, as a counter track of its
    /// episode's process (`Episode::reclaim`, from `kmem:rss_stat`).
    fn rss_track(&mut self) {
        let Some(reclaim) = &self.episode.reclaim else {
            return;
        };
        let victim = &self.episode.victim;
        let name = format!("{RSS_COUNTER} {}[{}]", victim.comm, victim.pid);
        for point in &reclaim.rss_track {
            self.push(
                name.clone(),
                Phase::Counter,
                point.t_ns,
                None,
                0,
                json!({ RSS_COUNTER_ARG: point.bytes }),
            );
        }
    }

    /// The kept calls of every probed function, as spans on their threads.
    fn function_calls(&mut self) {
        let Some(timing) = &self.episode.function_timing else {
            return;
        };
        for function in &timing.longest_calls {
            let kept = function.calls.len();
            for (rank, call) in function.calls.iter().enumerate() {
                let args = json!({
                    "context": function.context,
                    "concept": function.concept,
                    "rank by duration": format!("{} of {kept} drawn", rank + 1),
                    LEFT_OUT_ARG: function.left_out,
                });
                self.push_in(
                    CAT_FUNCTION,
                    function.symbol.clone(),
                    Phase::Complete,
                    call.start_ns,
                    Some(call.duration_ns),
                    call.tid,
                    args,
                );
            }
        }
    }

    /// The tasks that made a kept function call, with their context, for
    /// tracks the timeline does not name.
    fn callers(&self) -> Vec<(u32, &str)> {
        let mut out: Vec<(u32, &str)> = Vec::new();
        let timing = self.episode.function_timing.iter();
        for f in timing.flat_map(|t| &t.longest_calls) {
            let f: &FunctionCalls = f;
            for call in &f.calls {
                if !out.iter().any(|(tid, _)| *tid == call.tid) {
                    out.push((call.tid, f.context.name()));
                }
            }
        }
        out
    }

    /// A task's comm from the episode's tracked tasks.
    fn comm_of(&self, tid: u32) -> Option<&str> {
        self.episode
            .contexts
            .iter()
            .flat_map(|c| &c.tasks)
            .find(|t| t.tid == tid)
            .map(|t| t.comm.as_str())
    }

    /// A thread-name record per task, its context first; tracked contexts
    /// sort before untracked tasks.
    fn name_threads(&mut self) {
        let mut named: Vec<(u32, String, usize)> = Vec::new();
        for entry in &self.episode.timeline {
            let (name, order) = match &entry.context {
                Some(context) => (
                    format!("{context}: {}[{}]", entry.comm, entry.tid),
                    context.id() as usize,
                ),
                None => (format!("{}[{}]", entry.comm, entry.tid), usize::MAX),
            };
            match named.iter_mut().find(|(tid, ..)| *tid == entry.tid) {
                Some(seen) if seen.2 > order => *seen = (entry.tid, name, order),
                Some(_) => {}
                None => named.push((entry.tid, name, order)),
            }
        }
        for (tid, context) in self.callers() {
            if named.iter().any(|(t, ..)| *t == tid) {
                continue;
            }
            let comm = self.comm_of(tid).unwrap_or("?");
            let order = reaper_common::context::CONTEXT_NAMES
                .iter()
                .position(|c| *c == context)
                .unwrap_or(usize::MAX - 1);
            named.push((tid, format!("{context}: {comm}[{tid}]"), order));
        }
        for (tid, name, order) in named {
            self.push(
                "thread_name".into(),
                Phase::Metadata,
                0,
                None,
                tid,
                json!({ "name": name }),
            );
            let sort = i64::try_from(order).unwrap_or(i64::MAX);
            self.push(
                "thread_sort_index".into(),
                Phase::Metadata,
                0,
                None,
                tid,
                json!({ "sort_index": sort }),
            );
        }
    }

    fn find(&self, kind: TimelineKind) -> Option<&TimelineEntry> {
        self.episode.timeline.iter().find(|t| t.kind == kind)
    }

    fn spans(&mut self) {
        let e = self.episode;
        if let (Some(enter), Some(exit)) = (
            self.find(TimelineKind::MreleaseEnter),
            self.find(TimelineKind::MreleaseExit),
        ) {
            let (start, end, tid, ret) = (enter.t_ns, exit.t_ns, enter.tid, exit.arg);
            let mut args = self.functions(Context::MreleaseCaller);
            args["ret"] = json!(ret);
            self.span(SPAN_MRELEASE, start, end, tid, args);
        }
        if let (Some(start), Some(finish)) = (
            self.find(TimelineKind::OomStartReaping),
            self.find(TimelineKind::OomFinishReaping),
        ) {
            let (start, end, tid) = (start.t_ns, finish.t_ns, start.tid);
            let args = self.functions(Context::OomReaper);
            self.span(SPAN_OOM_REAPING, start, end, tid, args);
        }
        let exit_mmap = e
            .function_timing
            .iter()
            .flat_map(|f| &f.functions)
            .find(|f| {
                f.context == Context::VictimExit && f.concept == CONCEPT_EXIT_MMAP && f.calls == 1
            });
        let done = e
            .timeline
            .iter()
            .find(|t| t.kind == TimelineKind::ExitMmap && t.context == Some(Context::VictimExit));
        let calls_drawn = e
            .function_timing
            .as_ref()
            .is_some_and(|f| !f.longest_calls.is_empty());
        if let (Some(call), Some(done), false) = (exit_mmap, done, calls_drawn) {
            let (end, tid) = (done.t_ns, done.tid);
            let start = end.saturating_sub(i64::try_from(call.total_ns).unwrap_or(i64::MAX));
            let mut args = self.functions(Context::VictimExit);
            args["source"] = json!("duration from function timing, end at mmap:exit_mmap");
            self.span(SPAN_EXIT_MMAP, start, end, tid, args);
        }
    }

    fn span(&mut self, name: &str, start: i64, end: i64, tid: u32, args: Value) {
        let dur = u64::try_from(end - start).unwrap_or(0);
        self.push(
            name.to_owned(),
            Phase::Complete,
            start,
            Some(dur),
            tid,
            args,
        );
    }

    /// The heaviest functions timed in `context`, as span arguments.
    fn functions(&self, context: Context) -> Value {
        let Some(timing) = &self.episode.function_timing else {
            return json!({ "function_timing": "not measured in this run" });
        };
        let mut rows: Vec<&FunctionTime> = timing
            .functions
            .iter()
            .filter(|f| f.context == context)
            .collect();
        rows.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.symbol.cmp(&b.symbol)));
        let left_out = rows.len().saturating_sub(MAX_FUNCTIONS);
        let shown: Vec<Value> = rows
            .iter()
            .take(MAX_FUNCTIONS)
            .map(|f| {
                json!({
                    "function": f.symbol,
                    "calls": f.calls,
                    "total_ms": f.total_ns as f64 / 1e6,
                    "max_ms": f.max_ns as f64 / 1e6,
                })
            })
            .collect();
        let mut args = serde_json::Map::new();
        args.insert(FUNCTIONS_ARG.to_owned(), Value::from(shown));
        args.insert("functions_left_out".to_owned(), Value::from(left_out));
        Value::Object(args)
    }
}

mod collision;
#[cfg(test)]
mod tests;
