//! Rules checked on reaper's own source, so a new path around them fails
//! here (issue 23): every file reaper writes goes through `output`, every
//! line it prints through `console` (the sanitiser's guard), and only
//! `ci/github.rs` writes GitHub workflow commands. Test code is not
//! checked (`#[cfg(test)]` items and test-only modules).

use std::path::{Path, PathBuf};

/// A rule: what no non-test code may contain, except in the listed files
/// (paths under `reaper-cli/src`), each with the reason it may.
struct Rule {
    what: &'static str,
    patterns: &'static [&'static str],
    allowed: &'static [(&'static str, &'static str)],
}

const WRITES: Rule = Rule {
    what: "creates, modifies or removes a file outside crate::output",
    patterns: &[
        "fs::write(",
        "File::create(",
        "File::options(",
        "OpenOptions",
        "fs::rename(",
        "fs::copy(",
        "fs::hard_link(",
        "create_dir",
        "remove_file(",
        "remove_dir",
        "set_permissions(",
        "set_len(",
        "mkdirat(",
        "renameat",
        "linkat(",
        "unlinkat(",
        "symlinkat(",
        "mknodat(",
        "OFlags::CREATE",
        "OFlags::WRONLY",
        "OFlags::RDWR",
        "OFlags::APPEND",
        "OFlags::TRUNC",
        "O_CREAT",
        "O_WRONLY",
        "O_RDWR",
        "O_TRUNC",
        "chown",
        "chmod",
        "generate_to(",
    ],
    allowed: &[
        ("output/", "the one writer"),
        (
            "scenario/cgroup.rs",
            "cgroupfs control files and reaper's own cgroup directories, not output",
        ),
        (
            "scenario/victim.rs",
            "the victim child joins its cgroups and sets its oom_score_adj (procfs/cgroupfs)",
        ),
        (
            "system/policy.rs",
            "opens /dev/kmsg read-only with O_NONBLOCK (OpenOptions is how std sets the flag)",
        ),
    ],
};

const PRINTS: Rule = Rule {
    what: "prints outside crate::console (unguarded text can drive a terminal or CI)",
    patterns: &[
        "print!(",
        "println!(",
        "eprint!(",
        "eprintln!(",
        "dbg!(",
        "io::stdout()",
        "io::stderr()",
    ],
    allowed: &[
        ("console.rs", "the guard itself"),
        (
            "ci/github.rs",
            "reaper's own workflow commands, the one output past the guard",
        ),
        (
            "scenario/victim.rs",
            "the victim child's status lines to its parent over a pipe",
        ),
    ],
};

const COMMANDS: Rule = Rule {
    what: "spells a GitHub workflow command outside ci/github.rs",
    patterns: &["\"::", "\"##["],
    allowed: &[
        ("ci/github.rs", "the one writer of workflow commands"),
        ("sanitize.rs", "the prefixes it defuses"),
    ],
};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Files that are `#[cfg(test)] mod NAME;` of another file.
fn test_modules(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut tests = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            let Some(name) = pair[1]
                .strip_prefix("mod ")
                .and_then(|n| n.strip_suffix(';'))
            else {
                continue;
            };
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let stem = file.file_stem().unwrap();
            let dir = if stem == "mod" || stem == "lib" || stem == "main" {
                file.parent().unwrap().to_owned()
            } else {
                file.with_extension("")
            };
            tests.push(dir.join(format!("{name}.rs")));
            tests.push(dir.join(name).join("mod.rs"));
        }
    }
    tests
}

/// The non-test lines of a file, with their numbers: a `#[cfg(test)]` item
/// (a module, a function) is skipped to its end, and comments are dropped.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut skipping = false;
    let mut depth = 0i64;
    let mut opened = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if !skipping && trimmed == "#[cfg(test)]" {
            skipping = true;
            depth = 0;
            opened = false;
            continue;
        }
        if skipping {
            for c in trimmed.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && trimmed.ends_with(';')) {
                skipping = false;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push((i + 1, line));
    }
    out
}

fn violations(rule: &Rule) -> Vec<String> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let tests = test_modules(&files);
    let mut found = Vec::new();
    for file in &files {
        if tests.contains(file) {
            continue;
        }
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if rule
            .allowed
            .iter()
            .any(|(allowed, _)| rel.starts_with(allowed))
        {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in code_lines(&text) {
            for pattern in rule.patterns {
                if line.contains(pattern) {
                    found.push(format!(
                        "src/{rel}:{number}: {}: {}",
                        rule.what,
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

fn check(rule: &Rule) {
    let found = violations(rule);
    assert!(
        found.is_empty(),
        "{} line(s) break the rule (allowed only in: {}):\n{}",
        found.len(),
        rule.allowed
            .iter()
            .map(|(file, why)| format!("{file} ({why})"))
            .collect::<Vec<_>>()
            .join(", "),
        found.join("\n")
    );
}

#[test]
fn every_file_reaper_writes_goes_through_output() {
    check(&WRITES);
}

#[test]
fn every_line_reaper_prints_goes_through_the_console_guard() {
    check(&PRINTS);
}

#[test]
fn only_ci_github_writes_workflow_commands() {
    check(&COMMANDS);
}

/// The checker itself: it must see a write in code and not in tests.
#[test]
fn the_checker_sees_code_and_skips_tests() {
    let text = "fn a() {\n    std::fs::write(p, b)?;\n}\n#[cfg(test)]\nmod tests {\n    fn b() {\n        std::fs::write(p, b).unwrap();\n    }\n}\nfn c() {}\n";
    let lines: Vec<usize> = code_lines(text).iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [1, 2, 3, 10]);
    let text = "#[cfg(test)]\nmod synth;\nfn d() { println!(\"x\"); }\n";
    let lines: Vec<usize> = code_lines(text).iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [3]);
}
