//! How the kernel names a JITed BPF program in /proc/kallsyms and in
//! stacks: `bpf_prog_<16 hex digit tag>_<name>`. The CLI writes such names
//! for its own programs and recognises them in sampled stacks, and the VM
//! checks look for unfolded ones; kernel functions such as
//! `bpf_prog_inc_misses_counter` share the prefix but carry no tag.

/// The prefix of every program's kallsyms name.
pub const PREFIX: &str = "bpf_prog_";

/// Hex digits of a program tag (8 bytes).
pub const TAG_LEN: usize = 16;

/// The program name in a kallsyms-style frame (`raw_contention_begin` of
/// `bpf_prog_0123456789abcdef_raw_contention_begin`), or `None` for any
/// other frame, kernel functions with the prefix included.
pub fn program_of(frame: &str) -> Option<&str> {
    let rest = frame.strip_prefix(PREFIX)?;
    let tag = rest.get(..TAG_LEN)?;
    let name = rest.get(TAG_LEN..)?.strip_prefix('_')?;
    (tag.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_have_a_tag_and_kernel_functions_with_the_prefix_do_not() {
        assert_eq!(
            program_of("bpf_prog_0123456789abcdef_raw_contention_begin"),
            Some("raw_contention_begin")
        );
        assert_eq!(
            program_of("bpf_prog_9af5d65f957a4f79_memset"),
            Some("memset")
        );
        assert_eq!(program_of("bpf_prog_inc_misses_counter"), None);
        assert_eq!(program_of("bpf_prog_inc_misses_counters"), None);
        assert_eq!(program_of("bpf_prog_0123456789abcdef_"), None);
        assert_eq!(program_of("bpf_prog_0123456789abcdeg_x"), None);
        assert_eq!(program_of("exit_mmap"), None);
    }
}
