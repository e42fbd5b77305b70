//! The userspace side of the eBPF probes: loading the embedded object,
//! attaching each probe group (recording what worked), and draining the
//! in-kernel aggregates and the timeline ring buffer.

pub mod attach;
pub mod btf;
pub mod calibrate;
pub mod collect;
pub mod function_timing;
pub mod kernel_btf;
pub mod loader;
pub mod program_symbols;
pub mod raw_tp;
pub mod refusal;
pub mod timeline_reader;
