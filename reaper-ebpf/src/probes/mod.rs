//! One module per probe concept, plus the stack-capture helper they share.

pub mod capability;
pub mod collision;
pub mod function_timing;
pub mod lock_wait;
pub mod rss;
pub mod rt_owner;
pub mod sampling;
pub mod timeline;

use aya_ebpf::{EbpfContext, bindings::BPF_NOEXIST, helpers::bpf_get_stack};
use reaper_common::{
    loss::Counter,
    sampling::{
        KernelStack, MAX_STACK_DEPTH, STACK_ID_LOST, STACK_ID_USER_MODE, stack_hash_seed,
        stack_hash_step, stack_ids,
    },
};

use crate::maps::{KERNEL_STACKS, STACK_SCRATCH};

/// `-EEXIST` from a `BPF_NOEXIST` insert: another CPU stored that id first.
const EEXIST: i32 = 17;

/// The current kernel stack's id, or a `STACK_ID_*` marker; a stack that
/// could not be stored bumps `lost`. `slot` is the caller's `SCRATCH_*`.
///
/// The frames are captured into a per-CPU scratch value, hashed here, and
/// stored under the first of the hash's two ids that is free or already
/// holds the same stack (see `reaper_common::sampling`).
#[inline(always)]
pub fn stack_id_of<C: EbpfContext>(ctx: &C, slot: u32, lost: Counter) -> i32 {
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(slot) else {
        crate::dropped!(ctx, lost, "kernel stack lost: no STACK_SCRATCH slot");
        return STACK_ID_LOST;
    };
    // SAFETY: a per-CPU map value of this caller's own slot; the caller
    // does not run nested in itself on one CPU (see `STACK_SCRATCH`).
    let stack: &mut KernelStack = unsafe { &mut *scratch };
    // SAFETY: the buffer is the value's `ips` array and `size` its length.
    let bytes = unsafe {
        bpf_get_stack(
            ctx.as_ptr(),
            stack.ips.as_mut_ptr().cast(),
            core::mem::size_of_val(&stack.ips) as u32,
            0,
        )
    };
    if bytes < 0 {
        crate::dropped!(
            ctx,
            lost,
            "kernel stack lost: bpf_get_stack returned {}",
            bytes
        );
        return STACK_ID_LOST;
    }
    let nr = (bytes as usize / 8).min(MAX_STACK_DEPTH);
    if nr == 0 {
        // No kernel frames: the task was running in user mode.
        return STACK_ID_USER_MODE;
    }
    let mut hash = stack_hash_seed(nr as u32);
    for i in 0..MAX_STACK_DEPTH {
        if i >= nr {
            break;
        }
        hash = stack_hash_step(hash, stack.ips[i]);
    }
    stack.hash = hash;
    stack.nr = nr as u32;
    for id in stack_ids(hash) {
        // SAFETY: plain data, compared immediately.
        if let Some(stored) = unsafe { KERNEL_STACKS.get(&id) } {
            if stored.hash == hash {
                return id as i32;
            }
            continue;
        }
        match KERNEL_STACKS.insert(&id, &*stack, BPF_NOEXIST as u64) {
            Ok(()) => return id as i32,
            Err(err) if err == -EEXIST => {
                // SAFETY: as above.
                if unsafe { KERNEL_STACKS.get(&id) }.is_some_and(|s| s.hash == hash) {
                    return id as i32;
                }
            }
            Err(err) => {
                crate::dropped!(
                    ctx,
                    lost,
                    "kernel stack lost: KERNEL_STACKS insert returned {} (full? --stack-map-size)",
                    err
                );
                return STACK_ID_LOST;
            }
        }
    }
    crate::dropped!(
        ctx,
        lost,
        "kernel stack lost: both ids of hash {} hold other stacks",
        hash
    );
    STACK_ID_LOST
}
