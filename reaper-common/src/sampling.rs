//! cpu-clock sampling with kernel stacks, aggregated in the kernel.
//!
//! A `perf_event` program runs on every CPU at a fixed period. For samples
//! that land on a tracked task it takes the kernel stack id and adds the
//! sample and its period to a per-CPU hash keyed by (context, stack id).
//! Only these aggregates and the stack map cross to userspace.
//!
//! The stack map is a plain hash of [`KernelStack`]s, not the kernel's
//! `BPF_MAP_TYPE_STACK_TRACE`: that map has one bucket per entry and refuses
//! a new stack whose 32-bit hash lands on a bucket another stack holds
//! (`-EEXIST`), so with a few hundred distinct teardown stacks some were lost
//! in every busy episode whatever its size. Here the kernel side hashes the
//! frames itself (64 bits, [`stack_hash_step`]) and stores the stack under
//! the first free of two ids taken from that hash ([`stack_ids`]); the hash
//! map chains its buckets, so a stack is only lost when the map is full or
//! both ids hold other stacks.

/// The perf_event program.
pub const PROG_SAMPLE_CPU_CLOCK: &str = "sample_cpu_clock";
/// Map: stack id → [`KernelStack`] (a preallocated BPF hash map).
pub const MAP_KERNEL_STACKS: &str = "KERNEL_STACKS";
/// Map: one per-CPU [`KernelStack`] the programs capture into before storing.
pub const MAP_STACK_SCRATCH: &str = "STACK_SCRATCH";
/// [`MAP_STACK_SCRATCH`]'s slot for the cpu-clock sampler.
pub const SCRATCH_SAMPLE: u32 = 0;
/// [`MAP_STACK_SCRATCH`]'s slot for `lock:contention_begin`: a raw
/// tracepoint program does not raise the kernel's `bpf_prog_active`, so the
/// sampler's NMI can run in the middle of it on the same CPU and must not
/// share its scratch.
pub const SCRATCH_LOCK_WAIT: u32 = 1;
/// Slots of [`MAP_STACK_SCRATCH`] per CPU.
pub const STACK_SCRATCH_SLOTS: u32 = 2;
/// Map: [`SampleKey`] → [`SampleCount`], per CPU.
pub const MAP_SAMPLE_COUNTS: &str = "SAMPLE_COUNTS";
/// Default stack map size; distinct teardown stacks per watch number in the
/// hundreds to low thousands, and `--stack-map-size` enlarges it. The map
/// is preallocated: entries × about 1.1 KiB of kernel memory (about 18 MiB).
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
    /// count" for cpu-clock): each sample weighs the cpu-clock count since
    /// the previous sample on its CPU, which is the nominal period unless
    /// the timer fired late and the kernel skipped periods.
    pub period_ns: u64,
}
const _: () = assert!(core::mem::size_of::<SampleCount>() == 16);

/// Value of [`MAP_KERNEL_STACKS`]: one kernel stack, innermost frame first.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelStack {
    /// [`stack_hash`] of the frames; tells two stacks under one id apart.
    pub hash: u64,
    /// Valid frames in `ips`.
    pub nr: u32,
    /// Reserved; keeps the layout explicit.
    pub _pad: u32,
    /// Instruction pointers; entries from `nr` on are left-overs.
    pub ips: [u64; MAX_STACK_DEPTH],
}
const _: () = assert!(core::mem::size_of::<KernelStack>() == 16 + 8 * MAX_STACK_DEPTH);

impl KernelStack {
    /// The valid frames, innermost first.
    pub fn frames(&self) -> &[u64] {
        &self.ips[..(self.nr as usize).min(MAX_STACK_DEPTH)]
    }
}

/// Seed of [`stack_hash`]: the frame count, mixed with an odd constant.
pub const fn stack_hash_seed(nr: u32) -> u64 {
    (nr as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// One frame into the running hash (a multiply-xorshift mix per word, so
/// every bit of every frame reaches the high bits [`stack_ids`] uses).
pub const fn stack_hash_step(hash: u64, ip: u64) -> u64 {
    let x = (hash ^ ip).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 31)
}

/// The 64-bit hash of a stack; the kernel side computes the same with the
/// same two functions in a bounded loop.
pub fn stack_hash(ips: &[u64]) -> u64 {
    ips.iter()
        .fold(stack_hash_seed(ips.len() as u32), |h, &ip| {
            stack_hash_step(h, ip)
        })
}

/// The two candidate ids of a stack: each half of its hash, cut to 31 bits
/// so ids stay non-negative next to the `STACK_ID_*` markers.
pub const fn stack_ids(hash: u64) -> [u32; 2] {
    [
        (hash as u32) & 0x7fff_ffff,
        ((hash >> 32) as u32) & 0x7fff_ffff,
    ]
}
crate::user_pod!(SampleKey, SampleCount, KernelStack);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_ids_are_non_negative_and_differ_between_near_stacks() {
        let a = stack_hash(&[0xffff_ffff_8100_0010, 0xffff_ffff_8100_0020]);
        let b = stack_hash(&[0xffff_ffff_8100_0011, 0xffff_ffff_8100_0020]);
        let c = stack_hash(&[0xffff_ffff_8100_0010]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        for h in [a, b, c] {
            for id in stack_ids(h) {
                assert!(id as i32 >= 0);
            }
        }
        assert_ne!(stack_ids(a), stack_ids(b));
    }

    #[test]
    fn frames_stop_at_nr() {
        let mut s = KernelStack {
            hash: 0,
            nr: 2,
            _pad: 0,
            ips: [7; MAX_STACK_DEPTH],
        };
        assert_eq!(s.frames(), &[7, 7]);
        s.nr = 500;
        assert_eq!(s.frames().len(), MAX_STACK_DEPTH);
    }
}
