//! reaper's run file (`run.json`): what one `reaper record` measured.
//!
//! This is the report model's raw input, serialised as is. Everything the
//! renderers print is derived from it, so `reaper report RUN.json` reproduces
//! `reaper record`'s output offline. Stacks are stored symbolized (root
//! first), so a run file needs no kallsyms to re-render.
//!
//! What reaper derives from runs and prints as `--json` (the report, the
//! diff and the gate verdict) is typed in [`output`].

mod error_chain;
mod string_schema;

pub mod doctor;
#[cfg(feature = "golden")]
pub mod golden;
pub mod migrate;
pub mod output;
pub mod query;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use reaper_common::context::Context;

mod collision;
mod function_timing;
mod kernel_policy;
mod not_measured;
mod recording;
mod vocabulary;
pub use collision::{
    Collisions, PteHolderSetup, PteWaitSeen, TakerSeen, WalkerStepSeen, WalkerSteps, walk_direction,
};
pub use error_chain::error_chain;
pub use function_timing::{
    CallEdge, FunctionCall, FunctionCalls, FunctionTime, FunctionTiming, VmaOrderSeen,
};
pub use kernel_policy::{Lockdown, LockdownMode, RtEvidence};
pub use not_measured::NotMeasuredSubject;
pub use recording::{MapMemory, ProbeUse, Recording};
pub use vocabulary::{
    AttachMode, ConceptId, ProbeGroup, ProbeOutcome, ScenarioKind, TimelineEventKind, VmaOrderKind,
};

/// Bumped on any incompatible change to the layout below.
pub const SCHEMA_VERSION: u32 = 1;

/// Frame used for samples taken while the task ran in user mode.
pub const FRAME_USER_MODE: &str = "[user]";
/// Frame used for samples whose kernel stack was lost (see counters).
pub const FRAME_STACK_LOST: &str = "[stack lost]";
/// Frame standing for a caller the kernel's unwinder did not recover: a
/// return address a kretprobe replaced with its trampoline (arm64 before
/// 5.16 and x86 before the 5.x unwinder fixes; seen on Debian's 5.10).
/// The functions outside it in such a stack are not the sample's callers'
/// full chain, so the report's sampled rows do not use such runs.
pub const FRAME_CALLER_LOST: &str = "[caller lost: kretprobe return]";

/// A whole recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Run {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// Which reaper wrote it.
    pub tool: ToolInfo,
    /// The machine and kernel it was recorded on.
    pub host: HostInfo,
    /// How it was recorded.
    pub recording: Recording,
    /// Catalog concepts resolved for this kernel (see `catalog`).
    pub symbols: Vec<ResolvedConcept>,
    /// One entry per teardown episode.
    pub episodes: Vec<Episode>,
    /// What this kernel or configuration could not give, and why.
    pub not_measured: Vec<NotMeasured>,
    /// True when the run was interrupted (Ctrl-C, error) and holds only what
    /// was collected up to then.
    pub partial: bool,
    /// Why the run is partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    /// Per catalog concept, how its function was probed for exact timing
    /// (`recording.probes` has the same as `function:*` entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub function_probes: Vec<FunctionProbe>,
    /// `record --watch`: episodes evicted to bound memory (oldest first),
    /// and SIGKILLed processes that were followed by no process_mrelease or
    /// OOM kill and so formed no episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchSummary>,
    /// What one timed call costs per attach mode on this kernel, measured at
    /// start-up when function probes attached; empty in older runs and when
    /// nothing was measured (`not_measured` says why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_costs: Vec<ProbeCost>,
    /// What each of reaper's programs cost the kernel over the whole
    /// recording (from `record --program-cost` switching run statistics on
    /// to the end), by what the program probes; `--watch` runs have only
    /// this (their episodes overlap). Empty when not asked for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub program_costs: BTreeMap<String, ProgramCost>,
}

