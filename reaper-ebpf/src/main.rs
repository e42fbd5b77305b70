//! reaper's kernel side. One module per probe concept; shared maps live in
//! `maps`, and every type that crosses a map is defined in `reaper-common`.
#![no_std]
#![no_main]
// `core::intrinsics::atomic_xadd`: the BPF target has no compare-and-swap,
// so `AtomicU64::fetch_add` does not exist there, while the kernel's BPF
// ISA has an atomic add (`lock *(u64 *)(r + off) += r`).
#![feature(core_intrinsics)]
#![allow(internal_features, reason = "see above: the only atomic add on BPF")]

mod maps;
mod probes;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path; this is never called.
    loop {}
}

/// GPL-compatible licence: `bpf_get_stackid` and the tracing helpers are
/// GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
