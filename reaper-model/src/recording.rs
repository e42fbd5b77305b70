//! How a run was recorded: its parameters, probes and warm-up
//! (run.json `recording`).

use serde::{Deserialize, Serialize};

use crate::{AttachMode, FigureSource, ProbeOutcome, PteHolderSetup, Scenario};

/// Recording parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Recording {
    /// Seconds since the Unix epoch when recording started.
    pub started_unix: u64,
    /// The same in milliseconds: runs recorded back to back start within
    /// the same second, and comparisons order runs by recording time to
    /// find drift and a blocked design. Absent in runs recorded before
    /// reaper wrote it (`started_unix` stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    /// Requested sampling frequency.
    pub freq_hz: u64,
    /// The fixed cpu-clock period used (1e9 / freq_hz), in ns.
    pub sample_period_ns: u64,
    /// Whether each sample's period is the cpu-clock count since the
    /// previous sample on its CPU (true since the recorder weighs samples
    /// so); older runs summed the nominal period per sample.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub periods_counted: bool,
    /// What each probe group was attached with.
    pub probes: Vec<ProbeUse>,
    /// Entries of the kernel stack map (`--stack-map-size`, or the size
    /// chosen for the scenario's expected samples); a stack is lost only
    /// when it is full. Absent in runs recorded before reaper wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_map_entries: Option<u32>,
    /// The scenario that produced the episodes.
    pub scenario: Scenario,
    /// Where the episodes' lock waits came from when the
    /// `lock:contention_*` tracepoints are missing (before 5.19): the spin
    /// slow path's function probe (absent: from the tracepoints, or not
    /// measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_wait_source: Option<FigureSource>,
    /// The warm-up teardown recorded and discarded before the first
    /// episode, e.g. "a 32M,vmas=64,threads=4 victim of reaper's own (pid 812),
    /// killed and process_mrelease'd (returned 0)": the probes' and the
    /// patched kernel code's first run, which under an emulator (TCG)
    /// includes translating them, falls in it rather than in episode 1.
    /// Absent: none (`--no-warmup`, a scenario without one, older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<String>,
    /// How PTE-lock waits and their holders were recorded (issue 25);
    /// absent in runs recorded before reaper logged them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pte_holders: Option<PteHolderSetup>,
    /// The kernel memory of `record --exact-locks`' collision logs (the
    /// walker log, the PTE-lock wait log, the open waits and the last-taker
    /// map), as the kernel accounts each map after loading; shrunk to one
    /// entry each when the logs are off. Absent in runs recorded before
    /// reaper read it, and where the kernel did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_maps: Option<Vec<MapMemory>>,
}

/// One BPF map's size and kernel memory, read back from the kernel after
/// loading (`/proc/self/fdinfo` of the map's fd).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MapMemory {
    /// The map's name, e.g. "FN_PTE_LAST_TAKER".
    pub map: String,
    /// Its entries (`max_entries`).
    pub max_entries: u32,
    /// The memory the kernel charges for it (`memlock:`), bytes: its own
    /// estimate of the map's footprint, per-CPU values included.
    pub memlock_bytes: u64,
}

/// How one probe group was attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeUse {
    /// Probe group, e.g. "sampling", "lock_wait", "timeline:exit_mmap".
    pub probe: String,
    /// Attach kind used, e.g. perf_event, tracepoint; none if it failed.
    pub mode: AttachMode,
    /// Attached, or the kernel's answer when it did not attach.
    pub status: ProbeOutcome,
    /// Why the preferred form of a tracepoint was not used: a raw
    /// tracepoint's when the classic tracepoint was used (a prototype or
    /// offset this kernel's BTF did not confirm, or the kernel's answer),
    /// e.g. "raw tracepoint mark_victim: no kernel BTF ...", or for the
    /// syscall tracepoints the classic per-syscall tracepoint's when the raw
    /// `sys_enter`/`sys_exit` were used, e.g. "tracepoint
    /// syscalls:sys_enter_process_mrelease: ...".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
}
