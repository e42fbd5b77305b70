//! Kernel address → function name, through blazesym's kallsyms support.
//!
//! blazesym (libbpf's symbolization library) is used rather than a
//! hand-written kallsyms lookup: it handles module symbols and vmlinux when
//! present, and is maintained with the BPF tooling. vmlinux lookup is turned
//! off so results depend only on /proc/kallsyms, which every kernel has.
//! Names are reduced to their base (`unmap_page_range.cold` →
//! `unmap_page_range`) so compiler clones match the catalog.

use blazesym::{
    MaybeDefault,
    symbolize::{
        Input, Symbolized, Symbolizer,
        source::{Kernel, Source},
    },
};

use crate::catalog::base_name;

/// Symbolization failures.
#[derive(Debug, thiserror::Error)]
pub enum SymbolizeError {
    /// kallsyms hides addresses (kptr_restrict) or is unreadable.
    #[error(
        "/proc/kallsyms shows no kernel addresses to this process; stacks cannot be symbolized: reaper needs CAP_SYSLOG (run as root, grant CAP_SYSLOG, or set kernel.kptr_restrict=0)"
    )]
    AddressesHidden,
    /// blazesym failed.
    #[error("symbolizing kernel addresses failed")]
    Blazesym(#[source] blazesym::Error),
}

/// Symbolizes kernel stack addresses.
pub struct KernelSymbolizer {
    symbolizer: Symbolizer,
    source: Source<'static>,
}

impl KernelSymbolizer {
    /// Uses the running kernel's /proc/kallsyms.
    pub fn new() -> Result<Self, SymbolizeError> {
        if !kallsyms_visible() {
            return Err(SymbolizeError::AddressesHidden);
        }
        let kernel = Kernel {
            vmlinux: MaybeDefault::None,
            kallsyms: MaybeDefault::Default,
            debug_syms: false,
            ..Default::default()
        };
        Ok(Self {
            symbolizer: Symbolizer::new(),
            source: Source::Kernel(kernel),
        })
    }

    /// Names for a kernel stack given innermost first, as the stack map
    /// stores it; the result is outermost caller first. Return addresses
    /// (every frame but the innermost) are looked up at `ip - 1`, the call
    /// instruction, so a call at a function's very end is not attributed to
    /// the next function.
    pub fn frames(&self, ips_innermost_first: &[u64]) -> Result<Vec<String>, SymbolizeError> {
        let lookup: Vec<u64> = ips_innermost_first
            .iter()
            .enumerate()
            .map(|(i, &ip)| if i == 0 { ip } else { ip.saturating_sub(1) })
            .collect();
        let symbolized = self
            .symbolizer
            .symbolize(&self.source, Input::AbsAddr(&lookup))
            .map_err(SymbolizeError::Blazesym)?;
        let mut names: Vec<String> = symbolized
            .iter()
            .zip(&lookup)
            .map(|(sym, addr)| match sym {
                Symbolized::Sym(sym) => base_name(&sym.name).to_owned(),
                Symbolized::Unknown(_) => format!("0x{addr:x}"),
            })
            .collect();
        names.reverse();
        Ok(names)
    }
}

/// Bytes of /proc/kallsyms read to decide whether it shows addresses: the
/// first 64 lines fit in a few KiB. The kernel formats kallsyms on every
/// read (about 0.1 s for the whole file), so only its head is read.
const KALLSYMS_HEAD_BYTES: usize = 16 << 10;

/// Whether the running kernel's /proc/kallsyms shows real addresses to this
/// process, from its first lines only; false when it cannot be read.
pub fn kallsyms_visible() -> bool {
    use std::io::Read as _;
    let Ok(file) = std::fs::File::open("/proc/kallsyms") else {
        return false;
    };
    let mut head = Vec::with_capacity(KALLSYMS_HEAD_BYTES);
    if file
        .take(KALLSYMS_HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .is_err()
    {
        return false;
    }
    kallsyms_shows_addresses(&String::from_utf8_lossy(&head))
}

/// Whether kallsyms text carries real (non-zero) addresses.
pub fn kallsyms_shows_addresses(text: &str) -> bool {
    text.lines().take(64).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|a| a.chars().any(|c| c != '0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_addresses_are_detected() {
        assert!(!kallsyms_shows_addresses(
            "0000000000000000 T _text\n0000000000000000 T _stext\n"
        ));
        assert!(kallsyms_shows_addresses("ffffffff81000000 T _text\n"));
    }
}
