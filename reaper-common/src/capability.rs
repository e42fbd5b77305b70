//! Trivial programs `reaper doctor` loads and attaches to learn which attach
//! kinds this kernel really allows (a configuration can lie; an attach
//! cannot).

/// tp_btf program (attached to `sched_process_exit`).
pub const PROG_CHECK_TP_BTF: &str = "check_tp_btf";
/// fentry program (loaded against a kernel function by name).
pub const PROG_CHECK_FENTRY: &str = "check_fentry";
/// fexit program.
pub const PROG_CHECK_FEXIT: &str = "check_fexit";
/// kprobe program.
pub const PROG_CHECK_KPROBE: &str = "check_kprobe";
/// kretprobe program.
pub const PROG_CHECK_KRETPROBE: &str = "check_kretprobe";
