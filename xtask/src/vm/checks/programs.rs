//! The `programs` section of `doctor.json`: every program `reaper record`
//! may use, loaded and attached by doctor. A program the verifier refused
//! fails the cell, so a verifier regression (6.12 refused every exit
//! program) is caught by the matrix, not by a user. Refusals that are the
//! kernel's policy, not the verifier's (ENOTSUPP fentry on arm64 6.1,
//! EPERM), are reported, not failed: the attach ladder handles them.

use reaper_model::doctor::{Outcome, ProgramCheck};

use super::read_or_fail;
use super::{CellContext, DOCTOR_JSON, Verdict};
use crate::reaper_json::Diagnosis;

/// Fails when doctor.json lists a program the verifier refused.
pub fn none_refused_by_the_verifier(ctx: &CellContext) -> Verdict {
    if !ctx.reaper_ran {
        return Verdict::Skip("reaper not run (--smoke)".into());
    }
    match read_or_fail::<Diagnosis>(&ctx.out_dir.join(DOCTOR_JSON)) {
        Ok(doc) => verdict(&doc),
        Err(fail) => fail,
    }
}

fn verdict(doc: &Diagnosis) -> Verdict {
    let rows = match &doc.programs {
        Ok(rows) => rows,
        Err(why) => return Verdict::Fail(format!("doctor checked no program: {why}")),
    };
    let name = |r: &ProgramCheck| format!("{} {} ({})", r.kind.name(), r.program, r.target);
    let refusals = || {
        rows.iter().filter_map(|r| match &r.outcome {
            Outcome::Refused(refusal) => Some((r, refusal)),
            _ => None,
        })
    };
    let verifier: Vec<String> = refusals()
        .filter_map(|(r, refusal)| Some(format!("{}: {}", name(r), refusal.verifier.as_ref()?)))
        .collect();
    if !verifier.is_empty() {
        return Verdict::Fail(format!(
            "the verifier refused {} program(s): {}",
            verifier.len(),
            verifier.join("; ")
        ));
    }
    let attached = rows.iter().filter(|r| r.attached()).count();
    let other: Vec<String> = refusals().map(|(r, _)| name(r)).collect();
    let mut message = format!("{attached} of {} programs attached", rows.len());
    if !other.is_empty() {
        message.push_str(&format!(
            "; refused by the kernel, not the verifier: {}",
            other.join(", ")
        ));
    }
    Verdict::Pass(message)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::reaper_json::fixtures;

    fn doctor(programs: Value) -> Diagnosis {
        let mut doctor = fixtures::doctor(json!({}));
        doctor["programs"] = programs;
        serde_json::from_value(doctor).unwrap()
    }

    #[test]
    fn a_verifier_refusal_fails_the_cell_and_a_policy_refusal_does_not() {
        let refused = doctor(json!({"Ok": [
            {"kind": "fentry", "program": "fn_fentry_0", "target": "exit_mmap", "outcome": "attached"},
            {"kind": "fexit", "program": "fn_fexit_0", "target": "exit_mmap", "outcome": "refused",
             "step": "load", "errno": 22, "detail": "BPF_PROG_LOAD refused",
             "verifier": "math between map_value pointer and register with unbounded min value is not allowed"}
        ]}));
        let Verdict::Fail(msg) = verdict(&refused) else {
            panic!("a verifier refusal must fail")
        };
        assert!(
            msg.contains("fexit fn_fexit_0 (exit_mmap): math between"),
            "{msg}"
        );

        let policy = doctor(json!({"Ok": [
            {"kind": "fentry", "program": "fn_fentry_0", "target": "exit_mmap", "outcome": "refused",
             "step": "load", "errno": 524, "detail": "BPF_PROG_LOAD refused", "verifier": null},
            {"kind": "kprobe", "program": "fn_kprobe_0", "target": "exit_mmap", "outcome": "attached"}
        ]}));
        assert!(matches!(verdict(&policy), Verdict::Pass(m) if m.contains("1 of 2")));
        assert!(matches!(
            verdict(&doctor(json!({"Err": "the object did not load"}))),
            Verdict::Fail(m) if m.contains("the object did not load")
        ));
    }
}
