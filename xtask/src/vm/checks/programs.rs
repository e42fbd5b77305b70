//! The `programs` section of `doctor.json`: every program `reaper record`
//! may use, loaded and attached by doctor. A program the verifier refused
//! fails the cell, so a verifier regression (6.12 refused every exit
//! program) is caught by the matrix, not by a user. Refusals that are the
//! kernel's policy, not the verifier's (ENOTSUPP fentry on arm64 6.1,
//! EPERM), are reported, not failed: the attach ladder handles them.

use serde_json::Value;

use super::{CellContext, DOCTOR_JSON, Verdict};

/// Fails when doctor.json lists a program the verifier refused.
pub fn none_refused_by_the_verifier(ctx: &CellContext) -> Verdict {
    if !ctx.reaper_ran {
        return Verdict::Skip("reaper not run (--smoke)".into());
    }
    let path = ctx.out_dir.join(DOCTOR_JSON);
    let Some(doc) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    else {
        return Verdict::Fail(format!("{} missing or not JSON", path.display()));
    };
    verdict(&doc)
}

fn verdict(doc: &Value) -> Verdict {
    let Some(rows) = doc["programs"]["Ok"].as_array() else {
        return match doc["programs"]["Err"].as_str() {
            Some(why) => Verdict::Fail(format!("doctor checked no program: {why}")),
            None => Verdict::Fail("doctor.json has no programs section".into()),
        };
    };
    let name = |r: &Value| {
        format!(
            "{} {} ({})",
            r["kind"].as_str().unwrap_or("?"),
            r["program"].as_str().unwrap_or("?"),
            r["target"].as_str().unwrap_or("?")
        )
    };
    let verifier: Vec<String> = rows
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .filter_map(|r| Some(format!("{}: {}", name(r), r["verifier"].as_str()?)))
        .collect();
    if !verifier.is_empty() {
        return Verdict::Fail(format!(
            "the verifier refused {} program(s): {}",
            verifier.len(),
            verifier.join("; ")
        ));
    }
    let attached = rows.iter().filter(|r| r["outcome"] == "attached").count();
    let other: Vec<String> = rows
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .map(name)
        .collect();
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
    use super::*;

    #[test]
    fn a_verifier_refusal_fails_the_cell_and_a_policy_refusal_does_not() {
        let refused = serde_json::json!({"programs": {"Ok": [
            {"kind": "fentry", "program": "fn_fentry_0", "target": "exit_mmap", "outcome": "attached"},
            {"kind": "fexit", "program": "fn_fexit_0", "target": "exit_mmap", "outcome": "refused",
             "step": "load", "errno": 22, "detail": "BPF_PROG_LOAD refused",
             "verifier": "math between map_value pointer and register with unbounded min value is not allowed"}
        ]}});
        let Verdict::Fail(msg) = verdict(&refused) else {
            panic!("a verifier refusal must fail")
        };
        assert!(
            msg.contains("fexit fn_fexit_0 (exit_mmap): math between"),
            "{msg}"
        );

        let policy = serde_json::json!({"programs": {"Ok": [
            {"kind": "fentry", "program": "fn_fentry_0", "target": "exit_mmap", "outcome": "refused",
             "step": "load", "errno": 524, "detail": "BPF_PROG_LOAD refused", "verifier": null},
            {"kind": "kprobe", "program": "fn_kprobe_0", "target": "exit_mmap", "outcome": "attached"}
        ]}});
        assert!(matches!(verdict(&policy), Verdict::Pass(m) if m.contains("1 of 2")));
        assert!(matches!(
            verdict(&serde_json::json!({"attach_kinds": []})),
            Verdict::Fail(_)
        ));
    }
}
