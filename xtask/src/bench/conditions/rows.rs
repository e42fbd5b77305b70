//! The result table's rows and closing notes, built from every round.

use super::{Cond, Config, Results};
use crate::bench::{human_size, stats::Row, verdict::Goal};

const OVERHEAD: [Cond; 6] = [
    Cond::None,
    Cond::Timer,
    Cond::Reaper,
    Cond::Perf,
    Cond::ReaperAll,
    Cond::ReaperCost,
];

impl Results {
    fn latency(&self, which: &str, cond: Cond) -> Row {
        let map = if which == "mrelease" {
            &self.kill_to_mrelease
        } else {
            &self.kill_to_reaped
        };
        let values = map.get(cond.label()).map_or(&[][..], Vec::as_slice);
        let measure = if which == "mrelease" {
            "1. kill → process_mrelease returned"
        } else {
            "1. kill → victim reaped (wait returned)"
        };
        let mut row = Row::new(measure, cond.label(), "ms", values);
        if let Some(fails) = self.mrelease_failures.get(cond.label()) {
            row = row.note(format!(
                "{} mrelease call(s) failed {fails:?} (-3 ESRCH: the victim's exit finished first; not in this row)",
                fails.len()
            ));
        }
        row
    }

    fn overhead_rows(&self, rows: &mut Vec<Row>) {
        for which in ["mrelease", "reaped"] {
            let base = self.latency(which, Cond::None);
            let perf = self.latency(which, Cond::Perf);
            let floor = self.latency(which, Cond::Timer);
            for cond in OVERHEAD {
                let mut row = self.latency(which, cond).ratio_to(&base);
                if matches!(cond, Cond::Reaper | Cond::ReaperAll) {
                    row = row.versus(&perf, Goal::Time);
                }
                if matches!(cond, Cond::Reaper | Cond::Perf | Cond::ReaperAll) {
                    // What the profiler adds above the timer interrupts any
                    // sampler at this frequency takes on this machine.
                    if let Some(over) = row.ratio_over(&floor, "T") {
                        row = row.note(over);
                    }
                }
                if cond == Cond::ReaperAll && !self.function_probes_attached.is_empty() {
                    let attached = self
                        .function_probes_attached
                        .iter()
                        .max()
                        .copied()
                        .unwrap_or(0);
                    if attached == 0 {
                        row = row.note(
                            "= default set on this host: 0 function probes attached (fentry refused, no kprobes)",
                        );
                    }
                }
                rows.push(row);
            }
        }
    }

    fn answer_rows(&self, rows: &mut Vec<Row>) {
        self.answer_total_rows(rows);
        self.answer_step_rows(rows);
    }

