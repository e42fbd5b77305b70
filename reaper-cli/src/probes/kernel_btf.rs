//! The kernel BTF index fentry/fexit loads take their attach type ids from,
//! read only when a BTF-typed program is about to load, once per
//! recording, and never on a kernel that refuses fentry.
//!
//! fentry/fexit programs are loaded against a BTF type id of the target
//! function. aya's `FEntry::load(name, &Btf)` looks it up in aya's own
//! parse of `/sys/kernel/btf/vmlinux` (an `aya::Btf`: about 20 MiB of heap
//! and 0.1 s on a 6.18 kernel; doctor parsed it three times); the vendored
//! aya's `load_by_btf_id`
//! (third_party/README.md) takes the id from reaper's own index
//! ([`super::btf::KernelBtf`], a few MiB, 40 ms) instead. [`FentryBtf`]
//! indexes it on first use only, shares it between the probe-cost
//! calibration and the attach ladder, and is dropped with them. Before
//! that, [`FentryBtf::probe`] asks the kernel once, with a two-instruction
//! fentry program against the first function the ladder will try (its
//! type id from the recorder's index), whether it refuses fentry for every
//! function (a policy, EPERM; no trampolines, ENOTSUPP): then no index is
//! made at all, and the ladder reports the same refusal it would have got
//! from its first real load.

use std::{cell::OnceCell, os::fd::FromRawFd as _};

use super::btf::KernelBtf;
use aya_obj::generated::{bpf_attach_type, bpf_attr, bpf_cmd, bpf_prog_type};

use super::refusal::{Refusal, Step};

/// aya's kernel BTF for fentry/fexit loads, parsed on first use.
#[derive(Default)]
pub struct FentryBtf {
    /// Whether the kernel has BTF at all (reaper's index read it).
    available: bool,
    /// The kernel's refusal of every fentry program, if the probe found one.
    refused: Option<Refusal>,
    parsed: OnceCell<Option<KernelBtf>>,
}

impl FentryBtf {
    /// Without a probe: parses on first use (`doctor`, tests).
    pub fn lazy(available: bool) -> Self {
        Self {
            available,
            ..Self::default()
        }
    }

    /// Asks the kernel whether it takes an fentry program on `target` (a
    /// BTF function type id from reaper's index), and keeps a refusal that
    /// holds for every function. No target (no BTF, or no function to
    /// time): nothing is asked.
    pub fn probe(available: bool, target: Option<u32>) -> Self {
        let refused = target
            .filter(|_| available)
            .and_then(|id| tiny_fentry_refusal(id).err())
            .filter(refuses_every_function);
        if let Some(r) = &refused {
            log::debug!("fentry refused for every function ({r}); kernel BTF not parsed for aya");
        }
        Self {
            available,
            refused,
            parsed: OnceCell::new(),
        }
    }

    /// Whether the kernel has BTF (without parsing it).
    pub fn available(&self) -> bool {
        self.available
    }

    /// The kernel's refusal of every fentry load, as the attach layer
    /// gives a refused load ("fentry load: ...").
    pub fn refused_for_all(&self) -> Option<super::function_probe::AttachError> {
        self.refused
            .as_ref()
            .map(|r| super::function_probe::AttachError::Refused {
                kind: crate::model::doctor::ProgramKind::Fentry,
                function: String::new(),
                refusal: Refusal {
                    step: super::refusal::Step::Load,
                    ..r.clone()
                },
            })
    }

    /// reaper's index of the kernel BTF, made on the first call.
    pub fn get(&self) -> Option<&KernelBtf> {
        if !self.available {
            return None;
        }
        self.parsed
            .get_or_init(|| match KernelBtf::from_sys_fs() {
                Ok(btf) => Some(btf),
                Err(err) => {
                    log::debug!("could not index the kernel BTF: {err}");
                    None
                }
            })
            .as_ref()
    }
}

/// Whether a refusal is the kernel's answer to every fentry program: a
/// policy (EPERM) or no trampoline support (ENOTSUPP 524, EOPNOTSUPP), with
/// no verifier complaint about the program.
pub fn refuses_every_function(refusal: &Refusal) -> bool {
    !refusal.by_verifier() && matches!(refusal.errno, Some(1 | 95 | 524))
}

/// Verifier log bytes for the tiny program (its log is a few lines).
const LOG_BYTES: usize = 4096;

/// Loads `r0 = 0; exit` as an fentry program on BTF function `btf_id` of
/// vmlinux, and closes it; the kernel's refusal otherwise, read as aya's
/// refusals are (errno, the verifier's last words if it spoke).
fn tiny_fentry_refusal(btf_id: u32) -> Result<(), Refusal> {
    // BPF_MOV64_IMM(BPF_REG_0, 0); BPF_EXIT_INSN() (little- and big-endian
    // alike: register nibbles and immediate are all zero).
    let insns: [u64; 2] = [0xb7_u64.to_le(), 0x95_u64.to_le()];
    let license = c"GPL";
    let mut log = vec![0u8; LOG_BYTES];
    // SAFETY: bpf_attr is a plain C union; all zeroes is its empty value.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    // SAFETY: writing the BPF_PROG_LOAD member of a zeroed union.
    let load = unsafe { &mut attr.__bindgen_anon_3 };
    load.prog_type = bpf_prog_type::BPF_PROG_TYPE_TRACING as u32;
    load.expected_attach_type = bpf_attach_type::BPF_TRACE_FENTRY as u32;
    load.attach_btf_id = btf_id;
    load.insn_cnt = insns.len() as u32;
    load.insns = insns.as_ptr() as u64;
    load.license = license.as_ptr() as u64;
    load.log_level = 1;
    load.log_size = log.len() as u32;
    load.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: the instructions, the licence and the log buffer (log_size
    // bytes) outlive the call.
    let ret = unsafe { super::sys_bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr) };
    if ret >= 0 {
        // SAFETY: a successful BPF_PROG_LOAD returns a new fd we own.
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(ret as i32) });
        return Ok(());
    }
    let errno = std::io::Error::last_os_error().raw_os_error();
    let text = String::from_utf8_lossy(log.split(|&b| b == 0).next().unwrap_or_default());
    Err(Refusal {
        step: Step::Load,
        errno,
        verifier: super::refusal::verifier_reason(&text),
        detail: "BPF_PROG_LOAD refused".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(errno: i32, verifier: Option<&str>) -> Refusal {
        Refusal {
            step: Step::Load,
            errno: Some(errno),
            verifier: verifier.map(str::to_owned),
            detail: "BPF_PROG_LOAD refused".to_owned(),
        }
    }

    #[test]
    fn only_a_refusal_without_the_verifier_holds_for_every_function() {
        assert!(refuses_every_function(&refusal(1, None)));
        assert!(refuses_every_function(&refusal(524, None)));
        assert!(!refuses_every_function(&refusal(
            1,
            Some("R1 invalid mem access")
        )));
        assert!(!refuses_every_function(&refusal(22, None)));
    }

    /// The ladder's text for the probe's refusal is the one aya's refused
    /// load gives (`function_timing::kernel_answer`), so run files do not
    /// change with the probe.
    #[test]
    fn the_refusal_reads_like_a_refused_load() {
        let btf = FentryBtf {
            available: true,
            refused: Some(refusal(1, None)),
            parsed: OnceCell::new(),
        };
        assert_eq!(
            btf.refused_for_all().map(|e| e.to_string()).as_deref(),
            Some("fentry load: BPF_PROG_LOAD refused [EPERM 1]")
        );
        assert!(FentryBtf::lazy(false).get().is_none());
    }
}
