//! Flame-graph SVGs through inferno; the only module that uses inferno.

use inferno::flamegraph::{self, Options};

use crate::model::Run;

/// The SVG title: "reaper: <context> — <kernel release> <arch> — <scenario>".
pub fn title(run: &Run, context_label: &str) -> String {
    format!(
        "reaper: {context_label} — {} {} — {}",
        run.host.kernel_release, run.host.arch, run.recording.scenario.description
    )
}

/// Renders folded lines as a flame graph. Colours are derived from the
/// function names, so the same run always gives the same file.
pub fn flamegraph(run: &Run, context_label: &str, lines: &[String]) -> std::io::Result<Vec<u8>> {
    let mut options = Options::default();
    options.title = title(run, context_label);
    options.count_name = "samples".to_owned();
    options.deterministic = true;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    Ok(svg)
}
