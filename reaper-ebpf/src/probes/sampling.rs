//! cpu-clock sampling of tracked tasks' kernel stacks, aggregated per
//! (context, stack) in a per-CPU hash.
//!
//! Each sample weighs the cpu-clock time since the previous sample on its
//! CPU (the event's own count), not the nominal period: the kernel takes
//! one sample per timer expiry and skips the periods of a late expiry
//! (`perf_swevent_hrtimer` → `hrtimer_forward_now`), so under a stalled
//! virtual CPU (qemu TCG) samples × period lost most of the time while
//! the count kept it. On a timely timer the two are the same.

use aya_ebpf::{
    bindings::bpf_perf_event_value,
    helpers::bpf_perf_prog_read_value,
    macros::{map, perf_event},
    maps::{PerCpuArray, PerCpuHashMap},
    programs::PerfEventContext,
};
use reaper_common::{
    loss::Counter,
    sampling::{SAMPLE_COUNTS_DEFAULT_ENTRIES, SCRATCH_SAMPLE, SampleCount, SampleKey},
};

use crate::maps::{bump, current_context};

/// (context, stack) → samples and summed period.
#[map(name = "SAMPLE_COUNTS")]
static SAMPLE_COUNTS: PerCpuHashMap<SampleKey, SampleCount> =
    PerCpuHashMap::with_max_entries(SAMPLE_COUNTS_DEFAULT_ENTRIES, 0);

/// The cpu-clock count at this CPU's previous sample, any task's.
#[map(name = "SAMPLE_CLOCK")]
static SAMPLE_CLOCK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// cpu-clock ns since this CPU's previous sample; the nominal period for
/// the first sample or when the count cannot be read.
#[inline(always)]
fn elapsed_ns(ctx: &PerfEventContext) -> u64 {
    // SAFETY: `ctx.ctx` points at the kernel's bpf_perf_event_data.
    let period = unsafe { (*ctx.ctx).sample_period };
    let mut value = bpf_perf_event_value {
        counter: 0,
        enabled: 0,
        running: 0,
    };
    // SAFETY: the helper fills `value` from the sampling event.
    let ret = unsafe {
        bpf_perf_prog_read_value(
            ctx.ctx,
            &mut value,
            core::mem::size_of::<bpf_perf_event_value>() as u32,
        )
    };
    let Some(last) = SAMPLE_CLOCK.get_ptr_mut(0) else {
        return period;
    };
    if ret != 0 {
        return period;
    }
    // SAFETY: per-CPU value, no concurrent writer on this CPU.
    let previous = unsafe { core::ptr::replace(last, value.counter) };
    if previous == 0 || value.counter <= previous {
        return period;
    }
    value.counter - previous
}

#[perf_event]
pub fn sample_cpu_clock(ctx: PerfEventContext) -> u32 {
    // Every sample moves the clock, tracked or not, so a tracked sample
    // weighs only the time since the sample before it.
    let period_ns = elapsed_ns(&ctx);
    let Some(context) = current_context() else {
        return 0;
    };
    bump(Counter::SamplesTracked);
    let stack_id = super::stack_id_of(&ctx, SCRATCH_SAMPLE, Counter::SampleStackLost);
    let key = SampleKey { context, stack_id };
    match SAMPLE_COUNTS.get_ptr_mut(&key) {
        Some(count) => {
            // SAFETY: per-CPU value, no concurrent writer on this CPU.
            unsafe {
                (*count).samples += 1;
                (*count).period_ns += period_ns;
            }
        }
        None => {
            let first = SampleCount {
                samples: 1,
                period_ns,
            };
            if let Err(err) = SAMPLE_COUNTS.insert(&key, &first, 0) {
                crate::dropped!(
                    &ctx,
                    Counter::SampleCountsFull,
                    "sample dropped: SAMPLE_COUNTS insert returned {} (full? --sample-map-size)",
                    err
                );
            }
        }
    }
    0
}
