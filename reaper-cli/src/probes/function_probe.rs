//! The one path by which reaper loads and attaches a kernel-function probe
//! (fentry, fexit, kprobe, kretprobe, and doctor's tp_btf check, which
//! loads the same way): `record`'s attach ladder, `doctor`'s program checks
//! and the probe-cost calibration all come through here.
//!
//! A program that does not load or attach is unloaded again before the
//! error is returned, and a pair ([`attach_pair`]) is attached whole or not
//! at all: an entry program without its exit leaves every call open. The
//! error is typed ([`AttachError`]): the kernel's answer stays a
//! [`Refusal`] (step, errno, the verifier's reason) that callers decide on;
//! the text is only for people.

use aya::{
    Ebpf,
    programs::{BtfTracePoint, FEntry, FExit, KProbe, Program, ProgramError},
};
use reaper_common::function_timing::{PROG_FENTRY, PROG_FEXIT, PROG_KPROBE, PROG_KRETPROBE};

use super::btf::KernelBtf;
use super::refusal::{FromProgramError as _, Refusal, Step};
use crate::model::{AttachMode, doctor::ProgramKind};

/// Why a function program is not attached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The object has no program of that name (a build mismatch).
    #[error("program {0} missing from the object")]
    Missing(String),
    /// The object's program of that name is of another kind.
    #[error("program {program} is not a {} program", kind.name())]
    WrongKind {
        /// The program's name in the object.
        program: String,
        /// The kind it was to be attached as.
        kind: ProgramKind,
    },
    /// fentry/fexit load against the kernel's BTF, and there is none.
    #[error("no kernel BTF (/sys/kernel/btf/vmlinux)")]
    NoBtf,
    /// The kernel's BTF has no type to attach the program to (a FUNC for
    /// fentry/fexit, a `btf_trace_*` TYPEDEF for tp_btf).
    #[error("{kind} load: {name} is not in the kernel BTF", kind = .kind.name())]
    NotInBtf {
        /// The program's kind.
        kind: ProgramKind,
        /// The BTF type name looked up.
        name: String,
    },
    /// The kernel refused to load or attach the program.
    #[error("{}", refused_text(*kind, function, refusal))]
    Refused {
        /// The program's kind.
        kind: ProgramKind,
        /// The kernel function it was for.
        function: String,
        /// The kernel's answer.
        refusal: Refusal,
    },
}

impl AttachError {
    /// The kernel's answer, when the kernel gave one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { refusal, .. } => Some(refusal),
            Self::Missing(_) | Self::WrongKind { .. } | Self::NoBtf | Self::NotInBtf { .. } => None,
        }
    }
}

/// "fentry load: ...", "kprobe attach to unmap_page_range: ...".
fn refused_text(kind: ProgramKind, function: &str, refusal: &Refusal) -> String {
    match refusal.step {
        Step::Load => format!("{} load: {refusal}", kind.name()),
        Step::Attach => format!("{} attach to {function}: {refusal}", kind.name()),
    }
}

/// The two ways a function call is timed: an entry and an exit program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pair {
    /// fentry + fexit (BPF trampoline, needs BTF).
    Fentry,
    /// kprobe + kretprobe.
    Kprobe,
}

impl Pair {
    /// The name used in run.json (`FunctionTime::mode`).
    pub fn name(self) -> &'static str {
        self.attach_mode().name()
    }

    /// The run model's attach mode.
    pub fn attach_mode(self) -> AttachMode {
        match self {
            Self::Fentry => AttachMode::Fentry,
            Self::Kprobe => AttachMode::Kprobe,
        }
    }

    /// From the attach mode the ladder used; `None` for modes without
    /// function probes.
    pub fn from_attach_mode(mode: AttachMode) -> Option<Self> {
        match mode {
            AttachMode::Fentry => Some(Self::Fentry),
            AttachMode::Kprobe => Some(Self::Kprobe),
            _ => None,
        }
    }

    /// The entry and exit programs of `slot`, with their kinds.
    pub fn programs(self, slot: usize) -> [(ProgramKind, &'static str); 2] {
        match self {
            Self::Fentry => [
                (ProgramKind::Fentry, PROG_FENTRY[slot]),
                (ProgramKind::Fexit, PROG_FEXIT[slot]),
            ],
            Self::Kprobe => [
                (ProgramKind::Kprobe, PROG_KPROBE[slot]),
                (ProgramKind::Kretprobe, PROG_KRETPROBE[slot]),
            ],
        }
    }
}

