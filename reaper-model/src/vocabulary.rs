//! The run file's closed vocabularies as types: how a probe was attached,
//! what came of it, the probe groups `record` attaches, the catalog's
//! concept ids, the order in which a reaper visited VMAs, and (in
//! [`kinds`]) the scenario and timeline kinds.
//!
//! Each serialises exactly as the string reaper has always written, so run
//! files keep their bytes; a value outside the vocabulary is refused when a
//! file is read, with a message naming the field and the values it may hold.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod kinds;
pub use kinds::{ScenarioKind, TimelineEventKind};

/// How a probe was attached (`mode` in `recording.probes`,
/// `function_probes` and exact timing rows).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AttachMode {
    /// A perf_event (cpu-clock sampling).
    PerfEvent,
    /// A classic tracepoint.
    Tracepoint,
    /// A raw tracepoint (BPF_PROG_TYPE_RAW_TRACEPOINT: the tracepoint's
    /// arguments, no perf record, no grace period at detach).
    RawTracepoint,
    /// An fentry/fexit pair (BPF trampoline).
    Fentry,
    /// A kprobe/kretprobe pair.
    Kprobe,
    /// Nothing attached (see the status for why).
    None,
}

impl AttachMode {
    /// Every mode.
    pub const ALL: [Self; 6] = [
        Self::PerfEvent,
        Self::Tracepoint,
        Self::RawTracepoint,
        Self::Fentry,
        Self::Kprobe,
        Self::None,
    ];

    /// The name run files hold ("fentry").
    pub const fn name(self) -> &'static str {
        match self {
            Self::PerfEvent => "perf_event",
            Self::Tracepoint => "tracepoint",
            Self::RawTracepoint => "raw_tracepoint",
            Self::Fentry => "fentry",
            Self::Kprobe => "kprobe",
            Self::None => "none",
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The attach kind of one program (doctor.json's `attach_kinds` and
/// `programs`): the attach modes' kinds, the exit halves of the function
/// pairs, and the BTF raw tracepoint doctor checks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProgramKind {
    /// cpu-clock sampling on every CPU.
    PerfEvent,
    /// A classic tracepoint.
    Tracepoint,
    /// A raw tracepoint (BPF_PROG_TYPE_RAW_TRACEPOINT).
    RawTracepoint,
    /// fentry (BTF trampoline, entry).
    Fentry,
    /// fexit (BTF trampoline, exit).
    Fexit,
    /// kprobe.
    Kprobe,
    /// kretprobe.
    Kretprobe,
    /// BTF-enabled raw tracepoint (doctor's capability check only).
    TpBtf,
}

impl ProgramKind {
    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::PerfEvent,
        Self::Tracepoint,
        Self::RawTracepoint,
        Self::Fentry,
        Self::Fexit,
        Self::Kprobe,
        Self::Kretprobe,
        Self::TpBtf,
    ];

    /// The kind's name, as in `bpftool prog` and doctor's output; the
    /// kinds that are attach modes are spelled as the mode.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PerfEvent => AttachMode::PerfEvent.name(),
            Self::Tracepoint => AttachMode::Tracepoint.name(),
            Self::RawTracepoint => AttachMode::RawTracepoint.name(),
            Self::Fentry => AttachMode::Fentry.name(),
            Self::Fexit => "fexit",
            Self::Kprobe => AttachMode::Kprobe.name(),
            Self::Kretprobe => "kretprobe",
            Self::TpBtf => "tp_btf",
        }
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What came of attaching a probe (`status` in `recording.probes` and
/// `function_probes`). The file holds "attached", "absent on this kernel"
/// (optionally "(inline into F)"), "not timed: WHY" when record chose not to
/// time a function, or the reason it was not attached.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProbeOutcome {
    /// The probe is attached (its mode is beside it).
    Attached,
    /// The kernel has none of the function's candidates.
    Absent {
        /// The caller its code is inlined into, when reaper knows one.
        inline_into: Option<String>,
    },
    /// record chose not to time the function (a loop that never returns,
    /// a per-page leaf left to sampling): the catalog's reason. Not a
    /// refusal: no kernel was asked.
    NotTimed(String),
    /// Refused or not tried: the kernel's answers (EPERM, ENOTSUPP 524,
    /// the verifier's last words), or why reaper did not try.
    NotAttached(String),
}

const ATTACHED: &str = "attached";
const ABSENT: &str = "absent on this kernel";
const NOT_TIMED: &str = "not timed: ";

impl ProbeOutcome {
    /// A refusal or a reason not to try.
    pub fn not_attached(why: impl Into<String>) -> Self {
        Self::NotAttached(why.into())
    }

