//! reaper's own probes in sampled kernel stacks, made visible and kept apart
//! from kernel work.
//!
//! With fentry/fexit every probed function runs through a BPF trampoline:
//! a stack reads `__mmput → bpf_trampoline_6442528412 → exit_mmap → ...`
//! where the trampoline only called the traced function, and
//! `__zap_vma_range → bpf_trampoline_6442530538 → bpf_prog_…_fn_fentry_6 →
//! ktime_get_mono_fast_ns → read_hpet` where it ran reaper's program. kprobes
//! show `kprobe_ftrace_handler → ... → bpf_prog_…_fn_kprobe_4`, tracepoint
//! programs `trace_call_bpf → bpf_prog_…_timeline_mrelease_exit`.
//!
//! [`ProbeFrames::fold`] removes a trampoline frame that only passes through
//! to the traced function, and replaces a reaper program, the probe
//! machinery that called it and everything it called by one frame,
//! `[reaper probe: fexit page_remove_rmap]`, so flame graphs and tables show
//! the probes' cost as such, attributed to the function they probe.
//!
//! arm64's unwinder (seen on sid 7.2 with fentry) names no trampoline: the
//! trampoline's frame record carries the traced function's own return
//! address, so a traced function appears twice in a row
//! (`exit_mmap;exit_mmap;unmap_vmas;unmap_vmas`), and a sample in the
//! trampoline's helpers is `folio_remove_rmap_ptes;__bpf_prog_enter_recur`.
//! The repeat is collapsed and such a helper becomes
//! `[reaper probe: trampoline of folio_remove_rmap_ptes]`, as on x86_64.

use std::collections::HashMap;

use reaper_common::function_timing::{PROG_FENTRY, PROG_FEXIT, PROG_KPROBE, PROG_KRETPROBE};
use reaper_common::program_name;

use crate::model::{AttachMode, doctor::ProgramKind};
use crate::probes::function_timing::{FunctionAttach, LadderReport};

/// Prefix of a BPF program's kallsyms name (`bpf_prog_<tag>_<name>`), which
/// some kernel functions of the probe machinery share.
const PROG_PREFIX: &str = program_name::PREFIX;
/// Prefix of a trampoline's kallsyms name: `bpf_trampoline_<key>`, and on
/// 5.10 (kernel/bpf/trampoline.c, one name per image of the two a
/// trampoline flips between) `bpf_trampoline_<key>_<image index>`.
const TRAMPOLINE_PREFIX: &str = "bpf_trampoline_";
/// Program names the kernel keeps without BTF (BPF_OBJ_NAME_LEN - 1).
const KERNEL_NAME_LEN: usize = 15;
/// The BTF id bits of a trampoline key (kernel/bpf/trampoline.c
/// `bpf_trampoline_compute_key`: object id << 32, bit 31 set for kernel BTF,
/// the function's BTF id below).
const KEY_BTF_ID_MASK: u64 = 0x7fff_ffff;

/// Kernel functions that run a probe's program: ftrace/kprobe/rethook
/// dispatch, the trampolines' enter/exit helpers, tracepoint-to-BPF glue.
const MACHINERY_PREFIXES: &[&str] = &[
    TRAMPOLINE_PREFIX,
    "__bpf_prog_enter",
    "__bpf_prog_exit",
    "__bpf_tramp_",
    "kprobe_ftrace_handler",
    "kprobe_perf_func",
    "kprobe_dispatcher",
    "kprobe_int3_handler",
    "kretprobe_dispatcher",
    "kretprobe_perf_func",
    "kretprobe_rethook_handler",
    "trampoline_handler",
    "trampoline_probe_handler",
    "__kretprobe_trampoline_handler",
    "kretprobe_trampoline",
    "__kretprobe_trampoline",
    "pre_handler_kretprobe",
    "aggr_pre_handler",
    "rethook_",
    "arch_rethook_",
    "trace_call_bpf",
    "bpf_trace_run",
    "__bpf_trace_",
    "perf_trace_run_bpf_submit",
    "ftrace_regs_call",
    "ftrace_call",
    "ftrace_trampoline",
    "arch_ftrace_ops_list_func",
    "ftrace_ops_list_func",
    "exc_int3",
    "asm_exc_int3",
    // arm64's breakpoint exception path into kprobe_breakpoint_handler.
    "el1h_64_sync",
    "el1_dbg",
    "el1_brk64",
    "do_debug_exception",
    "do_el1_brk64",
    "brk_handler",
    "call_break_hook",
    MISSES_COUNTER,
];

