//! The attach ladder: per planned function, fentry/fexit, else
//! kprobe/kretprobe (`--attach auto`), or one forced mode, each pair
//! attached through [`crate::probes::function_probe`]; and what the run
//! file says about it (probes, function probes, not measured).

use aya::Ebpf;

use super::plan::{Plan, SlotFunction};
use crate::{
    model::{
        AttachMode, ConceptId, NotMeasured, NotMeasuredSubject, ProbeOutcome, ProbeUse,
        doctor::ProgramKind,
    },
    probes::{
        function_probe::{self, AttachError, Pair},
        kernel_btf::{self, FentryBtf},
        refusal::Step,
    },
};

/// How `reaper record --attach` chooses the mode of each function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachPolicy {
    /// fentry/fexit, else kprobe/kretprobe, else none (per function).
    #[default]
    Auto,
    /// fentry/fexit only; a function it cannot attach is an error.
    Fentry,
    /// kprobe/kretprobe only; a function it cannot attach is an error.
    Kprobe,
    /// No function probes: tracepoints and sampling only.
    Sampling,
}

impl AttachPolicy {
    /// Every policy, in `--attach`'s order (the command layer turns them
    /// into the flag's values).
    pub const ALL: [Self; 4] = [Self::Auto, Self::Fentry, Self::Kprobe, Self::Sampling];

    /// The one mode every function must attach with, for a forced policy.
    pub const fn forced(self) -> Option<AttachMode> {
        match self {
            Self::Fentry => Some(AttachMode::Fentry),
            Self::Kprobe => Some(AttachMode::Kprobe),
            Self::Auto | Self::Sampling => None,
        }
    }

    /// The flag value: a forced policy is spelled as its mode.
    pub const fn name(self) -> &'static str {
        match (self, self.forced()) {
            (_, Some(mode)) => mode.name(),
            (Self::Sampling, None) => "sampling",
            (_, None) => "auto",
        }
    }
}

/// One function's outcome on the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionAttach {
    /// The function.
    pub function: SlotFunction,
    /// fentry, kprobe or none.
    pub mode: AttachMode,
    /// Attached, or why each rung failed.
    pub status: ProbeOutcome,
    /// Why fentry/fexit was refused when kprobes were used.
    pub fallback_from: Option<String>,
}

/// What the ladder did for every catalog concept.
#[derive(Clone, Debug, Default)]
pub struct LadderReport {
    /// Functions with a slot, and their mode.
    pub functions: Vec<FunctionAttach>,
    /// Concepts without a function (absent, not timed), with the reason.
    pub skipped: Vec<(ConceptId, ProbeOutcome)>,
    /// Why order detection is off, if it is.
    pub order_off: Option<String>,
    /// The attach mode asked for.
    pub mode: AttachPolicy,
    /// Why no function probe was even tried (e.g. watch mode).
    pub disabled: Option<String>,
}

/// A forced mode that failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "--attach {mode}: {function} ({concept}) did not attach: {answer}; use --attach auto to fall back per function, or --attach sampling"
)]
pub struct ForcedModeError {
    mode: AttachMode,
    function: String,
    concept: ConceptId,
    answer: Box<RungError>,
}

impl LadderReport {
    /// A report for a recording that attaches no function probe, and why.
    pub fn disabled(plan: &Plan, why: &str) -> Self {
        Self {
            functions: plan
                .functions
                .iter()
                .map(|f| FunctionAttach {
                    function: f.clone(),
                    mode: AttachMode::None,
                    status: ProbeOutcome::not_attached(why),
                    fallback_from: None,
                })
                .collect(),
            skipped: plan.skipped.clone(),
            order_off: None,
            mode: AttachPolicy::Sampling,
            disabled: Some(why.to_owned()),
        }
    }

    /// Functions that got a probe pair.
    pub fn attached(&self) -> impl Iterator<Item = &FunctionAttach> {
        self.functions.iter().filter(|f| f.mode != AttachMode::None)
    }

    /// The run file's `function_probes`, one per concept.
    pub fn function_probes(&self) -> Vec<crate::model::FunctionProbe> {
        let mut out: Vec<crate::model::FunctionProbe> = self
            .functions
            .iter()
            .map(|f| crate::model::FunctionProbe {
                concept: f.function.concept,
                symbol: Some(f.function.symbol.clone()),
                mode: f.mode,
                status: f.status.clone(),
                fallback_from: f.fallback_from.clone(),
            })
            .collect();
        out.extend(
            self.skipped
                .iter()
                .map(|(concept, why)| crate::model::FunctionProbe {
                    concept: *concept,
                    symbol: None,
                    mode: AttachMode::None,
                    status: why.clone(),
                    fallback_from: None,
                }),
        );
        out
    }