    /// record's choice not to time a function, and why.
    pub fn not_timed(why: impl Into<String>) -> Self {
        Self::NotTimed(why.into())
    }

    /// Whether record chose not to time the function (no kernel refused it).
    pub fn is_not_timed(&self) -> bool {
        matches!(self, Self::NotTimed(_))
    }

    /// Whether the probe is attached.
    pub fn is_attached(&self) -> bool {
        matches!(self, Self::Attached)
    }

    /// The outcome of an attach attempt that returned the kernel's answer.
    pub fn from_result<E: std::fmt::Display>(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self::Attached,
            Err(why) => Self::NotAttached(why.to_string()),
        }
    }

    /// Reads the file form back (the inverse of `Display`).
    pub fn parse(text: &str) -> Self {
        if text == ATTACHED {
            return Self::Attached;
        }
        if let Some(why) = text.strip_prefix(NOT_TIMED) {
            return Self::NotTimed(why.to_owned());
        }
        match text.strip_prefix(ABSENT) {
            Some("") => Self::Absent { inline_into: None },
            Some(rest) => match rest
                .strip_prefix(" (inline into ")
                .and_then(|r| r.strip_suffix(')'))
            {
                Some(f) => Self::Absent {
                    inline_into: Some(f.to_owned()),
                },
                None => Self::NotAttached(text.to_owned()),
            },
            None => Self::NotAttached(text.to_owned()),
        }
    }
}

impl fmt::Display for ProbeOutcome {
    /// The file form: what reaper has always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attached => f.pad(ATTACHED),
            Self::Absent { inline_into: None } => f.pad(ABSENT),
            Self::Absent {
                inline_into: Some(caller),
            } => f.pad(&format!("{ABSENT} (inline into {caller})")),
            Self::NotTimed(why) => f.pad(&format!("{NOT_TIMED}{why}")),
            Self::NotAttached(why) => f.pad(why),
        }
    }
}

impl Serialize for ProbeOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProbeOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&text))
    }
}

impl schemars::JsonSchema for ProbeOutcome {
    fn schema_name() -> Cow<'static, str> {
        "ProbeOutcome".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "\"attached\", \"absent on this kernel\" (optionally \"(inline into F)\"), \"not timed: WHY\" (record chose not to time the function), or why the probe was not attached (the kernel's answers).",
            "type": "string",
        })
    }
}

/// The probe groups `record` attaches besides the timeline tracepoints and
/// the function probes; `probe` in `recording.probes` holds their name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeGroup {
    /// cpu-clock perf_event sampling on every CPU.
    Sampling,
    /// `lock:contention_begin` / `lock:contention_end`.
    LockWait,
    /// `kmem:rss_stat`: resident memory each context freed.
    Reclaim,
}

