//! Exact per-function timing: per slot, an fentry/fexit pair and a
//! kprobe/kretprobe pair (one macro generates all of them); userspace
//! attaches one pair per catalog function. See `reaper_common::function_timing`.
//!
//! Entries push (slot, start) on the task's entry stack; exits pop the
//! innermost open entry of their slot, add the inclusive time to the
//! (context, slot) aggregate and to the edge from the direct probed parent.
//! The per-VMA unmap slot also logs the VMA start address in call order.
//! Each (context, slot) also keeps its longest calls with their start times
//! per CPU (`TopCalls`), for the per-call spans of `report --format trace`.
//! The spin slow path's slot (`FunctionTimingConfig::lock_slot`, set on
//! kernels without `lock:contention_*`) also records each call as a lock
//! wait (see [`super::lock_wait::slowpath_begin`]).
//! Entries and exits also feed issue 25's walker log, PTE-lock wait log and
//! last takers (see [`super::collision`]).

use aya_ebpf::{
    EbpfContext,
    bindings::pt_regs,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{fentry, fexit, kprobe, kretprobe, map},
    maps::{Array, HashMap, PerCpuArray},
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use reaper_common::{
    context::CONTEXT_COUNT,
    function_timing::{
        CallRecord, CollisionConfig, ENTRY_STACKS_MAX_ENTRIES, EdgeStats, EntryStack,
        FN_COUNTER_COUNT, FN_EDGES_ENTRIES, FN_STATS_ENTRIES, FN_TOP_CALLS_ENTRIES, FnCounter,
        FunctionStats, FunctionTimingConfig, HIST_BUCKETS, MAX_NESTING, SLOT_COUNT, SLOT_NONE,
        TOP_CALLS, TopCalls, VMA_LOG_LEN, VmaArgKind, VmaOrder, log2_bucket,
    },
};

use super::collision::ExitArgs;
use crate::maps::{context_of, current_ids};

/// (context, slot) aggregates.
#[map(name = "FN_STATS")]
static FN_STATS: PerCpuArray<FunctionStats> = PerCpuArray::with_max_entries(FN_STATS_ENTRIES, 0);

/// (context, parent slot, child slot) aggregates.
#[map(name = "FN_EDGES")]
static FN_EDGES: PerCpuArray<EdgeStats> = PerCpuArray::with_max_entries(FN_EDGES_ENTRIES, 0);

/// Entry-probe hits per slot, all tasks (the probes' overhead).
#[map(name = "FN_HITS")]
static FN_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(SLOT_COUNT, 0);

/// Loss counters, indexed by `FnCounter`.
#[map(name = "FN_COUNTERS")]
static FN_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FN_COUNTER_COUNT, 0);

/// tid → open probed calls.
#[map(name = "FN_ENTRY_STACKS")]
static FN_ENTRY_STACKS: HashMap<u32, EntryStack> =
    HashMap::with_max_entries(ENTRY_STACKS_MAX_ENTRIES, 0);

/// (context, slot) longest calls with their start times, per CPU.
#[map(name = "FN_TOP_CALLS")]
static FN_TOP_CALLS: PerCpuArray<TopCalls> = PerCpuArray::with_max_entries(FN_TOP_CALLS_ENTRIES, 0);

/// Per-context VMA order of the per-VMA unmap function.
#[map(name = "FN_VMA_ORDER")]
static FN_VMA_ORDER: Array<VmaOrder> = Array::with_max_entries(CONTEXT_COUNT, 0);

/// Written by the loader; see `FunctionTimingConfig`.
#[unsafe(no_mangle)]
pub static FUNCTION_TIMING_CONFIG: FunctionTimingConfig = FunctionTimingConfig {
    vma_slot: SLOT_NONE,
    vma_arg: 0,
    vma_arg_kind: 0,
    vm_start_offset: 0,
    vma_parent_slot: SLOT_NONE,
    lock_slot: SLOT_NONE,
    collision: CollisionConfig::DISABLED,
};

/// Context bits of a tracking tag (`reaper_common::tracking`).
const CONTEXT_MASK: u32 = 0xff;

