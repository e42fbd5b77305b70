//! cpu-clock sampling with kernel stacks, aggregated in the kernel.
//!
//! A `perf_event` program runs on every CPU at a fixed period. For samples
//! that land on a tracked task it takes the kernel stack id and adds the
//! sample and its period to a per-CPU hash keyed by (context, stack id).
//! Only these aggregates and the stack map cross to userspace.

/// The perf_event program.
pub const PROG_SAMPLE_CPU_CLOCK: &str = "sample_cpu_clock";
/// Map: stack id → kernel instruction pointers (BPF_MAP_TYPE_STACK_TRACE).
pub const MAP_KERNEL_STACKS: &str = "KERNEL_STACKS";
/// Map: [`SampleKey`] → [`SampleCount`], per CPU.
pub const MAP_SAMPLE_COUNTS: &str = "SAMPLE_COUNTS";
/// Default stack map size; distinct teardown stacks per episode number in the
/// low thousands, and `--stack-map-size` enlarges it.
pub const KERNEL_STACKS_DEFAULT_ENTRIES: u32 = 16384;
/// Default size of the sample-count map; keys are (context, stack).
pub const SAMPLE_COUNTS_DEFAULT_ENTRIES: u32 = 16384;
/// Deepest kernel stack the stack map stores (PERF_MAX_STACK_DEPTH).
pub const MAX_STACK_DEPTH: usize = 127;

/// The sample had no kernel stack because the task was in user mode.
pub const STACK_ID_USER_MODE: i32 = -1;
/// The kernel could not store the stack (stack map full or hash collision);
/// the sample still counts, and a loss counter says how often it happened.
pub const STACK_ID_LOST: i32 = -2;

/// Key of [`MAP_SAMPLE_COUNTS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SampleKey {
    /// A `CONTEXT_*` id.
    pub context: u32,
    /// A stack id in [`MAP_KERNEL_STACKS`], or one of the `STACK_ID_*` markers.
    pub stack_id: i32,
}
const _: () = assert!(core::mem::size_of::<SampleKey>() == 8);

/// Value of [`MAP_SAMPLE_COUNTS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleCount {
    /// Number of samples.
    pub samples: u64,
    /// Sum of the samples' periods in ns of CPU time (simpleperf's "event
    /// count" for cpu-clock).
    pub period_ns: u64,
}
const _: () = assert!(core::mem::size_of::<SampleCount>() == 16);
crate::user_pod!(SampleKey, SampleCount);
