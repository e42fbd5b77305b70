//! The usual perf pipeline (`perf script` → inferno's collapse-perf → flame
//! graph SVG) and a small `perf script` parser for the accuracy comparison.

use std::{
    io::BufReader,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use inferno::collapse::{Collapse as _, perf::Folder};

/// One sample from `perf script`: who, how long, and its call chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub pid: Option<u32>,
    pub tid: u32,
    /// The sample's period (ns for cpu-clock), when perf printed it.
    pub period: Option<u64>,
    /// Symbols innermost first, offsets and DSOs stripped.
    pub frames: Vec<String>,
}

/// Runs `perf script -i DATA [ARGS]` and returns its stdout.
pub fn perf_script(data: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("perf")
        .arg("script")
        .arg("-i")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running perf script")?;
    ensure!(
        out.status.success(),
        "perf script -i {} failed ({})",
        data.display(),
        out.status
    );
    String::from_utf8(out.stdout).context("perf script output is not UTF-8")
}

/// Folds `perf script` output with inferno's collapse-perf (default options).
pub fn fold(script: &str) -> Result<Vec<u8>> {
    let mut folded = Vec::new();
    Folder::default()
        .collapse(BufReader::new(script.as_bytes()), &mut folded)
        .context("inferno collapse-perf")?;
    Ok(folded)
}

/// Renders folded lines as a flame graph SVG.
pub fn flamegraph(folded: &[u8]) -> Result<Vec<u8>> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = "perf: cpu-clock".to_owned();
    let mut svg = Vec::new();
    inferno::flamegraph::from_reader(&mut options, folded, &mut svg)
        .context("inferno flamegraph")?;
    Ok(svg)
}

/// Timings of the perf pipeline after perf.data is written.
#[derive(Debug, Clone, Copy)]
pub struct PipelineTimes {
    /// `perf script` → fold → SVG written.
    pub script_fold_svg: Duration,
    /// `perf report --stdio` (the tables), run separately.
    pub report_tables: Duration,
}

/// Runs the usual perf pipeline on DATA, writing into OUT_DIR.
pub fn pipeline(data: &Path, out_dir: &Path) -> Result<PipelineTimes> {
    let t = Instant::now();
    let script = perf_script(data, &[])?;
    let folded = fold(&script)?;
    std::fs::write(out_dir.join("perf.folded"), &folded)?;
    std::fs::write(out_dir.join("perf.svg"), flamegraph(&folded)?)?;
    let script_fold_svg = t.elapsed();
    let t = Instant::now();
    let report = Command::new("perf")
        .args(["report", "--stdio", "-i"])
        .arg(data)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running perf report")?;
    ensure!(
        report.status.success(),
        "perf report failed ({})",
        report.status
    );
    std::fs::write(out_dir.join("perf.report.txt"), &report.stdout)?;
    Ok(PipelineTimes {
        script_fold_svg,
        report_tables: t.elapsed(),
    })
}

/// Parses `perf script` output: a header line per sample
/// (`comm [pid/]tid [cpu] time: [period] event:`), then indented
/// `addr symbol[+off] (dso)` frames, then a blank line.
pub fn parse(script: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut current: Option<Sample> = None;
    for line in script.lines() {
        if line.trim().is_empty() {
            samples.extend(current.take());
        } else if line.starts_with(char::is_whitespace) {
            if let Some(sample) = current.as_mut() {
                sample.frames.push(frame_symbol(line.trim()));
            }
        } else {
            samples.extend(current.take());
            current = parse_header(line);
        }
    }
    samples.extend(current);
    samples
}

fn parse_header(line: &str) -> Option<Sample> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let cpu = tokens
        .iter()
        .position(|t| t.starts_with('[') && t.ends_with(']'))?;
    let ids = tokens.get(cpu.checked_sub(1)?)?;
    let (pid, tid) = match ids.split_once('/') {
        Some((pid, tid)) => (Some(pid.parse().ok()?), tid.parse().ok()?),
        None => (None, ids.parse().ok()?),
    };
    // After the time ("123.456:") comes the period when it is printed.
    let period = tokens.get(cpu + 2).and_then(|t| t.parse().ok());
    Some(Sample {
        pid,
        tid,
        period,
        frames: Vec::new(),
    })
}

/// `ffffffff8123 exit_mmap+0x1f ([kernel.kallsyms])` → `exit_mmap`.
fn frame_symbol(frame: &str) -> String {
    let rest = frame
        .split_once(char::is_whitespace)
        .map_or("", |(_, r)| r)
        .trim();
    let rest = match rest.rfind(" (") {
        Some(i) if rest.ends_with(')') => &rest[..i],
        _ => rest,
    };
    match rest.rfind("+0x") {
        Some(i) => rest[..i].to_owned(),
        None => rest.to_owned(),
    }
}

