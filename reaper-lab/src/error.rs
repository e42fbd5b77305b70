//! The error kinds the command line maps to exit statuses.

/// A request reaper-lab refuses as given (exit status 2, as clap's own
/// usage errors): conflicting or missing options the command line alone
/// cannot express, or a record argument that ab sets itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);
