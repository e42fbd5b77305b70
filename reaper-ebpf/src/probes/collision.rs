//! Walker steps, PTE-lock waits and the locks' last takers, recorded from
//! function timing's entries and exits (see `reaper_common::collision`).
//! Nothing here runs for a task reaper does not track, except the
//! opt-in third-party taker update (one hash lookup per PTE-lock call).

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_comm, bpf_probe_read_kernel},
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray},
    programs::{FExitContext, RetProbeContext},
};
use reaper_common::{
    collision::{
        LAST_TAKER_ENTRIES, LastTaker, OpenWait, PteWait, TAKER_UNTRACKED, WAIT_LOG_LEN, WAIT_OPEN,
        WALKER_LOG_LEN, WaitLog, WalkerLog, WalkerStep,
    },
    context::CONTEXT_COUNT,
    function_timing::{CollisionConfig, MAX_NESTING, SLOT_NONE, VmaArgKind},
};

use super::function_timing::{Args, masked};

/// Per-context walker steps.
#[map(name = "FN_WALKER_LOG")]
static FN_WALKER_LOG: Array<WalkerLog> = Array::with_max_entries(CONTEXT_COUNT, 0);

/// Per-CPU PTE-lock waits.
#[map(name = "FN_PTE_WAIT_LOG")]
static FN_PTE_WAIT_LOG: PerCpuArray<WaitLog> = PerCpuArray::with_max_entries(1, 0);

/// Lock address → its last taker.
#[map(name = "FN_PTE_LAST_TAKER")]
static FN_PTE_LAST_TAKER: LruHashMap<u64, LastTaker> =
    LruHashMap::with_max_entries(LAST_TAKER_ENTRIES, 0);

/// Per CPU, the logged wait open at each entry-stack depth.
#[map(name = "FN_PTE_OPEN_WAITS")]
static FN_PTE_OPEN_WAITS: PerCpuArray<OpenWait> =
    PerCpuArray::with_max_entries(MAX_NESTING as u32, 0);

const WALKER_MASK: usize = WALKER_LOG_LEN - 1;
const WAIT_MASK: usize = WAIT_LOG_LEN - 1;
const _: () = assert!(WALKER_LOG_LEN.is_power_of_two() && WAIT_LOG_LEN.is_power_of_two());

/// Arguments of `__pte_offset_map_lock(mm, pmd, addr, ptlp)` (6.5+) and of
/// 7.x's out-of-line `pte_offset_map_lock`, same list: the fexit reads
/// `addr`, `ptlp` and the return value after them.
const PTE_LOCK_ADDR_ARG: u32 = 2;
const PTE_LOCK_PTLP_ARG: u32 = 3;
const PTE_LOCK_ARGS: u32 = 4;

/// `vm_area_struct.vm_end` follows `vm_start` (include/linux/mm_types.h,
/// 6.1 through 7.x).
const VM_END_AFTER_START: usize = 8;

/// Arguments readable at a function's return: an fexit sees them (and the
/// return value after them); a kretprobe's registers are clobbered.
pub(super) trait ExitArgs {
    /// Argument `n`, or the return value at `n` = the function's arity.
    fn exit_arg(&self, n: u32) -> Option<u64>;
}

impl ExitArgs for FExitContext {
    #[inline(always)]
    fn exit_arg(&self, n: u32) -> Option<u64> {
        // The same trampoline argument array fentry reads (see
        // `function_timing::Args for FEntryContext`), return value last.
        if n > PTE_LOCK_ARGS {
            return None;
        }
        let field = (self.as_ptr() as *const u64).wrapping_add(n as usize);
        // SAFETY: a checked kernel read of the trampoline's argument array.
        unsafe { bpf_probe_read_kernel(field) }.ok()
    }
}

impl ExitArgs for RetProbeContext {
    #[inline(always)]
    fn exit_arg(&self, _n: u32) -> Option<u64> {
        None
    }
}

/// A probed call's entry: a walker step begins, or a PTE-lock wait does.
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "one call site, all scalars")]
pub(super) fn on_entry<A: Args>(
    args: &A,
    cfg: &CollisionConfig,
    vm_start_offset: u32,
    slot: u32,
    parent: u32,
    (tid, context): (u32, u32),
    depth: u32,
    now: u64,
) {
    if slot == cfg.walker_slot && walker_parent(cfg, parent) {
        step_begin(args, cfg, vm_start_offset, tid, context, now);
    }
    if slot == cfg.wait_slot && parent != SLOT_NONE && parent == cfg.pte_caller_slot {
        wait_begin(args, tid, context, depth, now);
    }
}

