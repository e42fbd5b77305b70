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

    /// The display label ("victim exit"), used by the renderers only.
    pub const fn label(self) -> &'static str {
        match self {
            Self::VictimExit => "victim exit",
            Self::MreleaseCaller => "mrelease caller",
            Self::OomReaper => "oom_reaper",
        }
    }

    /// Whether the context is a reaper side (its work is "reaper work", as
    /// opposed to the victim tearing its own address space down).
    pub const fn is_reaper(self) -> bool {
        matches!(self, Self::MreleaseCaller | Self::OomReaper)
    }

    /// The reaper-side contexts, in id order.
    pub const REAPERS: [Self; 2] = [Self::MreleaseCaller, Self::OomReaper];

    /// The kernel functions this context's stacks are rooted at, most
    /// preferred first (call trees are trimmed to the first one present).
    pub const fn anchor_frames(self) -> &'static [&'static str] {
        match self {
            Self::VictimExit => &["do_exit"],
            Self::MreleaseCaller => &MRELEASE_SYSCALL_FRAMES,
            Self::OomReaper => &[OOM_REAPER_KTHREAD, "kthread"],
        }
    }
}

/// The kernel's `oom_reaper` kthread: the name of its thread function (the
/// context's anchor frame, the catalog's `reaper_kthread`) and of its comm.
/// The same word as [`Context::OomReaper`]'s name, but the kernel's.
pub const OOM_REAPER_KTHREAD: &str = "oom_reaper";

/// The `process_mrelease(2)` entry points, most preferred first: the
/// mrelease caller's anchor, and the catalog's candidates for the syscall.
pub const MRELEASE_SYSCALL_FRAMES: [&str; 3] = [
    "__x64_sys_process_mrelease",
    "__arm64_sys_process_mrelease",
    "__do_sys_process_mrelease",
];

impl core::fmt::Display for Context {
    /// The machine name (what run files hold).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad(self.name())
    }
}

/// A context name outside [`CONTEXT_NAMES`], read from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownContext<'a>(pub &'a str);

impl core::fmt::Display for UnknownContext<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown context {:?}; reaper writes only ", self.0)?;
        for (i, name) in CONTEXT_NAMES.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl core::str::FromStr for Context {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::from_name(s).ok_or(())
    }
}

/// Run files hold a context as its machine name; a name outside the set is
/// refused with [`UnknownContext`]'s message (the field and the value).
#[cfg(feature = "serde")]
mod serde_impls {
    extern crate alloc;

    use alloc::borrow::Cow;

    use super::{CONTEXT_NAMES, Context, UnknownContext};

    impl serde::Serialize for Context {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(self.name())
        }
    }

    impl<'de> serde::Deserialize<'de> for Context {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl serde::de::Visitor<'_> for Visitor {
                type Value = Context;
                fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    f.write_str("a context name")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Context, E> {
                    Context::from_name(v).ok_or_else(|| E::custom(UnknownContext(v)))
                }
            }
            d.deserialize_str(Visitor)
        }
    }

    impl schemars::JsonSchema for Context {
        fn schema_name() -> Cow<'static, str> {
            "Context".into()
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({
                "description": "A tracked context: the dying victim, a process_mrelease caller, or the oom_reaper kthread.",
                "type": "string",
                "enum": CONTEXT_NAMES,
            })
        }
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

    #[test]
    fn reaper_sides_are_the_non_victim_contexts() {
        for c in Context::ALL {
            assert_eq!(c.is_reaper(), Context::REAPERS.contains(&c));
            assert_eq!(c.is_reaper(), c != Context::VictimExit);
            assert!(!c.anchor_frames().is_empty());
        }
    }
}
