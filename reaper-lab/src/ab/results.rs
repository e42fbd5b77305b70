//! `results.md` of an A/B run: what was compared (machine, each side's
//! kernel with its revision, config and patch hashes, the exact command),
//! how many runs and why, build and boot times, the per-episode lines, the
//! paste block, and the outputs of `reaper diff` and `reaper gate`.

use std::fmt::Write as _;
use std::time::Duration;

use super::episodes::EpisodeLine;
use super::sides::SideKernel;

/// One side, as results.md shows it.
pub struct SideResult<'a> {
    pub label: &'a str,
    pub kernel: &'a SideKernel,
    /// `uname -r` the guests reported.
    pub guest_release: Option<&'a str>,
    pub lines: &'a [EpisodeLine],
}

/// Everything results.md says.
pub struct Results<'a> {
    pub date: String,
    pub machine: String,
    pub command: String,
    pub subject: &'a str,
    pub a: SideResult<'a>,
    pub b: SideResult<'a>,
    /// How the number of runs a side was set (`--runs N`, or the plan).
    pub runs: &'a str,
    pub boots: &'a [(String, Duration, i32)],
    pub total: Duration,
    pub block: &'a str,
    pub diff: &'a str,
    pub gate: &'a str,
    pub gate_verdict: &'a str,
}

/// The host: kernel, CPU model, CPUs, memory.
pub fn machine_line() -> String {
    let uname = std::process::Command::new("uname")
        .arg("-srm")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{uname}, {model}, {cpus} CPUs, {mem_gib:.0} GiB; guests: qemu TCG")
}

fn side_line(name: &str, s: &SideResult) -> String {
    let k = s.kernel;
    let mut line = format!(
        "- {name} ({}): {}, release {}, .config sha256 {}",
        s.label,
        k.description,
        k.release
            .as_deref()
            .or(s.guest_release)
            .unwrap_or("not reported"),
        k.config_hash.as_deref().unwrap_or("n/m (no .config)")
    );
    if let Some(b) = &k.build {
        if let Some(commit) = &b.commit {
            let _ = write!(line, ", commit {commit}");
        }
        let _ = write!(line, " (fragments {}", b.fragments_hash);
        if let Some(base) = &b.base_config {
            let _ = write!(line, " on {}", base.display());
        }
        line.push(')');
        for (file, _, sha) in &b.patches {
            let _ = write!(line, ", {file} (sha256 {})", &sha[..16]);
        }
        let _ = write!(
            line,
            "; build {:.0} s ({})",
            b.build_seconds,
            if b.incremental {
                "incremental"
            } else {
                "first build"
            }
        );
    }
    line
}

fn episode_list(name: &str, lines: &[EpisodeLine], out: &mut String) {
    for l in lines {
        let _ = writeln!(out, "- {name} {l}");
    }
    let _ = writeln!(out, "- {name}: **{}**", super::episodes::summary(lines));
}

/// The markdown.
pub fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# A/B: {}\n", r.subject);
    let _ = writeln!(out, "- date: {}", r.date);
    let _ = writeln!(out, "- machine: {}", r.machine);
    let _ = writeln!(out, "- command: `{}`", r.command);
    let _ = writeln!(out, "{}", side_line("A", &r.a));
    let _ = writeln!(out, "{}", side_line("B", &r.b));
    let _ = writeln!(out, "- runs: {}", r.runs);
    let boots: Vec<String> = r
        .boots
        .iter()
        .map(|(name, t, rc)| format!("{name} {:.0} s (exit {rc})", t.as_secs_f64()))
        .collect();
    let _ = writeln!(out, "- boots, in order: {}", boots.join(", "));
    let _ = writeln!(
        out,
        "- wall time, builds + boots + compare: {:.0} s\n",
        r.total.as_secs_f64()
    );
    let _ = writeln!(out, "## Episodes\n");
    episode_list("A", r.a.lines, &mut out);
    episode_list("B", r.b.lines, &mut out);
    let _ = writeln!(out, "\n## For a cover letter\n\n```\n{}```\n", r.block);
    let _ = writeln!(
        out,
        "## reaper diff (A = {}, B = {})\n\n```\n{}```\n",
        r.a.label, r.b.label, r.diff
    );
    let _ = writeln!(
        out,
        "## reaper gate (baseline A, candidate B): {}\n\n{}",
        r.gate_verdict, r.gate
    );
    out
}
