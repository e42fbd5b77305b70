//! The only way reaper prints: stdout and stderr text goes through
//! [`crate::sanitize::guard_lines`], so nothing a run file, a file name or
//! a task's comm holds can drive a terminal or run as a GitHub Actions
//! workflow command (the runner parses both streams). reaper's own workflow
//! commands are written by `crate::ci::github`, the one module allowed past
//! this guard; `tests/source_rules.rs` fails on a print anywhere else.

use std::io::Write as _;

use crate::sanitize::guard_lines;

/// Writes `text` to stdout as is, after the guard; a closed pipe (`| head`)
/// `-q`, set once by the dispatcher before any command runs.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets `-q` (the dispatcher, once).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints an informational `reaper: ...` line on stderr, unless `-q`.
pub fn info(line: std::fmt::Arguments<'_>) {
    if !quiet() {
        err(&format!("reaper: {line}\n"));
    }
}

/// is not an error worth a panic.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(guard_lines(text).as_bytes());
    let _ = stdout.flush();
}

/// Writes `text` to stderr, after the guard.
pub fn err(text: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(guard_lines(text).as_bytes());
}

/// Writes one file's bytes to stdout (`-o -`), unguarded: the file is what
/// reaper would write with `-o DIR`, a format whose own encoding carries
/// run-file text as data (JSON strings, protobuf), not lines of text.
pub fn out_file(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// Whether stdout is a terminal (binary output is refused there).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal()
}

/// `print!` through the guard.
macro_rules! say {
    ($($arg:tt)*) => { $crate::console::out(&format!($($arg)*)) };
}

/// `println!` through the guard.
macro_rules! sayln {
    ($($arg:tt)*) => { $crate::console::out(&(format!($($arg)*) + "\n")) };
}

/// `eprintln!` through the guard.
macro_rules! note {
    ($($arg:tt)*) => { $crate::console::err(&(format!($($arg)*) + "\n")) };
}

/// `eprint!` through the guard.
macro_rules! note_raw {
    ($($arg:tt)*) => { $crate::console::err(&format!($($arg)*)) };
}

pub(crate) use {note, note_raw, say, sayln};
