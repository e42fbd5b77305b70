//! Types shared by reaper's kernel side (`reaper-ebpf`) and its CLI.
//!
//! Every `#[repr(C)]` key, value and event that crosses a BPF map lives here
//! and nowhere else, together with the map and program names both sides use.
//! Layouts have no implicit padding (explicit `_pad` fields, no `bool`) and
//! their sizes are checked at compile time.
#![no_std]

pub mod capability;
pub mod collision;
pub mod context;
pub mod function_timing;
pub mod lock_wait;
pub mod loss;
pub mod program_name;
pub mod rss;
pub mod sampling;
pub mod timeline;
pub mod tracepoint_offsets;
pub mod tracking;

/// Marks a shared type as plain old data for aya's userspace map API.
#[macro_export]
#[doc(hidden)]
macro_rules! user_pod {
    ($($ty:ty),+ $(,)?) => {
        $(
            #[cfg(feature = "user")]
            // SAFETY: the type is #[repr(C)], has no padding (its size is
            // asserted) and every bit pattern is a valid value.
            unsafe impl aya::Pod for $ty {}
        )+
    };
}
