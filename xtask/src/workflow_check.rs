//! `cargo xtask workflow-check`: runs the example GitHub Actions workflow
//! (`docs/github-actions/reaper-gate.yml`) on this host, so it cannot rot.
//!
//! The workflow is parsed as YAML (yaml-rust2: GitHub's files are YAML 1.2,
//! and a hand-written reader would accept what the runner rejects). Its
//! shape is checked first: at least five runs a side, both sides recorded
//! inside one loop (alternating), the build's needs installed before the
//! build. Then every `run:` step of its one job is run in order, as the
//! runner does (`bash -e -o pipefail`, the workflow's and the step's `env`,
//! the repository as the working directory), with `GITHUB_ACTIONS=true`, a
//! fresh `GITHUB_STEP_SUMMARY` file and `OUT` pointing at a scratch
//! directory; `uses:` steps are GitHub's actions and are skipped, said so.
//! Where the host has no `sudo` and this runs as root, a pass-through
//! `sudo` is put first on `PATH`; so is `target/tools/bin`, where `cargo
//! xtask setup` keeps bpf-linker (the runner's tool cache, so the install
//! step's "only when missing" branch is what runs here). Recording needs
//! root: without it the check says why and runs nothing.
//!
//! It passes when every step exited 0, except the gate, which may exit 1
//! (an A/A gate's false alarm, at most `--alpha` of the time: `cargo xtask
//! gate-check` measures that), and left: both sides' run files, a job
//! summary that starts with the gate's verdict, `gate.md` and a JUnit file.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail, ensure};
use yaml_rust2::{Yaml, YamlLoader};

/// The example, relative to the workspace.
pub const WORKFLOW: &str = "docs/github-actions/reaper-gate.yml";

/// The fewest runs a side the gate accepts without a calibration.
const MIN_RUNS: u64 = 5;

/// One step of the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `name:` or the action.
    pub name: String,
    /// `run:` script, or `None` for a `uses:` step.
    pub run: Option<String>,
    /// `uses:` action.
    pub uses: Option<String>,
    /// The step's `env`.
    pub env: Vec<(String, String)>,
}

/// The parts of the workflow the check reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workflow {
    /// Workflow-level `env`.
    pub env: Vec<(String, String)>,
    /// The steps of its single job.
    pub steps: Vec<Step>,
}

