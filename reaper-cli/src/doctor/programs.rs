//! Every program `reaper record` may use, loaded and attached for real on a
//! fresh object with record's own loader globals: the cpu-clock sampler, the
//! lock-wait and timeline tracepoints, and each planned function's
//! fentry/fexit and kprobe/kretprobe programs. A program the kernel refuses
//! gets a typed [`Outcome::Refused`] carrying the verifier's reason, so a
//! verifier refusal shows up in doctor, not in a user's recording.

use aya::Ebpf;
use reaper_common::sampling;

use crate::probes::{
    attach::{self, ProgramAttachError},
    btf::KernelBtf,
    function_probe::{self, AttachError, Pair},
    function_timing::{self, Plan, SlotFunction},
    loader, raw_tp,
    refusal::{FromProgramError as _, Refusal, Step},
};

pub use reaper_model::doctor::{Outcome, ProgramCheck, ProgramKind};

/// Why doctor could not check the programs one by one.
#[derive(Debug, thiserror::Error)]
pub enum ProgramsError {
    /// The eBPF object itself did not load.
    #[error("eBPF object did not load")]
    Load(#[source] loader::LoadError),
}

/// doctor loads the PTE-lock function's programs with third-party takers
/// on, the dearest path `record --pte-holders-all` can ask for.
const ALL_HOLDERS: function_timing::Holders = function_timing::Holders::All;

/// Loads and attaches every program; dropping the object detaches them.
/// Each tracepoint is checked in both forms: the classic program, and the
/// raw one unless `raw` says this kernel cannot run it (then "not tried"
/// with the reason). `slowpath_lock_waits`: the kernel has no
/// `lock:contention_*` tracepoints, so the spin slow path's programs carry
/// the lock-wait code `record` loads them with.
pub fn check_all(
    offsets: &reaper_common::tracepoint_offsets::TracepointOffsets,
    raw: &raw_tp::RawPlan,
    plan: &Plan,
    btf: Option<&crate::catalog::BtfFacts>,
    kernel_btf: Result<&KernelBtf, &String>,
    cpus: &[u32],
    slowpath_lock_waits: bool,
) -> Result<Vec<ProgramCheck>, ProgramsError> {
    let (config, _) = function_timing::config_for(plan, btf, slowpath_lock_waits, ALL_HOLDERS);
    let mut ebpf = loader::load_with_timing(offsets, &loader::MapSizes::default(), &config)
        .map_err(ProgramsError::Load)?;
    let mut rows = vec![ProgramCheck {
        kind: ProgramKind::PerfEvent,
        program: sampling::PROG_SAMPLE_CPU_CLOCK.into(),
        target: format!("cpu-clock on {} CPUs", cpus.len()),
        outcome: sampler(&mut ebpf, cpus),
    }];
    for t in raw_tp::all() {
        rows.push(ProgramCheck {
            kind: ProgramKind::Tracepoint,
            program: t.prog.into(),
            target: format!("{}:{}", t.category, t.event),
            outcome: tracepoint(&mut ebpf, t.prog, t.category, t.event),
        });
    }
    rows.push(ProgramCheck {
        kind: ProgramKind::Tracepoint,
        program: reaper_common::rss::PROG_RSS_STAT.into(),
        target: "kmem:rss_stat".into(),
        outcome: tracepoint(
            &mut ebpf,
            reaper_common::rss::PROG_RSS_STAT,
            "kmem",
            "rss_stat",
        ),
    });
    let mut raw_seen = std::collections::HashSet::new();
    for t in raw_tp::all().filter(|t| raw_seen.insert(t.raw_prog)) {
        rows.push(ProgramCheck {
            kind: ProgramKind::RawTracepoint,
            program: t.raw_prog.into(),
            target: t.raw_event.into(),
            outcome: match raw.allows(t.raw_prog) {
                Ok(()) => checked(attach::attach_raw_tracepoint(
                    &mut ebpf,
                    t.raw_prog,
                    t.raw_event,
                )),
                Err(why) => Outcome::NotTried { why: why.into() },
            },
        });
    }
    let kernel_btf = kernel_btf.map_err(|why| format!("no kernel BTF: {why}"));
    let kprobes = function_timing::kprobes_built_in();
    for f in &plan.functions {
        rows.extend(function_rows(&mut ebpf, f, kernel_btf.as_deref(), kprobes));
    }
    Ok(rows)
}

/// The four programs of one function's slot.
fn function_rows(
    ebpf: &mut Ebpf,
    f: &SlotFunction,
    btf: Result<&KernelBtf, &String>,
    kprobes: bool,
) -> Vec<ProgramCheck> {
    let slot = f.slot as usize;
    let mut rows = Vec::new();
    for pair in [Pair::Fentry, Pair::Kprobe] {
        for (kind, program) in pair.programs(slot) {
            let target = match pair {
                Pair::Fentry => &f.symbol,
                Pair::Kprobe => &f.attach_name,
            };
            let not_tried = match (pair, btf) {
                (Pair::Fentry, Err(why)) => Some(why.clone()),
                (Pair::Fentry, Ok(_)) if f.in_btf == Some(false) => {
                    Some(format!("{} is not in kernel BTF", f.symbol))
                }
                (Pair::Kprobe, _) if !kprobes => {
                    Some("kprobes are not built into this kernel".to_owned())
                }
                _ => None,
            };
            let outcome = match not_tried {
                Some(why) => Outcome::NotTried { why },
                None => outcome(function_probe::attach(
                    ebpf,
                    kind,
                    program,
                    target,
                    btf.ok(),
                )),
            };
            rows.push(ProgramCheck {
                kind,
                program: program.into(),
                target: target.clone(),
                outcome,
            });
        }
    }
    rows
}

/// A function program's check, from the attach layer's answer.
fn outcome(result: Result<(), AttachError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Attached,
        Err(AttachError::Refused { refusal, .. }) => Outcome::Refused(refusal),
        Err(other) => Outcome::NotTried {
            why: other.to_string(),
        },
    }
}

