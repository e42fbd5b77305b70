//! The run file's `scenario`: what a recording tears down, as the run
//! file and the report name it.

use super::{RecordSettings, Target};
use crate::model::Scenario;

/// The scenario of a recording with these settings.
pub(super) fn scenario_of(settings: &RecordSettings) -> Scenario {
    let reaper = match (settings.mrelease, &settings.mrelease_unavailable) {
        (true, _) => " + process_mrelease",
        (false, Some(_)) => " (no process_mrelease: missing on this kernel)",
        (false, None) => " (no process_mrelease)",
    };
    match settings.target {
        Target::Victim(spec) => Scenario {
            kind: "victim".into(),
            description: format!("victim {spec}{reaper}"),
            victim_bytes: Some(spec.bytes),
            vmas: Some(spec.vmas),
            threads: Some(spec.threads),
            mrelease: settings.mrelease,
            mrelease_unavailable: settings.mrelease_unavailable.clone(),
            runs: settings.runs,
        },
        Target::Pid(pid) => Scenario {
            kind: "pid".into(),
            description: format!("pid {pid}{reaper}"),
            victim_bytes: None,
            vmas: None,
            threads: None,
            mrelease: settings.mrelease,
            mrelease_unavailable: settings.mrelease_unavailable.clone(),
            runs: settings.runs,
        },
        Target::Exit(pid) => Scenario {
            kind: "exit".into(),
            description: format!(
                "pid {pid}'s own exit, waited for (reaper kills nothing; t = 0: its exit began)"
            ),
            victim_bytes: None,
            vmas: None,
            threads: None,
            mrelease: false,
            mrelease_unavailable: None,
            runs: settings.runs,
        },
        Target::Watch(watch) => Scenario {
            kind: "watch".into(),
            description: match watch.duration {
                Some(d) => format!(
                    "watch every teardown for {} s (triggering nothing)",
                    d.as_secs()
                ),
                None => "watch every teardown until Ctrl-C (triggering nothing)".into(),
            },
            victim_bytes: None,
            vmas: None,
            threads: None,
            mrelease: true,
            mrelease_unavailable: None,
            runs: 0,
        },
        Target::Oom(oom) => Scenario {
            kind: "oom".into(),
            description: if oom.frozen {
                format!(
                    "memcg OOM kill of frozen victim {} (watched {} s)",
                    oom.spec,
                    oom.frozen_timeout.as_secs()
                )
            } else {
                format!(
                    "memcg OOM kill of victim {} (limit 90% of its size)",
                    oom.spec
                )
            },
            victim_bytes: Some(oom.spec.bytes),
            vmas: Some(oom.spec.vmas),
            threads: Some(oom.spec.threads),
            mrelease: false,
            mrelease_unavailable: None,
            runs: settings.runs,
        },
    }
}
