//! Byte offsets of the classic tracepoint fields the kernel side reads.
//!
//! Record layouts drift between kernels (`sched_process_free` stores `comm`
//! inline on 6.1 and as `__data_loc` on 6.18, which moves `pid` from 24 to
//! 12). Userspace parses each tracepoint's tracefs `format` and hands the
//! offsets to the programs through the [`GLOBAL_TRACEPOINT_OFFSETS`] loader
//! global, so no offset is compiled in.

/// Name of the loader global holding a [`TracepointOffsets`].
pub const GLOBAL_TRACEPOINT_OFFSETS: &str = "TRACEPOINT_OFFSETS";

/// Field offsets, in bytes from the start of the raw tracepoint record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracepointOffsets {
    /// `lock:contention_begin` `lock_addr`.
    pub contention_begin_lock: u32,
    /// `lock:contention_begin` `flags`.
    pub contention_begin_flags: u32,
    /// `lock:contention_end` `lock_addr`.
    pub contention_end_lock: u32,
    /// `syscalls:sys_enter_process_mrelease` `pidfd`.
    pub mrelease_enter_pidfd: u32,
    /// `syscalls:sys_exit_process_mrelease` `ret`.
    pub mrelease_exit_ret: u32,
    /// `sched:sched_process_free` `pid`.
    pub process_free_pid: u32,
    /// `pid` of the `oom:*` events (the same in all five).
    pub oom_pid: u32,
    /// `signal:signal_generate` `sig`.
    pub signal_generate_sig: u32,
    /// `signal:signal_generate` `pid` (the target).
    pub signal_generate_pid: u32,
    /// Reserved; keeps the size a multiple of 8.
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<TracepointOffsets>() == 40);
crate::user_pod!(TracepointOffsets);
