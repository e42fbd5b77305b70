//! Texts `--help` and the man pages share: each subcommand's exit
//! statuses, the environment reaper reads, examples, and the pages to see
//! next. One table per fact, so `reaper record --help` and
//! `reaper-record(1)` cannot disagree.

use crate::exit;

/// The heading that starts the exit-status block of an `after_help`.
pub const EXIT_HEADING: &str = "Exit status:";

/// Exit statuses of `record`, `report` and `diff` (the common meaning).
const COMMON: &[(i32, &str)] = &[
    (exit::SUCCESS, "done"),
    (
        exit::FAILURE,
        "something failed while running (a kernel refusal, a write error)",
    ),
    (
        exit::USAGE,
        "the command cannot be carried out as given: a bad flag or argument, an input that is not a (comparable) reaper run file, an unsafe output directory, `-o -` where a directory is written, a missing capability",
    ),
];

/// The statuses of `reaper` as a whole.
const ROOT: &[(i32, &str)] = &[
    (exit::SUCCESS, "done"),
    (
        exit::FAILURE,
        "something failed while running (a kernel refusal, a write error)",
    ),
    (
        exit::USAGE,
        "the command cannot be carried out as given: a bad flag or argument, an input that is not a (comparable) reaper run file, an unsafe output directory, a refused pid, a missing capability",
    ),
    (
        exit::INTERRUPTED,
        "`record` interrupted (Ctrl-C, SIGTERM); what was collected is saved, marked partial",
    ),
];

/// `record`'s statuses: the common ones and an interrupt.
const RECORD: &[(i32, &str)] = &[
    (exit::SUCCESS, "done"),
    (
        exit::FAILURE,
        "something failed while running (a kernel refusal, a write error)",
    ),
    (
        exit::USAGE,
        "the command cannot be carried out as given: a bad flag, a refused pid (1, a kernel thread, reaper itself or its parent), an unsafe output directory, `-o -`, a missing capability",
    ),
    (
        exit::INTERRUPTED,
        "interrupted (Ctrl-C, SIGTERM); what was collected is saved, marked partial (a --watch without --duration ends with Ctrl-C and exits 0)",
    ),
];

/// `doctor`'s statuses.
const DOCTOR: &[(i32, &str)] = &[
    (
        exit::SUCCESS,
        "reaper can record here (tracepoints or sampling attach), whatever else is refused",
    ),
    (
        exit::FAILURE,
        "neither tracepoints nor perf_event sampling attach: reaper cannot record here",
    ),
    (exit::USAGE, "a bad flag"),
];

/// `gate`'s statuses (its own meaning, for CI).
const GATE: &[(i32, &str)] = &[
    (exit::SUCCESS, "no gated metric regressed"),
    (
        exit::FAILURE,
        "a gated metric regressed (each is named with both medians, the delta, the threshold and the p-value)",
    ),
    (
        exit::USAGE,
        "a usage error, unreadable or incomparable runs, or too few runs per side",
    ),
];

/// The exit statuses of a subcommand (`""`: the `reaper` page).
pub fn exit_statuses(command: &str) -> &'static [(i32, &'static str)] {
    match command {
        "" => ROOT,
        "record" => RECORD,
        "doctor" => DOCTOR,
        "gate" => GATE,
        _ => COMMON,
    }
}

/// The exit-status block for an `after_help`.
pub fn exit_block(command: &str) -> String {
    let mut text = format!("{EXIT_HEADING}\n");
    for (code, meaning) in exit_statuses(command) {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    if command.is_empty() {
        text.push_str("  (`gate` keeps its own: 0 pass, 1 regression, 2 error)\n");
    }
    text
}

/// `after_help` of a subcommand: its notes, then its exit statuses.
pub fn after_help(command: &str, notes: &str) -> String {
    if notes.is_empty() {
        exit_block(command)
    } else {
        format!("{notes}\n\n{}", exit_block(command))
    }
}

/// The environment variables reaper reads, and what for.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "RUST_LOG",
        "log filter of reaper's diagnostics (env_logger syntax, e.g. `debug`); -v and -vv set it when unset",
    ),
    (
        crate::output::runs::RUNS_DIR_ENV,
        "where `record` without -o saves its run.json (default $XDG_STATE_HOME/reaper/runs, else ~/.local/state/reaper/runs)",
    ),
    (
        "XDG_STATE_HOME",
        "the base of the default runs directory (when not under sudo)",
    ),
    (
        "SUDO_UID, SUDO_GID",
        "under sudo, the user every file and directory reaper writes is handed to, and whose home holds the runs directory",
    ),
    (
        "GITHUB_ACTIONS",
        "`gate` under GitHub Actions (`true`) also prints ::error workflow commands for each regression",
    ),
    (
        "GITHUB_STEP_SUMMARY",
        "`gate` under GitHub Actions appends its markdown summary to this job-summary file",
    ),
];

