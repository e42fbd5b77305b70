//! `cargo xtask house`: the figures issue 24 keeps in bounds, measured on
//! the tree as it is, so a report's numbers are one command away: files
//! and functions over the size bars ([`size`]), `Result<_, String>` and
//! vocabulary literals outside their enum ([`strings`]), and import cycles
//! between sibling modules ([`cycles`]). The tests of this module fail when
//! a bar is crossed.

mod cycles;
mod size;
mod strings;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

/// The workspace's crates the bars apply to (third_party/ is vendored).
pub const CRATES: &[&str] = &[
    "reaper-common",
    "reaper-model",
    "reaper-cli",
    "reaper-ebpf",
    "reaper-lab",
    "xtask",
];

/// Every figure, measured once.
#[derive(Debug, Default)]
pub struct Figures {
    /// (file, lines of non-test code) over [`size::FILE_LINES`].
    pub long_files: Vec<(PathBuf, usize)>,
    /// Functions over [`size::FN_LINES`] lines, longest first.
    pub long_functions: Vec<size::Function>,
    /// (file, line) of each `Result<_, String>`.
    pub string_results: Vec<(PathBuf, usize)>,
    /// (file, line, word) of each attach-mode, concept-id, scenario-kind or
    /// timeline-kind literal outside its enum.
    pub literals: Vec<(PathBuf, usize, &'static str)>,
    /// Import cycles, one message each.
    pub cycles: Vec<String>,
}

impl Figures {
    /// Functions longer than `lines`.
    pub fn functions_over(&self, lines: usize) -> usize {
        self.long_functions
            .iter()
            .filter(|f| f.lines > lines)
            .count()
    }
}

/// Measures the tree under `root`.
pub fn measure(root: &Path) -> Result<Figures> {
    let mut figures = Figures::default();
    for file in size::sources(root) {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        let lines = size::code_lines(&text);
        if lines.len() > size::FILE_LINES {
            figures.long_files.push((rel.clone(), lines.len()));
        }
        figures.long_functions.extend(
            size::functions(&rel, &lines)
                .into_iter()
                .filter(|f| f.lines > size::FN_LINES),
        );
        let code = lines.join("\n");
        figures.string_results.extend(
            strings::string_results(&strings::blank(&code, false))
                .into_iter()
                .map(|l| (rel.clone(), l)),
        );
        let with_strings = strings::blank(&code, true);
        for vocabulary in strings::VOCABULARIES {
            if !strings::owns_vocabulary(&rel, vocabulary) {
                figures.literals.extend(
                    strings::vocabulary_literals(&with_strings, vocabulary)
                        .into_iter()
                        .map(|(l, w)| (rel.clone(), l, w)),
                );
            }
        }
    }
    figures
        .long_functions
        .sort_by_key(|f| std::cmp::Reverse(f.lines));
    for krate in [
        "reaper-common",
        "reaper-model",
        "reaper-cli",
        "reaper-lab",
        "xtask",
    ] {
        let src = root.join(krate).join("src");
        figures.cycles.extend(
            cycles::cycles(&src)
                .with_context(|| format!("reading {}", src.display()))?
                .into_iter()
                .map(|c| format!("{krate}: {c}")),
        );
    }
    Ok(figures)
}

/// Prints every figure with its offenders for the tree at `root` (this
/// workspace by default); exit 1 when a bar is crossed.
pub fn run(root: Option<PathBuf>) -> Result<ExitCode> {
    let root = root.unwrap_or_else(crate::workspace::workspace_root);
    let figures = measure(&root)?;
    println!(
        "files over {} lines of non-test code: {}",
        size::FILE_LINES,
        figures.long_files.len()
    );
    for (file, lines) in &figures.long_files {
        println!("  {lines:5}  {}", file.display());
    }
    println!(
        "functions over {} lines: {} (over {}: {})",
        size::FN_LINES,
        figures.functions_over(size::FN_LINES),
        size::FN_LINES_HARD,
        figures.functions_over(size::FN_LINES_HARD)
    );
    for f in &figures.long_functions {
        println!(
            "  {:5}  {}:{} {}",
            f.lines,
            f.file.display(),
            f.line,
            f.name
        );
    }
    println!(
        "Result<_, String> outside tests: {}",
        figures.string_results.len()
    );
    for (file, line) in &figures.string_results {
        println!("  {}:{line}", file.display());
    }
    println!(
        "attach-mode, concept-id, scenario- and timeline-kind literals outside their enum: {}",
        figures.literals.len()
    );
    for (file, line, word) in &figures.literals {
        println!("  {}:{line} \"{word}\"", file.display());
    }
    println!(
        "import cycles between sibling modules: {}",
        figures.cycles.len()
    );
    for cycle in &figures.cycles {
        println!("  {cycle}");
    }
    Ok(if within_bars(&figures) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether every bar of issue 24 holds.
pub fn within_bars(figures: &Figures) -> bool {
    figures.long_files.is_empty()
        && figures.functions_over(size::FN_LINES) <= MAX_LONG_FUNCTIONS
        && figures.functions_over(size::FN_LINES_HARD) == 0
        && figures.string_results.is_empty()
        && figures.literals.is_empty()
        && figures.cycles.is_empty()
}

/// Functions over [`size::FN_LINES`] lines the house tolerates (issue 24).
pub const MAX_LONG_FUNCTIONS: usize = 15;

#[cfg(test)]
mod tests {
    use super::*;

    /// Where each figure stands today, in the order of the test's list: the
    /// most it may read until the bar is reached.
    const RATCHET: [usize; 5] = [0, 14, 0, 0, 0];

    /// No import cycle between sibling modules of any userspace crate
    /// (`cargo xtask house` names the cycle).
    #[test]
    fn no_module_imports_its_importer() {
        let figures = measure(&crate::workspace::workspace_root()).unwrap();
        assert!(
            figures.cycles.is_empty(),
            "{:#?}\n(run `cargo xtask house`)",
            figures.cycles
        );
    }

    /// The other bars of issue 24 are not all reached yet; until they are,
    /// each figure may only go down (lower a limit when it does).
    #[test]
    fn the_figures_only_go_down() {
        let f = measure(&crate::workspace::workspace_root()).unwrap();
        let now = [
            ("files over 700 lines", f.long_files.len()),
            ("functions over 60 lines", f.functions_over(size::FN_LINES)),
            (
                "functions over 100 lines",
                f.functions_over(size::FN_LINES_HARD),
            ),
            ("Result<_, String>", f.string_results.len()),
            ("vocabulary literals", f.literals.len()),
        ];
        for ((what, count), limit) in now.iter().zip(RATCHET) {
            assert!(
                *count <= limit,
                "{what}: {count}, more than {limit} (run `cargo xtask house`)"
            );
        }
    }
}
