//! reaper's kernel side. One module per probe concept; shared maps live in
//! `maps`, and every type that crosses a map is defined in `reaper-common`.
#![no_std]
#![no_main]

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