impl ProbeGroup {
    /// The name in `recording.probes`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sampling => "sampling",
            Self::LockWait => "lock_wait",
            Self::Reclaim => "rss",
        }
    }

    /// How the group is attached when nothing better is available (the
    /// lock-wait group prefers raw tracepoints; `recording.probes` holds the
    /// mode that attached).
    pub const fn mode(self) -> AttachMode {
        match self {
            Self::Sampling => AttachMode::PerfEvent,
            Self::LockWait | Self::Reclaim => AttachMode::Tracepoint,
        }
    }

    /// What the group's programs are, for "... did not attach".
    pub const fn attaches(self) -> &'static str {
        match self {
            Self::Sampling => "cpu-clock perf_event sampling",
            Self::LockWait => "lock:contention_begin/end",
            Self::Reclaim => "kmem:rss_stat",
        }
    }

    /// What a run without the group cannot measure.
    pub const fn measures(self) -> &'static str {
        match self {
            Self::Sampling => {
                "sampled periods, PTE-lock spin time, Children/Self, call graphs and flamegraphs"
            }
            Self::LockWait => "traced lock wait time (queued waiters)",
            Self::Reclaim => {
                "memory freed per context, reclaim throughput per context and the RSS counter track"
            }
        }
    }

    /// Why nothing the group measures is in the run, given the kernel's answer.
    pub fn did_not_attach(self, answer: &str) -> String {
        format!("{} did not attach: {answer}", self.attaches())
    }
}

/// A catalog concept's id (`concept` in `symbols`, `function_probes`,
/// exact timing rows and doctor.json): the teardown step a kernel function
/// stands for, whatever the function is called on a given kernel. The
/// catalog (reaper-cli's `catalog.rs`) maps each to its candidate symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConceptId {
    /// The reaper's work function (process_mrelease and the oom_reaper).
    ReaperWork,
    /// The oom_reaper kthread's loop.
    ReaperKthread,
    /// The victim's address-space teardown.
    VictimTeardown,
    /// The victim's unmap of all VMAs.
    VictimUnmap,
    /// The reaper's per-VMA unmap.
    PerVmaUnmap,
    /// The per-VMA zap worker of both contexts.
    VmaZapWorker,
    /// PTE spinlock acquisition.
    PteLock,
    /// rmap removal.
    RmapRemoval,
    /// TLB flush during unmap.
    TlbFlush,
    /// TLB gather finish.
    TlbFinish,
    /// Page freeing.
    PageFreeing,
    /// The spinlock slow path.
    SpinSlowpath,
    /// The process_mrelease syscall.
    MreleaseSyscall,
}

impl ConceptId {
    /// Every concept id, in the catalog's order.
    pub const ALL: [Self; 13] = [
        Self::ReaperWork,
        Self::ReaperKthread,
        Self::VictimTeardown,
        Self::VictimUnmap,
        Self::PerVmaUnmap,
        Self::VmaZapWorker,
        Self::PteLock,
        Self::RmapRemoval,
        Self::TlbFlush,
        Self::TlbFinish,
        Self::PageFreeing,
        Self::SpinSlowpath,
        Self::MreleaseSyscall,
    ];

    /// The stable name run files and reports hold ("pte_lock").
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReaperWork => "reaper_work",
            Self::ReaperKthread => "reaper_kthread",
            Self::VictimTeardown => "victim_teardown",
            Self::VictimUnmap => "victim_unmap",
            Self::PerVmaUnmap => "per_vma_unmap",
            Self::VmaZapWorker => "vma_zap_worker",
            Self::PteLock => "pte_lock",
            Self::RmapRemoval => "rmap_removal",
            Self::TlbFlush => "tlb_flush",
            Self::TlbFinish => "tlb_finish",
            Self::PageFreeing => "page_freeing",
            Self::SpinSlowpath => "spin_slowpath",
            Self::MreleaseSyscall => "mrelease_syscall",
        }
    }

    /// The id named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for ConceptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for ConceptId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl schemars::JsonSchema for ConceptId {
    fn schema_name() -> Cow<'static, str> {
        "ConceptId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
        schemars::json_schema!({
            "description": "A catalog concept: the teardown step a kernel function stands for.",
            "type": "string",
            "enum": names,
        })
    }
}

/// The order in which one context's per-VMA unmap calls visited VMAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VmaOrderKind {
    /// Ascending start addresses (the victim's `exit_mmap` order).
    Forward,
    /// Descending start addresses.
    Reverse,
    /// Steps both ways.
    Mixed,
    /// Fewer than two calls: no order to see.
    Unknown,
}

