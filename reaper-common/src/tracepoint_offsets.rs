//! Byte offsets of the classic tracepoint fields the kernel side reads.
//!
//! Record layouts drift between kernels (`sched_process_free` stores `comm`
//! inline on 6.1 and as `__data_loc` on 6.18, which moves `pid` from 24 to
//! 12). Userspace parses each tracepoint's tracefs `format` and hands the
//! offsets to the programs through the [`GLOBAL_TRACEPOINT_OFFSETS`] loader
//! global, so no offset is compiled in.
//!
//! The same global carries what the raw tracepoint programs need
//! (BPF_PROG_TYPE_RAW_TRACEPOINT, whose arguments are the tracepoint's
//! `TP_PROTO` arguments rather than a record): the offset of
//! `task_struct.pid` from kernel BTF, which of `oom:mark_victim`'s two
//! prototypes this kernel has, and where the first syscall argument sits in
//! `struct pt_regs`. A raw program whose fact is unknown is not attached;
//! its classic tracepoint is used instead.

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
    /// Raw tracepoints: byte offset of `task_struct.pid` (from BTF), for
    /// `sched_process_free`, `signal_generate` and the task form of
    /// `mark_victim`; 0 when unknown (those programs are then not used).
    pub raw_task_pid: u32,
    /// Raw tracepoints: byte offset of the first syscall argument in
    /// `struct pt_regs` (`di` on x86_64, `regs[0]` on arm64), read by
    /// `raw_syscalls:sys_enter` for `process_mrelease`'s pidfd.
    pub raw_syscall_arg0: u32,
    /// Raw tracepoints: [`MARK_VICTIM_PID`] or [`MARK_VICTIM_TASK`], the
    /// prototype of `oom:mark_victim` on this kernel.
    pub raw_mark_victim: u32,
    /// `kmem:rss_stat` `mm_id`.
    pub rss_stat_mm_id: u32,
    /// `kmem:rss_stat` `curr` (the mm is the current task's own).
    pub rss_stat_curr: u32,
    /// `kmem:rss_stat` `member`.
    pub rss_stat_member: u32,
    /// `kmem:rss_stat` `size` (bytes).
    pub rss_stat_size: u32,
    /// Raw tracepoints: `exit_group`'s syscall number on this architecture
    /// ([`NR_EXIT_GROUP_X86_64`], [`NR_EXIT_GROUP_GENERIC`]), which
    /// `raw_syscalls:sys_enter` watches to arm a tracked process whose own
    /// exit begins; 0: not watched.
    pub nr_exit_group: u32,
    /// `syscalls:sys_enter_exit_group` `error_code`.
    pub exit_group_code: u32,
}
const _: () = assert!(core::mem::size_of::<TracepointOffsets>() == 72);

/// `exit_group`'s number in x86_64's `syscall_64.tbl`.
pub const NR_EXIT_GROUP_X86_64: u32 = 231;
/// `exit_group`'s number in asm-generic/unistd.h (arm64).
pub const NR_EXIT_GROUP_GENERIC: u32 = 94;

/// `oom:mark_victim` is `TP_PROTO(int pid)` (6.1 before the stable
/// backport, and every kernel up to 6.7).
pub const MARK_VICTIM_PID: u32 = 0;
/// `oom:mark_victim` is `TP_PROTO(struct task_struct *task, uid_t uid)`
/// (6.8 onwards, and Debian's 6.1.192).
pub const MARK_VICTIM_TASK: u32 = 1;

/// `process_mrelease`'s syscall number: 448 in x86_64's `syscall_64.tbl`,
/// in i386's `syscall_32.tbl` (ia32 compat calls report their own table's
/// number) and in asm-generic/unistd.h (arm64, and arm64's compat table).
pub const NR_PROCESS_MRELEASE: i64 = 448;
crate::user_pod!(TracepointOffsets);
