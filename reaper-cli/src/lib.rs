//! reaper: profile Linux memory teardown — the dying task's `exit_mmap()`
//! racing the OOM reaper or a `process_mrelease(2)` caller — with eBPF.
//!
//! The library holds everything but argument parsing: the run-file model, the
//! symbol catalog, the loader and collectors, the scenario triggers, the
//! analysis and the renderers. `main.rs` only maps `cli::run()` to an exit
//! code.

pub mod catalog;
pub mod ci;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod console;
pub mod doctor;
pub mod duration;
pub mod exit;
pub mod input;
pub mod interrupt;
pub use reaper_model as model;
pub mod output;
pub mod probe_frames;
pub mod probes;
pub mod readme;
pub mod recorder;
pub mod report;
pub mod sanitize;
pub mod scenario;
pub mod schema;
pub mod size;
pub mod stats;
pub mod symbolize;
pub mod system;
pub mod text_width;
