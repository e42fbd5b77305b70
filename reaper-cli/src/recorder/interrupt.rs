//! Ctrl-C / SIGTERM: a flag the recorder checks between steps, so it can
//! detach, keep what it collected and mark the run partial.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Records that the user asked to stop.
pub fn request_stop() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether the user asked to stop.
pub fn stop_requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