/// Loads `program` (of `kind`) for `function` (for tp_btf: the
/// tracepoint) and attaches it; on failure the program is unloaded again.
/// fentry, fexit and tp_btf need `btf`.
pub fn attach(
    ebpf: &mut Ebpf,
    kind: ProgramKind,
    program: &str,
    function: &str,
    btf: Option<&KernelBtf>,
) -> Result<(), AttachError> {
    let refused = |step: Step| {
        move |e: ProgramError| AttachError::Refused {
            kind,
            function: function.to_owned(),
            refusal: Refusal::from_error(step, &e),
        }
    };
    let needs_btf = matches!(
        kind,
        ProgramKind::Fentry | ProgramKind::Fexit | ProgramKind::TpBtf
    );
    let btf = match btf {
        Some(btf) => Some(btf),
        None if needs_btf => return Err(AttachError::NoBtf),
        None => None,
    };
    let wrong_kind = || AttachError::WrongKind {
        program: program.to_owned(),
        kind,
    };
    let btf_id = btf
        .map(|btf| attach_btf_id(kind, function, btf))
        .transpose()?
        .flatten();
    let prog = ebpf
        .program_mut(program)
        .ok_or_else(|| AttachError::Missing(program.to_owned()))?;
    let result = match (kind, prog, btf_id) {
        (ProgramKind::Fentry, Program::FEntry(p), Some(id)) => {
            load_then(p, |p| p.load_by_btf_id(id), FEntry::attach)
        }
        (ProgramKind::Fexit, Program::FExit(p), Some(id)) => {
            load_then(p, |p| p.load_by_btf_id(id), FExit::attach)
        }
        (ProgramKind::TpBtf, Program::BtfTracePoint(p), Some(id)) => {
            load_then(p, |p| p.load_by_btf_id(id), BtfTracePoint::attach)
        }
        (ProgramKind::Kprobe | ProgramKind::Kretprobe, Program::KProbe(p), _) => {
            load_then(p, KProbe::load, |p| p.attach(function, 0))
        }
        _ => return Err(wrong_kind()),
    };
    result.map_err(|(step, e)| {
        unload(ebpf, program);
        refused(step)(e)
    })
}

/// The BTF type id a program of `kind` attaches to (`None` for kprobes),
/// from reaper's own index: aya's `load(name, &Btf)` would need aya's whole
/// parse of the kernel BTF (0.1 s and 20 MiB on a 6.18 host).
fn attach_btf_id(
    kind: ProgramKind,
    function: &str,
    btf: &KernelBtf,
) -> Result<Option<u32>, AttachError> {
    let (id, name) = match kind {
        ProgramKind::Fentry | ProgramKind::Fexit => {
            (btf.function_id(function), function.to_owned())
        }
        ProgramKind::TpBtf => {
            let name = format!("btf_trace_{function}");
            (btf.typedef_id(&name), name)
        }
        _ => return Ok(None),
    };
    id.map(Some).ok_or(AttachError::NotInBtf { kind, name })
}

/// Loads a program, then attaches it; which step failed, with aya's error.
fn load_then<P, Link>(
    program: &mut P,
    load: impl FnOnce(&mut P) -> Result<(), ProgramError>,
    attach: impl FnOnce(&mut P) -> Result<Link, ProgramError>,
) -> Result<(), (Step, ProgramError)> {
    load(program).map_err(|e| (Step::Load, e))?;
    attach(program).map(drop).map_err(|e| (Step::Attach, e))
}

/// Attaches `pair`'s entry then exit program of `slot` to `function`
/// (`btf` for fentry); all or nothing: on failure both are unloaded.
pub fn attach_pair(
    ebpf: &mut Ebpf,
    pair: Pair,
    slot: usize,
    function: &str,
    btf: Option<&KernelBtf>,
) -> Result<(), AttachError> {
    let result = pair
        .programs(slot)
        .into_iter()
        .try_for_each(|(kind, program)| attach(ebpf, kind, program, function, btf));
    if result.is_err() {
        unload_pair(ebpf, pair, slot);
    }
    result
}

/// Detaches and unloads both programs of `pair` in `slot` (unloading
/// detaches); a program that is not loaded is left as it is.
pub fn unload_pair(ebpf: &mut Ebpf, pair: Pair, slot: usize) {
    for (_, program) in pair.programs(slot) {
        unload(ebpf, program);
    }
}

/// Detaches and unloads one function program, if it is loaded.
fn unload(ebpf: &mut Ebpf, program: &str) {
    let result = match ebpf.program_mut(program) {
        Some(Program::FEntry(p)) if p.fd().is_ok() => p.unload(),
        Some(Program::FExit(p)) if p.fd().is_ok() => p.unload(),
        Some(Program::KProbe(p)) if p.fd().is_ok() => p.unload(),
        Some(Program::BtfTracePoint(p)) if p.fd().is_ok() => p.unload(),
        _ => Ok(()),
    };
    if let Err(e) = result {
        log::debug!("unloading {program}: {}", crate::model::error_chain(&e));
    }
}