/// The measured cost of one timed call (an entry and an exit hit of
/// reaper's function-timing programs) in one attach mode: a calibration
/// loop of a cheap syscall, unprobed then probed, from a tracked thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeCost {
    /// Fentry (fentry + fexit) or kprobe (kprobe + kretprobe).
    pub mode: AttachMode,
    /// The kernel function the loop called and probed, e.g. `__x64_sys_getppid`.
    pub function: String,
    /// Calls per batch.
    pub calls_per_batch: u64,
    /// Batches per side; the fastest counts.
    pub batches: u32,
    /// Fastest batch without the probes, ns per call.
    pub unprobed_ns: f64,
    /// Fastest batch with the probes, ns per call.
    pub probed_ns: f64,
    /// `probed_ns - unprobed_ns` (at least 0): ns one timed call adds.
    pub per_call_ns: f64,
}

/// What a `record --watch` saw beyond its episodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WatchSummary {
    /// Seconds watched.
    pub watched_s: u64,
    /// Episodes recorded in all.
    pub episodes_seen: u64,
    /// Oldest episodes dropped to stay within `--max-episodes`.
    pub episodes_evicted: u64,
    /// SIGKILLed processes with no process_mrelease or OOM kill (not episodes).
    pub plain_kills_ignored: u64,
    /// Episodes left out by `--comm` / `--min-rss` (another comm, or less
    /// resident at t = 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub filtered_out: u64,
    /// Runs of reaper's programs the kernel skipped while watching, by what
    /// the program probes (see `Episode::skipped_probe_runs`, which a
    /// watched episode leaves empty: its start is known only afterwards).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_probe_runs: BTreeMap<String, u64>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// How one catalog function was probed for exact timing (`record`'s attach
/// ladder: fentry/fexit, then kprobe/kretprobe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionProbe {
    /// Catalog concept id.
    pub concept: ConceptId,
    /// The kernel function, when this kernel has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// fentry, kprobe, or none.
    pub mode: AttachMode,
    /// Attached, or why not (the kernel's answers, or absent on this kernel).
    pub status: ProbeOutcome,
    /// Why a higher rung was refused when a lower one was used, e.g.
    /// "fentry attach: ... [ENOTSUPP 524]".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
}

/// The tool that wrote a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ToolInfo {
    /// "reaper".
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// The recorded machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostInfo {
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -m` (x86_64, aarch64).
    pub arch: String,
    /// Online CPUs.
    pub cpus: u32,
    /// How the kernel said it is PREEMPT_RT (spinlocks are sleeping
    /// `rt_spin_lock`s); `None` on other kernels and in runs recorded before
    /// reaper looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preempt_rt: Option<RtEvidence>,
    /// The kernel's current clocksource (`tsc`, `hpet`, `arch_sys_counter`,
    /// ...): every probe hit reads it through `bpf_ktime_get_ns()`, and a slow
    /// one (HPET is an emulated MMIO read in a VM) inflates exact timing.
    /// `None` when it could not be read, and in runs recorded before reaper
    /// looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clocksource: Option<String>,
    /// The kernel's lockdown, when reaper saw one (not `none`): a policy
    /// that refuses what some probes need. `None` when the kernel is not
    /// locked down, reaper could not tell, or in older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockdown: Option<Lockdown>,
}

/// What was torn down and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Scenario {
    /// What was torn down: a synthetic victim, an existing process (killed,
    /// or its own exit), every teardown while watching, or an OOM kill.
    pub kind: ScenarioKind,
    /// Human form, e.g. "victim 1G,vmas=64,threads=1 + process_mrelease".
    pub description: String,
    /// Synthetic victim size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victim_bytes: Option<u64>,
    /// Synthetic victim VMA count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmas: Option<u32>,
    /// Synthetic victim thread count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Whether a process_mrelease caller raced the victim.
    pub mrelease: bool,
    /// Why no process_mrelease caller raced the victim although the
    /// scenario asks for one (`record --degrade` on a kernel without the
    /// syscall, e.g. "process_mrelease is missing on this kernel (ENOSYS;
    /// Linux 5.15+)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrelease_unavailable: Option<String>,
    /// Episodes requested.
    pub runs: u32,
}

/// One catalog concept resolved against this kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedConcept {
    /// Catalog concept id, e.g. "pte_lock".
    pub concept: ConceptId,
    /// The kernel symbol chosen, if any candidate exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// Candidates tried, in order.
    pub candidates: Vec<String>,
    /// The kallsyms name kprobes attach to, when it differs from `symbol`
    /// (a compiler clone such as `zap_pte_range.isra.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_name: Option<String>,
    /// Whether kernel BTF describes `symbol` (fentry needs it); `None` when
    /// BTF was not consulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_btf: Option<bool>,
}

