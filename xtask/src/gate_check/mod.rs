//! `cargo xtask gate-check`: the gate's error rates, measured on the
//! machine at hand.
//!
//! Records A/A run sets (the same configuration, nothing changed) and run
//! sets of a real regression (a victim of the same size whose VMA layout
//! makes the kernel's teardown do different work), each set `--runs`
//! `reaper record` invocations of `--episodes` episodes, interleaved round
//! by round in a rotated order (as the README tells a CI job to record
//! baseline and candidate), or with `--blocked` one set after another (as
//! a CI job should not). Then it runs `reaper gate` with its defaults on
//! every ordered pair of A/A sets (the false-alarm rate) and on every
//! (A/A baseline, regression candidate) pair (the detection rate), and
//! prints both side by side, with how many pairs the gate warned of a
//! blocked design or drift, and how many A/A pairs it could call
//! equivalent (no change beyond ±`--equivalence`).

mod evaluate;
mod record;

use std::path::PathBuf;

use anyhow::{Context as _, Result, ensure};

/// Arguments of `cargo xtask gate-check`.
#[derive(clap::Args)]
pub struct GateCheckArgs {
    /// A/A run sets (all ordered pairs are gated: 8 sets give 56).
    #[arg(long, default_value_t = 8)]
    pub sets: usize,
    /// Run sets of the regression.
    #[arg(long, default_value_t = 4)]
    pub regression_sets: usize,
    /// `reaper record` invocations (runs) per set: the gate needs 5 per
    /// side (issue 22's experiment: 8 sets × 5 runs × 3 episodes).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Episodes per invocation (`reaper record --runs`).
    #[arg(long, default_value_t = 3)]
    pub episodes: usize,
    /// The A/A victim (`reaper record --victim`).
    #[arg(long, default_value = "256M")]
    pub victim: String,
    /// The regression's victim: same size, different VMA layout.
    #[arg(long, default_value = "256M,vmas=16384")]
    pub regression_victim: String,
    /// `reaper record --stack-map-size` for every recording [default:
    /// reaper's own, which the VM matrix's no-lost-stacks check keeps free
    /// of losses].
    #[arg(long, value_name = "N")]
    pub stack_map_size: Option<u32>,
    /// Record the sets one after another (all runs of set 1, then set 2, …)
    /// instead of interleaved: the design a CI job must not use, to check
    /// that the gate names it.
    #[arg(long)]
    pub blocked: bool,
    /// Where the run sets and the result go.
    #[arg(long, default_value = "target/gate-check")]
    pub out: PathBuf,
    /// Cheap pipeline check for CI: 3 A/A sets and 1 regression set of
    /// 2 runs × 1 episode; rates are printed but mean nothing.
    #[arg(long)]
    pub smoke: bool,
    /// Do not record: gate the run sets already under --out again.
    #[arg(long)]
    pub no_record: bool,
}

/// One recorded run set.
#[derive(Clone, Debug)]
pub struct SetPlan {
    /// Directory name, e.g. "aa-3" or "reg-1".
    pub name: String,
    /// `--victim` value.
    pub victim: String,
    /// Whether it is an A/A set.
    pub aa: bool,
}

fn plan(args: &GateCheckArgs) -> Vec<SetPlan> {
    let aa = (1..=args.sets).map(|i| SetPlan {
        name: format!("aa-{i}"),
        victim: args.victim.clone(),
        aa: true,
    });
    let reg = (1..=args.regression_sets).map(|i| SetPlan {
        name: format!("reg-{i}"),
        victim: args.regression_victim.clone(),
        aa: false,
    });
    aa.chain(reg).collect()
}

/// Runs the check.
pub fn run(mut args: GateCheckArgs) -> Result<std::process::ExitCode> {
    if args.smoke {
        (args.sets, args.regression_sets, args.runs, args.episodes) = (3, 1, 2, 1);
    }
    ensure!(
        args.sets >= 2,
        "--sets must be at least 2 (pairs of A/A sets)"
    );
    ensure!(
        args.runs >= 1 && args.episodes >= 1,
        "--runs and --episodes must be at least 1"
    );
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        crate::workspace::workspace_root().join(&args.out)
    };
    let reaper = crate::run::build_reaper()?;
    let sets = plan(&args);
    let started = std::time::Instant::now();
    let machine = crate::bench::machine_description();
    let load_before = record::loadavg();
    let recording = record_sets(&args, &reaper, &out, &sets)?;
    let load_after = record::loadavg();
    let result = evaluate::evaluate(&reaper, &out.join("sets"), &sets)?;
    let command = command_line(&args);
    let doc = format!(
        "# cargo xtask gate-check\n\n{machine}\n\nCommand: `{command}`{}\n\nRecording: {recording}.\nLoad average before: {load_before}; after: {load_after}.\n\n{}\nTotal time: {:.0} s.\n",
        if args.smoke {
            " (--smoke: too few runs for the figures to mean anything)"
        } else {
            ""
        },
        result.markdown(),
        started.elapsed().as_secs_f64()
    );
    println!("{doc}");
    std::fs::write(out.join("gate-check.md"), &doc)
        .with_context(|| format!("writing {}", out.join("gate-check.md").display()))?;
    eprintln!(
        "xtask gate-check: wrote {}",
        out.join("gate-check.md").display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Records every run set into `out`/sets (unless `--no-record`) and says
/// how, for the report.
fn record_sets(
    args: &GateCheckArgs,
    reaper: &std::path::Path,
    out: &std::path::Path,
    sets: &[SetPlan],
) -> Result<String> {
    Ok(if args.no_record {
        format!(
            "not recorded by this invocation (--no-record): the run sets already in {}",
            out.display()
        )
    } else {
        ensure!(
            crate::run::is_root(),
            "cargo xtask gate-check records with reaper and needs root; run it with sudo (or --no-record)"
        );
        let dir = out.join("sets");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let extra: Vec<String> = args
            .stack_map_size
            .map(|n| vec!["--stack-map-size".to_owned(), n.to_string()])
            .unwrap_or_default();
        let took = record::record_all(
            reaper,
            &dir,
            sets,
            (args.runs, args.episodes),
            args.blocked,
            &extra,
        )?;
        format!(
            "{} sets × {} runs × {} episodes, {}, in {:.0} s",
            sets.len(),
            args.runs,
            args.episodes,
            if args.blocked {
                "in blocks (every run of a set, then the next set)"
            } else {
                "interleaved (round r records run r of every set, the order rotated by r)"
            },
            took.as_secs_f64()
        )
    })
}

/// The command line that reproduces this check, for the report.
fn command_line(args: &GateCheckArgs) -> String {
    format!(
        "cargo xtask gate-check --sets {} --regression-sets {} --runs {} --episodes {} --victim {} --regression-victim {}{}",
        args.sets,
        args.regression_sets,
        args.runs,
        args.episodes,
        args.victim,
        args.regression_victim,
        if args.no_record { " --no-record" } else { "" }
    ) + &args
        .stack_map_size
        .map(|n| format!(" --stack-map-size {n}"))
        .unwrap_or_default()
        + if args.blocked { " --blocked" } else { "" }
}