fn env_of(y: &Yaml) -> Vec<(String, String)> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| {
                    let value = match v {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((k.as_str()?.to_owned(), value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the workflow text.
pub fn parse(text: &str) -> Result<Workflow> {
    let docs = YamlLoader::load_from_str(text).context("the workflow is not YAML")?;
    let doc = docs.first().context("the workflow is empty")?;
    let jobs = doc["jobs"].as_hash().context("the workflow has no jobs")?;
    ensure!(
        jobs.len() == 1,
        "the example has one job (both sides on one runner), found {}",
        jobs.len()
    );
    let (_, job) = jobs.iter().next().context("no job")?;
    let steps = job["steps"]
        .as_vec()
        .context("the job has no steps")?
        .iter()
        .map(|s| Step {
            name: s["name"]
                .as_str()
                .or_else(|| s["uses"].as_str())
                .unwrap_or("(unnamed)")
                .to_owned(),
            run: s["run"].as_str().map(str::to_owned),
            uses: s["uses"].as_str().map(str::to_owned),
            env: env_of(&s["env"]),
        })
        .collect();
    Ok(Workflow {
        env: env_of(&doc["env"]),
        steps,
    })
}

impl Workflow {
    fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn position(&self, what: &str, find: impl Fn(&str) -> bool) -> Result<usize> {
        self.steps
            .iter()
            .position(|s| s.run.as_deref().is_some_and(&find))
            .with_context(|| format!("the workflow has no step that {what}"))
    }

    /// What the issue asks of the example, checked without running it.
    pub fn check_shape(&self) -> Result<()> {
        let runs: u64 = self
            .env("RUNS")
            .context("the workflow sets no RUNS")?
            .parse()
            .context("RUNS is not a number")?;
        ensure!(
            runs >= MIN_RUNS,
            "RUNS={runs}: the gate needs {MIN_RUNS} runs a side"
        );
        let install = self.position("installs bpf-linker", |r| {
            r.contains("cargo install bpf-linker") && r.contains("rust-src")
        })?;
        let build = self.position("builds reaper", |r| r.contains("cargo build"))?;
        ensure!(
            install < build,
            "bpf-linker must be installed before the build"
        );
        let record = self.position("records both sides", |r| {
            r.contains("reaper record") && r.contains("baseline") && r.contains("candidate")
        })?;
        let script = self.steps[record].run.as_deref().unwrap_or_default();
        let (looped, record_in_loop) = (script.find("for "), script.rfind("reaper record"));
        ensure!(
            looped.zip(record_in_loop).is_some_and(|(f, r)| f < r)
                && script.contains("BASELINE_SETUP")
                && script.contains("CANDIDATE_SETUP"),
            "the record step must switch between baseline and candidate inside one loop (alternating)"
        );
        self.position("gates with --junit", |r| {
            r.contains("reaper gate") && r.contains("--junit")
        })?;
        for s in &self.steps {
            if let Some(run) = &s.run {
                ensure!(
                    !run.contains("${{"),
                    "step {:?}: a `${{{{ }}}}` expression in a run: block cannot be run outside GitHub",
                    s.name
                );
            }
        }
        Ok(())
    }
}

/// A directory holding a pass-through `sudo` (for a root host without one).
fn sudo_shim(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("shim-bin");
    std::fs::create_dir_all(&bin)?;
    let sudo = bin.join("sudo");
    std::fs::write(
        &sudo,
        "#!/bin/sh\n# xtask workflow-check: root already\nexec \"$@\"\n",
    )?;
    std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755))?;
    Ok(bin)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// `cargo xtask workflow-check`.
pub fn run() -> Result<ExitCode> {
    let root = crate::workspace::workspace_root();
    let path = root.join(WORKFLOW);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let workflow = parse(&text)?;
    workflow.check_shape()?;
    eprintln!(
        "xtask workflow-check: {WORKFLOW}: shape ok ({} steps)",
        workflow.steps.len()
    );
    if !crate::run::is_root() {
        eprintln!(
            "xtask workflow-check: SKIP running its steps: recording needs root (sudo -E cargo xtask workflow-check)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let scratch = fresh_scratch(&root)?;
    let out = scratch.join("out");
    let summary = scratch.join("step-summary.md");
    let joined = steps_path(&root, &scratch)?;
    let gate_status = run_steps(&workflow, &root, &out, &summary, &joined)?;
    check_outputs(&out, &summary, gate_status)?;
    println!(
        "xtask workflow-check: {WORKFLOW}: every step ran; the gate exited {} ({}); outputs in {}",
        gate_status.unwrap_or(-1),
        if gate_status == Some(0) {
            "PASS, as an A/A gate should"
        } else {
            "FAIL on an A/A gate: a false alarm, which `cargo xtask gate-check` counts"
        },
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// An empty target/workflow-check for the steps' outputs.
fn fresh_scratch(root: &Path) -> Result<PathBuf> {
    let scratch = root.join("target/workflow-check");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("clearing {}", scratch.display()))?;
    }
    std::fs::create_dir_all(&scratch)?;
    Ok(scratch)
}

/// The steps' PATH: a pass-through sudo when there is none (running as
/// root), the workspace's tools, then this process's PATH.
fn steps_path(root: &Path, scratch: &Path) -> Result<std::ffi::OsString> {
    let mut path_dirs: Vec<PathBuf> = Vec::new();
    if !on_path("sudo") {
        path_dirs.push(sudo_shim(scratch)?);
        eprintln!(
            "xtask workflow-check: no sudo here and running as root: a pass-through sudo is on PATH"
        );
    }
    let tools = root.join("target/tools/bin");
    if tools.is_dir() {
        path_dirs.push(tools);
    }
    path_dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(path_dirs).context("PATH")
}

/// Runs every `run:` step of `workflow` as GitHub would (bash -e -o
/// pipefail, the workflow's and the step's env); hands back the gate
/// step's exit code. Fails on a failed step, or a gate that could not
/// judge.
fn run_steps(
    workflow: &Workflow,
    root: &Path,
    out: &Path,
    summary: &Path,
    path: &std::ffi::OsStr,
) -> Result<Option<i32>> {
    let mut gate_status = None;
    for step in &workflow.steps {
        let Some(script) = &step.run else {
            eprintln!(
                "xtask workflow-check: skip {:?} (a GitHub action: {})",
                step.name,
                step.uses.as_deref().unwrap_or("?")
            );
            continue;
        };
        eprintln!("xtask workflow-check: run {:?}", step.name);
        let status = Command::new("bash")
            .args([
                "--noprofile",
                "--norc",
                "-e",
                "-o",
                "pipefail",
                "-c",
                script,
            ])
            .current_dir(root)
            .envs(workflow.env.iter().cloned())
            .envs(step.env.iter().cloned())
            .env("OUT", out)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", summary)
            .env("PATH", path)
            .status()
            .with_context(|| format!("running step {:?}", step.name))?;
        let code = status.code();
        if script.contains("reaper gate") {
            gate_status = code;
            ensure!(
                matches!(code, Some(0 | 1)),
                "the gate step exited {code:?}: it could not judge (see its ::error line above)"
            );
        } else if !status.success() {
            bail!("step {:?} failed ({status})", step.name);
        }
    }
    Ok(gate_status)
}

/// What the steps must have left.
fn check_outputs(out: &Path, summary: &Path, gate: Option<i32>) -> Result<()> {
    ensure!(gate.is_some(), "no step ran `reaper gate`");
    for side in ["baseline", "candidate"] {
        let runs = std::fs::read_dir(out.join(side))
            .with_context(|| format!("{}: no {side} runs", out.display()))?
            .flatten()
            .filter(|e| e.path().join("run.json").is_file())
            .count() as u64;
        ensure!(
            runs >= MIN_RUNS,
            "{side}: {runs} run files, expected {MIN_RUNS} or more"
        );
    }
    let text = std::fs::read_to_string(summary).context("the gate wrote no job summary")?;
    ensure!(
        text.starts_with("## reaper gate: "),
        "the job summary does not start with the gate's verdict: {:?}",
        text.lines().next()
    );
    ensure!(out.join("gate.md").is_file(), "no gate.md");
    let junit = std::fs::read_to_string(out.join("gate.xml")).context("no JUnit file")?;
    ensure!(junit.contains("<testsuites"), "gate.xml is not JUnit XML");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Workflow {
        let path = crate::workspace::workspace_root().join(WORKFLOW);
        parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_example_has_the_shape_the_gate_needs() {
        let w = example();
        w.check_shape().unwrap();
        assert_eq!(w.env("RUNS"), Some("6"));
        assert!(
            w.steps
                .iter()
                .any(|s| s.uses.as_deref() == Some("actions/checkout@v4"))
        );
    }

    #[test]
    fn a_workflow_that_cannot_work_is_named() {
        let w = example();
        let mut one_run = w.clone();
        one_run.env.retain(|(k, _)| k != "RUNS");
        one_run.env.push(("RUNS".into(), "1".into()));
        assert!(
            one_run
                .check_shape()
                .unwrap_err()
                .to_string()
                .contains("needs 5 runs")
        );
        let mut no_linker = w.clone();
        no_linker
            .steps
            .retain(|s| !s.run.as_deref().is_some_and(|r| r.contains("bpf-linker")));
        assert!(
            no_linker
                .check_shape()
                .unwrap_err()
                .to_string()
                .contains("installs bpf-linker")
        );
        let mut blocked = w.clone();
        for s in &mut blocked.steps {
            if let Some(r) = &mut s.run
                && r.contains("reaper record")
            {
                *r = "eval \"$CANDIDATE_SETUP\"\nsudo reaper record -o \"$OUT/candidate/run-1\"\neval \"$BASELINE_SETUP\"\nsudo reaper record -o \"$OUT/baseline/run-1\"\n".into();
            }
        }
        assert!(
            blocked
                .check_shape()
                .unwrap_err()
                .to_string()
                .contains("alternating")
        );
    }
}