/// Something the run could not measure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotMeasured {
    /// What is missing, e.g. "exact function timing" (key `what` in files).
    #[serde(rename = "what")]
    pub subject: NotMeasuredSubject,
    /// Why, e.g. "fentry refused (EPERM) and kprobes not built in".
    pub why: String,
}

/// One teardown: a victim, its reapers, and what they did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Episode {
    /// 0-based.
    pub index: u32,
    /// The process torn down.
    pub victim: VictimInfo,
    /// Per-context profiles (only contexts that were tracked).
    pub contexts: Vec<ContextProfile>,
    /// Timeline, ordered by time.
    pub timeline: Vec<TimelineEntry>,
    /// Latencies derived from the timeline.
    pub latencies: Latencies,
    /// Kernel-side counters for this episode, by `Counter::name()`.
    pub counters: BTreeMap<String, u64>,
    /// Userspace-side losses (e.g. ring buffer records that failed to parse).
    #[serde(default)]
    pub user_losses: BTreeMap<String, u64>,
    /// Runs of reaper's programs the kernel skipped during the episode
    /// because the same program was already running on that CPU
    /// (`bpf_prog_info.recursion_misses`, Linux 5.12+), by what the program
    /// probes: the probe fired while that program was still running there
    /// (nested in it, or in a task that preempted it), so the event, of any
    /// task, was not seen. Empty when none were skipped or the episode was
    /// not delimited (`--watch`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_probe_runs: BTreeMap<String, u64>,
    /// What each of reaper's programs cost the kernel during the episode,
    /// by what the program probes (`fexit page_remove_rmap`): the kernel's
    /// own per-program statistics (`bpf_prog_info.run_cnt` and
    /// `run_time_ns`), counted only while `record --program-cost` holds
    /// `BPF_ENABLE_STATS` open. Empty when not asked for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub program_costs: BTreeMap<String, ProgramCost>,
    /// The recorder marked a lost race (`lost_race` in the file): the
    /// mrelease caller's `process_mrelease` returned ESRCH because every
    /// thread of the victim had already left its mm, so this episode has no
    /// reaper-side work. Files recorded before the mark have only the return
    /// value: read [`Episode::lost_race`], the one definition, never this.
    #[serde(
        rename = "lost_race",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub marked_lost_race: bool,
    /// True when the episode was cut short.
    pub partial: bool,
    /// What started the episode, e.g. "process_mrelease by lmkd[612]" or
    /// "OOM kill" (`record --watch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The frozen-victim scenario's outcome (`record --oom --frozen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<FrozenOutcome>,
    /// Exact per-function timing and the reaper's VMA order; absent when no
    /// function probe attached (see `Run::not_measured` for why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_timing: Option<FunctionTiming>,
    /// Resident memory the teardown freed per context, and the victim's RSS
    /// over time (`kmem:rss_stat`); absent when that tracepoint did not
    /// attach (see `Run::not_measured`) and in older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim: Option<Reclaim>,
}

/// Resident memory an episode's teardown freed, from `kmem:rss_stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reclaim {
    /// The victim's resident bytes (file + anon + shmem) at t = 0: /proc's
    /// counters read just before the kill, or, for a counter /proc showed
    /// lower than the teardown's first value (a victim still growing when
    /// it was read), that first value.
    pub rss_at_start_bytes: u64,
    /// Bytes each context freed: the drops of the victim's resident
    /// counters while that context's task changed them (negative: grew).
    /// Each counter's first drop, which the kernel side sees no value
    /// before, is given to the context that made it, from /proc's value.
    pub freed_bytes: BTreeMap<Context, i64>,
    /// The victim's resident bytes over time, one point per move of a
    /// counter by 1/32 of its value (at least 1 MiB), from t = 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rss_track: Vec<RssPoint>,
}

