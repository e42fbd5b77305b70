//! Golden-file checks shared by the workspace's unit tests (feature
//! `golden`, enabled by reaper-cli's and reaper-lab's dev-dependencies):
//! compare an output with its committed golden, or rewrite the golden when
//! `REAPER_BLESS=1`. A missing golden fails; it is never created without
//! the switch.

use std::path::Path;

/// Whether the tests should rewrite their goldens (`REAPER_BLESS=1`).
pub fn blessing() -> bool {
    std::env::var_os("REAPER_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden at `path`, naming the first differing
/// line; rewrites the golden instead when blessing.
pub fn check_golden(path: &Path, actual: &str) {
    if blessing() {
        std::fs::create_dir_all(path.parent().expect("a golden lives in a directory")).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: golden missing or unreadable ({e}); create it with REAPER_BLESS=1 cargo test \
             and review it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n expected: {:?}\n   actual: {:?}\n(bless \
             with REAPER_BLESS=1 after reviewing)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}
