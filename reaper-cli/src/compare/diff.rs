//! The diff model: what `reaper diff` prints, computed once from two run
//! sets. Renderers (`render_text`, JSON through serde) only read it. The
//! types are reaper-model's ([`reaper_model::output::diff`]), so readers of
//! `--json` decode what this module fills.

use crate::model::{AttachMode, Run};
use crate::report::losses::is_loss;

use super::clean::{LossPolicy, Scope, StackLoss, coverage};
use super::comparable::{format_bytes, victim_bytes};
use super::design::DesignCheck;
use super::exact::exact;
use super::functions::{context_series, contexts};
use super::load::RunSet;
use super::metrics::{METRICS, Part, Samples, samples};
use super::quantity::comparison;
use super::runlevel::group;

pub use reaper_model::output::diff::{
    CollisionDiff, CollisionDiffRow, ContextTable, Diff, Exact, ExactRow, FunctionRow, Header,
    MetricRow, ScopeUsage, SideInfo, Sides, StackLossSummary,
};

/// Rows of each per-context function table beyond the catalog concepts.
pub const DEFAULT_TOP: usize = 15;

/// How to build a diff.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffOptions {
    /// Column label of A (default: kernel release and scenario).
    pub label_a: Option<String>,
    /// Column label of B.
    pub label_b: Option<String>,
    /// Per-context table rows beyond the catalog concepts.
    pub top: usize,
    /// Which losses leave an episode out of which figures.
    pub policy: LossPolicy,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            label_a: None,
            label_b: None,
            top: DEFAULT_TOP,
            policy: LossPolicy::default(),
        }
    }
}

fn stack_loss(set: &RunSet, policy: &LossPolicy) -> StackLossSummary {
    let mut out = StackLossSummary {
        samples: 0,
        lost: 0,
        worst_episode_pct: 0.0,
        over_tolerance: 0,
    };
    for e in set.runs.iter().flat_map(|r| &r.run.episodes) {
        let s = StackLoss::of(e);
        out.samples += s.samples;
        out.lost += s.lost;
        out.worst_episode_pct = out.worst_episode_pct.max(s.pct());
        out.over_tolerance += usize::from(s.pct() > policy.max_stack_loss_pct);
    }
    out
}

fn usage(set: &RunSet, policy: &LossPolicy, timing: &super::exact::ExactTiming) -> Vec<ScopeUsage> {
    let episodes = || set.runs.iter().flat_map(|r| &r.run.episodes);
    let mut out: Vec<ScopeUsage> = [Scope::Sampled, Scope::Latency]
        .into_iter()
        .map(|scope| ScopeUsage {
            scope,
            coverage: coverage(episodes(), scope, policy, |_| true),
        })
        .collect();
    if timing.with_timing > 0 {
        out.push(ScopeUsage {
            scope: Scope::Exact,
            coverage: timing.coverage.clone(),
        });
    }
    out
}

/// Every loss counter over a side's episodes, summed by name: the kernel
/// side's, user space's (`user:`), skipped probe runs and function
/// timing's.
fn losses(set: &RunSet) -> std::collections::BTreeMap<String, u64> {
    let mut losses: std::collections::BTreeMap<String, u64> = Default::default();
    for episode in set.runs.iter().flat_map(|r| &r.run.episodes) {
        for (name, &value) in &episode.counters {
            if value > 0 && is_loss(name) {
                *losses.entry(name.clone()).or_default() += value;
            }
        }
        for (name, &value) in &episode.user_losses {
            if value > 0 {
                *losses.entry(format!("user:{name}")).or_default() += value;
            }
        }
        for (what, &value) in &episode.skipped_probe_runs {
            *losses
                .entry(crate::report::losses::skipped_counter(what))
                .or_default() += value;
        }
        if let Some(timing) = &episode.function_timing {
            for (name, &value) in &timing.losses {
                if value > 0 {
                    *losses.entry(name.clone()).or_default() += value;
                }
            }
        }
    }
    losses
}