/// The trampoline's own helpers (kernel/bpf/trampoline.c), called by a
/// trampoline around each program and around the traced function; and any
/// `bpf_trampoline_*` name right under a traced function, which on arm64 is
/// an address in the trampoline's image symbolized as the kernel function
/// before it (seen: `folio_remove_rmap_ptes;bpf_trampoline_put;el1h_64_irq`;
/// the kernel's `bpf_trampoline_*` functions attach and detach, they are
/// not called from the teardown functions reaper traces).
const TRAMPOLINE_HELPERS: &[&str] = &[
    "__bpf_prog_enter",
    "__bpf_prog_exit",
    "__bpf_tramp_",
    TRAMPOLINE_PREFIX,
    MISSES_COUNTER,
];

/// Where the kernel counts a program run it skipped because the program was
/// already running on this CPU (`bpf_prog_inc_misses_counter`, and
/// `bpf_prog_inc_misses_counters` for a kprobe's program array): called by
/// the trampolines' `__bpf_prog_enter_recur`, raw tracepoints'
/// `__bpf_trace_run` and `trace_call_bpf` (see `probes::program_stats`,
/// which reports the counts). Probe machinery, not kernel work; its name shares the programs' prefix
/// but carries no tag. Seen under a traced function in a sid x86_64 run.
const MISSES_COUNTER: &str = "bpf_prog_inc_misses_counter";

/// The frame that ends a stack sampled in a skipped probe run whose
/// owner the stack does not show (no trampoline or program frame of
/// reaper's above it).
const SKIPPED_RUN: &str = "[bpf probe: run skipped]";

/// ftrace's entry code, through which a traced function reaches a BPF
/// trampoline when ftrace also manages that function (direct calls): a
/// self-built 6.1 showed `__mmput;ftrace_trampoline;exit_mmap` in every
/// victim stack, arm64 `tlb_finish_mmu;ftrace_caller_direct`. Where it only
/// passes through to the traced function it is dropped like a trampoline.
const FTRACE_ENTRY_PREFIXES: &[&str] =
    &["ftrace_trampoline", "ftrace_caller", "ftrace_regs_caller"];

/// Start and end of a reaper probe frame's label.
const LABEL_OPEN: &str = "[reaper probe: ";
const LABEL_CLOSE: &str = "]";

/// The label of one reaper probe frame.
pub fn label(what: &str) -> String {
    format!("{LABEL_OPEN}{what}{LABEL_CLOSE}")
}

/// What a frame made by [`label`] names (`fexit page_remove_rmap`), or
/// `None` for a kernel frame: how readers of recorded stacks tell reaper's
/// probes from kernel work.
pub fn probe_label(frame: &str) -> Option<&str> {
    frame.strip_prefix(LABEL_OPEN)?.strip_suffix(LABEL_CLOSE)
}

/// What each of reaper's programs probes, and the functions its trampolines
/// trace.
#[derive(Clone, Debug, Default)]
pub struct ProbeFrames {
    /// Program name → what it is, e.g. "fexit page_remove_rmap".
    programs: HashMap<String, String>,
    /// BTF id → traced function, for trampoline keys.
    traced: HashMap<u32, String>,
    /// Whether reaper attached kprobes: then kprobe dispatch with no
    /// program frame under it (arm64 does not unwind into JITed programs)
    /// is reaper's probe too.
    kprobes: bool,
}

impl ProbeFrames {
    /// From (program name, what it probes) and (BTF id, function) pairs.
    pub fn new(
        programs: impl IntoIterator<Item = (String, String)>,
        traced: impl IntoIterator<Item = (u32, String)>,
    ) -> Self {
        Self {
            programs: programs.into_iter().collect(),
            traced: traced.into_iter().collect(),
            kprobes: false,
        }
    }

    /// Marks that reaper attached kprobes (see the field).
    pub fn with_kprobes(mut self, kprobes: bool) -> Self {
        self.kprobes = kprobes;
        self
    }