/// One point of an RSS counter track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RssPoint {
    /// ns since t = 0 (the kill, or the exit's start).
    pub t_ns: i64,
    /// Resident bytes (file + anon + shmem).
    pub bytes: u64,
}

/// `process_mrelease`'s return value when its caller lost the race:
/// -ESRCH (3 on every Linux architecture, asm-generic/errno-base.h).
pub const MRELEASE_LOST_RACE_RET: i64 = -3;

impl Episode {
    /// Whether the mrelease caller lost the race (`process_mrelease`
    /// returned ESRCH: no reaper-side work), the one definition every reader
    /// uses (report, diff, gate, the open formats): the recorder's mark, or,
    /// in files recorded before it, the return value in the latencies or on
    /// the mrelease caller's `mrelease_exit` timeline event. Such episodes
    /// are shown but left out of medians and comparisons.
    pub fn lost_race(&self) -> bool {
        self.marked_lost_race
            || self.latencies.mrelease_ret == Some(MRELEASE_LOST_RACE_RET)
            || self.timeline.iter().any(|t| {
                t.kind == reaper_common::timeline::TimelineKind::MreleaseExit
                    && t.context == Some(Context::MreleaseCaller)
                    && t.arg == MRELEASE_LOST_RACE_RET
            })
    }
}

/// What happened to a frozen victim after the OOM kill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FrozenOutcome {
    /// Threads of the victim when it was frozen.
    pub threads: u32,
    /// How long reaper watched after the OOM kill, ms.
    pub timeout_ms: u64,
    /// Per thread: when it exited (ms after the OOM kill), if it did.
    pub thread_exits: Vec<ThreadFate>,
    /// ms after the OOM kill when the last thread exited, if all did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_exited_ms: Option<u64>,
    /// Threads still present when the timeout expired (still frozen).
    pub still_present_at_timeout: Vec<u32>,
}

/// One frozen-victim thread's fate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThreadFate {
    /// Thread id.
    pub tid: u32,
    /// ms after the OOM kill when it was gone (or a zombie); None if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_ms: Option<u64>,
    /// /proc state letter at the timeout if still present (D = frozen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_at_timeout: Option<char>,
}

/// The victim of an episode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VictimInfo {
    /// Thread-group id.
    pub pid: u32,
    /// comm.
    pub comm: String,
    /// Resident set size just before the kill, bytes.
    pub rss_bytes: u64,
    /// Threads just before the kill.
    pub threads: u32,
    /// VMAs (lines of /proc/PID/maps) just before the kill.
    pub vmas: u32,
}

/// A context's profile within one episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContextProfile {
    /// The context (its name from `reaper_common::context::CONTEXT_NAMES`).
    pub context: Context,
    /// Tasks attributed to it.
    pub tasks: Vec<TaskRef>,
    /// Sampled stacks.
    pub stacks: Vec<SampledStack>,
    /// Lock waits by stack.
    pub lock_waits: Vec<LockWaitStack>,
}

/// A tracked task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskRef {
    /// Thread id.
    pub tid: u32,
    /// comm.
    pub comm: String,
}

/// One distinct sampled kernel stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SampledStack {
    /// Function names, outermost caller first.
    pub frames: Vec<String>,
    /// Samples with this stack.
    pub samples: u64,
    /// Summed sample periods, ns of CPU time.
    pub period_ns: u64,
}

/// Lock waits that began at one kernel stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockWaitStack {
    /// Function names at `contention_begin`, outermost caller first.
    pub frames: Vec<String>,
    /// `LCB_F_*` flags (1 = spinning waiter).
    pub flags: u32,
    /// Completed waits.
    pub count: u64,
    /// Summed wait time, ns.
    pub total_ns: u64,
    /// Longest wait, ns.
    pub max_ns: u64,
}

