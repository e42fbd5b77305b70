//! Golden-file checks of the unit tests (as reaper-cli's): compare an
//! output with its committed golden under `tests/data/`, or rewrite the
//! golden when `REAPER_BLESS=1`. A missing golden fails; it is never
//! created without the switch.

use std::path::PathBuf;

/// Compares `actual` with `tests/data/<name>`, naming the first differing
/// line; rewrites the golden instead when `REAPER_BLESS=1`.
pub fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    if std::env::var_os("REAPER_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: golden missing or unreadable ({e}); create it with REAPER_BLESS=1 cargo test \
             -p reaper-lab and review it",
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
