//! Sizes the house keeps small (issue 24): source files over
//! [`FILE_LINES`] lines and functions over [`FN_LINES`] (and
//! [`FN_LINES_HARD`]) lines, outside tests and generated code.
//!
//! The count reads rustfmt-formatted text, which is what CI keeps
//! (`cargo fmt --check`): a function starts at its `fn` line and ends at the
//! first line after it that is a lone `}` at the `fn` line's indentation (or
//! on the same line, for a one-line body); a signature that ends in `;`
//! before any body opens is a declaration, not a function. A file's test
//! code (files under `tests/`, files named `tests.rs` or `*_tests.rs`, and
//! everything from a `#[cfg(test)]` that opens a `mod`) is not counted.

use std::path::{Path, PathBuf};

/// A source file longer than this is to be split (the bar).
pub const FILE_LINES: usize = 700;
/// A function longer than this no longer fits a screen.
pub const FN_LINES: usize = 60;
/// No function may be longer than this.
pub const FN_LINES_HARD: usize = 100;

/// One function and its length in lines, signature and closing brace included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    pub lines: usize,
}

/// Whether `path` holds only test code.
pub fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    path.components().any(|c| c.as_os_str() == "tests")
        || name == "tests.rs"
        || name.ends_with("_tests.rs")
}

/// The lines of `text` before its test module (`#[cfg(test)]` then `mod`).
pub fn code_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| {
            w[0].trim() == "#[cfg(test)]" && {
                let next = w[1].trim_start();
                next.starts_with("mod ") || next.starts_with("pub mod ")
            }
        })
        .unwrap_or(lines.len());
    lines[..end].to_vec()
}

/// The function name a line declares, if it starts a function.
fn fn_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    loop {
        let before = rest;
        for prefix in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
            "extern \"C\" ",
        ] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        if rest.starts_with("pub(in ") {
            rest = rest.split_once(") ").map_or(rest, |(_, r)| r);
        }
        if rest == before {
            break;
        }
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (end > 0).then(|| &rest[..end])
}

/// The functions of one file's code lines.
pub fn functions(file: &Path, lines: &[&str]) -> Vec<Function> {
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let indent = line.len() - line.trim_start().len();
        let closing = format!("{}}}", " ".repeat(indent));
        let mut end = None;
        for (offset, next) in lines[at..].iter().enumerate() {
            let trimmed = next.trim_end();
            if offset == 0 && trimmed.ends_with('}') && trimmed.contains('{') {
                end = Some(at);
                break;
            }
            if offset > 0 && (trimmed == closing || trimmed.starts_with(&format!("{closing} "))) {
                end = Some(at + offset);
                break;
            }
            if trimmed.ends_with(';')
                && !lines[at..at + offset]
                    .iter()
                    .any(|l| l.trim_end().ends_with('{'))
            {
                break; // a declaration (trait method, extern fn)
            }
        }
        if let Some(end) = end {
            found.push(Function {
                file: file.to_path_buf(),
                line: at + 1,
                name: name.to_string(),
                lines: end - at + 1,
            });
        }
    }
    found
}

/// Non-test Rust sources of the workspace's crates (third_party/ and
/// target/ left out).
pub fn sources(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in crate::house::CRATES {
        let mut pending = vec![root.join(krate).join("src")];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for path in entries.flatten().map(|e| e.path()) {
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(&path) {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_measured_from_fn_to_their_closing_brace() {
        let text = "\
pub fn a() {
    let x = 1;
}

impl T {
    pub(crate) async fn b(
        y: u8,
    ) -> u8 {
        y
    }
    fn c() -> u8 { 1 }
}

trait U {
    fn d(&self);
    fn e(&self) {
        todo()
    }
}

#[cfg(test)]
mod tests {
    fn f() {}
}
";
        let lines = code_lines(text);
        let found: Vec<(String, usize)> = functions(Path::new("x.rs"), &lines)
            .into_iter()
            .map(|f| (f.name, f.lines))
            .collect();
        assert_eq!(
            found,
            [
                ("a".into(), 3),
                ("b".into(), 5),
                ("c".into(), 1),
                ("e".into(), 3)
            ]
        );
    }

    #[test]
    fn test_files_are_recognised() {
        assert!(is_test_file(Path::new("reaper-cli/tests/compare.rs")));
        assert!(is_test_file(Path::new("reaper-cli/src/report/tests.rs")));
        assert!(is_test_file(Path::new(
            "reaper-cli/src/catalog/drift_tests.rs"
        )));
        assert!(!is_test_file(Path::new("reaper-cli/src/report/trace.rs")));
    }
}