    /// The run file's `recording.probes` entries, one per concept.
    pub fn probe_uses(&self) -> Vec<ProbeUse> {
        let mut uses: Vec<ProbeUse> = self
            .functions
            .iter()
            .map(|f| ProbeUse {
                probe: format!("function:{}", f.function.symbol),
                mode: f.mode,
                status: f.status.clone(),
                fallback_from: None,
            })
            .collect();
        uses.extend(self.skipped.iter().map(|(concept, why)| ProbeUse {
            probe: format!("function:{concept}"),
            mode: AttachMode::None,
            status: why.clone(),
            fallback_from: None,
        }));
        uses
    }

    /// What the run could not measure because of the ladder, with the
    /// kernel's reasons.
    pub fn not_measured(&self) -> Vec<NotMeasured> {
        let mut out = Vec::new();
        let failed: Vec<&FunctionAttach> = self
            .functions
            .iter()
            .filter(|f| f.mode == AttachMode::None)
            .collect();
        if self.attached().next().is_none() {
            let why = match (self.mode, failed.first()) {
                _ if self.disabled.is_some() => self.disabled.clone().unwrap_or_default(),
                (AttachPolicy::Sampling, _) => "disabled by --attach sampling".to_owned(),
                // The kernel's answers are in `recording.probes`, which
                // the header prints once ("Probes NOT attached").
                (_, Some(_)) => {
                    "no function probe attached (the kernel's answers: \"Probes NOT attached\" above)"
                        .to_owned()
                }
                (_, None) => "no catalog function exists on this kernel".to_owned(),
            };
            out.push(NotMeasured {
                subject: NotMeasuredSubject::FunctionTiming,
                why: why.clone(),
            });
            out.push(NotMeasured {
                subject: "reaper VMA order".into(),
                why: format!("order: unknown (needs fentry or kprobe): {why}"),
            });
            return out;
        }
        for f in failed {
            out.push(NotMeasured {
                subject: format!(
                    "exact timing of {} ({})",
                    f.function.symbol, f.function.concept
                )
                .into(),
                why: f.status.to_string(),
            });
        }
        let per_vma_attached = self
            .attached()
            .any(|f| f.function.concept == ConceptId::PerVmaUnmap);
        if let Some(why) = &self.order_off {
            out.push(NotMeasured {
                subject: "reaper VMA order".into(),
                why: why.clone(),
            });
        } else if !per_vma_attached {
            out.push(NotMeasured {
                subject: "reaper VMA order".into(),
                why: "the per-VMA unmap function did not attach".into(),
            });
        }
        out
    }
}

/// What `--attach auto` gave one function: fentry/fexit, else
/// kprobe/kretprobe (saying why fentry was refused), else nothing with both
/// kernel answers. Shared by `record`'s ladder and `doctor`.
pub(crate) struct AutoRung {
    /// The mode used.
    pub mode: AttachMode,
    /// Attached, or both refusals.
    pub status: ProbeOutcome,
    /// Why fentry/fexit was refused when kprobes were used.
    pub fallback_from: Option<String>,
}

/// Climbs the auto ladder: `kprobe` is tried only when `fentry` failed.
pub(crate) fn auto_rung<E: std::fmt::Display, F: std::fmt::Display>(
    fentry: Result<(), E>,
    kprobe: impl FnOnce() -> Result<(), F>,
) -> AutoRung {
    let (mode, status, fallback_from) = match fentry {
        Ok(()) => (AttachMode::Fentry, ProbeOutcome::Attached, None),
        Err(fentry_why) => match kprobe() {
            Ok(()) => (
                AttachMode::Kprobe,
                ProbeOutcome::Attached,
                Some(format!("fentry/fexit refused: {fentry_why}")),
            ),
            Err(kprobe_why) => (
                AttachMode::None,
                ProbeOutcome::not_attached(format!(
                    "fentry/fexit: {fentry_why}; kprobe/kretprobe: {kprobe_why}"
                )),
                None,
            ),
        },
    };
    AutoRung {
        mode,
        status,
        fallback_from,
    }
}

/// Why a rung of the ladder was not taken for one function.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RungError {
    /// The attach layer's answer (the kernel's refusal, no BTF, ...).
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// BTF has no such function, so fentry cannot load against it.
    #[error("{0} is not in kernel BTF")]
    NotInBtf(String),
    /// No kprobe PMU and no kprobe_events file.
    #[error("kprobes are not built into this kernel (no kprobe PMU, no kprobe_events)")]
    NoKprobes,
    /// The kernel refused an earlier function's fentry for a reason that
    /// holds for every function (see [`FentryVerdict`]).
    #[error("{0}")]
    RefusedForAll(AttachError),
}

