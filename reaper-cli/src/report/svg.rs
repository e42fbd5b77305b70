//! Flame-graph SVGs through inferno; the only module that uses inferno.

use inferno::flamegraph::{self, Options};

use crate::model::Run;

/// The line under the title: what a width means.
pub fn subtitle(episodes: usize) -> String {
    let per = if episodes == 1 {
        "the episode".to_owned()
    } else {
        format!("mean per episode of {episodes}")
    };
    format!("weighted cpu-clock time, {per}, in µs (the tables' Period)")
}

/// The SVG title: "reaper: <context> — <kernel release> <arch> — <scenario>".
pub fn title(run: &Run, context_label: &str) -> String {
    format!(
        "reaper: {context_label} — {} {} — {}",
        run.host.kernel_release, run.host.arch, run.recording.scenario.description
    )
}

/// What the widths count, beside every frame's figure.
pub const COUNT_NAME: &str = "µs cpu-clock";

/// Renders folded lines (weighted ns summed over the run's episodes, see
/// [`super::folded`]) as a flame graph whose figures are per-episode means
/// in µs, like the tables' Period column. Colours are derived from the
/// function names, so the same run always gives the same file.
pub fn flamegraph(run: &Run, context_label: &str, lines: &[String]) -> std::io::Result<Vec<u8>> {
    let episodes = run.episodes.len().max(1);
    let mut options = Options::default();
    options.title = title(run, context_label);
    options.subtitle = Some(subtitle(episodes));
    options.count_name = COUNT_NAME.to_owned();
    // ns summed over the episodes → µs per episode.
    options.factor = 1.0 / (1000.0 * episodes as f64);
    options.deterministic = true;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    Ok(svg)
}