/// The sampler on every CPU, at a 1 ms period.
fn sampler(ebpf: &mut Ebpf, cpus: &[u32]) -> Outcome {
    checked(attach::attach_sampling(ebpf, cpus, 1_000_000))
}

fn tracepoint(ebpf: &mut Ebpf, prog: &str, category: &str, event: &str) -> Outcome {
    checked(attach::attach_tracepoint(ebpf, prog, category, event))
}

/// A tracepoint's or the sampler's check, from record's attach path: the
/// kernel's answer typed as a refusal at the step that failed.
fn checked(result: Result<(), ProgramAttachError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Attached,
        Err(ProgramAttachError::Missing) => Outcome::NotTried {
            why: "program missing from the object".to_owned(),
        },
        Err(ProgramAttachError::WrongKind(e) | ProgramAttachError::Load(e)) => {
            Outcome::Refused(Refusal::from_error(Step::Load, &e))
        }
        Err(ProgramAttachError::Attach(error) | ProgramAttachError::Cpu { error, .. }) => {
            Outcome::Refused(Refusal::from_error(Step::Attach, &error))
        }
    }
}

/// A tracepoint whose attach failed with ENOENT: the kernel has no such
/// event in tracefs (not a refusal of reaper's program).
fn absent_tracepoint(r: &ProgramCheck) -> bool {
    matches!(
        &r.outcome,
        Outcome::Refused(Refusal {
            step: Step::Attach,
            errno: Some(libc::ENOENT),
            ..
        })
    ) && r.kind == ProgramKind::Tracepoint
}

/// Why a tracepoint category can be missing, where it is known.
fn absent_why(target: &str) -> &'static str {
    match target.split_once(':').map(|(category, _)| category) {
        Some("syscalls") => " (syscalls:* tracepoints need CONFIG_FTRACE_SYSCALLS)",
        _ => "",
    }
}

