//! `cargo xtask vm-test --report DIR`: the matrix's outcome as a dated
//! table in the repository (`DIR/vm-test-YYYY-MM-DD.md`, with the same rows
//! as JSON beside it), rewritten after every cell so a run cut short still
//! says what it measured.
//!
//! A later run with the same `DIR` within a day of the newest file's last
//! row (say `--only` of a cell that failed for a reason outside reaper)
//! adds to that file, replacing the cell's row and marking it re-run, so one
//! file holds every cell of the matrix with its latest outcome, even when
//! the matrix ran past midnight. A cell is `pass` (every check passed or was skipped with
//! a reason), `FAIL` (a check ran and failed), `error` (the cell never
//! reached its checks: the kernel could not be fetched, the guest did not
//! boot, or qemu timed out; the message says which) or `not offered` (the
//! suite builds no such kernel).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// A cell's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
    NotOffered,
}

impl Outcome {
    fn text(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "**FAIL**",
            Self::Error => "**error**",
            Self::NotOffered => "not offered",
        }
    }
}

/// One cell's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRow {
    /// `bullseye`, `trixie-backports:6.19`, ...
    pub kernel: String,
    pub flavour: String,
    pub arch: String,
    /// `uname -r` in the guest ("-" when it did not boot).
    pub release: String,
    pub outcome: Outcome,
    /// "15 ok, 0 failed, 2 skipped".
    pub checks: String,
    /// The attach modes doctor found working.
    pub attach: String,
    /// Failed checks and errors, one line each.
    pub problems: Vec<String>,
    /// Wall time of the cell, seconds.
    pub wall_s: f64,
    /// When the cell ran (UTC time of day), and whether it replaced an
    /// earlier row of the same file.
    pub ran_at: String,
    #[serde(default)]
    pub rerun: bool,
}

impl CellRow {
    fn key(&self) -> (&str, &str, &str) {
        (&self.kernel, &self.flavour, &self.arch)
    }
}

/// The file's contents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// The host and its load when the first cell of the file ran.
    pub host: String,
    /// The command lines that wrote the rows.
    pub commands: Vec<String>,
    pub rows: Vec<CellRow>,
}

impl Results {
    /// Inserts `row`, replacing the row of the same cell (marked re-run).
    pub fn put(&mut self, mut row: CellRow) {
        match self.rows.iter_mut().find(|r| r.key() == row.key()) {
            Some(old) => {
                row.rerun = true;
                *old = row;
            }
            None => self.rows.push(row),
        }
    }

    /// The Markdown table.
    pub fn markdown(&self) -> String {
        let count = |o: Outcome| self.rows.iter().filter(|r| r.outcome == o).count();
        let mut out = format!(
            "# `cargo xtask vm-test` results, {}\n\n\
             Written by `cargo xtask vm-test --report` (see the README's \"Kernel coverage\"); \
             do not edit by hand.\n\n\
             - Host: {}\n\
             - Command(s): {}\n\
             - Cells: {} ({} pass, {} FAIL, {} error, {} not offered)\n\n\
             An **error** is a cell that never reached its checks (kernel fetch, boot, qemu \
             timeout; the message says which); a **FAIL** is a check that ran and failed.\n\n\
             | kernel | flavour | arch | release | outcome | checks | attach modes | wall | ran at |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            self.date,
            self.host,
            self.commands
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.rows.len(),
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::Error),
            count(Outcome::NotOffered),
        );
        for r in &self.rows {
            out.push_str(&r.table_line());
        }
        let problems: Vec<&CellRow> = self
            .rows
            .iter()
            .filter(|r| !r.problems.is_empty())
            .collect();
        if !problems.is_empty() {
            out.push_str("\n## Failures, errors and skipped cells\n\n");
            for r in problems {
                for p in &r.problems {
                    out.push_str(&format!(
                        "- {}/{}/{}: {}\n",
                        escape(&r.kernel),
                        escape(&r.arch),
                        escape(&r.flavour),
                        escape(&one_line(p))
                    ));
                }
            }
        }
        out
    }
}

impl CellRow {
    /// The cell's line of the Markdown table.
    fn table_line(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}{} |\n",
            escape(&self.kernel),
            escape(&self.flavour),
            escape(&self.arch),
            escape(&self.release),
            self.outcome.text(),
            escape(&self.checks),
            escape(&self.attach),
            if self.outcome == Outcome::NotOffered {
                "-".to_owned()
            } else {
                format!("{:.0} s", self.wall_s)
            },
            self.ran_at,
            if self.rerun { " (re-run)" } else { "" },
        )
    }
}

/// Text from a guest (its release, doctor's answers, check messages quoting
/// run files) as Markdown text, never markup: every character Markdown
/// could read as syntax where this text goes (inside a line, never at its
/// start) is backslash-escaped; `_` inside words (x86_64) is no emphasis.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*{}[]()<>|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A message on one line, for a Markdown list (console excerpts included).
fn one_line(text: &str) -> String {
    let flat: Vec<&str> = text.split_whitespace().collect();
    let flat = flat.join(" ");
    const MAX: usize = 600;
    match flat.char_indices().nth(MAX) {
        Some((at, _)) => format!("{} …", &flat[..at]),
        None => flat,
    }
}

/// Where today's results go in `dir`, and their JSON twin.
fn paths(dir: &Path, date: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("vm-test-{date}.md")),
        dir.join(format!("vm-test-{date}.json")),
    )
}

/// Today's results file in `dir`, to add rows to.
pub struct ResultsFile {
    md: PathBuf,
    json: PathBuf,
    results: Results,
}