/// A timeline event, timestamped relative to the kill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimelineEntry {
    /// ns since the kill (negative: before it).
    pub t_ns: i64,
    /// The kernel event (`TimelineKind`), or reaper's own kill.
    pub kind: TimelineEventKind,
    /// The context, if the task was tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    /// Thread id of the task the event fired in.
    pub tid: u32,
    /// Its thread-group id.
    pub tgid: u32,
    /// Its comm.
    pub comm: String,
    /// Kind-specific argument.
    pub arg: i64,
}

/// One program's runs and its time in the kernel over an episode
/// ([`Episode::program_costs`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct ProgramCost {
    /// Times the program ran.
    pub runs: u64,
    /// Time it ran, ns, as the kernel measured around each run.
    pub run_ns: u64,
}

/// Latencies of an episode, ns since the kill; `None` when the event was not
/// seen (the report says why).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Latencies {
    /// kill → `process_mrelease` returned.
    pub kill_to_mrelease_done_ns: Option<u64>,
    /// kill → `exit_mmap()` finished in the victim.
    pub kill_to_exit_mmap_done_ns: Option<u64>,
    /// `process_mrelease` entry → return.
    pub mrelease_duration_ns: Option<u64>,
    /// `process_mrelease` return value (0, or -errno).
    pub mrelease_ret: Option<i64>,
    /// OOM kill (`oom:mark_victim`) → `oom:wake_reaper`: the kernel's delay
    /// before the oom_reaper is woken (about 2 s on 5.17+ kernels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_reaper_delay_ns: Option<u64>,
    /// `oom:start_task_reaping` → `oom:finish_task_reaping`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_reaping_ns: Option<u64>,
    /// What the oom_reaper did after an OOM kill: "reaped", "skipped
    /// (oom:skip_task_reaping)", "not woken (...)", or "no event seen".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_reaper_verdict: Option<String>,
    /// Where `kill_to_mrelease_done_ns` and `mrelease_duration_ns` came
    /// from when not from the `syscalls:*_process_mrelease` tracepoints
    /// (absent: from them, or not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrelease_source: Option<MreleaseSource>,
    /// Where `kill_to_exit_mmap_done_ns` came from when not from the
    /// `mmap:exit_mmap` tracepoint (6.1+) (absent: from it, or not
    /// measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_mmap_source: Option<FigureSource>,
}

/// The `process_mrelease` latencies' source: see [`FigureSource`] (the
/// name run files were first written with).
pub type MreleaseSource = FigureSource;

/// A source of a figure other than the tracepoint(s) that normally give it,
/// used where the kernel lacks them; reports name it beside the figure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FigureSource {
    /// The tracepoints are missing on this kernel (no `FTRACE_SYSCALLS`
    /// for `syscalls:*_process_mrelease`; before 6.1 for `mmap:exit_mmap`,
    /// before 5.19 for `lock:contention_*`); the figures come from the
    /// exact-timing probe of a kernel function. For a latency, its longest
    /// call in the context: done at its exit, duration from entry to exit
    /// (a syscall's return value is then unknown); for lock waits, each
    /// call of the spin slow path, with its lock and caller's stack taken
    /// at entry and closed at exit.
    FunctionProbe {
        /// The kernel function, e.g. `__x64_sys_process_mrelease`,
        /// `exit_mmap`, `native_queued_spin_lock_slowpath`.
        symbol: String,
        /// The exit probe, "fexit" or "kretprobe".
        exit_probe: String,
        /// Why the tracepoints gave nothing (the kernel's answer).
        tracepoints: String,
    },
}

impl FigureSource {
    /// A short label for people, e.g. "from fexit __x64_sys_process_mrelease".
    pub fn label(&self) -> String {
        match self {
            Self::FunctionProbe {
                symbol, exit_probe, ..
            } => format!("from {exit_probe} {symbol}"),
        }
    }
}
