//! Execution contexts that teardown work is attributed to.
//!
//! The seed thread compares three kinds of task that tear one address space
//! down: the dying victim itself (`exit_mmap`), a `process_mrelease(2)` caller
//! (lmkd) and the `oom_reaper` kthread. Context ids are small integers so the
//! kernel side can store them in map keys.

/// The dying victim's own threads (`do_exit` → `exit_mmap`).
pub const CONTEXT_VICTIM_EXIT: u32 = 0;
/// A thread that called `process_mrelease(2)` on the victim.
pub const CONTEXT_MRELEASE_CALLER: u32 = 1;
/// The `oom_reaper` kernel thread.
pub const CONTEXT_OOM_REAPER: u32 = 2;
/// How many contexts exist; ids are `0..CONTEXT_COUNT`.
pub const CONTEXT_COUNT: u32 = 3;
/// Marks an event from a task reaper does not track.
pub const CONTEXT_UNTRACKED: u32 = u32::MAX;

/// Stable machine names of the contexts, indexed by id (used in run files,
/// file names and JSON).
pub const CONTEXT_NAMES: [&str; CONTEXT_COUNT as usize] =
    ["victim_exit", "mrelease_caller", "oom_reaper"];