/// Index mask for the fixed-size arrays (sizes are powers of two).
const NEST_MASK: usize = MAX_NESTING - 1;
const HIST_MASK: usize = HIST_BUCKETS - 1;
const VMA_LOG_MASK: usize = VMA_LOG_LEN - 1;
const TOP_MASK: usize = TOP_CALLS - 1;
const _: () = assert!(
    MAX_NESTING.is_power_of_two()
        && HIST_BUCKETS.is_power_of_two()
        && VMA_LOG_LEN.is_power_of_two()
        && TOP_CALLS.is_power_of_two()
);

/// `index & mask`, with the mask kept in the program right where the index
/// is used: `black_box` hides the index's range from LLVM, which would
/// otherwise drop a mask it proves redundant (or share one mask between a
/// comparison and an access) and leave the verifier to rebuild the bound
/// from earlier branches. Linux 6.12's verifier cannot always do that: it
/// links `r1 = i + 1` to `i` (6.12's linked registers with a delta), and
/// after `if depth > r1` its refinement of the link leaves `i` with
/// smin/smax but no umax and no var_off; `i << 3` is then unbounded and
/// `start_ns[i]` (the map value pointer plus it) was refused with "math
/// between map_value pointer and register with unbounded min value is not
/// allowed". An AND after the last comparison gives the verifier the bound
/// on every kernel; for in-range indices it changes nothing. Call it at each
/// access: one masked value reused after a comparison has the same problem.
#[inline(always)]
pub(super) fn masked(index: usize, mask: usize) -> usize {
    core::hint::black_box(index) & mask
}

#[inline(always)]
fn config() -> FunctionTimingConfig {
    // SAFETY: a plain read of a global the loader initialised.
    unsafe { core::ptr::read_volatile(&FUNCTION_TIMING_CONFIG) }
}

#[inline(always)]
fn bump(counter: FnCounter, by: u64) {
    if let Some(slot) = FN_COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *slot += by };
    }
}

/// Reads a function argument by (runtime) index.
pub(super) trait Args {
    fn arg_u64(&self, n: u32) -> Option<u64>;
}

/// Arguments a BPF trampoline passes to its programs on Linux 5.10-5.x
/// x86_64 (6 registers); later kernels pass more, reaper reads no further.
const FENTRY_MAX_ARGS: u32 = 6;

impl Args for FEntryContext {
    #[inline(always)]
    fn arg_u64(&self, n: u32) -> Option<u64> {
        // The trampoline hands its programs the arguments as an array of
        // u64 on its stack, and the context points at it. Read element `n`
        // with bpf_probe_read_kernel: `bpf_get_func_arg` (which would check
        // `n` against the function's arity) exists only from 5.17, so on
        // 5.10 the program calling it was refused ("invalid func
        // unknown#183") and the function fell back to kprobes, whose
        // kretprobe corrupts sampled stacks there; and a direct context
        // load needs an offset the compiler keeps constant, which a runtime
        // index is not. `n` comes from kernel BTF (the loader's config).
        if n >= FENTRY_MAX_ARGS {
            return None;
        }
        let field = (self.as_ptr() as *const u64).wrapping_add(n as usize);
        // SAFETY: a checked kernel read of the trampoline's argument array.
        unsafe { bpf_probe_read_kernel(field) }.ok()
    }
}

impl Args for ProbeContext {
    #[inline(always)]
    fn arg_u64(&self, n: u32) -> Option<u64> {
        // The register is read with bpf_probe_read_kernel, not a ctx load:
        // LLVM merges per-index ctx loads into one computed-offset load,
        // which the verifier refuses ("dereference of modified ctx ptr").
        let regs = self.as_ptr() as *const pt_regs;
        // SAFETY: only field addresses are computed here, nothing is read.
        let field = unsafe { arg_register(regs, n) }?;
        // SAFETY: a checked read of the kprobe's pt_regs (kernel memory).
        unsafe { bpf_probe_read_kernel(field) }.ok()
    }
}

