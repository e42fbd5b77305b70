//! Tables are laid out in terminal columns, not characters: a diff whose
//! label has East Asian wide characters (`--label-a "内核 6.1"`, two
//! columns each) still draws every line of its box the same width.

use std::path::{Path, PathBuf};

mod common;

use common::{reaper, text};

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

#[test]
fn a_wide_label_keeps_the_diff_box_aligned() {
    let a = data("compare/vm-bookworm-x86_64/run.json");
    let out = reaper(&[
        "diff",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
        "--label-a",
        "内核 6.1",
        "--label-b",
        "7.2 反向",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let boxed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with('+'))
        .take_while(|l| l.starts_with('+') || l.starts_with('|'))
        .collect();
    assert!(boxed.len() > 4, "no box table in:\n{stdout}");
    assert!(boxed.iter().any(|l| l.contains("内核 6.1")), "{stdout}");
    let widths: Vec<usize> = boxed
        .iter()
        .map(|l| unicode_width::UnicodeWidthStr::width(*l))
        .collect();
    assert!(
        widths.iter().all(|w| *w == widths[0]),
        "box lines differ in width {widths:?}:\n{}",
        boxed.join("\n")
    );
}