    /// reaper's loaded programs: function-timing slots named by mode and
    /// the function their ladder attached (`fexit page_remove_rmap`),
    /// others by their own name; trampolines by the BTF id of each function
    /// attached with fentry.
    pub fn for_recording<'a>(
        programs: impl IntoIterator<Item = &'a str>,
        ladder: &LadderReport,
        btf_id: impl Fn(&str) -> Option<u32>,
    ) -> Self {
        let slot_of = |name: &str| -> Option<(&'static str, &FunctionAttach)> {
            let (mode, slot) = [
                (ProgramKind::Fentry.name(), &PROG_FENTRY),
                (ProgramKind::Fexit.name(), &PROG_FEXIT),
                (ProgramKind::Kprobe.name(), &PROG_KPROBE),
                (ProgramKind::Kretprobe.name(), &PROG_KRETPROBE),
            ]
            .into_iter()
            .find_map(|(mode, names)| Some((mode, names.iter().position(|n| *n == name)?)))?;
            let f = ladder
                .functions
                .iter()
                .find(|f| f.function.slot as usize == slot)?;
            Some((mode, f))
        };
        let programs = programs.into_iter().map(|name| {
            let what = match slot_of(name) {
                Some((mode, f)) => format!("{mode} {}", f.function.symbol),
                None => name.to_owned(),
            };
            (name.to_owned(), what)
        });
        let traced = ladder
            .attached()
            .filter(|f| f.mode == AttachMode::Fentry)
            .filter_map(|f| Some((btf_id(&f.function.symbol)?, f.function.symbol.clone())));
        let kprobes = ladder.attached().any(|f| f.mode == AttachMode::Kprobe);
        Self::new(programs, traced).with_kprobes(kprobes)
    }

    /// What reaper's program `name` probes (`fexit page_remove_rmap`), or
    /// its name when it is not one of the recording's programs.
    pub fn describe(&self, name: &str) -> String {
        self.programs
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    /// What a frame's program probes, when the frame is one of reaper's
    /// programs.
    fn program(&self, frame: &str) -> Option<String> {
        let name = program_name::program_of(frame)?;
        if let Some(what) = self.programs.get(name) {
            return Some(what.clone());
        }
        if name.len() != KERNEL_NAME_LEN {
            return None;
        }
        // Without BTF the kernel keeps the first 15 bytes of the name; when
        // several of reaper's programs share them, the prefix is the label.
        let mut matches = self
            .programs
            .iter()
            .filter(|(full, _)| full.starts_with(name));
        match (matches.next(), matches.next()) {
            (Some((_, what)), None) => Some(what.clone()),
            (Some(_), Some(_)) => Some(format!("{name}…")),
            _ => None,
        }
    }

    /// Whether reaper traces `function` through a trampoline (fentry).
    fn is_traced(&self, function: &str) -> bool {
        self.traced.values().any(|f| f == function)
    }

    /// The function a trampoline frame traces, if it is one of reaper's.
    fn trampoline(&self, frame: &str) -> Option<Option<&str>> {
        let name = frame.strip_prefix(TRAMPOLINE_PREFIX)?;
        let key = match name.split_once('_') {
            Some((key, image))
                if !image.is_empty() && image.bytes().all(|b| b.is_ascii_digit()) =>
            {
                key
            }
            Some(_) => return None,
            None => name,
        };
        let key: u64 = key.parse().ok()?;
        let id = u32::try_from(key & KEY_BTF_ID_MASK).ok()?;
        Some(self.traced.get(&id).map(String::as_str))
    }

    /// The stack (outermost first) with reaper's probes folded; see the
    /// module doc.
    pub fn fold(&self, frames: Vec<String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(frames.len());
        for i in 0..frames.len() {
            match self.step(&frames, i, &out) {
                Step::Skip => {}
                Step::Keep(frame) => out.push(frame),
                Step::End {
                    frame,
                    pop_machinery,
                } => {
                    while pop_machinery && out.last().is_some_and(|f| is_machinery(f)) {
                        out.pop();
                    }
                    out.push(frame);
                    return out;
                }
            }
        }
        out
    }

    /// What [`Self::fold`] does with `frames[i]`, `out` being the folded
    /// stack so far.
    fn step(&self, frames: &[String], i: usize, out: &[String]) -> Step {
        let frame = &frames[i];
        if FTRACE_ENTRY_PREFIXES.iter().any(|p| frame.starts_with(p))
            && self.ftrace_passes_through(frames, i)
        {
            return Step::Skip;
        }
        if let Some(what) = self.program(frame) {
            return Step::end(label(&what));
        }
        if let Some(traced) = self.trampoline(frame) {
            return self.at_trampoline(&frames[i + 1..], traced);
        }
        if let Some(step) = self.after_traced(frames, i, out) {
            return step;
        }
        if frame.starts_with(MISSES_COUNTER) {
            return Step::end(SKIPPED_RUN.to_owned());
        }
        self.at_kprobe(frames, i)
    }

    /// Whether the ftrace entry `frames[i]` is passing through: the traced
    /// function next, or a trampoline that itself passes through to it.
    fn ftrace_passes_through(&self, frames: &[String], i: usize) -> bool {
        match frames.get(i + 1) {
            Some(next) if self.trampoline(next).is_some() => {
                frames.get(i + 2).is_some_and(|f| is_kernel_work(f))
            }
            Some(next) => is_kernel_work(next),
            None => false,
        }
    }

    /// At a trampoline of reaper's (tracing `traced`), `rest` the frames
    /// after it: passing through to kernel work, or where the stack ends
    /// (the program it runs, else the trampoline itself).
    fn at_trampoline(&self, rest: &[String], traced: Option<&str>) -> Step {
        if rest.first().is_some_and(|next| is_kernel_work(next)) {
            return Step::Skip;
        }
        Step::end(match rest.iter().find_map(|f| self.program(f)) {
            Some(what) => label(&what),
            None => match traced {
                Some(function) => label(&format!("trampoline of {function}")),
                None => "[bpf trampoline]".to_owned(),
            },
        })
    }

    /// arm64 has no trampoline frame (see the module doc): after a traced
    /// function, its repeat is skipped and a trampoline helper or ftrace
    /// entry ends the stack. `None` when `out` does not end in a traced
    /// function or `frames[i]` is neither.
    fn after_traced(&self, frames: &[String], i: usize, out: &[String]) -> Option<Step> {
        let frame = &frames[i];
        let after_traced = out.last().filter(|f| self.is_traced(f));
        if after_traced.is_some_and(|f| f == frame) {
            return Some(Step::Skip);
        }
        let function = after_traced.filter(|_| {
            is_trampoline_helper(frame)
                || FTRACE_ENTRY_PREFIXES.iter().any(|p| frame.starts_with(p))
        })?;
        let what = frames[i + 1..]
            .iter()
            .find_map(|f| self.program(f))
            .unwrap_or_else(|| format!("trampoline of {function}"));
        Some(Step::End {
            frame: label(&what),
            pop_machinery: false,
        })
    }

    /// `frames[i]` as kprobe dispatch (a lost caller, or where the stack
    /// ends), else as kernel work kept as it is.
    fn at_kprobe(&self, frames: &[String], i: usize) -> Step {
        let frame = &frames[i];
        let is_return = |f: &String| kprobe_entry(f) == Some(ProgramKind::Kretprobe.name());
        if is_return(frame)
            && frames[i + 1..]
                .iter()
                .find(|f| !is_return(f))
                .is_some_and(|f| is_kernel_work(f))
        {
            // Not the kretprobe's handler running (machinery would
            // follow) but a return address it replaced, which this
            // kernel's unwinder did not recover: the caller is lost.
            return Step::Keep(crate::model::FRAME_CALLER_LOST.to_owned());
        }
        if let Some(kind) = kprobe_entry(frame).filter(|_| self.kprobes) {
            let what = frames[i + 1..].iter().find_map(|f| self.program(f));
            return Step::end(label(what.as_deref().unwrap_or(kind)));
        }
        Step::Keep(frame.clone())
    }
}

