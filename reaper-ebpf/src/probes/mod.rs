//! One module per probe concept, plus the stack-capture helper they share.

pub mod capability;
pub mod function_timing;
pub mod lock_wait;
pub mod sampling;
pub mod timeline;

use aya_ebpf::programs::tracing::StackIdContext;
use reaper_common::{
    loss::Counter,
    sampling::{STACK_ID_LOST, STACK_ID_USER_MODE},
};

use crate::maps::KERNEL_STACKS;

/// `-EFAULT` from `bpf_get_stackid`: the kernel part of the stack is empty,
/// i.e. the task was running in user mode.
const EFAULT: i32 = 14;

/// The current kernel stack's id, or a `STACK_ID_*` marker; a stack that
/// could not be stored bumps `lost`.
#[inline(always)]
pub fn stack_id_of<C: StackIdContext>(ctx: &C, lost: Counter) -> i32 {
    match ctx.get_stackid(&KERNEL_STACKS, 0) {
        Ok(id) => id as i32,
        Err(err) if err == -EFAULT => STACK_ID_USER_MODE,
        Err(err) => {
            crate::dropped!(
                ctx,
                lost,
                "kernel stack lost: bpf_get_stackid returned {}",
                err
            );
            STACK_ID_LOST
        }
    }
}