fn side_info(set: &RunSet, label: Option<&str>, policy: &LossPolicy) -> SideInfo {
    let timing = exact(set, policy);
    let losses = losses(set);
    SideInfo {
        label: label.map_or_else(|| set.default_label(), str::to_owned),
        path: set.path.display().to_string(),
        runs: set.runs.len(),
        episodes: set.episodes(),
        complete_episodes: set.complete_episodes(),
        usage: usage(set, policy, &timing),
        stack_loss: stack_loss(set, policy),
        kernels: set.distinct(|r| r.host.kernel_release.clone()),
        archs: set.distinct(|r| r.host.arch.clone()),
        cpus: set.distinct(|r| r.host.cpus.to_string()),
        freqs: set.distinct(|r| format!("{} Hz", r.recording.freq_hz)),
        scenarios: set.distinct(|r| r.recording.scenario.label().to_owned()),
        victim_sizes: set
            .distinct(|r: &Run| victim_bytes(r).map_or("unknown".to_owned(), format_bytes)),
        tools: set.distinct(|r| format!("{} {}", r.tool.name, r.tool.version)),
        function_probes: if timing.modes.is_empty() {
            vec![AttachMode::None.name().to_owned()]
        } else {
            timing.modes.clone()
        },
        reaper_order: if timing.reaper_orders.is_empty() {
            "unknown (needs fentry or kprobe)".to_owned()
        } else {
            timing
                .reaper_orders
                .iter()
                .map(|(order, n)| format!("{order} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        partial_runs: set.runs.iter().filter(|r| r.run.partial).count(),
        losses: losses.into_iter().collect(),
    }
}

fn differences(a: &SideInfo, b: &SideInfo) -> Vec<String> {
    let fields: [(&str, &Vec<String>, &Vec<String>); 8] = [
        ("kernel", &a.kernels, &b.kernels),
        ("arch", &a.archs, &b.archs),
        ("CPUs", &a.cpus, &b.cpus),
        ("sampling", &a.freqs, &b.freqs),
        ("scenario", &a.scenarios, &b.scenarios),
        ("victim size", &a.victim_sizes, &b.victim_sizes),
        ("tool", &a.tools, &b.tools),
        (
            "function probes (their overhead inflates times)",
            &a.function_probes,
            &b.function_probes,
        ),
    ];
    let mut out: Vec<String> = fields
        .iter()
        .filter(|(_, x, y)| x != y)
        .map(|(name, x, y)| format!("{name}: {} → {}", x.join(", "), y.join(", ")))
        .collect();
    if a.reaper_order != b.reaper_order {
        out.push(format!(
            "reaper VMA order: {} → {}",
            a.reaper_order, b.reaper_order
        ));
    }
    out
}

/// The row label: the report's, or "a → b time" when the kernels name the
/// function differently.
fn row_label(a: &[String], b: &[String], fallback: &str) -> String {
    let mut labels: Vec<&str> = a.iter().map(String::as_str).collect();
    labels.extend(
        b.iter()
            .map(String::as_str)
            .filter(|l| !a.iter().any(|x| x == l)),
    );
    match labels.as_slice() {
        [] => fallback.to_owned(),
        [one] => (*one).to_owned(),
        many => {
            let stems: Option<Vec<&str>> = many.iter().map(|l| l.strip_suffix(" time")).collect();
            match stems {
                Some(stems) => format!("{} time", stems.join(" → ")),
                None => many.join(" / "),
            }
        }
    }
}

fn metric_rows(sa: &[Samples], sb: &[Samples]) -> Vec<MetricRow> {
    METRICS
        .iter()
        .zip(sa.iter().zip(sb))
        .map(|(metric, (x, y))| MetricRow {
            metric: metric.name.to_owned(),
            label: row_label(&x.labels, &y.labels, metric.name),
            row: metric.row,
            part: metric.part,
            comparison: comparison(
                &x.runs,
                &y.runs,
                || x.why_not().unwrap_or_default(),
                || y.why_not().unwrap_or_default(),
            )
            .covering(x.coverage.clone(), y.coverage.clone()),
        })
        .collect()
}

fn exact_section(a: &RunSet, b: &RunSet, policy: &LossPolicy) -> Exact {
    let (ea, eb) = (exact(a, policy), exact(b, policy));
    if let Some(why) = exact_not_measured(&ea, &eb, policy) {
        return Exact {
            not_measured: Some(why),
            coverage: super::quantity::Coverages {
                a: ea.coverage,
                b: eb.coverage,
            },
            rows: Vec::new(),
        };
    }
    let rows = exact_rows(&ea, &eb);
    Exact {
        not_measured: rows
            .is_empty()
            .then(|| "the two sides timed no function in common".to_owned()),
        coverage: super::quantity::Coverages {
            a: ea.coverage,
            b: eb.coverage,
        },
        rows,
    }
}

/// Why exact timing cannot be compared: a side without it, or whose
/// episodes with it were all left out. `None` when it can.
fn exact_not_measured(
    ea: &super::exact::ExactTiming,
    eb: &super::exact::ExactTiming,
    policy: &LossPolicy,
) -> Option<String> {
    let has = |t: &super::exact::ExactTiming| t.with_timing > 0;
    let why = match (has(ea), has(eb)) {
        (false, false) => Some("neither side has it; it needs fentry/fexit or kprobes".to_owned()),
        (false, true) => Some("only B has it".to_owned()),
        (true, false) => Some("only A has it".to_owned()),
        _ => None,
    };
    why.or_else(|| match (ea.episodes, eb.episodes) {
        (0, _) => Some(format!(
            "A's episodes with it were all left out: {}",
            ea.coverage.reasons(policy)
        )),
        (_, 0) => Some(format!(
            "B's episodes with it were all left out: {}",
            eb.coverage.reasons(policy)
        )),
        _ => None,
    })
}

/// One row per (context, function) both sides timed, the functions named
/// by their symbols ("a → b" when the sides differ).
fn exact_rows(ea: &super::exact::ExactTiming, eb: &super::exact::ExactTiming) -> Vec<ExactRow> {
    ea.series
        .iter()
        .filter_map(|(key, xa)| {
            let xb = eb.series.get(key)?;
            let names = |t: &super::exact::ExactTiming| {
                t.symbols.get(key).cloned().unwrap_or_default().join(", ")
            };
            let (na, nb) = (names(ea), names(eb));
            let symbols = if na == nb {
                na
            } else {
                format!("{na} → {nb}")
            };
            let function = if symbols == key.1 {
                symbols
            } else {
                format!("{symbols} [{}]", key.1)
            };
            Some(ExactRow {
                context: key.0.clone(),
                function,
                comparison: comparison(
                    &group(xa, &ea.run_of),
                    &group(xb, &eb.run_of),
                    String::new,
                    String::new,
                )
                .covering(ea.coverage.clone(), eb.coverage.clone()),
            })
        })
        .collect()
}

fn context_tables(a: &RunSet, b: &RunSet, top: usize, policy: &LossPolicy) -> Vec<ContextTable> {
    let used = |set: &RunSet| {
        coverage(
            set.runs.iter().flat_map(|r| &r.run.episodes),
            Scope::Sampled,
            policy,
            |_| true,
        )
    };
    let coverage = super::quantity::Coverages {
        a: used(a),
        b: used(b),
    };
    contexts(a, b)
        .into_iter()
        .map(|context| {
            let rows = context_series(a, b, context, top, policy)
                .into_iter()
                .map(|s| FunctionRow {
                    concept: s.concept,
                    name: s.name,
                    comparison: comparison(
                        &group(&s.a, &s.runs_a),
                        &group(&s.b, &s.runs_b),
                        || s.why_a.clone().unwrap_or_default(),
                        || s.why_b.clone().unwrap_or_default(),
                    )
                    .covering(s.coverage_a, s.coverage_b),
                })
                .collect();
            ContextTable {
                label: context.label().to_owned(),
                context,
                coverage: coverage.clone(),
                rows,
            }
        })
        .collect()
}

/// Short default labels for two sides whose kernel release and scenario
/// read the same (e.g. one source without and with a patch): each side's
/// last path component, or "first" and "second" when those match too (the
/// renderers already prefix "A:" and "B:").
pub fn distinct_labels(a: &std::path::Path, b: &std::path::Path) -> (String, String) {
    let tail = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (ta, tb) = (tail(a), tail(b));
    if ta.is_empty() || ta == tb {
        ("first".to_owned(), "second".to_owned())
    } else {
        (ta, tb)
    }
}

/// The header alone: both sides and how they differ.
pub fn header(a: &RunSet, b: &RunSet, notes: Vec<String>, opts: &DiffOptions) -> Header {
    let (mut info_a, mut info_b) = (
        side_info(a, opts.label_a.as_deref(), &opts.policy),
        side_info(b, opts.label_b.as_deref(), &opts.policy),
    );
    if info_a.label == info_b.label {
        let (la, lb) = distinct_labels(&a.path, &b.path);
        if opts.label_a.is_none() {
            info_a.label = la;
        }
        if opts.label_b.is_none() {
            info_b.label = lb;
        }
    }
    Header {
        differences: differences(&info_a, &info_b),
        a: info_a,
        b: info_b,
        notes,
        policy: opts.policy,
    }
}

/// The design check over the metrics `pick`ed (by index into [`METRICS`]),
/// trends judged at `alpha`.
pub fn design_check(
    (a, sa): (&RunSet, &[Samples]),
    (b, sb): (&RunSet, &[Samples]),
    pick: impl Fn(usize) -> bool,
    alpha: f64,
) -> DesignCheck {
    fn view<'s>(
        s: &'s [Samples],
        pick: &dyn Fn(usize) -> bool,
    ) -> Vec<(&'static str, &'s [Vec<f64>])> {
        s.iter()
            .enumerate()
            .filter(|(i, _)| pick(*i))
            .map(|(i, x)| (METRICS[i].name, x.runs.as_slice()))
            .collect()
    }
    super::design::check(a, b, &view(sa, &pick), &view(sb, &pick), alpha)
}

/// Builds the diff of two (comparable) run sets.
pub fn diff(a: &RunSet, b: &RunSet, notes: Vec<String>, opts: &DiffOptions) -> Diff {
    let (sa, sb) = (samples(a, &opts.policy), samples(b, &opts.policy));
    Diff {
        header: header(a, b, notes, opts),
        metrics: metric_rows(&sa, &sb),
        design: design_check(
            (a, &sa),
            (b, &sb),
            |i| METRICS[i].part == Part::Total,
            super::quantity::DIFF_ALPHA,
        ),
        exact: exact_section(a, b, &opts.policy),
        contexts: context_tables(a, b, opts.top, &opts.policy),
        collisions: super::collision::diff_table(a, b),
    }
}

#[cfg(test)]
mod label_tests {
    use std::path::Path;

    use super::distinct_labels;

    /// Regression: one kernel source without and with a patch gave both
    /// sides the same default label ("6.1.172 victim 256M,… + process_mrelease").
    #[test]
    fn identical_sides_get_short_distinct_labels() {
        assert_eq!(
            distinct_labels(Path::new("out/without-patch"), Path::new("out/with-patch")),
            ("without-patch".to_owned(), "with-patch".to_owned())
        );
        assert_eq!(
            distinct_labels(Path::new("x/run.json"), Path::new("y/run.json")),
            ("first".to_owned(), "second".to_owned())
        );
    }
}
