//! `reaper diff A B`: the thread's summary table with both sides as
//! columns, per-context function tables, and differential flame graphs.
//! Exit code 0 on success; 2 for inputs that are not comparable reaper run
//! files; 1 when writing the flame graphs fails (see [`crate::exit`]).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::compare::{self, diff::DiffOptions, flame, text};
use crate::console::{say, sayln};

/// What `diff --help` says beyond the flags.
const DIFF_NOTES: &str = "A and B are each a run.json or a directory searched recursively for run \
files (e.g. the -o directories of several `reaper record --runs N` invocations). Each cell is \
the median over the episodes the row may use, with min–max: lost mrelease races and partial \
episodes are left out of every row, a loss only out of the rows it can bias (a lost stack out of \
the sampled rows past --max-stack-loss, a full timeline ring out of the latencies, untimed calls \
out of exact timing); each row says how many episodes it used. The run (run file) is the statistical unit: with 4 or more runs on \
both sides a two-sided Mann-Whitney U test of the run medians says whether a difference is \
outside the run-to-run noise.";

/// Arguments of `reaper diff`.
#[derive(Clone, Debug, Args)]
#[command(after_help = super::help::after_help("diff", DIFF_NOTES))]
pub struct DiffArgs {
    /// Side A: a run.json or a directory of runs.
    pub a: PathBuf,
    /// Side B: a run.json or a directory of runs.
    pub b: PathBuf,
    /// Column label of A [default: kernel release and scenario].
    #[arg(long, value_name = "LABEL")]
    pub label_a: Option<String>,
    /// Column label of B [default: kernel release and scenario].
    #[arg(long, value_name = "LABEL")]
    pub label_b: Option<String>,
    /// Write differential flame graphs (<context>.a-vs-b.diff.svg and
    /// <context>.b-vs-a.diff.svg) and each side's pprof profile (a.pb.gz,
    /// b.pb.gz, for `go tool pprof -diff_base a.pb.gz b.pb.gz`) into DIR.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print the diff as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Compare even when the victim sizes differ by more than 10%.
    #[arg(long)]
    pub force: bool,
    /// Rows of each per-context table beyond the catalog functions.
    #[arg(long, value_name = "N", default_value_t = compare::diff::DEFAULT_TOP)]
    pub top: usize,
    /// Largest share of an episode's samples without a kernel stack, in
    /// percent, for which its sampled figures (totals, sampled rows, function
    /// tables, flame graphs) are still used; its latencies and exact timing
    /// are used whatever its stack loss.
    #[arg(long, value_name = "PCT", default_value_t = compare::clean::DEFAULT_MAX_STACK_LOSS_PCT, value_parser = parse_pct)]
    pub max_stack_loss: f64,
    /// What may be read.
    #[command(flatten)]
    pub input: super::InputArgs,
}

/// A `PCT` flag's value that is not a percentage between 0 and 100.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{raw:?} is not a percentage between 0 and 100")]
pub struct PctError {
    /// The value as given.
    pub raw: String,
}

/// A percentage between 0 and 100.
pub fn parse_pct(raw: &str) -> Result<f64, PctError> {
    let trimmed = raw.strip_suffix('%').unwrap_or(raw);
    match trimmed.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(PctError {
            raw: raw.to_owned(),
        }),
    }
}

/// Loads both sides, prints the diff and writes the flame graphs.
pub fn run(args: &DiffArgs) -> anyhow::Result<i32> {
    super::stdout::refuse_dash(
        args.output.as_deref(),
        "diff",
        "differential flame graphs and a pprof pair",
    )?;
    let budget = args.input.budget();
    let pair = compare::load_pair_within(("A", &args.a), ("B", &args.b), args.force, &budget)?;
    let opts = DiffOptions {
        label_a: args.label_a.clone(),
        label_b: args.label_b.clone(),
        top: args.top,
        policy: compare::clean::LossPolicy {
            max_stack_loss_pct: args.max_stack_loss,
        },
    };
    let d = compare::diff::diff(&pair.a, &pair.b, pair.notes, &opts);
    if let Some(dir) = &args.output {
        let labels = (d.header.a.label.as_str(), d.header.b.label.as_str());
        write_outputs((&pair.a, &pair.b), labels, &opts.policy, dir)?;
    }
    if args.json {
        sayln!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        say!("{}", text::render(&d));
    }
    Ok(0)
}

/// `diff -o`: the differential flame graphs, the side-by-side collision
/// maps and a pprof pair, all rendered before the first file is written.
fn write_outputs(
    (a, b): (&compare::load::RunSet, &compare::load::RunSet),
    labels: (&str, &str),
    policy: &compare::clean::LossPolicy,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    // Checked, then everything rendered, before the first file is
    // written: a failure leaves no half-written set.
    let out = crate::output::OutputDir::create(dir)?;
    let flames = flame::render_all(a, b, labels, policy)
        .with_context(|| format!("rendering differential flame graphs for {}", dir.display()))?;
    let graphs = flames.files.len();
    let mut files = flames.files;
    let maps = compare::collision::side_by_side(a, b, labels);
    let map_count = maps.len();
    files.extend(maps);
    files.extend(
        crate::report::pprof::encode_pair(a, b).map(|(name, bytes)| (name.to_owned(), bytes)),
    );
    let written = out.write_all(&files)?;
    crate::console::info(format_args!(
        "wrote {graphs} differential flame graphs to {}",
        dir.display()
    ));
    if map_count > 0 {
        crate::console::info(format_args!(
            "wrote {map_count} side-by-side collision map(s) to {}",
            dir.display()
        ));
    }
    for (name, side) in &flames.left_out {
        crate::console::info(format_args!(
            "not drawn: {name} ({side} has no samples in this context)"
        ));
    }
    if let [.., a, b] = written.as_slice() {
        crate::console::info(format_args!(
            "compare in pprof with: go tool pprof -diff_base {} {}",
            a.display(),
            b.display()
        ));
    }
    Ok(())
}