impl VmaOrderKind {
    /// Every order.
    pub const ALL: [Self; 4] = [Self::Forward, Self::Reverse, Self::Mixed, Self::Unknown];

    /// The order named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The name run files hold ("reverse").
    pub const fn name(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Reverse => "reverse",
            Self::Mixed => "mixed",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for VmaOrderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Reads one of a closed set of names; anything else is refused with the
/// field's name and the values reaper writes.
fn one_of<'de, D: Deserializer<'de>, T: Copy>(
    d: D,
    field: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, D::Error> {
    let text = Cow::<'de, str>::deserialize(d)?;
    all.iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            serde::de::Error::custom(format!(
                "unknown {field} {text:?}; reaper writes only {}",
                names.join(", ")
            ))
        })
}

impl<'de> Deserialize<'de> for AttachMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, "attach mode", &Self::ALL, Self::name)
    }
}

impl<'de> Deserialize<'de> for ConceptId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, "concept", &Self::ALL, Self::name)
    }
}

impl<'de> Deserialize<'de> for VmaOrderKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, "VMA order", &Self::ALL, Self::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_their_file_form() {
        for text in [
            "attached",
            "absent on this kernel",
            "absent on this kernel (inline into zap_pte_range)",
            "fentry load: BPF_PROG_LOAD refused [EPERM 1]",
            "not timed: the kthread's loop never returns",
            "absent on this kernel: none of a, b",
        ] {
            let outcome = ProbeOutcome::parse(text);
            assert_eq!(outcome.to_string(), text);
        }
        assert_eq!(
            ProbeOutcome::parse("absent on this kernel (inline into f)"),
            ProbeOutcome::Absent {
                inline_into: Some("f".into())
            }
        );
        assert_eq!(
            ProbeOutcome::parse("not timed: loop"),
            ProbeOutcome::NotTimed("loop".into())
        );
        assert_eq!(
            ProbeOutcome::not_timed("loop").to_string(),
            "not timed: loop"
        );
        assert!(ProbeOutcome::parse("not timed: loop").is_not_timed());
        // Only the exact prefix is record's choice; other text stays an answer.
        assert!(!ProbeOutcome::parse("not timed").is_not_timed());
        assert!(!ProbeOutcome::parse("fentry: not timed: x").is_not_timed());
        assert!(ProbeOutcome::parse("attached").is_attached());
        assert!(!ProbeOutcome::parse("attached (fentry refused)").is_attached());
    }

    #[test]
    fn modes_and_orders_serialise_as_their_names() {
        for m in AttachMode::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{m}\""));
            assert_eq!(serde_json::from_str::<AttachMode>(&json).unwrap(), m);
        }
        for k in ProgramKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        for c in ConceptId::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<ConceptId>(&json).unwrap(), c);
            assert_eq!(ConceptId::from_name(c.name()), Some(c));
        }
        for o in VmaOrderKind::ALL {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{o}\""));
            assert_eq!(serde_json::from_str::<VmaOrderKind>(&json).unwrap(), o);
        }
    }

    #[test]
    fn unknown_names_are_refused_naming_the_field() {
        let err = serde_json::from_str::<AttachMode>("\"uprobe\"").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown attach mode \"uprobe\"; reaper writes only perf_event, tracepoint, raw_tracepoint, fentry, kprobe, none"
            ),
            "{err}"
        );
        let err = serde_json::from_str::<ConceptId>("\"anchor\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown concept \"anchor\"; reaper writes only reaper_work, "),
            "{err}"
        );
        let err = serde_json::from_str::<VmaOrderKind>("\"sideways\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown VMA order \"sideways\""),
            "{err}"
        );
        let err = serde_json::from_str::<crate::Context>("\"../x\"").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown context \"../x\"; reaper writes only victim_exit, mrelease_caller, oom_reaper"
            ),
            "{err}"
        );
    }
}
