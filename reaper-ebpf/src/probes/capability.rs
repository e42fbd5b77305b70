//! Empty programs used only by `reaper doctor` to test each attach kind.

use aya_ebpf::{
    macros::{btf_tracepoint, fentry, fexit, kprobe, kretprobe},
    programs::{BtfTracePointContext, FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};

#[btf_tracepoint(function = "sched_process_exit")]
pub fn check_tp_btf(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[fentry]
pub fn check_fentry(_ctx: FEntryContext) -> u32 {
    0
}

#[fexit]
pub fn check_fexit(_ctx: FExitContext) -> u32 {
    0
}

#[kprobe]
pub fn check_kprobe(_ctx: ProbeContext) -> u32 {
    0
}

#[kretprobe]
pub fn check_kretprobe(_ctx: RetProbeContext) -> u32 {
    0
}
