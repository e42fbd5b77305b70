//! Which tasks the kernel side records.
//!
//! Userspace fills two hash maps before an episode: one keyed by thread-group
//! id (every thread of the victim, including ones it creates later) and one
//! keyed by thread id (the mrelease-calling thread, the `oom_reaper` kthread).
//! The value is a [`TrackedTask`]. The thread-id map is consulted first.
//! Unarmed entries are ignored until armed (see [`TrackedTask::armed`]).

/// Map: tgid → [`TrackedTask`].
pub const MAP_TRACKED_TGIDS: &str = "TRACKED_TGIDS";
/// Map: tid → [`TrackedTask`].
pub const MAP_TRACKED_TIDS: &str = "TRACKED_TIDS";
/// Capacity of each tracking map: a handful of victims and reapers per
/// episode, with room for `--watch` episodes that overlap.
pub const TRACKED_MAX_ENTRIES: u32 = 1024;

/// How a tracked task's work is attributed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackedTask {
    /// One of the `CONTEXT_*` ids in [`crate::context`].
    pub context: u32,
    /// 0 while the task is tracked but not yet recorded: an OOM victim is
    /// registered before it starts allocating, and the `oom:mark_victim`
    /// probe arms it, so its page-fault path before the kill is not counted.
    /// 1 once samples, waits and events count.
    pub armed: u32,
}
const _: () = assert!(core::mem::size_of::<TrackedTask>() == 8);
crate::user_pod!(TrackedTask);
