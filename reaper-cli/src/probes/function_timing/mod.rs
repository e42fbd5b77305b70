//! Exact per-function timing, userspace side, one job per module: which
//! catalog function goes in which program slot ([`plan`]), the attach
//! ladder (fentry/fexit, then kprobe/kretprobe, per function: [`ladder`]),
//! the per-episode drain of the in-kernel aggregates ([`drain`]) and the
//! run model built from them ([`model`]).
//!
//! The ladder never guesses from kernel configuration: it loads and attaches
//! for real (through [`super::function_probe`]) and keeps the kernel's
//! answer (EPERM, ENOTSUPP 524, ...) for each rung it could not take.

pub mod collision;
mod drain;
mod ladder;
mod model;
mod plan;
pub mod rt_owner;

pub use drain::{RawFunctionTiming, drain, merge_top_calls};
pub(crate) use ladder::auto_rung;
pub use ladder::{
    AttachPolicy, ForcedModeError, FunctionAttach, LadderReport, attach_ladder, kprobes_built_in,
};
pub use model::{classify, is_slot, place_calls, to_model};
pub use plan::{
    CollisionLog, Exact, Holders, Plan, SlotFunction, collision_config, config_for, plan,
};

#[cfg(test)]
mod collision_tests;
#[cfg(test)]
mod tests;