/// Whether a walker step called from `parent` is a teardown's.
#[inline(always)]
fn walker_parent(cfg: &CollisionConfig, parent: u32) -> bool {
    let [a, b] = cfg.walker_parents;
    (a == SLOT_NONE && b == SLOT_NONE) || (parent != SLOT_NONE && (parent == a || parent == b))
}

/// Appends a step to `context`'s walker log.
#[inline(always)]
fn step_begin<A: Args>(
    args: &A,
    cfg: &CollisionConfig,
    vm_start_offset: u32,
    tid: u32,
    context: u32,
    now: u64,
) {
    let Some(arg) = args.arg_u64(cfg.walker_arg) else {
        return;
    };
    let (start, end) = if cfg.walker_arg_kind == VmaArgKind::VmaPointer as u32 {
        let at = arg as usize + vm_start_offset as usize;
        // SAFETY: checked kernel reads; a bad pointer returns an error.
        let start = unsafe { bpf_probe_read_kernel(at as *const u64) }.unwrap_or(0);
        let end = unsafe { bpf_probe_read_kernel((at + VM_END_AFTER_START) as *const u64) };
        (start, end.unwrap_or(0))
    } else {
        (arg, args.arg_u64(cfg.walker_arg + 1).unwrap_or(0))
    };
    let Some(log) = FN_WALKER_LOG.get_ptr_mut(context) else {
        return;
    };
    // SAFETY: one walking thread per context writes its log.
    unsafe {
        let count = (*log).count;
        if (count as usize) < WALKER_LOG_LEN {
            (*log).steps[masked(count as usize, WALKER_MASK)] = WalkerStep {
                start,
                end,
                enter_ns: now,
                exit_ns: 0,
                tid,
                _pad: 0,
            };
        }
        (*log).count = count + 1;
    }
}

/// Logs a PTE-lock wait with the lock's last taker, and remembers where
/// for the exit. The taker is copied from its map value straight into the
/// log: an `Option<LastTaker>` on the stack leaves its payload
/// uninitialised when absent, and verifiers before 6.4 refuse any read of
/// uninitialised stack (6.1 refused this kprobe: "invalid read from
/// stack").
#[inline(always)]
fn wait_begin<A: Args>(args: &A, tid: u32, context: u32, depth: u32, now: u64) {
    let Some(lock) = args.arg_u64(0) else {
        return;
    };
    let taker = FN_PTE_LAST_TAKER.get_ptr(&lock);
    let Some(log) = FN_PTE_WAIT_LOG.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's value; the slow path's programs do not nest on
    // one CPU (the trampoline's recursion guard). `taker` is a map value
    // pointer (plain data).
    unsafe {
        let count = (*log).count;
        (*log).count = count + 1;
        if count as usize >= WAIT_LOG_LEN {
            return;
        }
        let index = masked(count as usize, WAIT_MASK);
        let wait = &mut (*log).waits[index];
        wait.start_ns = now;
        wait.duration_ns = WAIT_OPEN;
        wait.lock = lock;
        wait.tid = tid;
        wait.context = context;
        wait._pad = 0;
        match taker {
            Some(taker) => {
                wait.holder = *taker;
                wait.found = 1;
            }
            None => {
                wait.holder = LastTaker::default();
                wait.found = 0;
            }
        }
        if let Some(open) = FN_PTE_OPEN_WAITS.get_ptr_mut(depth) {
            *open = OpenWait {
                tid,
                index: index as u32,
            };
        }
    }
}

/// Appends a complete wait to this CPU's log (PREEMPT_RT's waits, see
/// `super::rt_owner`).
#[inline(always)]
pub(super) fn append_wait(wait: &PteWait) {
    let Some(log) = FN_PTE_WAIT_LOG.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's value (see `wait_begin`).
    unsafe {
        let count = (*log).count;
        (*log).count = count + 1;
        if (count as usize) < WAIT_LOG_LEN {
            (*log).waits[masked(count as usize, WAIT_MASK)] = *wait;
        }
    }
}

/// A tracked thread's probed call returned: closes its walker step or its
/// logged wait, or records it as the last taker of the PTE lock it took.
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "one call site, all scalars")]
pub(super) fn on_exit<C: ExitArgs>(
    ctx: &C,
    cfg: &CollisionConfig,
    slot: u32,
    (tid, context): (u32, u32),
    depth: u32,
    now: u64,
    elapsed: u64,
) {
    if slot == cfg.walker_slot {
        step_end(tid, context, now);
    }
    if slot == cfg.wait_slot {
        wait_end(tid, depth, elapsed);
    }
    if slot == cfg.pte_slot {
        take(ctx, tid, context, now, false);
    }
}

