//! Where reaper's own BPF programs sit in kernel memory, from the kernel's
//! program info (`BPF_OBJ_GET_INFO_BY_FD`: `jited_ksyms`, `jited_func_lens`,
//! `tag`), named as /proc/kallsyms names them (`bpf_prog_<tag>_<name>`).
//!
//! The symbol table is read at start-up, before the programs exist, so a
//! sample inside one of them (the cpu-clock sampler interrupting a lock
//! probe) would otherwise need a second full kallsyms read at stop, ~70 ms
//! of a shutdown that takes ~20 ms without it. Two syscalls per program
//! give the exact ranges instead. A subprogram (memset, a closure) is named
//! after the program it belongs to, so its cost shows as that probe's.

use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::Ebpf;
use aya_obj::generated::bpf_prog_info;

use super::prog_info as get_info;

/// One JITed function of one of reaper's programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSymbol {
    /// First byte of its JITed code.
    pub start: u64,
    /// Bytes of JITed code.
    pub len: u64,
    /// `bpf_prog_<tag>_<program name>`.
    pub name: String,
}

/// Every JITed function of every loaded program of `ebpf`; empty for a
/// program whose info hides addresses (no CAP_SYSLOG / kptr_restrict).
pub fn of_loaded(ebpf: &Ebpf) -> Vec<ProgramSymbol> {
    let mut out: Vec<ProgramSymbol> = ebpf
        .programs()
        .filter_map(|(name, program)| {
            let fd = program.fd().ok()?;
            jited(fd.as_fd().as_raw_fd(), name)
        })
        .flatten()
        .collect();
    out.sort_by_key(|s| s.start);
    out
}

/// The JITed functions of the program behind `fd`.
fn jited(fd: i32, name: &str) -> Option<Vec<ProgramSymbol>> {
    // SAFETY: plain data; zero counts ask the kernel only for the counts.
    let mut counts: bpf_prog_info = unsafe { std::mem::zeroed() };
    get_info(fd, &mut counts)?;
    let n = counts.nr_jited_ksyms as usize;
    if n == 0 {
        return None;
    }
    let mut starts = vec![0u64; n];
    let mut lens = vec![0u32; counts.nr_jited_func_lens as usize];
    // SAFETY: as above.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_jited_ksyms = starts.len() as u32;
    info.jited_ksyms = starts.as_mut_ptr() as u64;
    info.nr_jited_func_lens = lens.len() as u32;
    info.jited_func_lens = lens.as_mut_ptr() as u64;
    get_info(fd, &mut info)?;
    let tag: String = info.tag.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{}{tag}_{name}", reaper_common::program_name::PREFIX);
    Some(
        starts
            .iter()
            .zip(
                lens.iter()
                    .map(|&l| u64::from(l))
                    .chain(std::iter::repeat(0)),
            )
            .filter(|&(&start, len)| start != 0 && len != 0)
            .map(|(&start, len)| ProgramSymbol {
                start,
                len,
                name: name.clone(),
            })
            .collect(),
    )
}
