//! `results.md` of an A/B run: what was compared (machine, kernel source,
//! config and patch hashes, the exact command), build and boot times, the
//! per-episode lines, and the outputs of `reaper diff` and `reaper gate`.

use std::fmt::Write as _;
use std::time::Duration;

use super::episodes::EpisodeLine;
use crate::kernel::Built;

/// Everything results.md says.
pub struct Results<'a> {
    pub date: String,
    pub machine: String,
    pub command: String,
    pub subject: &'a str,
    pub a: &'a Built,
    pub b: &'a Built,
    pub boots: &'a [(String, Duration, i32)],
    pub total: Duration,
    pub lines_a: &'a [EpisodeLine],
    pub lines_b: &'a [EpisodeLine],
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

fn build_line(name: &str, b: &Built) -> String {
    let patches = if b.patches.is_empty() {
        "no patches".to_string()
    } else {
        b.patches
            .iter()
            .map(|(file, _, sha)| format!("{file} (sha256 {})", &sha[..16]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "- {name}: {} {}, release {}, .config sha256 {} (fragments {}), {patches}; \
         build {:.0} s ({})",
        b.source,
        b.arch,
        b.release,
        b.config_hash,
        b.fragments_hash,
        b.build_seconds,
        if b.incremental {
            "incremental"
        } else {
            "first build"
        }
    )
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
    let _ = writeln!(out, "{}", build_line("A (without patch)", r.a));
    let _ = writeln!(out, "{}", build_line("B (with patch)", r.b));
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
    episode_list("A", r.lines_a, &mut out);
    episode_list("B", r.lines_b, &mut out);
    let _ = writeln!(
        out,
        "\n## reaper diff (A = without patch, B = with patch)\n\n```\n{}```\n",
        r.diff
    );
    let _ = writeln!(
        out,
        "## reaper gate (baseline A, candidate B): {}\n\n{}",
        r.gate_verdict, r.gate
    );
    out
}
