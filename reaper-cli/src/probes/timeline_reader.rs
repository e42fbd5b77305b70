//! Reads the timeline ring buffer. Events are few per episode, so the
//! recorder polls it from its episode loop instead of running a reader task.

use aya::{
    Ebpf,
    maps::{MapData, RingBuf},
};
use reaper_common::timeline::{MAP_TIMELINE, TimelineEvent};

/// Owns the ring buffer taken out of the object.
pub struct TimelineReader {
    ring: RingBuf<MapData>,
    /// Records whose size did not match `TimelineEvent` (counted, not parsed).
    pub malformed: u64,
}

impl TimelineReader {
    /// Takes the ring buffer map out of the object.
    pub fn new(ebpf: &mut Ebpf) -> Result<Self, String> {
        let map = ebpf
            .take_map(MAP_TIMELINE)
            .ok_or("TIMELINE map missing from the eBPF object")?;
        let ring = RingBuf::try_from(map).map_err(|e| e.to_string())?;
        Ok(Self { ring, malformed: 0 })
    }

    /// Appends every available event to `out`.
    pub fn poll(&mut self, out: &mut Vec<TimelineEvent>) {
        while let Some(item) = self.ring.next() {
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
}