/// Address of the register holding argument `n` (libbpf's __PT_PARMn_REG).
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
unsafe fn arg_register(regs: *const pt_regs, n: u32) -> Option<*const u64> {
    // SAFETY: field projections of a pointer, no dereference.
    unsafe {
        Some(match n {
            0 => &raw const (*regs).rdi,
            1 => &raw const (*regs).rsi,
            2 => &raw const (*regs).rdx,
            3 => &raw const (*regs).rcx,
            4 => &raw const (*regs).r8,
            5 => &raw const (*regs).r9,
            _ => return None,
        } as *const u64)
    }
}

/// Address of the register holding argument `n` (libbpf's __PT_PARMn_REG).
#[cfg(bpf_target_arch = "aarch64")]
#[inline(always)]
unsafe fn arg_register(regs: *const pt_regs, n: u32) -> Option<*const u64> {
    if n >= 8 {
        return None;
    }
    // SAFETY: a field projection of a pointer, no dereference.
    unsafe { Some((&raw const (*regs).regs).cast::<u64>().add(n as usize)) }
}

/// Other architectures: no argument access (order detection off).
#[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
#[inline(always)]
unsafe fn arg_register(_regs: *const pt_regs, _n: u32) -> Option<*const u64> {
    None
}

/// Entry of a probed function in slot `slot`.
#[inline(always)]
fn on_entry<A: Args + EbpfContext>(args: &A, slot: u32) {
    if let Some(hits) = FN_HITS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot.
        unsafe { *hits += 1 };
    }
    let (tid, tgid) = current_ids();
    let Some(tag) = context_of(tid, tgid) else {
        return;
    };
    // The low 8 bits of a tracking tag are the context id (the rest is the
    // owner in watch mode); function timing aggregates per context.
    let context = tag & CONTEXT_MASK;
    if context >= CONTEXT_COUNT {
        return;
    }
    let config = config();
    let stack = match FN_ENTRY_STACKS.get_ptr_mut(&tid) {
        Some(stack) => stack,
        None => {
            if FN_ENTRY_STACKS
                .insert(&tid, &EntryStack::empty(context), 0)
                .is_err()
            {
                bump(FnCounter::StacksFull, 1);
                return;
            }
            match FN_ENTRY_STACKS.get_ptr_mut(&tid) {
                Some(stack) => stack,
                None => return,
            }
        }
    };
    if config.lock_slot == slot {
        // SAFETY: this task's own value (see below); only read here.
        let depth = unsafe { (*stack).depth };
        if (depth as usize) < MAX_NESTING
            && let Some(lock) = args.arg_u64(0)
        {
            // Before the entry time: the unwind is not part of the wait.
            super::lock_wait::slowpath_begin(args, tid, context, depth, lock);
        }
    }
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: the value belongs to this task; only it (on one CPU at a time)
    // pushes and pops.
    let (parent, depth) = unsafe {
        let depth = (*stack).depth as usize;
        // Opaque to LLVM, so it cannot rewrite slots[depth - 1] as
        // slots[depth] - 4 and drop the bound the verifier needs.
        let top = core::hint::black_box(depth.wrapping_sub(1));
        let parent = if top < MAX_NESTING {
            (*stack).slots[masked(top, NEST_MASK)]
        } else {
            SLOT_NONE
        };
        if depth >= MAX_NESTING {
            bump(FnCounter::StackOverflow, 1);
        } else {
            let i = masked(depth, NEST_MASK);
            (*stack).slots[i] = slot;
            (*stack).start_ns[i] = now;
        }
        (*stack).depth += 1;
        (parent, depth as u32)
    };
    if config.vma_slot == slot
        && (config.vma_parent_slot == SLOT_NONE || config.vma_parent_slot == parent)
    {
        record_vma(args, &config, context);
    }
    super::collision::on_entry(
        args,
        &config.collision,
        config.vm_start_offset,
        slot,
        parent,
        (tid, context),
        depth,
        now,
    );
}

