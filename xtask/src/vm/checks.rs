//! Per-cell assertions of `cargo xtask vm-test`, run on the files the guest
//! copied back from `/out`.
//!
//! To add one: write a `fn(&CellContext) -> Verdict` and list it in
//! [`CHECKS`]. A check that does not apply to a cell returns
//! [`Verdict::Skip`] with the reason (e.g. "fentry is expected on x86_64
//! only").

mod collisions;
mod mrelease;
mod old_kernels;
mod oom;
mod programs;
mod stacks;
mod timing;

pub use oom::{CGROUPS_LEFT, FROZEN_DIR, OOM_DIR};

use std::path::{Path, PathBuf};

use super::arch::Arch;
use super::kernel::DebianKernel;
#[cfg(test)]
use super::kernel::{Flavour, Line};
use crate::reaper_json::{Diagnosis, Run};

/// What the guest ran, in `/out` (see `matrix::cell_command`).
pub const DOCTOR_JSON: &str = "doctor.json";
pub const RECORD_DIR: &str = "record";
/// The many-VMA recording at reaper's defaults (`--victim 256M,vmas=16384`).
pub const RECORD_VMAS_DIR: &str = "record-vmas";
/// The default `record` on a kernel without process_mrelease, which must
/// refuse: where it would have written, and what it said.
pub const REFUSED_DIR: &str = "refused";
pub const REFUSED_TEXT: &str = "refused.txt";
pub const STEPS_FILE: &str = "steps.txt";
pub const BTF_FILE: &str = "btf-vmlinux";
/// `uname -v` of the guest (names PREEMPT_RT on RT kernels).
pub const UNAME_V_FILE: &str = "uname-v.txt";
/// `uname -r` of the guest (to re-run the checks on a finished run).
pub const UNAME_R_FILE: &str = "uname-r.txt";

/// What a check can look at.
pub struct CellContext<'a> {
    pub kernel: &'a DebianKernel,
    pub arch: Arch,
    pub out_dir: &'a Path,
    /// `uname -r` and `uname -m` in the guest.
    pub guest_release: &'a str,
    pub guest_machine: &'a str,
    /// Whether the reaper steps ran (false with `--smoke`).
    pub reaper_ran: bool,
}

/// Reads one of reaper's JSON files for a check: a file missing, or not as
/// this build of reaper writes it, fails the check with the error and its
/// causes.
pub fn read_or_fail<T: reaper_lab::reaper_json::ReaperFile>(path: &Path) -> Result<T, Verdict> {
    crate::reaper_json::read(path).map_err(|e| Verdict::Fail(format!("{e:#}")))
}

/// The outcome of one check, with a message either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass(String),
    Fail(String),
    Skip(String),
}

/// A named check.
pub struct Check {
    pub name: &'static str,
    pub run: fn(&CellContext) -> Verdict,
}

/// Every check, in the order they are reported.
pub const CHECKS: &[Check] = &[
    Check {
        name: "guest-arch",
        run: guest_arch,
    },
    Check {
        name: "kernel-btf",
        run: kernel_btf,
    },
    Check {
        name: "kernel-preempt-rt",
        run: kernel_rt,
    },
    Check {
        name: "doctor-json",
        run: doctor_json,
    },
    Check {
        name: "doctor-verifier",
        run: programs::none_refused_by_the_verifier,
    },
    Check {
        name: "record-run-json",
        run: record_run_json,
    },
    Check {
        name: "function-attach",
        run: timing::function_attach,
    },
    Check {
        name: "concept-symbols",
        run: timing::concept_symbols,
    },
    Check {
        name: "reaper-order",
        run: timing::reaper_order,
    },
    Check {
        name: "reaper-time-covers-children",
        run: timing::parent_covers_children,
    },
    Check {
        name: "collision-walkers",
        run: collisions::walkers_and_waits,
    },
    Check {
        name: "probe-frames-named",
        run: timing::probe_frames_named,
    },
    Check {
        name: "doctor-function-modes",
        run: timing::doctor_agrees,
    },
    Check {
        name: "no-lost-stacks",
        run: stacks::none_lost_at_the_defaults,
    },
    Check {
        name: "mrelease-done-source",
        run: mrelease::mrelease_done_source,
    },
    Check {
        name: "memcg-oom",
        run: oom::memcg_oom,
    },
    Check {
        name: "mrelease-refusal",
        run: old_kernels::mrelease_refusal,
    },
    Check {
        name: "fallback-sources",
        run: old_kernels::fallback_sources,
    },
    Check {
        name: "frozen-victim",
        run: oom::frozen_victim,
    },
];

/// Runs every check on one cell.
pub fn run_all(ctx: &CellContext) -> Vec<(&'static str, Verdict)> {
    CHECKS.iter().map(|c| (c.name, (c.run)(ctx))).collect()
}

