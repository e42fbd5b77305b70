//! reaper's exit statuses and the error that marks a usage error (exit 2),
//! in a module of their own so that the commands (`cmd/`) and the recorder
//! name them without depending on the dispatcher (`cli.rs`). `gate` keeps
//! its own documented meaning: 0 pass, 1 regression, 2 any error.

/// Done.
pub const SUCCESS: i32 = 0;
/// Something failed while running (a kernel refusal, a write error).
pub const FAILURE: i32 = 1;
/// The command line cannot be carried out as given: bad flags or
/// arguments, inputs that are not (comparable) reaper run files, an
/// unsafe output directory, missing privileges.
pub const USAGE: i32 = 2;
/// Interrupted (Ctrl-C, SIGTERM); what was collected is saved.
pub const INTERRUPTED: i32 = 130;

/// Marks an error as a usage error (exit 2), e.g. a flag that fails validation.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(#[from] pub anyhow::Error);