/// Logs the per-VMA function's VMA start address.
#[inline(always)]
fn record_vma<A: Args>(args: &A, config: &FunctionTimingConfig, context: u32) {
    let Some(arg) = args.arg_u64(config.vma_arg) else {
        bump(FnCounter::VmaReadFailed, 1);
        return;
    };
    let addr = if config.vma_arg_kind == VmaArgKind::VmaPointer as u32 {
        let field = (arg as usize + config.vm_start_offset as usize) as *const u64;
        // SAFETY: a checked kernel read; a bad pointer returns an error.
        match unsafe { bpf_probe_read_kernel(field) } {
            Ok(addr) => addr,
            Err(_) => {
                bump(FnCounter::VmaReadFailed, 1);
                return;
            }
        }
    } else {
        arg
    };
    let Some(order) = FN_VMA_ORDER.get_ptr_mut(context) else {
        return;
    };
    // SAFETY: one reaper (or one exiting victim thread) per context writes it.
    unsafe {
        let count = (*order).count;
        if count == 0 {
            (*order).first = addr;
        } else if addr > (*order).last {
            (*order).forward_steps += 1;
        } else if addr < (*order).last {
            (*order).reverse_steps += 1;
        }
        if (count as usize) < (*order).log.len() {
            let i = masked(count as usize, VMA_LOG_MASK);
            (*order).log[i] = addr;
        }
        (*order).last = addr;
        (*order).count = count + 1;
    }
}

