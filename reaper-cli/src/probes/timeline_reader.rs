//! Reads the timeline ring buffer through tokio: the map's fd is registered
//! with the runtime's reactor ([`AsyncFd`]), so an episode waits for its
//! events, its deadline and a stop request in one `select!` instead of
//! polling on a timer.

use std::ops::ControlFlow;

use aya::{
    Ebpf,
    maps::{MapData, RingBuf},
};
use reaper_common::timeline::{MAP_TIMELINE, TimelineEvent};
use tokio::{
    io::{Interest, unix::AsyncFd},
    time::Instant,
};

use crate::interrupt;

/// Owns the ring buffer taken out of the object.
pub struct TimelineReader {
    ring: AsyncFd<RingBuf<MapData>>,
    /// Records whose size did not match `TimelineEvent` (counted, not parsed).
    pub malformed: u64,
}

/// Why [`TimelineReader::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// An event satisfied the caller's condition.
    Done,
    /// The deadline passed.
    Deadline,
    /// The user asked to stop (Ctrl-C, SIGTERM).
    Stopped,
}

/// Why the timeline ring buffer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// The object has no timeline map.
    #[error("TIMELINE map missing from the eBPF object")]
    Missing,
    /// The map is not a ring buffer.
    #[error(transparent)]
    NotARing(#[from] aya::maps::MapError),
    /// tokio refused to watch its descriptor.
    #[error("registering the timeline ring buffer with tokio")]
    Register(#[source] std::io::Error),
}

impl TimelineReader {
    /// Takes the ring buffer map out of the object and registers it with
    /// the current tokio runtime.
    pub fn new(ebpf: &mut Ebpf) -> Result<Self, TimelineError> {
        let map = ebpf.take_map(MAP_TIMELINE).ok_or(TimelineError::Missing)?;
        let ring = RingBuf::try_from(map)?;
        // SAFETY: the RingBuf owns the map's fd, which stays open and the
        // same for as long as the AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| TimelineError::Register(e.into()))?;
        Ok(Self { ring, malformed: 0 })
    }

    /// Appends every available event to `out`, without waiting.
    pub fn poll(&mut self, out: &mut Vec<TimelineEvent>) {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            if item.len() == size_of::<TimelineEvent>() {
                // SAFETY: the record is exactly one TimelineEvent, written by
                // the kernel side; read_unaligned copes with any alignment.
                out.push(unsafe {
                    std::ptr::read_unaligned(item.as_ptr().cast::<TimelineEvent>())
                });
            } else {
                self.malformed += 1;
            }
        }
    }

    /// Collects events into `out` until `done` holds for one of them, the
    /// deadline passes, or a stop is requested; then drains once more.
    pub async fn wait(
        &mut self,
        out: &mut Vec<TimelineEvent>,
        deadline: Instant,
        done: impl Fn(&TimelineEvent) -> bool,
    ) -> Wake {
        let wake = loop {
            self.poll(out);
            if out.iter().any(&done) {
                break Wake::Done;
            }
            let flow = tokio::select! {
                ready = self.ring.readable_mut() => match ready {
                    Ok(mut guard) => {
                        // Drained below, at the top of the loop.
                        guard.clear_ready();
                        ControlFlow::Continue(())
                    }
                    // The fd cannot fail to poll; if it does, stop waiting.
                    Err(_) => ControlFlow::Break(Wake::Deadline),
                },
                () = tokio::time::sleep_until(deadline) => ControlFlow::Break(Wake::Deadline),
                () = interrupt::stopped() => ControlFlow::Break(Wake::Stopped),
            };
            if let ControlFlow::Break(wake) = flow {
                break wake;
            }
        };
        self.poll(out);
        wake
    }
}
