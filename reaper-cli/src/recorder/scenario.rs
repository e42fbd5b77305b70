//! The run file's `scenario`: what a recording tears down, as the run
//! file and the report name it.

use super::{RecordSettings, Target, oom::OomScenario, watch::WatchSettings};
use crate::model::{Scenario, ScenarioKind};
use crate::size::VictimSpec;

/// The scenario of a recording with these settings.
pub(super) fn scenario_of(settings: &RecordSettings) -> Scenario {
    match settings.target {
        Target::Victim(spec) => killed_by_reaper(
            settings,
            ScenarioKind::Victim,
            &format!("victim {spec}"),
            Some(&spec),
        ),
        Target::Pid(pid) => {
            killed_by_reaper(settings, ScenarioKind::Pid, &format!("pid {pid}"), None)
        }
        Target::Exit(pid) => Scenario {
            kind: ScenarioKind::Exit,
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
        Target::Watch(watch) => watch_scenario(&watch),
        Target::Oom(oom) => oom_scenario(&oom, settings.runs),
    }
}

/// A target reaper kills itself (a synthetic victim, `spec`, or `--pid`),
/// racing process_mrelease unless it is off; `what` names it ("victim
/// 1G,vmas=64,threads=4", "pid 812"; once: runs recorded before 2026-12-05
/// say "victim victim ...").
fn killed_by_reaper(
    settings: &RecordSettings,
    kind: ScenarioKind,
    what: &str,
    spec: Option<&VictimSpec>,
) -> Scenario {
    let reaper = match (settings.mrelease, &settings.mrelease_unavailable) {
        (true, _) => " + process_mrelease",
        (false, Some(_)) => " (no process_mrelease: missing on this kernel)",
        (false, None) => " (no process_mrelease)",
    };
    Scenario {
        kind,
        description: format!("{what}{reaper}"),
        victim_bytes: spec.map(|s| s.bytes),
        vmas: spec.map(|s| s.vmas),
        threads: spec.map(|s| s.threads),
        mrelease: settings.mrelease,
        mrelease_unavailable: settings.mrelease_unavailable.clone(),
        runs: settings.runs,
    }
}

/// `--watch`: every teardown, for a while or until Ctrl-C.
fn watch_scenario(watch: &WatchSettings) -> Scenario {
    Scenario {
        kind: ScenarioKind::Watch,
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
    }
}

/// `--oom`: the kernel's OOM killer picks the victim in reaper's memcg.
fn oom_scenario(oom: &OomScenario, runs: u32) -> Scenario {
    Scenario {
        kind: ScenarioKind::Oom,
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
        runs,
    }
}