/// What the kernel answered to fentry, decided once per ladder: after a
/// refusal that holds for every function, the other functions get the same
/// answer without one more program load each.
#[derive(Default)]
struct FentryVerdict {
    refused_for_all: Option<RungError>,
}

fn try_fentry(
    ebpf: &mut Ebpf,
    f: &SlotFunction,
    btf: &FentryBtf,
    verdict: &mut FentryVerdict,
) -> Result<(), RungError> {
    if !btf.available() {
        return Err(AttachError::NoBtf.into());
    }
    if f.in_btf == Some(false) {
        return Err(RungError::NotInBtf(f.symbol.clone()));
    }
    if let Some(why) = &verdict.refused_for_all {
        return Err(why.clone());
    }
    // Parsed here, on the first load that needs it, and shared.
    let btf = btf.get().ok_or(AttachError::NoBtf)?;
    let result =
        function_probe::attach_pair(ebpf, Pair::Fentry, f.slot as usize, &f.symbol, Some(btf));
    if let Err(
        e @ AttachError::Refused {
            kind: ProgramKind::Fentry,
            refusal,
            ..
        },
    ) = &result
        && refusal.step == Step::Load
        && kernel_btf::refuses_every_function(refusal)
    {
        verdict.refused_for_all = Some(RungError::RefusedForAll(e.clone()));
    }
    Ok(result?)
}

/// Whether this kernel has the kprobe PMU or the legacy kprobe_events file.
pub fn kprobes_built_in() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || std::path::Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
}

fn try_kprobe(ebpf: &mut Ebpf, f: &SlotFunction, built_in: bool) -> Result<(), RungError> {
    if !built_in {
        return Err(RungError::NoKprobes);
    }
    Ok(function_probe::attach_pair(
        ebpf,
        Pair::Kprobe,
        f.slot as usize,
        &f.attach_name,
        None,
    )?)
}

/// Runs the ladder for every planned function. A forced mode that fails
/// returns the first failure; `auto` records each failure and goes on.
/// `btf` is parsed only if an fentry load is tried.
pub fn attach_ladder(
    ebpf: &mut Ebpf,
    plan: &Plan,
    mode: AttachPolicy,
    order_off: Option<String>,
    btf: &FentryBtf,
) -> Result<LadderReport, ForcedModeError> {
    // The kernel's capabilities, decided once rather than per function.
    let kprobes = kprobes_built_in();
    let mut fentry = FentryVerdict {
        refused_for_all: btf.refused_for_all().map(RungError::RefusedForAll),
    };
    let mut report = LadderReport {
        skipped: plan.skipped.clone(),
        order_off,
        mode,
        ..LadderReport::default()
    };
    for f in &plan.functions {
        let mut fallback_from = None;
        let (used, status) = match mode {
            AttachPolicy::Sampling => (
                AttachMode::None,
                ProbeOutcome::not_attached("disabled by --attach sampling"),
            ),
            AttachPolicy::Fentry => match try_fentry(ebpf, f, btf, &mut fentry) {
                Ok(()) => (AttachMode::Fentry, ProbeOutcome::Attached),
                Err(answer) => {
                    return Err(ForcedModeError {
                        mode: AttachMode::Fentry,
                        function: f.symbol.clone(),
                        concept: f.concept,
                        answer: Box::new(answer),
                    });
                }
            },
            AttachPolicy::Kprobe => match try_kprobe(ebpf, f, kprobes) {
                Ok(()) => (AttachMode::Kprobe, ProbeOutcome::Attached),
                Err(answer) => {
                    return Err(ForcedModeError {
                        mode: AttachMode::Kprobe,
                        function: f.attach_name.clone(),
                        concept: f.concept,
                        answer: Box::new(answer),
                    });
                }
            },
            AttachPolicy::Auto => {
                let rung = auto_rung(try_fentry(ebpf, f, btf, &mut fentry), || {
                    try_kprobe(ebpf, f, kprobes)
                });
                fallback_from = rung.fallback_from;
                (rung.mode, rung.status)
            }
        };
        log::debug!("function {} ({}): {used}: {status}", f.symbol, f.concept);
        report.functions.push(FunctionAttach {
            function: f.clone(),
            mode: used,
            status,
            fallback_from,
        });
    }
    Ok(report)
}