/// Rows for the text report, grouped by kind.
pub fn render(rows: &[ProgramCheck], out: &mut String) {
    use std::fmt::Write as _;
    let kinds: std::collections::BTreeSet<ProgramKind> = rows.iter().map(|r| r.kind).collect();
    for kind in kinds {
        let of_kind: Vec<&ProgramCheck> = rows.iter().filter(|r| r.kind == kind).collect();
        let ok = of_kind.iter().filter(|r| r.attached()).count();
        let _ = writeln!(
            out,
            "  {} ({ok} of {} attached)",
            kind.name(),
            of_kind.len()
        );
        // Programs refused the same way share one line: a kernel that
        // refuses every fentry program says so once, naming them all.
        let mut shared: Vec<(String, Vec<&ProgramCheck>)> = Vec::new();
        for r in of_kind {
            let verdict = verdict(r);
            if r.attached() {
                let _ = writeln!(out, "    {:<26} {:<34} {verdict}", r.program, r.target);
                continue;
            }
            match shared.iter_mut().find(|(v, _)| *v == verdict) {
                Some((_, rs)) => rs.push(r),
                None => shared.push((verdict, vec![r])),
            }
        }
        for (verdict, rs) in shared {
            if let [r] = rs[..] {
                let _ = writeln!(out, "    {:<26} {:<34} {verdict}", r.program, r.target);
                continue;
            }
            let targets: Vec<&str> = rs.iter().map(|r| r.target.as_str()).collect();
            let _ = writeln!(
                out,
                "    {} programs ({} … {}), on {}: {verdict}",
                rs.len(),
                rs[0].program,
                rs[rs.len() - 1].program,
                targets.join(", ")
            );
        }
    }
}

/// One program's verdict, as doctor prints it.
fn verdict(r: &ProgramCheck) -> String {
    match &r.outcome {
        Outcome::Attached => "attached".to_owned(),
        Outcome::Refused(Refusal {
            verifier: Some(reason),
            errno,
            ..
        }) => match errno {
            Some(code) => format!(
                "REFUSED by the verifier: {reason} [{} {code}]",
                crate::probes::refusal::errno_name(*code)
            ),
            None => format!("REFUSED by the verifier: {reason}"),
        },
        Outcome::Refused(refusal) if absent_tracepoint(r) => {
            format!("absent on this kernel{}: {refusal}", absent_why(&r.target))
        }
        Outcome::Refused(refusal) => format!(
            "REFUSED at {}: {refusal}",
            match refusal.step {
                Step::Load => "load",
                Step::Attach => "attach",
            }
        ),
        Outcome::NotTried { why } => format!("not tried: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: ProgramKind, outcome: Outcome) -> ProgramCheck {
        ProgramCheck {
            kind,
            program: "fn_fexit_0".into(),
            target: "__oom_reap_task_mm".into(),
            outcome,
        }
    }

    #[test]
    fn a_missing_syscalls_tracepoint_reads_absent() {
        let missing = ProgramCheck {
            kind: ProgramKind::Tracepoint,
            program: "timeline_mrelease_exit".into(),
            target: "syscalls:sys_exit_process_mrelease".into(),
            outcome: Outcome::Refused(Refusal {
                step: Step::Attach,
                errno: Some(libc::ENOENT),
                verifier: None,
                detail: "no such event".into(),
            }),
        };
        let mut text = String::new();
        render(&[missing], &mut text);
        assert!(
            text.contains(
                "absent on this kernel (syscalls:* tracepoints need CONFIG_FTRACE_SYSCALLS)"
            ),
            "{text}"
        );
        assert!(!text.contains("REFUSED"), "{text}");
    }

    #[test]
    fn a_verifier_refusal_says_so_with_the_reason() {
        let refused = row(
            ProgramKind::Fexit,
            Outcome::Refused(Refusal {
                step: Step::Load,
                errno: Some(22),
                verifier: Some("math between map_value pointer and register with unbounded min value is not allowed".into()),
                detail: "BPF_PROG_LOAD refused".into(),
            }),
        );
        let mut text = String::new();
        render(
            &[
                row(ProgramKind::Fentry, Outcome::Attached),
                refused.clone(),
                row(ProgramKind::Fentry, Outcome::Attached),
            ],
            &mut text,
        );
        assert!(text.contains("fentry (2 of 2 attached)"), "{text}");
        assert!(text.contains("fexit (0 of 1 attached)"), "{text}");
        assert_eq!(
            text.matches("fentry (").count(),
            1,
            "one group per kind: {text}"
        );
        assert!(text.contains("[EINVAL 22]"), "{text}");
        assert!(
            text.contains("REFUSED by the verifier: math between map_value pointer"),
            "{text}"
        );
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["step"], "load");
        assert_eq!(json["errno"], 22);
        assert_eq!(json["kind"], "fexit");
    }
}
