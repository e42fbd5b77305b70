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
    /// Which episode the task's work belongs to, folded into the tag of
    /// every key it produces (see [`tag`]): 0 in `record`, the victim's or
    /// the caller's tgid in `record --watch`.
    pub owner: u32,
    /// Reserved; keeps the layout explicit.
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<TrackedTask>() == 16);

/// Map: `u32` settings indexed by the `SETTING_*` constants, written by
/// userspace after loading.
pub const MAP_SETTINGS: &str = "SETTINGS";
/// Number of settings slots.
pub const SETTINGS_COUNT: u32 = 4;
/// Setting: 1 when `record --watch` runs, so the kernel side tracks every
/// SIGKILL target, OOM victim and process_mrelease caller by itself.
pub const SETTING_WATCH: u32 = 0;
/// Setting: 1 while `record --pid P` (without `--kill`) waits for P's own
/// exit, so the kernel side tracks every `process_mrelease` caller for the
/// duration of its call (owned by the caller's tgid), as in watch mode.
pub const SETTING_FOLLOW_MRELEASE: u32 = 1;

/// Bits of a tag that hold the context id; the rest hold the owner.
const CONTEXT_BITS: u32 = 8;

/// The tag stored in map keys and events: context id in the low 8 bits, the
/// owner (a tgid, below 2^22 = PID_MAX_LIMIT) above them.
pub const fn tag(context: u32, owner: u32) -> u32 {
    context | (owner << CONTEXT_BITS)
}

/// The context id of a tag.
pub const fn tag_context(tag: u32) -> u32 {
    tag & ((1 << CONTEXT_BITS) - 1)
}

/// The owner of a tag.
pub const fn tag_owner(tag: u32) -> u32 {
    tag >> CONTEXT_BITS
}
crate::user_pod!(TrackedTask);