/// Exit of a probed function in slot `slot`.
#[inline(always)]
fn on_exit<C: EbpfContext + ExitArgs>(ctx: &C, slot: u32) {
    let (tid, _) = current_ids();
    // Untracked tasks have no stack: nothing was pushed for them.
    let Some(stack) = FN_ENTRY_STACKS.get_ptr_mut(&tid) else {
        super::collision::untracked_exit(ctx, &config().collision, slot, tid);
        return;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: see `on_entry`.
    unsafe {
        let depth = (*stack).depth as usize;
        if depth == 0 {
            bump(FnCounter::ExitUnmatched, 1);
            return;
        }
        if depth > MAX_NESTING {
            // This call's entry was counted but not stored.
            (*stack).depth -= 1;
            return;
        }
        // The innermost open entry of this slot.
        let mut found = MAX_NESTING;
        let mut k = 0;
        while k < MAX_NESTING {
            if k >= depth {
                break;
            }
            let i = (depth - 1 - k) & NEST_MASK;
            if (*stack).slots[i] == slot {
                found = i;
                break;
            }
            k += 1;
        }
        if found >= MAX_NESTING {
            bump(FnCounter::ExitUnmatched, 1);
            return;
        }
        let i = found;
        if i + 1 < depth {
            bump(FnCounter::EntryUnmatched, (depth - 1 - i) as u64);
        }
        // Masked here, after the comparisons above: 6.12 loses the bound of
        // an index that a comparison of `i + 1` refined (see `masked`).
        let start = (*stack).start_ns[masked(i, NEST_MASK)];
        let elapsed = now.saturating_sub(start);
        let parent = if i > 0 {
            (*stack).slots[masked(i - 1, NEST_MASK)]
        } else {
            SLOT_NONE
        };
        (*stack).depth = i as u32;
        let context = (*stack).context;
        let config = config();
        if config.lock_slot == slot {
            super::lock_wait::slowpath_end(ctx, tid, i as u32, elapsed);
        }
        super::collision::on_exit(
            ctx,
            &config.collision,
            slot,
            (tid, context),
            i as u32,
            now,
            elapsed,
        );
        account(context, slot, parent, elapsed);
        keep_if_long(
            context,
            slot,
            CallRecord {
                start_ns: start,
                duration_ns: elapsed,
                tid,
                _pad: 0,
            },
        );
    }
}

/// Keeps a call among its (context, slot)'s [`TOP_CALLS`] longest on this
/// CPU. A call no longer than the shortest kept one costs one comparison;
/// one that replaces it pays a scan for the new shortest.
#[inline(always)]
fn keep_if_long(context: u32, slot: u32, call: CallRecord) {
    if context >= CONTEXT_COUNT || slot >= SLOT_COUNT {
        return;
    }
    let Some(top) = FN_TOP_CALLS.get_ptr_mut(context * SLOT_COUNT + slot) else {
        return;
    };
    // SAFETY: per-CPU value; programs on one CPU do not nest here (the
    // trampolines' and kprobes' recursion guards).
    unsafe {
        let kept = (*top).kept as usize;
        if kept < TOP_CALLS {
            let shortest = (*top).calls[masked((*top).shortest as usize, TOP_MASK)].duration_ns;
            (*top).calls[masked(kept, TOP_MASK)] = call;
            if kept == 0 || call.duration_ns < shortest {
                (*top).shortest = kept as u32;
            }
            (*top).kept = kept as u32 + 1;
            return;
        }
        let at = masked((*top).shortest as usize, TOP_MASK);
        if call.duration_ns <= (*top).calls[at].duration_ns {
            return;
        }
        (*top).calls[masked(at, TOP_MASK)] = call;
        let mut shortest = 0usize;
        let mut min = u64::MAX;
        let mut k = 0usize;
        while k < TOP_CALLS {
            let d = (*top).calls[masked(k, TOP_MASK)].duration_ns;
            if d < min {
                min = d;
                shortest = k;
            }
            k += 1;
        }
        (*top).shortest = shortest as u32;
    }
}

/// Adds one completed call to the aggregates.
#[inline(always)]
fn account(context: u32, slot: u32, parent: u32, elapsed: u64) {
    if context >= CONTEXT_COUNT || slot >= SLOT_COUNT {
        return;
    }
    if let Some(stats) = FN_STATS.get_ptr_mut(context * SLOT_COUNT + slot) {
        // SAFETY: per-CPU value.
        unsafe {
            (*stats).calls += 1;
            (*stats).total_ns += elapsed;
            if elapsed > (*stats).max_ns {
                (*stats).max_ns = elapsed;
            }
            (*stats).hist[masked(log2_bucket(elapsed), HIST_MASK)] += 1;
        }
    }
    if parent < SLOT_COUNT {
        let index = (context * SLOT_COUNT + parent) * SLOT_COUNT + slot;
        if let Some(edge) = FN_EDGES.get_ptr_mut(index) {
            // SAFETY: per-CPU value.
            unsafe {
                (*edge).calls += 1;
                (*edge).total_ns += elapsed;
            }
        }
    }
}

/// Declares one slot's four programs.
macro_rules! function_slot {
    ($slot:literal, $fentry:ident, $fexit:ident, $kprobe:ident, $kretprobe:ident) => {
        #[fentry]
        pub fn $fentry(ctx: FEntryContext) -> u32 {
            on_entry(&ctx, $slot);
            0
        }

        #[fexit]
        pub fn $fexit(ctx: FExitContext) -> u32 {
            on_exit(&ctx, $slot);
            0
        }

        #[kprobe]
        pub fn $kprobe(ctx: ProbeContext) -> u32 {
            on_entry(&ctx, $slot);
            0
        }

        #[kretprobe]
        pub fn $kretprobe(ctx: RetProbeContext) -> u32 {
            on_exit(&ctx, $slot);
            0
        }
    };
}

// Names must match reaper_common::function_timing::PROG_* (checked in the
// CLI's tests against the built object).
function_slot!(0, fn_fentry_0, fn_fexit_0, fn_kprobe_0, fn_kretprobe_0);
function_slot!(1, fn_fentry_1, fn_fexit_1, fn_kprobe_1, fn_kretprobe_1);
function_slot!(2, fn_fentry_2, fn_fexit_2, fn_kprobe_2, fn_kretprobe_2);
function_slot!(3, fn_fentry_3, fn_fexit_3, fn_kprobe_3, fn_kretprobe_3);
function_slot!(4, fn_fentry_4, fn_fexit_4, fn_kprobe_4, fn_kretprobe_4);
function_slot!(5, fn_fentry_5, fn_fexit_5, fn_kprobe_5, fn_kretprobe_5);
function_slot!(6, fn_fentry_6, fn_fexit_6, fn_kprobe_6, fn_kretprobe_6);
function_slot!(7, fn_fentry_7, fn_fexit_7, fn_kprobe_7, fn_kretprobe_7);
function_slot!(8, fn_fentry_8, fn_fexit_8, fn_kprobe_8, fn_kretprobe_8);
function_slot!(9, fn_fentry_9, fn_fexit_9, fn_kprobe_9, fn_kretprobe_9);
function_slot!(10, fn_fentry_10, fn_fexit_10, fn_kprobe_10, fn_kretprobe_10);
function_slot!(11, fn_fentry_11, fn_fexit_11, fn_kprobe_11, fn_kretprobe_11);
