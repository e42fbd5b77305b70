//! A run file is untrusted input (in CI it comes from pull-request
//! artifacts anyone can shape): the file's size is bounded before it is
//! read, and its amounts, strings and decoded size as it is decoded
//! (`crate::input::guard`). Every name in it that can become part of a path
//! (a context) is typed (`reaper_model::Context`), so decoding refuses a
//! name outside reaper's set, naming the field, before anything is rendered.

/// Largest run file read. The largest real run is about 60 KB per episode
/// (stacks of three contexts) times `record --runs`' limit of 1000, about
/// 60 MB; four times that leaves room and still refuses a file meant to
/// exhaust memory. (`--max-input` bounds what a command reads in all.)
pub const MAX_RUN_FILE_BYTES: u64 = 256 << 20;

pub use crate::input::guard::MAX_TOTAL_AMOUNT;