/// Whether `tid` is inside `context`'s open walker step: its wait is then
/// a walker's (not, say, a multi-threaded victim's sibling faulting while
/// it exits). When the log overflowed this cannot be told, and the wait is
/// kept (the lost steps are counted).
#[inline(always)]
pub(super) fn in_step(tid: u32, context: u32) -> bool {
    let Some(log) = FN_WALKER_LOG.get_ptr(context) else {
        return false;
    };
    // SAFETY: see `step_begin`; a read of this context's log.
    match unsafe { open_step(log, tid) } {
        Ok(step) => step.is_some(),
        Err(Overflowed) => true,
    }
}

/// Closes `context`'s last step when `tid` opened it.
#[inline(always)]
fn step_end(tid: u32, context: u32, now: u64) {
    let Some(log) = FN_WALKER_LOG.get_ptr_mut(context) else {
        return;
    };
    // SAFETY: see `step_begin`.
    unsafe {
        if let Ok(Some(last)) = open_step(log, tid) {
            (*log).steps[last].exit_ns = now;
        }
    }
}

/// The walker log had more steps than it holds.
struct Overflowed;

/// The index of `log`'s last step when `tid` opened it and it is still
/// open; `Err` when the log overflowed (its last steps were not stored).
///
/// # Safety
/// `log` is a map value pointer of [`FN_WALKER_LOG`].
#[inline(always)]
unsafe fn open_step(log: *const WalkerLog, tid: u32) -> Result<Option<usize>, Overflowed> {
    // SAFETY: the caller's.
    unsafe {
        let count = (*log).count as usize;
        if count > WALKER_LOG_LEN {
            return Err(Overflowed);
        }
        if count == 0 {
            return Ok(None);
        }
        let last = masked(count - 1, WALKER_MASK);
        let step = &(*log).steps[last];
        Ok((step.tid == tid && step.exit_ns == 0).then_some(last))
    }
}

/// Sets the duration of the wait opened at `depth` by `tid` on this CPU.
#[inline(always)]
fn wait_end(tid: u32, depth: u32, elapsed: u64) {
    let Some(open) = FN_PTE_OPEN_WAITS.get_ptr_mut(depth) else {
        return;
    };
    let Some(log) = FN_PTE_WAIT_LOG.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's values.
    unsafe {
        if (*open).tid != tid {
            return;
        }
        (*open).tid = 0;
        let index = masked((*open).index as usize, WAIT_MASK);
        (*log).waits[index].duration_ns = elapsed;
    }
}

/// Records the caller as the last taker of the PTE lock the PTE-lock
/// function returned locked; `only_if_known` (an untracked caller) updates
/// only a lock a tracked walker took before.
#[inline(always)]
fn take<C: ExitArgs>(ctx: &C, tid: u32, context: u32, now: u64, only_if_known: bool) {
    // NULL: no page table there, nothing locked.
    if ctx.exit_arg(PTE_LOCK_ARGS).is_none_or(|ret| ret == 0) {
        return;
    }
    let Some(ptlp) = ctx.exit_arg(PTE_LOCK_PTLP_ARG) else {
        return;
    };
    // SAFETY: a checked kernel read of `*ptlp`, set on success.
    let Ok(lock) = (unsafe { bpf_probe_read_kernel(ptlp as *const u64) }) else {
        return;
    };
    // Every byte written before use (see `wait_begin`): the comm only
    // where the helper filled it.
    let mut taker = LastTaker {
        taken_ns: now,
        addr: ctx.exit_arg(PTE_LOCK_ADDR_ARG).unwrap_or(0),
        tid,
        context,
        comm: [0; 16],
    };
    if let Ok(comm) = bpf_get_current_comm() {
        taker.comm = comm;
    }
    // A walker takes each of its PTE locks hundreds of times (one per
    // zap batch of the PMD): overwrite the known lock's value in place, and
    // insert (an LRU allocation and bucket lock) only for a new lock.
    if let Some(known) = FN_PTE_LAST_TAKER.get_ptr_mut(&lock) {
        // SAFETY: a map value pointer; a torn read by a concurrent waiter
        // costs one wait's holder name at worst.
        unsafe { *known = taker };
        return;
    }
    if only_if_known {
        return;
    }
    // A full LRU map evicts its oldest lock; an error loses one name.
    let _ = FN_PTE_LAST_TAKER.insert(&lock, &taker, 0);
}

/// An untracked task's PTE-lock call returned: with `third_party` on, it
/// becomes the last taker of a lock a tracked walker took before.
#[inline(always)]
pub(super) fn untracked_exit<C: ExitArgs>(ctx: &C, cfg: &CollisionConfig, slot: u32, tid: u32) {
    if cfg.third_party == 0 || slot != cfg.pte_slot {
        return;
    }
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    take(ctx, tid, TAKER_UNTRACKED, now, true);
}
