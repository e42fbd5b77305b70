//! The run file's two kinds as types: what a recording tore down
//! (`recording.scenario.kind`) and what each timeline event is
//! (`episodes[].timeline[].kind`).
//!
//! Each serialises as the string reaper has always written, so run files
//! keep their bytes; a value outside the vocabulary is refused when a file
//! is read, naming the field and the values reaper writes. The timeline's
//! kernel kinds are reaper-common's [`TimelineKind`] (their names are
//! spelled there, beside the eBPF side's raw values); this module adds the
//! userspace kill.

use std::borrow::Cow;
use std::fmt;

use reaper_common::timeline::TimelineKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::one_of;

/// What a recording tore down (`scenario.kind`); it also ends the run
/// directory's name (`2026-12-04T22-40-05Z-victim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScenarioKind {
    /// A synthetic victim reaper starts and kills (`record --victim`).
    Victim,
    /// An existing process reaper kills (`record --pid`).
    Pid,
    /// An existing process's own exit, waited for (`record --exit`).
    Exit,
    /// Every teardown on the machine for a while (`record --watch`).
    Watch,
    /// A memcg OOM kill of a synthetic victim (`record --oom`).
    Oom,
}

impl ScenarioKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [Self::Victim, Self::Pid, Self::Exit, Self::Watch, Self::Oom];

    /// The name run files hold ("victim").
    pub const fn name(self) -> &'static str {
        match self {
            Self::Victim => "victim",
            Self::Pid => "pid",
            Self::Exit => "exit",
            Self::Watch => "watch",
            Self::Oom => "oom",
        }
    }
}

/// What one timeline event is (`kind` of a timeline entry): the kill
/// reaper sent from userspace, or an event a tracepoint program saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimelineEventKind {
    /// reaper's own kill of the victim (t = 0 of a killed episode).
    Kill,
    /// An event of the kernel's, named as the eBPF side's kind.
    Kernel(TimelineKind),
}

impl TimelineEventKind {
    /// Every kind: the kill, then the kernel's in raw order.
    pub const ALL: [Self; 1 + TimelineKind::ALL.len()] = {
        let mut all = [Self::Kill; 1 + TimelineKind::ALL.len()];
        let mut i = 0;
        while i < TimelineKind::ALL.len() {
            all[i + 1] = Self::Kernel(TimelineKind::ALL[i]);
            i += 1;
        }
        all
    };

    /// The name run files hold ("kill", "exit_mmap_done").
    pub const fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Kernel(kind) => kind.name(),
        }
    }
}

impl From<TimelineKind> for TimelineEventKind {
    fn from(kind: TimelineKind) -> Self {
        Self::Kernel(kind)
    }
}

/// `entry.kind == TimelineKind::ExitMmap`: the kernel's kind, compared
/// without wrapping it.
impl PartialEq<TimelineKind> for TimelineEventKind {
    fn eq(&self, other: &TimelineKind) -> bool {
        *self == Self::Kernel(*other)
    }
}

macro_rules! by_name {
    ($($ty:ident: $field:literal, $description:literal;)*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.name())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                one_of(d, $field, &Self::ALL, Self::name)
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                schemars::json_schema!({
                    "description": $description,
                    "type": "string",
                    "enum": names,
                })
            }
        }
    )*};
}

by_name! {
    ScenarioKind: "scenario kind",
        "What a recording tore down: a synthetic victim, an existing process (killed, or its own exit), every teardown while watching, or a memcg OOM kill.";
    TimelineEventKind: "timeline kind",
        "What a timeline event is: reaper's kill, or the kernel event a tracepoint saw.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_as_their_names_and_read_back() {
        for k in ScenarioKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(serde_json::from_str::<ScenarioKind>(&json).unwrap(), k);
        }
        for k in TimelineEventKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(serde_json::from_str::<TimelineEventKind>(&json).unwrap(), k);
        }
        assert_eq!(
            serde_json::to_string(&TimelineEventKind::from(TimelineKind::ExitMmap)).unwrap(),
            "\"exit_mmap_done\""
        );
    }

    /// The names are the ones run files have always held: the kill's, and
    /// the eBPF side's for every kernel kind, none twice.
    #[test]
    fn the_timeline_kinds_are_the_kill_and_every_kernel_kind() {
        assert_eq!(TimelineEventKind::ALL[0], TimelineEventKind::Kill);
        for (k, kernel) in TimelineEventKind::ALL[1..].iter().zip(TimelineKind::ALL) {
            assert_eq!(*k, kernel);
            assert_eq!(k.name(), kernel.name());
        }
        assert!(TimelineEventKind::Kill != TimelineKind::SigKill);
        let mut names: Vec<&str> = TimelineEventKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TimelineEventKind::ALL.len());
    }

    #[test]
    fn unknown_kinds_are_refused_naming_the_field() {
        let err = serde_json::from_str::<ScenarioKind>("\"fork\"").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown scenario kind \"fork\"; reaper writes only victim, pid, exit, watch, oom"
            ),
            "{err}"
        );
        let err = serde_json::from_str::<TimelineEventKind>("\"exit_mmap\"").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown timeline kind \"exit_mmap\"; reaper writes only kill, mrelease_enter, "
            ),
            "{err}"
        );
    }
}
