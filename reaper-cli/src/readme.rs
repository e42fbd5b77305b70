//! README section titles the tool's messages point to (kept in step with
//! README.md), shared by `doctor`'s findings and the report's header.

/// Lockdown.
pub const LOCKDOWN: &str = "Kernel lockdown";
/// LSMs and seccomp.
pub const LSM_SECCOMP: &str = "LSMs and seccomp";
/// The BPF and perf sysctls.
pub const SYSCTLS: &str = "unprivileged_bpf_disabled and perf_event_paranoid";
/// No BTF.
pub const NO_BTF: &str = "Kernels without BTF";
