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

/// The tracked contexts as a type: one value per id, named by
/// [`CONTEXT_NAMES`]. Userspace resolves a name read from a file into this
/// once, at the edge; a name outside the set is not reaper's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum Context {
    /// [`CONTEXT_VICTIM_EXIT`].
    VictimExit = CONTEXT_VICTIM_EXIT,
    /// [`CONTEXT_MRELEASE_CALLER`].
    MreleaseCaller = CONTEXT_MRELEASE_CALLER,
    /// [`CONTEXT_OOM_REAPER`].
    OomReaper = CONTEXT_OOM_REAPER,
}

impl Context {
    /// Every context, in id order.
    pub const ALL: [Self; CONTEXT_COUNT as usize] =
        [Self::VictimExit, Self::MreleaseCaller, Self::OomReaper];

    /// The kernel-side id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The stable machine name (run files, file names, JSON).
    pub const fn name(self) -> &'static str {
        CONTEXT_NAMES[self as usize]
    }

    /// The context of a kernel-side id.
    pub const fn from_id(id: u32) -> Option<Self> {
        match id {
            CONTEXT_VICTIM_EXIT => Some(Self::VictimExit),
            CONTEXT_MRELEASE_CALLER => Some(Self::MreleaseCaller),
            CONTEXT_OOM_REAPER => Some(Self::OomReaper),
            _ => None,
        }
    }

    /// The context of a machine name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for c in Context::ALL {
            assert_eq!(Context::from_id(c.id()), Some(c));
            assert_eq!(Context::from_name(c.name()), Some(c));
        }
        assert_eq!(Context::from_id(CONTEXT_UNTRACKED), None);
        assert_eq!(Context::from_name("../../trav-pwned"), None);
        assert_eq!(Context::from_name("Victim_exit"), None);
    }
}
