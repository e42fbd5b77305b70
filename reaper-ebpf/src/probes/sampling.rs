//! cpu-clock sampling of tracked tasks' kernel stacks, aggregated per
//! (context, stack) in a per-CPU hash.

use aya_ebpf::{
    macros::{map, perf_event},
    maps::PerCpuHashMap,
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

#[perf_event]
pub fn sample_cpu_clock(ctx: PerfEventContext) -> u32 {
    let Some(context) = current_context() else {
        return 0;
    };
    bump(Counter::SamplesTracked);
    let stack_id = super::stack_id_of(&ctx, SCRATCH_SAMPLE, Counter::SampleStackLost);
    // SAFETY: `ctx.ctx` points at the kernel's bpf_perf_event_data.
    let period_ns = unsafe { (*ctx.ctx).sample_period };
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
