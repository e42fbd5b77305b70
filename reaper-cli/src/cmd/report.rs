//! `reaper report RUN`: re-renders every table (stdout) and the folded
//! stacks and flame graphs (files) of a recorded run, offline and without
//! root. The flags are checked here and turned into
//! [`ReportOptions`](crate::report::ReportOptions); everything else is the
//! library's.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::report::{self, ReportOptions, formats::Format};

/// Arguments of `reaper report`.
#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// The run file (run.json), or the directory `reaper record -o` wrote it to.
    pub run: PathBuf,
    /// Where to write <context>.folded/.svg and combined.folded/.svg
    /// [default: the run file's directory].
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print the derived report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write an open format into the output directory instead of printing
    /// the report: pprof (profile.pb.gz), trace (trace.json, Chrome
    /// trace-event JSON for ui.perfetto.dev) or speedscope (speedscope.json).
    #[arg(long, value_name = "FORMAT", conflicts_with_all = ["json", "no_files"])]
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
    /// Print only; write no folded or SVG files.
    #[arg(long)]
    pub no_files: bool,
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

fn parse_percent(raw: &str) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number; give a percentage such as 0.5"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside 0-100"))
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

/// Loads the run, writes the folded/SVG files and prints the report.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let run = report::load_run(&args.run)?;
    let opts = args.options();
    let dir = match &args.output {
        Some(dir) => dir.clone(),
        None => report::load::run_file_path(&args.run)
            .parent()
            .map(|p| p.to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    if let Some(format) = args.format.map(Format::from) {
        let path = report::formats::write(format, &run, &dir)
            .with_context(|| format!("writing the {format} file to {}", dir.display()))?;
        eprintln!("reaper: wrote {}", path.display());
        return Ok(());
    }
    if !args.no_files {
        let files = report::write_files(&run, &dir, &opts).with_context(|| {
            format!(
                "writing the folded stacks and flame graphs to {}",
                dir.display()
            )
        })?;
        eprintln!(
            "reaper: wrote {} folded/SVG files to {}",
            files.len(),
            dir.display()
        );
    }
    if args.json {
        print!("{}", report::render_json(&run, &opts));
    } else {
        print!("{}", report::render_text(&run, &opts));
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
