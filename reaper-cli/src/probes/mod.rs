//! The userspace side of the eBPF probes: loading the embedded object,
//! attaching each probe group (recording what worked), and draining the
//! in-kernel aggregates and the timeline ring buffer.

pub mod attach;
pub mod btf;
pub mod calibrate;
pub mod collect;
pub mod collision_maps;
pub mod function_probe;
pub mod function_timing;
pub mod kernel_btf;
pub mod loader;
pub mod program_stats;
pub mod program_symbols;
pub mod raw_tp;
pub mod refusal;
pub mod timeline_reader;

/// The `bpf(2)` syscall with a whole `bpf_attr`, for the few commands aya
/// does not expose (a raw fentry load probe, program info).
///
/// # Safety
/// Every address in `attr` (instructions, buffers, out-parameters) must be
/// valid for what `cmd` reads or writes there, for the whole call.
pub(crate) unsafe fn sys_bpf(
    cmd: aya_obj::generated::bpf_cmd,
    attr: &mut aya_obj::generated::bpf_attr,
) -> libc::c_long {
    // SAFETY: attr is a live, exclusively borrowed bpf_attr of which the
    // kernel touches at most size_of::<bpf_attr>() bytes; the addresses in
    // it are the caller's contract.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            std::mem::size_of::<aya_obj::generated::bpf_attr>(),
        )
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD` of the program behind `fd` into `info`; `None`
/// when the kernel refuses. Fields a kernel does not know stay zero.
pub(crate) fn prog_info(fd: i32, info: &mut aya_obj::generated::bpf_prog_info) -> Option<()> {
    use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_prog_info};
    // SAFETY: bpf_attr is plain data; all-zero is its documented default.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.info.bpf_fd = u32::try_from(fd).ok()?;
    attr.info.info_len = std::mem::size_of::<bpf_prog_info>() as u32;
    attr.info.info = std::ptr::from_mut(info) as u64;
    // SAFETY: info (info_len bytes) and the arrays it points to (as many
    // entries as the counts it carries) outlive the call.
    (unsafe { sys_bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) } == 0).then_some(())
}