fn guest_arch(ctx: &CellContext) -> Verdict {
    if ctx.guest_machine == ctx.arch.uname() {
        Verdict::Pass(format!(
            "guest runs {} {}",
            ctx.guest_release, ctx.guest_machine
        ))
    } else {
        Verdict::Fail(format!(
            "guest reports machine {:?}, expected {}",
            ctx.guest_machine,
            ctx.arch.uname()
        ))
    }
}

fn kernel_btf(ctx: &CellContext) -> Verdict {
    if ctx.out_dir.join(BTF_FILE).exists() {
        Verdict::Pass("/sys/kernel/btf/vmlinux present".into())
    } else {
        Verdict::Fail(format!(
            "the {} {} kernel ({}) has no /sys/kernel/btf/vmlinux",
            ctx.kernel.name(),
            ctx.kernel.flavour,
            ctx.guest_release
        ))
    }
}

/// The guest kernel is PREEMPT_RT exactly when the matrix says so.
fn kernel_rt(ctx: &CellContext) -> Verdict {
    let want = super::table::expects_rt(ctx.kernel);
    let Ok(version) = std::fs::read_to_string(ctx.out_dir.join(UNAME_V_FILE)) else {
        return Verdict::Fail(format!("the guest wrote no /out/{UNAME_V_FILE}"));
    };
    let version = version.trim();
    let is_rt = version.split_whitespace().any(|w| w == "PREEMPT_RT");
    match (want, is_rt) {
        (true, true) => Verdict::Pass(format!("PREEMPT_RT as expected ({version})")),
        (false, false) => Verdict::Pass("not PREEMPT_RT, as expected".into()),
        (want, _) => Verdict::Fail(format!(
            "expected {}PREEMPT_RT, uname -v says {version:?}",
            if want { "" } else { "no " }
        )),
    }
}

fn doctor_json(ctx: &CellContext) -> Verdict {
    if !ctx.reaper_ran {
        return Verdict::Skip("reaper not run (--smoke)".into());
    }
    if let Some(fail) = step_failed(ctx.out_dir, "doctor") {
        return fail;
    }
    let doc: Diagnosis = match read_or_fail(&ctx.out_dir.join(DOCTOR_JSON)) {
        Ok(doc) => doc,
        Err(fail) => return fail,
    };
    if doc.host.kernel_release != ctx.guest_release {
        return Verdict::Fail(format!(
            "doctor.json names the kernel {:?}, the guest runs {}",
            doc.host.kernel_release, ctx.guest_release
        ));
    }
    let arch_names = [ctx.arch.uname(), ctx.arch.debian()];
    if !arch_names.contains(&doc.host.arch.as_str()) {
        return Verdict::Fail(format!(
            "doctor.json names the arch {:?}, expected one of {arch_names:?}",
            doc.host.arch
        ));
    }
    Verdict::Pass(format!(
        "names {} and {}",
        doc.host.kernel_release, doc.host.arch
    ))
}

fn record_run_json(ctx: &CellContext) -> Verdict {
    if !ctx.reaper_ran {
        return Verdict::Skip("reaper not run (--smoke)".into());
    }
    if let Some(fail) = step_failed(ctx.out_dir, "record") {
        return fail;
    }
    let Some(path) = find_run_json(&ctx.out_dir.join(RECORD_DIR)) else {
        return Verdict::Fail(format!("no run.json under /out/{RECORD_DIR}"));
    };
    match read_or_fail::<Run>(&path) {
        Ok(run) => Verdict::Pass(format!(
            "schema_version {}, {} episode(s)",
            run.schema_version,
            run.episodes.len()
        )),
        Err(fail) => fail,
    }
}

/// The exit status the guest recorded for `step` in `steps.txt`.
pub fn step_status(out_dir: &Path, step: &str) -> Option<i32> {
    let text = std::fs::read_to_string(out_dir.join(STEPS_FILE)).ok()?;
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(name, _)| *name == step)
        .find_map(|(_, status)| status.trim().parse().ok())
}

fn step_failed(out_dir: &Path, step: &str) -> Option<Verdict> {
    match step_status(out_dir, step) {
        Some(0) => None,
        Some(code) => Some(Verdict::Fail(format!(
            "`reaper {step}` exited with {code} in the guest; its output is in the console above"
        ))),
        None => Some(Verdict::Fail(format!(
            "`reaper {step}` did not run (no status in {STEPS_FILE})"
        ))),
    }
}

/// `record/run.json`, or the first `run.json` below `dir`.
fn find_run_json(dir: &Path) -> Option<PathBuf> {
    let direct = dir.join("run.json");
    if direct.is_file() {
        return Some(direct);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_run_json(p))
}