/// Which task(s) a comparison looks at.
#[derive(Debug, Clone, Copy)]
pub enum Task {
    /// Every thread of a process (needs `pid/tid` headers).
    Process(u32),
    Thread(u32),
}

/// Sum of periods (ns) of `task`'s samples whose chain contains `symbol`;
/// a sample without a printed period counts `default_period_ns`.
pub fn period_with_symbol(
    samples: &[Sample],
    task: Task,
    symbol: &str,
    default_period_ns: u64,
) -> u64 {
    samples
        .iter()
        .filter(|s| match task {
            Task::Process(pid) => s.pid == Some(pid),
            Task::Thread(tid) => s.tid == tid,
        })
        .filter(|s| s.frames.iter().any(|f| f == symbol))
        .map(|s| s.period.unwrap_or(default_period_ns))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
reaper-victim  4657/4657  [001]  5483.990326:     250000 cpu-clock: 
\tffffffff81234567 unmap_page_range+0x1f ([kernel.kallsyms])
\tffffffff81234000 exit_mmap+0x10 ([kernel.kallsyms])
\tffffffff81230000 do_exit+0x5 ([kernel.kallsyms])

bench-mrelease  4600/4616  [000]  5483.990400:     260000 cpu-clock: 
\tffffffff81234567 unmap_page_range+0x1f ([kernel.kallsyms])
\tffffffff81299999 __oom_reap_task_mm+0x44 ([kernel.kallsyms])
\tffffffff81290000 __do_sys_process_mrelease+0x1 ([kernel.kallsyms])

rust lld  5668 [000]  5483.990572:     250000 cpu-clock: 
\t         8adc905 llvm::DenseMapInfo<llvm::StringRef, void>::getHashValue+0x5 (/usr/lib/libLLVM.so)
\t            7637 [unknown] ([unknown])
";

    #[test]
    fn parses_headers_frames_and_periods() {
        let samples = parse(FIXTURE);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].pid, Some(4657));
        assert_eq!(samples[0].tid, 4657);
        assert_eq!(samples[0].period, Some(250_000));
        assert_eq!(
            samples[0].frames,
            ["unmap_page_range", "exit_mmap", "do_exit"]
        );
        assert_eq!(samples[1].pid, Some(4600));
        assert_eq!(samples[1].tid, 4616);
        // A comm with a space, no pid, C++ symbols with spaces.
        assert_eq!(samples[2].pid, None);
        assert_eq!(samples[2].tid, 5668);
        assert_eq!(
            samples[2].frames,
            [
                "llvm::DenseMapInfo<llvm::StringRef, void>::getHashValue",
                "[unknown]"
            ]
        );
    }

    #[test]
    fn sums_periods_per_task_and_symbol() {
        let samples = parse(FIXTURE);
        assert_eq!(
            period_with_symbol(&samples, Task::Process(4657), "exit_mmap", 1),
            250_000
        );
        assert_eq!(
            period_with_symbol(&samples, Task::Thread(4616), "__oom_reap_task_mm", 1),
            260_000
        );
        assert_eq!(
            period_with_symbol(&samples, Task::Thread(4616), "exit_mmap", 1),
            0
        );
        assert_eq!(
            period_with_symbol(&samples, Task::Process(4600), "unmap_page_range", 1),
            260_000
        );
    }

    #[test]
    fn missing_period_uses_the_default() {
        let samples = parse(
            "swapper     0 [000]  1.000: cpu-clock: \n\tffff native_safe_halt+0xe ([kernel.kallsyms])\n",
        );
        assert_eq!(samples[0].period, None);
        assert_eq!(
            period_with_symbol(&samples, Task::Thread(0), "native_safe_halt", 250_000),
            250_000
        );
    }

    #[test]
    fn folds_with_inferno_outermost_first_weighted_by_period() {
        // collapse-perf weights each sample by its printed period.
        let folded = String::from_utf8(fold(FIXTURE).unwrap()).unwrap();
        assert_eq!(
            folded,
            "bench-mrelease;__do_sys_process_mrelease;__oom_reap_task_mm;unmap_page_range 260000\n\
             reaper-victim;do_exit;exit_mmap;unmap_page_range 250000\n\
             rust_lld;[unknown];llvm::DenseMapInfo<llvm::StringRef, void>::getHashValue 250000\n"
        );
        let svg = flamegraph(&fold(FIXTURE).unwrap()).unwrap();
        assert!(String::from_utf8(svg).unwrap().contains("<svg"));
    }
}
