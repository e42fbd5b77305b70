//! Ctrl-C / SIGTERM: one tokio task waits for either signal and raises a
//! stop flag, which the recorder checks between steps and which wakes every
//! event wait at once (a [`Notify`]), so the recorder can detach, keep what
//! it collected and mark the run partial.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::Notify,
};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static STOP: Notify = Notify::const_new();

/// Records that the user asked to stop, and wakes every waiter.
pub fn request_stop() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    STOP.notify_waiters();
}

/// Whether the user asked to stop.
pub fn stop_requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Completes once a stop is requested (at once if it already was).
pub async fn stopped() {
    loop {
        let notified = STOP.notified();
        tokio::pin!(notified);
        // Registered before the flag is checked, so no wake-up is missed.
        notified.as_mut().enable();
        if stop_requested() {
            return;
        }
        notified.await;
    }
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM, says so and requests the stop.
/// Runs as a task on the recorder's runtime for the whole recording.
pub async fn watch_signals() {
    let mut term = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
    crate::console::note!("reaper: stopping: detaching probes and saving what was collected");
    request_stop();
}