    /// The time to answer in total, reaper's against perf's (its ratio's
    /// baseline).
    fn answer_total_rows(&self, rows: &mut Vec<Row>) {
        let total =
            |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x + y).collect() };
        let perf_total = Row::new(
            "2. time to answer: total",
            "perf: stop → perf.data + script → fold → SVG",
            "ms",
            &total(&self.perf_stop_to_exit, &self.perf_script_fold_svg),
        );
        let reaper_total_values = total(&self.reaper_stop_to_exit, &self.reaper_report);
        let reaper_total = Row::new(
            "2. time to answer: total",
            "reaper: stop → exit + reaper report",
            "ms",
            &reaper_total_values,
        )
        .ratio_to(&perf_total)
        .versus(&perf_total, Goal::Time);
        rows.push(reaper_total.note("ratio = reaper / perf"));
        rows.push(perf_total.note("baseline of the ratio"));
    }

    /// The steps of the time to answer: stopping each profiler, reaper's
    /// offline re-render, and perf's post-processing.
    fn answer_step_rows(&self, rows: &mut Vec<Row>) {
        let perf_exit = Row::new(
            "2. stop → profiler exited",
            "perf record",
            "ms",
            &self.perf_stop_to_exit,
        );
        rows.push(
            Row::new(
                "2. stop → profiler exited",
                "reaper record --watch",
                "ms",
                &self.reaper_stop_to_exit,
            )
            .versus(&perf_exit, Goal::Time)
            .note("writes run.json, prints the tables, writes folded + SVGs"),
        );
        rows.push(
            Row::new(
                "2. offline re-render",
                "reaper report run.json -o DIR",
                "ms",
                &self.reaper_report,
            )
            .note("tables + folded + SVGs again, no root"),
        );
        rows.push(perf_exit.note("perf.data written (incl. build-id pass)"));
        rows.push(Row::new(
            "2. perf script → fold → SVG",
            "perf + inferno (in-process)",
            "ms",
            &self.perf_script_fold_svg,
        ));
        rows.push(
            Row::new(
                "2. perf report --stdio",
                "perf (tables, extra)",
                "ms",
                &self.perf_report_tables,
            )
            .note("not in the total: perf's own tables"),
        );
    }

    fn startup_rows(&self, rows: &mut Vec<Row>) {
        let perf_start = Row::new(
            "3. start-up: spawn → events enabled",
            "perf record -a -g (-D -1, control FIFO ack)",
            "ms",
            &self.perf_startup,
        );
        rows.push(
            Row::new(
                "3. start-up: spawn → \"watching\"",
                "reaper record --watch",
                "ms",
                &self.reaper_startup,
            )
            .ratio_to(&perf_start)
            .versus(&perf_start, Goal::Time)
            .note("all probes attached; every reaper start of B, D, E, F; ratio = reaper / perf"),
        );
        rows.push(perf_start.note("every perf start of C, E"));
        let perf_rss = Row::new(
            "3. peak RSS (wait4 ru_maxrss)",
            "perf record -a -g",
            "MiB",
            &self.perf_rss_mib,
        );
        let reaper_rss = Row::new(
            "3. peak RSS (wait4 ru_maxrss)",
            "reaper record --watch",
            "MiB",
            &self.reaper_rss_mib,
        )
        .ratio_to(&perf_rss)
        .versus(&perf_rss, Goal::Memory);
        rows.push(reaper_rss.note("ratio = reaper / perf"));
        rows.push(perf_rss);
    }

    fn capacity_rows(&self, rows: &mut Vec<Row>) {
        for cond in [Cond::Capacity, Cond::CapacityWide] {
            self.capacity(cond).rows(cond, rows);
        }
    }

    fn accuracy_rows(&self, rows: &mut Vec<Row>) {
        let pairs = [
            (
                "exit_mmap (victim pid)",
                &self.acc_exit_mmap_reaper,
                &self.acc_exit_mmap_perf,
                &self.acc_exit_mmap_rel_pct,
            ),
            (
                "__oom_reap_task_mm (driver's mrelease tid)",
                &self.acc_reap_reaper,
                &self.acc_reap_perf,
                &self.acc_reap_rel_pct,
            ),
        ];
        for (what, reaper, perf, rel) in pairs {
            let perf_row = Row::new(&format!("5. period of {what}"), "perf script", "ms", perf);
            rows.push(
                Row::new(
                    &format!("5. period of {what}"),
                    "reaper run.json",
                    "ms",
                    reaper,
                )
                .ratio_to(&perf_row)
                .versus(&perf_row, Goal::Agree),
            );
            rows.push(perf_row);
            rows.push(Row::new(
                &format!("5. relative difference, {what}"),
                "(reaper − perf) / perf",
                "%",
                rel,
            ));
        }
    }

    /// Issue 25's row: the collision logs of `record --exact-locks`, on
    /// against off, need function probes, and the host bench records with
    /// `--watch`, where function timing never runs (its in-kernel
    /// aggregates are per context, and watched episodes overlap), whatever
    /// the kernel allows; so the row says why and where it is measured.
    fn collision_log_row(&self) -> Row {
        Row::new(
            "1. collision logs' cost per episode and kernel memory",
            "reaper record --exact-locks, logs on vs --no-collision-log",
            "ms",
            &[],
        )
        .note(
            "not measured here (the host bench records with --watch, where no function probe \
             runs, and the collision logs are written by them); run `cargo xtask bench \
             --collisions-vm sid/x86_64`, on vs off in a VM"
                .to_owned(),
        )
    }

    /// Every row of the result table.
    pub fn rows(&self, _cfg: &Config) -> Vec<Row> {
        let mut rows = Vec::new();
        self.overhead_rows(&mut rows);
        rows.push(self.collision_log_row());
        self.answer_rows(&mut rows);
        self.startup_rows(&mut rows);
        self.capacity_rows(&mut rows);
        self.accuracy_rows(&mut rows);
        rows
    }

    /// H's table: each of reaper's programs' kernel time per round (the
    /// whole watch: attach to stop), from the kernel's run statistics, the
    /// most expensive first; empty when no H round had them.
    pub fn program_cost_table(&self) -> String {
        if self.program_cost_rounds == 0 {
            return String::new();
        }
        let rows = self.program_cost_rows();
        let per_round: Vec<u64> = (0..self.program_cost_rounds)
            .map(|i| self.program_costs.values().map(|r| r[i].1).sum())
            .collect();
        let median = |mut v: Vec<u64>| {
            v.sort_unstable();
            v[(v.len() - 1) / 2]
        };
        let mut out = format!(
            concat!(
                "## Where the overhead goes: reaper's programs in the kernel (H, {} round{})\n\n",
                "Each program's runs and time as the kernel counts them (`bpf_prog_info` run_cnt and ",
                "run_time_ns, switched on by `reaper record --program-cost` through BPF_ENABLE_STATS), ",
                "over the whole watch of a round (attach → stop: the episode, the {} ms after it, and ",
                "every other process's syscalls and samples meanwhile), median per round; share: of all ",
                "programs' time summed over the rounds. The programs' own time, without the perf-event, ",
                "trampoline or tracepoint entry around them.\n\n",
                "| program | runs per round | ns per run | ms per round | share |\n|---|---|---|---|---|\n"
            ),
            self.program_cost_rounds,
            if self.program_cost_rounds == 1 {
                ""
            } else {
                "s"
            },
            super::SETTLE_AFTER.as_millis()
        );
        for (_, line) in rows {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&format!(
            "| all programs | | | {:.3} | 100% |\n",
            median(per_round) as f64 / 1e6
        ));
        out
    }

    /// H's table rows, `(median ns per round, markdown line)`, the most
    /// expensive first.
    fn program_cost_rows(&self) -> Vec<(u64, String)> {
        let median = |mut v: Vec<u64>| {
            v.sort_unstable();
            v[(v.len() - 1) / 2]
        };
        let all_ns: u64 = self
            .program_costs
            .values()
            .flat_map(|r| r.iter().map(|&(_, ns)| ns))
            .sum();
        let mut rows: Vec<(u64, String)> = self
            .program_costs
            .iter()
            .map(|(program, rounds)| {
                let runs: u64 = rounds.iter().map(|&(r, _)| r).sum();
                let ns: u64 = rounds.iter().map(|&(_, n)| n).sum();
                let round_ns = median(rounds.iter().map(|&(_, n)| n).collect());
                let line = format!(
                    "| {program} | {} | {:.1} | {:.3} | {:.1}% |",
                    median(rounds.iter().map(|&(r, _)| r).collect()),
                    ns as f64 / runs.max(1) as f64,
                    round_ns as f64 / 1e6,
                    100.0 * ns as f64 / all_ns.max(1) as f64
                );
                (round_ns, line)
            })
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        rows
    }

    /// What each figure measures, below the table.
    pub fn notes(&self, cfg: &Config) -> String {
        let mut notes = format!(
            "Notes:\n\
- 1: the benchmark's own driver (not reaper's numbers): a `reaper __victim` of {} (64 VMAs, 1 extra thread, every page touched) pinned away from the driver thread; CLOCK_MONOTONIC before pidfd_send_signal(SIGKILL), immediately process_mrelease(pidfd), time at return, then waitpid. Background profilers are started after the victim is ready and stopped (SIGINT) {} ms after it is reaped; only the teardown is timed. In A, T, B, C and D each round times {} teardown(s) one after the other under one profiler session, each later victim made (untimed) {} ms after the previous one was reaped, so those rows have rounds × {} values; time to answer, start-up and peak RSS are per session (of that many teardowns), E-H one teardown a round. Ratio = median / median of A.\n\
- T: the sampling floor. A cpu-clock perf event at {} Hz on every online CPU, opened by the driver itself, with no ring buffer, no stack unwind and no program: only the timer interrupts that any cpu-clock sampler at this frequency takes (on a virtual machine each expiry is a VM exit and a timer re-arm). \"over T\" in the notes of B, C and D is that row's median over T's, with the same bootstrap interval: what the profiler adds above the floor. A profiler can choose its frequency, not the price of a timer interrupt on the machine.\n\
- D: reaper's `--attach auto` tries fentry/fexit then kprobe/kretprobe per function; on a host where neither loads it attaches exactly the default set (sampling + lock + timeline tracepoints), so D is a second sample of B, not a different configuration.\n\
- 2: from SIGINT (after the teardown) to the answer on disk. reaper: `record --watch` exits after writing run.json, printing its tables and writing folded stacks + flame graph SVGs; `reaper report run.json -o DIR` re-renders all of that offline and is added to the total (conservative). perf: `perf record` exits after writing perf.data, then `perf script` → inferno collapse-perf (in-process) → inferno flame graph SVG. perf.data holds every task on every CPU; reaper keeps only the teardown episodes.\n\
- reaper vs perf: the ratio of medians (reaper / perf) and its 95% bootstrap interval (10,000 independent resamples of each side's values with replacement, fixed seed); a side wins only when the whole interval is on its side of 1.0, else \"inside the noise\" (for accuracy: \"agree\"). Rows without a perf counterpart (A, perf's own rows, capacity) show -.\n\
- 3: reaper's userspace only (BPF maps live in the kernel and are not in ru_maxrss).\n\
- 4: counters are reaper's kernel-side counters for the whole watch (each episode in run.json carries the running totals, so the largest is taken); every counter whose name says full/lost/evicted is listed, zero or not.\n\
- 5: same episodes seen by both profilers at {} Hz each; reaper: sum of period_ns of the context's stacks containing the frame; perf: `perf script -F ...,period,...` samples of the same pid/tid whose callchain contains the symbol × the printed period. Two independent samplers, so a few samples of difference are expected at this episode length.\n",
            human_size(cfg.size),
            super::SETTLE_AFTER.as_millis(),
            cfg.episodes,
            super::SETTLE_AFTER.as_millis(),
            cfg.episodes,
            cfg.freq,
            cfg.freq
        );
        if self.reaper_missed_episodes > 0 {
            notes.push_str(&format!(
                "- WARNING: reaper's run.json lacked {} episode(s) the driver ran.\n",
                self.reaper_missed_episodes
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reaper_model::ProgramCost;

    fn run_with(costs: &[(&str, u64, u64)]) -> crate::reaper_json::Run {
        let path = crate::workspace::workspace_root()
            .join("reaper-cli/tests/data/compare/vm-6.1-forward/run.json");
        let mut run: crate::reaper_json::Run =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        run.program_costs = costs
            .iter()
            .map(|&(p, runs, run_ns)| (p.to_owned(), ProgramCost { runs, run_ns }))
            .collect();
        run
    }

    #[test]
    fn the_collision_log_row_says_why_it_is_not_measured_here() {
        let md = crate::bench::stats::markdown(&[Results::default().collision_log_row()]);
        assert!(
            md.contains("| 0 | not measured | - | - | - | not measured here (the host bench records with --watch, where no function probe runs"),
            "{md}"
        );
        assert!(
            md.contains("cargo xtask bench --collisions-vm sid/x86_64"),
            "{md}"
        );
    }

    #[test]
    fn the_program_cost_table_has_medians_per_round_and_counts_absent_rounds_as_zero() {
        let mut res = Results::default();
        assert_eq!(res.program_cost_table(), "");
        res.push_program_costs(&run_with(&[("sample_cpu_clock", 100, 300_000)]));
        res.push_program_costs(&run_with(&[
            ("sample_cpu_clock", 300, 900_000),
            ("raw_contention_begin", 50, 100_000),
        ]));
        res.push_program_costs(&run_with(&[("sample_cpu_clock", 200, 600_000)]));
        // A round without costs (an older reaper) is not a round of H.
        res.push_program_costs(&run_with(&[]));
        let table = res.program_cost_table();
        assert!(table.contains("(H, 3 rounds)"), "{table}");
        // Median of 300, 900 and 600 µs; 1.8 ms of 1.9 ms in all.
        assert!(
            table.contains("| sample_cpu_clock | 200 | 3000.0 | 0.600 | 94.7% |"),
            "{table}"
        );
        // Ran in one round of three: median 0.
        assert!(
            table.contains("| raw_contention_begin | 0 | 2000.0 | 0.000 | 5.3% |"),
            "{table}"
        );
        // Per round 0.3, 1.0 and 0.6 ms: median 0.6.
        assert!(
            table.contains("| all programs | | | 0.600 | 100% |"),
            "{table}"
        );
        let sample = table.find("sample_cpu_clock").unwrap();
        assert!(sample < table.find("raw_contention_begin").unwrap());
    }
}
