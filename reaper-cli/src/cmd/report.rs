//! `reaper report RUN`: re-renders every table (stdout) of a recorded run,
//! offline and without root, and, with `-o DIR`, its folded stacks and
//! flame graphs. The tables come first, so a run directory the user cannot
//! write to (root's `out/`) never stops the report from printing. The flags are checked here and turned into
//! [`ReportOptions`](crate::report::ReportOptions); everything else is the
//! library's.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::console::{note, say};
use crate::output::OutputDir;
use crate::report::{self, ReportOptions, formats::Format};

/// Arguments of `reaper report`.
#[derive(Clone, Debug, Args)]
#[command(after_help = super::help::after_help("report", ""))]
pub struct ReportArgs {
    /// The run file (run.json), or the directory `reaper record -o` wrote it to.
    pub run: PathBuf,
    /// Also write <context>.folded/.svg and combined.folded/.svg into DIR
    /// (created if needed; without -o nothing is written); with --format,
    /// the format's one file, and `-o -` writes it to stdout.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print the derived report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write an open format into the output directory instead of printing
    /// the report: pprof (profile.pb.gz), trace (trace.json, Chrome
    /// trace-event JSON for ui.perfetto.dev) or speedscope (speedscope.json).
    #[arg(long, value_name = "FORMAT", requires = "output", conflicts_with_all = ["json", "no_files"])]
    pub format: Option<FormatArg>,
    /// Rows of each Children/Self table.
    #[arg(long, value_name = "N", default_value_t = report::DEFAULT_TOP)]
    pub top: usize,
    /// Hide call-graph entries below this percent of their parent (0-100).
    #[arg(long, value_name = "PERCENT", default_value_t = report::DEFAULT_PERCENT_LIMIT,
          value_parser = parse_percent)]
    pub percent_limit: f64,
    /// Call-graph levels shown below each root.
    #[arg(long, value_name = "N", default_value_t = report::DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,
    /// Lock-wait stacks shown per context.
    #[arg(long, value_name = "N", default_value_t = report::DEFAULT_LOCK_TOP)]
    pub lock_top: usize,
    /// Print only (the default since files need -o; kept for old scripts).
    #[arg(long, hide = true, conflicts_with = "output")]
    pub no_files: bool,
    /// What may be read.
    #[command(flatten)]
    pub input: super::InputArgs,
}

/// `--format`'s values (clap stays in the command layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Gzipped pprof profile.proto (`go tool pprof`, Pyroscope, Parca).
    Pprof,
    /// Chrome trace-event JSON (ui.perfetto.dev, chrome://tracing).
    Trace,
    /// speedscope's JSON file format (speedscope.app).
    Speedscope,
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Self {
        match arg {
            FormatArg::Pprof => Format::Pprof,
            FormatArg::Trace => Format::Trace,
            FormatArg::Speedscope => Format::Speedscope,
        }
    }
}

/// A `--percent-limit` value that is not a percentage.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PercentError {
    /// Not a number at all.
    #[error("{raw:?} is not a number; give a percentage such as 0.5")]
    NotANumber {
        /// The value as given.
        raw: String,
    },
    /// A number outside 0-100.
    #[error("{value} is outside 0-100")]
    OutOfRange {
        /// The number read.
        value: f64,
    },
}

fn parse_percent(raw: &str) -> Result<f64, PercentError> {
    let value: f64 = raw.parse().map_err(|_| PercentError::NotANumber {
        raw: raw.to_owned(),
    })?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(PercentError::OutOfRange { value })
    }
}

impl ReportArgs {
    /// The validated rendering options.
    pub fn options(&self) -> ReportOptions {
        ReportOptions {
            top: self.top,
            percent_limit: self.percent_limit,
            max_depth: self.max_depth,
            lock_top: self.lock_top,
        }
    }
}

/// Loads the run, prints the report, then writes the files asked for.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let run = report::load::load_run_within(&args.run, &args.input.budget())?;
    let opts = args.options();
    if let Some(format) = args.format.map(Format::from) {
        let Some(dir) = args.output.as_deref() else {
            return Err(crate::exit::UsageError(anyhow::anyhow!(
                "--format needs -o DIR (or -o - for stdout)"
            ))
            .into());
        };
        if let Some(why) = report::formats::empty_because(format, &run) {
            note!("reaper: warning: the {format} file holds no samples: {why}");
        }
        if super::stdout::is_dash(dir) {
            let bytes = report::formats::render(format, &run);
            return super::stdout::write(
                &bytes,
                report::formats::is_binary(format),
                &format!("the {format} file"),
            );
        }
        let out = OutputDir::create(dir)?;
        let path = report::formats::write(format, &run, &out)
            .with_context(|| format!("writing the {format} file to {}", dir.display()))?;
        crate::console::info(format_args!("wrote {}", path.display()));
        return Ok(());
    }
    super::stdout::refuse_dash(
        args.output.as_deref(),
        "report",
        "folded stacks and flame graphs",
    )?;
    if args.json {
        say!("{}", report::render_json(&run, &opts));
    } else {
        say!("{}", report::render_text(&run, &opts));
    }
    if let Some(dir) = &args.output {
        if let Some(why) = report::formats::folded_empty_because(&run) {
            note!(
                "reaper: warning: the folded stacks hold no samples and no flame graph is drawn: {why}"
            );
        }
        let out = OutputDir::create(dir)?;
        let files = report::write_files(&run, &out, &opts).with_context(|| {
            format!(
                "writing the folded stacks and flame graphs to {}",
                dir.display()
            )
        })?;
        crate::console::info(format_args!(
            "wrote {} folded/SVG files to {}",
            files.len(),
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReportArgs,
    }

    #[test]
    fn defaults_match_report_options() {
        let cli = Cli::try_parse_from(["reaper", "run.json"]).unwrap();
        assert_eq!(cli.args.options(), ReportOptions::default());
        assert_eq!(cli.args.output, None);
    }

    #[test]
    fn percent_limit_is_checked() {
        assert!(Cli::try_parse_from(["reaper", "r", "--percent-limit", "101"]).is_err());
        assert!(Cli::try_parse_from(["reaper", "r", "--percent-limit", "x"]).is_err());
        let cli = Cli::try_parse_from(["reaper", "r", "-o", "d", "--percent-limit", "2"]).unwrap();
        assert_eq!(cli.args.percent_limit, 2.0);
        assert_eq!(cli.args.output, Some(PathBuf::from("d")));
    }
}