/// (command, what) pairs shown under "Examples".
pub type Examples = &'static [(&'static str, &'static str)];

/// Examples of a subcommand (`""`: the `reaper` page): (command, what).
pub fn examples(command: &str) -> Examples {
    match command {
        "record" => RECORD_EXAMPLES,
        "report" => REPORT_EXAMPLES,
        "diff" => DIFF_EXAMPLES,
        "gate" => GATE_EXAMPLES,
        "doctor" => DOCTOR_EXAMPLES,
        _ => REAPER_EXAMPLES,
    }
}

/// Examples of `reaper record`.
const RECORD_EXAMPLES: Examples = &[
    (
        "sudo reaper record --victim 1G -o out/",
        "kill a 1 GiB synthetic victim, race it with process_mrelease, profile both sides",
    ),
    (
        "sudo reaper record --victim 256M --runs 10 -o runs/a",
        "ten episodes, for `reaper diff` and `reaper gate`",
    ),
    (
        "sudo reaper record --pid 4242",
        "wait for pid 4242's own exit and profile its teardown (kills nothing)",
    ),
    (
        "sudo reaper record --watch --comm java --min-rss 2G --duration 600",
        "record the exit of every java process resident above 2 GiB, and every OOM kill and process_mrelease call, for ten minutes",
    ),
    (
        "sudo reaper record --oom --victim 512M",
        "let the OOM killer pick a victim in reaper's own memory cgroup",
    ),
];

/// Examples of `reaper report`.
const REPORT_EXAMPLES: Examples = &[
    (
        "reaper report out/run.json",
        "re-render the tables, no root needed",
    ),
    (
        "reaper report out/run.json --format trace -o -",
        "the Perfetto trace on stdout",
    ),
    (
        "reaper report out/run.json --format pprof -o pp/ && go tool pprof -top pp/profile.pb.gz",
        "the pprof profile",
    ),
];

/// Examples of `reaper diff`.
const DIFF_EXAMPLES: Examples = &[(
    "reaper diff runs/6.1 runs/7.2 --label-a '6.1' --label-b '7.2' -o diff/",
    "compare two run sets, with differential flame graphs",
)];

/// Examples of `reaper gate`.
const GATE_EXAMPLES: Examples = &[
    (
        "reaper gate --baseline base/ --candidate cand/ --junit gate.xml",
        "fail CI (exit 1) when the candidate is significantly slower",
    ),
    (
        "reaper gate --calibrate aa/1 aa/2 aa/3 -o noise.json",
        "measure run-to-run noise from A/A run sets",
    ),
];

/// Examples of `reaper doctor`.
const DOCTOR_EXAMPLES: Examples = &[
    (
        "sudo reaper doctor",
        "what this kernel lets reaper measure, and why not",
    ),
    (
        "sudo reaper doctor --json",
        "the same as JSON (doctor.json)",
    ),
];

/// Examples of the `reaper` page.
const REAPER_EXAMPLES: Examples = &[
    ("sudo reaper doctor", "what this kernel allows"),
    ("sudo reaper record --victim 1G -o out/", "the main job"),
    ("reaper report out/run.json", "the tables again, offline"),
];

/// Pages to see next from a subcommand's page.
pub fn see_also(command: &str) -> Vec<String> {
    let mut pages: Vec<String> = ["", "doctor", "record", "report", "diff", "gate"]
        .into_iter()
        .filter(|c| *c != command)
        .map(|c| {
            if c.is_empty() {
                "reaper(1)".to_owned()
            } else {
                format!("reaper-{c}(1)")
            }
        })
        .collect();
    if command == "doctor" || command.is_empty() {
        pages.push("kernel_lockdown(7)".to_owned());
    }
    pages.extend([
        "bpf(2)".to_owned(),
        "process_mrelease(2)".to_owned(),
        "perf(1)".to_owned(),
    ]);
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_exit_statuses_and_examples() {
        for command in ["", "doctor", "record", "report", "diff", "gate"] {
            let block = exit_block(command);
            assert!(block.starts_with(EXIT_HEADING), "{command}");
            assert!(
                block.contains("  0  ") || block.contains("    0  "),
                "{command}: {block}"
            );
            assert!(!examples(command).is_empty(), "{command}");
            assert!(
                !see_also(command)
                    .iter()
                    .any(|p| *p == format!("reaper-{command}(1)"))
            );
        }
        assert!(exit_block("record").contains("130"));
        assert!(exit_block("gate").contains("regressed"));
    }
}