/// The attach modes doctor.json reports as working, e.g. `fentry,tracepoint`;
/// `?` when the file or its `attach_kinds` field is missing.
pub fn attach_summary(out_dir: &Path) -> String {
    let Ok(doc) = read_or_fail::<Diagnosis>(&out_dir.join(DOCTOR_JSON)) else {
        return "?".into();
    };
    let working: Vec<&str> = doc
        .attach_kinds
        .iter()
        .filter(|k| k.works)
        .map(|k| k.kind.name())
        .collect();
    if working.is_empty() {
        "none".into()
    } else {
        working.join(",")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reaper_json::fixtures;

    fn temp_out(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-checks-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(RECORD_DIR)).unwrap();
        dir
    }

    const SID: &DebianKernel = &DebianKernel {
        line: Line::Sid,
        version: None,
        flavour: Flavour::Cloud,
    };

    fn ctx(out_dir: &Path) -> CellContext<'_> {
        CellContext {
            kernel: SID,
            arch: Arch::Arm64,
            out_dir,
            guest_release: "7.2.13+deb14-cloud-arm64",
            guest_machine: "aarch64",
            reaper_ran: true,
        }
    }

    #[test]
    fn doctor_and_record_pass_on_good_files() {
        let out = temp_out("good");
        std::fs::write(out.join(STEPS_FILE), "doctor 0\nrecord 0\n").unwrap();
        let kind = |kind: &str, works: bool| json!({"kind": kind, "works": works, "detail": ""});
        let doctor = fixtures::doctor(json!({
            "host": {"kernel_release": "7.2.13+deb14-cloud-arm64", "arch": "aarch64"},
            "attach_kinds": [kind("fentry", false), kind("kprobe", true), kind("tracepoint", true)]
        }));
        std::fs::write(out.join(DOCTOR_JSON), doctor.to_string()).unwrap();
        std::fs::write(
            out.join(RECORD_DIR).join("run.json"),
            fixtures::run(json!({})).to_string(),
        )
        .unwrap();
        let c = ctx(&out);
        assert!(
            matches!(doctor_json(&c), Verdict::Pass(_)),
            "{:?}",
            doctor_json(&c)
        );
        assert!(matches!(record_run_json(&c), Verdict::Pass(_)));
        assert!(matches!(guest_arch(&c), Verdict::Pass(_)));
        assert_eq!(attach_summary(&out), "kprobe,tracepoint");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn failures_name_what_is_wrong() {
        let out = temp_out("bad");
        std::fs::write(out.join(STEPS_FILE), "doctor 0\nrecord 2\n").unwrap();
        let other_kernel = fixtures::doctor(json!({
            "host": {"kernel_release": "6.1.0-50-cloud-arm64", "arch": "aarch64"}
        }));
        std::fs::write(out.join(DOCTOR_JSON), other_kernel.to_string()).unwrap();
        let c = ctx(&out);
        let Verdict::Fail(msg) = doctor_json(&c) else {
            panic!("doctor should fail")
        };
        assert!(msg.contains("7.2.13+deb14-cloud-arm64"), "{msg}");
        assert_eq!(attach_summary(&out), "none");
        // A doctor.json of another layout is not read.
        std::fs::write(
            out.join(DOCTOR_JSON),
            r#"{"kernel":"7.2.13+deb14-cloud-arm64"}"#,
        )
        .unwrap();
        let Verdict::Fail(msg) = doctor_json(&c) else {
            panic!("doctor should fail")
        };
        assert!(msg.contains("is not a Diagnosis"), "{msg}");
        let Verdict::Fail(msg) = record_run_json(&c) else {
            panic!("record should fail")
        };
        assert!(msg.contains("exited with 2"), "{msg}");
        assert_eq!(attach_summary(&out), "?");
        let smoke = CellContext {
            reaper_ran: false,
            ..ctx(&out)
        };
        assert!(matches!(doctor_json(&smoke), Verdict::Skip(_)));
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn preempt_rt_is_read_from_uname() {
        let out = temp_out("rt");
        let rt = DebianKernel {
            flavour: Flavour::Rt,
            ..SID.clone()
        };
        let rt_ctx = CellContext {
            kernel: &rt,
            ..ctx(&out)
        };
        std::fs::write(
            out.join(UNAME_V_FILE),
            "#1 SMP PREEMPT_RT Debian 7.3.4-1~bpo13+1 (2026-11-20)\n",
        )
        .unwrap();
        assert!(matches!(kernel_rt(&rt_ctx), Verdict::Pass(_)));
        assert!(matches!(kernel_rt(&ctx(&out)), Verdict::Fail(_)));
        std::fs::write(
            out.join(UNAME_V_FILE),
            "#1 SMP PREEMPT_DYNAMIC Debian 7.2.13-1\n",
        )
        .unwrap();
        assert!(matches!(kernel_rt(&rt_ctx), Verdict::Fail(_)));
        assert!(matches!(kernel_rt(&ctx(&out)), Verdict::Pass(_)));
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn run_json_is_found_in_a_subdirectory() {
        let out = temp_out("nested");
        let nested = out.join(RECORD_DIR).join("2026-11-25");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(nested.join("run.json"), "{}").unwrap();
        assert_eq!(
            find_run_json(&out.join(RECORD_DIR)),
            Some(nested.join("run.json"))
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}
