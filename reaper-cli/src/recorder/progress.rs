//! Progress lines on stderr for `record`'s long steps (loading, each
//! episode's victim, kill and reap, lost races and their replacements).
//! stdout stays for the report, so pipes stay clean; `--quiet` silences it.

use std::fmt;

use crate::duration::{self, Precision};

/// Where progress goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    quiet: bool,
}

impl Progress {
    /// Progress on stderr, or nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// Prints one line, prefixed like every reaper message.
    pub fn say(&self, line: fmt::Arguments<'_>) {
        if !self.quiet {
            crate::console::note!("reaper: {line}");
        }
    }
}

/// "12.3 ms" from nanoseconds, or what was not seen.
pub fn ms(ns: Option<u64>) -> String {
    ns.map_or_else(
        || "not seen".to_owned(),
        |ns| format!("{} ms", duration::ms(ns, Precision::PROGRESS)),
    )
}

/// "episode 2/5" (or "episode 6 (replacement 1/3)" past the requested runs).
pub fn episode_label(index: u32, runs: u32, replacement: Option<(u32, u32)>) -> String {
    match replacement {
        Some((n, of)) => format!("episode {} (replacement {n}/{of})", index + 1),
        None => format!("episode {}/{runs}", index + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(episode_label(1, 5, None), "episode 2/5");
        assert_eq!(
            episode_label(5, 5, Some((1, 3))),
            "episode 6 (replacement 1/3)"
        );
        assert_eq!(ms(Some(12_345_678)), "12.3 ms");
        assert_eq!(ms(None), "not seen");
    }
}