/// How long after a results file's last row a run still adds to it.
const CONTINUE_WITHIN: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The newest `vm-test-*.json` in `dir` written less than
/// [`CONTINUE_WITHIN`] ago.
fn recent_results(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vm-test-") && n.ends_with(".json"))
        })
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .filter(|(modified, _)| modified.elapsed().is_ok_and(|age| age < CONTINUE_WITHIN))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p)
}

impl ResultsFile {
    /// Opens the recent results file in `dir` (see the module doc) or
    /// starts today's, and adds `command` to it.
    pub fn open(dir: &Path, command: String) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (md, json, mut results) = match recent_results(dir) {
            Some(json) => {
                let bytes =
                    std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?;
                let results: Results = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a vm-test results file", json.display()))?;
                (json.with_extension("md"), json, results)
            }
            None => {
                let date = date_utc("+%Y-%m-%d")?;
                let (md, json) = paths(dir, &date);
                let results = Results {
                    date,
                    host: host_line(),
                    ..Results::default()
                };
                (md, json, results)
            }
        };
        results.commands.push(command);
        Ok(Self { md, json, results })
    }

    /// Adds a row and rewrites both files.
    pub fn put(&mut self, row: CellRow) -> Result<()> {
        self.results.put(row);
        let json = serde_json::to_string_pretty(&self.results)?;
        std::fs::write(&self.json, json + "\n")
            .with_context(|| format!("writing {}", self.json.display()))?;
        std::fs::write(&self.md, self.results.markdown())
            .with_context(|| format!("writing {}", self.md.display()))
    }

    /// The Markdown file's path.
    pub fn path(&self) -> &Path {
        &self.md
    }
}

/// `date -u FORMAT` (xtask's other reports take their time stamps the same way).
fn date_utc(format: &str) -> Result<String> {
    let out = Command::new("date")
        .args(["-u", format])
        .output()
        .context("running date -u")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The time of day a cell ran, e.g. `21:04 UTC`.
pub fn now_utc() -> String {
    date_utc("+%H:%M UTC").unwrap_or_else(|_| "?".to_owned())
}

/// "Linux 6.18.44, 2 CPUs, load average 3.1 at 21:04 UTC".
fn host_line() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "Linux {}, {cpus} CPUs, load average {} at {} (TCG guests; wall times include other \
         jobs' load)",
        release.trim(),
        load.split_whitespace().next().unwrap_or("?"),
        now_utc()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kernel: &str, outcome: Outcome) -> CellRow {
        CellRow {
            kernel: kernel.into(),
            flavour: "cloud".into(),
            arch: "x86_64".into(),
            release: "5.10.0-32-cloud-amd64".into(),
            outcome,
            checks: "17 ok, 0 failed".into(),
            attach: "fentry,kprobe".into(),
            problems: Vec::new(),
            wall_s: 201.4,
            ran_at: "21:04 UTC".into(),
            rerun: false,
        }
    }

    #[test]
    fn a_rerun_replaces_its_cell_and_says_so() {
        let mut r = Results::default();
        let mut failed = row("bullseye", Outcome::Error);
        failed.problems = vec!["could not fetch\nthe kernel".into()];
        r.put(failed);
        r.put(row("sid", Outcome::Pass));
        r.put(row("bullseye", Outcome::Pass));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].outcome, Outcome::Pass);
        assert!(r.rows[0].rerun);
        let md = r.markdown();
        assert!(md.contains("| bullseye | cloud | x86_64 | 5.10.0-32-cloud-amd64 | pass |"));
        assert!(md.contains("(re-run)"), "{md}");
        assert!(md.contains("2 pass, 0 FAIL, 0 error"), "{md}");
        assert!(
            !md.contains("could not fetch"),
            "the replaced row's problem is gone"
        );
    }

    #[test]
    fn a_run_within_a_day_of_the_last_row_continues_its_file() {
        let dir = std::env::temp_dir().join(format!("xtask-results-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(recent_results(&dir), None);
        let old = dir.join("vm-test-2026-12-03.json");
        let new = dir.join("vm-test-2026-12-04.json");
        for p in [&old, &new] {
            std::fs::write(p, "{}").unwrap();
        }
        std::fs::write(dir.join("notes.json"), "{}").unwrap();
        let two_days = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_days)
            .unwrap();
        assert_eq!(recent_results(&dir), Some(new.clone()));
        std::fs::File::options()
            .write(true)
            .open(&new)
            .unwrap()
            .set_modified(two_days)
            .unwrap();
        assert_eq!(recent_results(&dir), None, "a day later a new file starts");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn guest_text_is_never_markup() {
        let mut r = Results::default();
        let mut odd = row("sid", Outcome::Fail);
        odd.release = "7.2|<b>x</b>".into();
        odd.problems = vec!["FAIL x: `rm` [link](y) *bold*".into()];
        r.put(odd);
        let md = r.markdown();
        assert!(md.contains("7.2\\|\\<b\\>x\\</b\\>"), "{md}");
        assert!(md.contains("\\`rm\\` \\[link\\]\\(y\\) \\*bold\\*"), "{md}");
    }

    #[test]
    fn problems_are_listed_on_one_line() {
        let mut r = Results::default();
        let mut failed = row("sid", Outcome::Fail);
        failed.problems = vec!["FAIL reaper-order: expected\nreverse".into()];
        r.put(failed);
        assert!(
            r.markdown()
                .contains("- sid/x86_64/cloud: FAIL reaper-order: expected reverse\n")
        );
    }
}