/// What folding does with one frame.
enum Step {
    /// Leave it out.
    Skip,
    /// Keep this frame (the frame itself, or what stands for it).
    Keep(String),
    /// End the stack with `frame`, first dropping trailing probe machinery
    /// when `pop_machinery`.
    End { frame: String, pop_machinery: bool },
}

impl Step {
    /// Ends the stack with `frame`, dropping trailing probe machinery.
    fn end(frame: String) -> Self {
        Self::End {
            frame,
            pop_machinery: true,
        }
    }
}

/// A frame that is neither probe machinery nor a program: kernel work.
fn is_kernel_work(frame: &str) -> bool {
    !is_machinery(frame) && !frame.starts_with(PROG_PREFIX)
}

/// Where kprobe dispatch starts, and which kind it is: the kretprobe
/// return trampoline, or the kprobe breakpoint/ftrace handler.
fn kprobe_entry(frame: &str) -> Option<&'static str> {
    const RETURN: &[&str] = &[
        "__kretprobe_trampoline",
        "kretprobe_trampoline",
        "arch_rethook_trampoline",
    ];
    const ENTRY: &[&str] = &[
        "kprobe_breakpoint_handler",
        "kprobe_ftrace_handler",
        "kprobe_int3_handler",
    ];
    if RETURN.contains(&frame) {
        Some(ProgramKind::Kretprobe.name())
    } else if ENTRY.contains(&frame) {
        Some(ProgramKind::Kprobe.name())
    } else {
        None
    }
}

/// Whether a frame is one of the trampolines' helpers.
fn is_trampoline_helper(frame: &str) -> bool {
    TRAMPOLINE_HELPERS.iter().any(|p| frame.starts_with(p))
}

/// Whether a frame is probe dispatch rather than the probed kernel's work.
fn is_machinery(frame: &str) -> bool {
    MACHINERY_PREFIXES.iter().any(|p| frame.starts_with(p))
}

#[cfg(test)]
mod tests;
