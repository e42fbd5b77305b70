//! The `reaper` binaries an experiment runs: one in the guest (a static
//! build for the guest's architecture, copied into its initramfs) and one
//! on this host (`reaper diff`, `reaper gate`).
//!
//! Where they come from: `--guest-reaper FILE` and `--reaper FILE` when
//! given; otherwise a [`ReaperSource`]. The `reaper-lab` binary's source is
//! the `reaper` beside it (the release tarball ships both), else `reaper`
//! on `PATH`; `cargo xtask` builds them from the tree. A tarball holds the
//! reaper of its own architecture only, so an arm64 guest on an x86_64 host
//! needs `--guest-reaper` pointing at the reaper of the aarch64 tarball.
//!
//! Every binary is checked before a guest boots: an ELF executable for the
//! right machine, and for the guest a static one (the guest's initramfs has
//! no C library): a wrong one would otherwise fail inside the guest,
//! minutes later, as "not found".

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::arch::Arch;
use crate::error::Refused;

/// The flags that name the binaries.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReaperArgs {
    /// The reaper that runs on this host (reaper diff and gate), and in
    /// guests of this host's architecture [default: the reaper beside
    /// reaper-lab, else reaper on PATH].
    #[arg(long, value_name = "FILE")]
    pub reaper: Option<PathBuf>,
    /// The static reaper the guest runs when the guest's architecture is
    /// not this host's: e.g. for --arch arm64 on an x86_64 host, the reaper
    /// of reaper-VERSION-aarch64-unknown-linux-musl.tar.gz.
    #[arg(long, value_name = "FILE")]
    pub guest_reaper: Option<PathBuf>,
}

/// Where reaper binaries come from when no flag names one.
pub trait ReaperSource {
    /// A reaper for `arch`.
    fn reaper_for(&self, arch: Arch) -> Result<PathBuf>;
}

/// The `reaper-lab` binary's source: the reaper beside it, else on `PATH`,
/// for this host's architecture only.
pub struct Beside;

impl ReaperSource for Beside {
    fn reaper_for(&self, arch: Arch) -> Result<PathBuf> {
        let host = host_arch()?;
        if arch != host {
            bail!(
                "the guest is {arch} and this host {host}: pass --guest-reaper FILE, a static \
                 reaper for {arch} (the reaper in reaper-VERSION-{}.tar.gz)",
                arch.rust_target()
            );
        }
        let me = std::env::current_exe().context("locating the reaper-lab executable")?;
        let beside = me.parent().map(|dir| dir.join("reaper"));
        if let Some(beside) = beside.filter(|p| p.is_file()) {
            return Ok(beside);
        }
        crate::host::find_in_path("reaper").with_context(|| {
            format!(
                "no reaper beside {} and none on PATH: pass --reaper FILE (reaper-lab ships \
                 beside reaper in the release tarball)",
                me.display()
            )
        })
    }
}

/// The binaries of one run, resolved and checked.
#[derive(Debug, Clone)]
pub struct Reapers {
    /// What the guest runs.
    pub guest: PathBuf,
    /// What runs on this host, when the command needs one.
    pub host: Option<PathBuf>,
}

impl Reapers {
    /// Resolves the guest's reaper for `arch`, and this host's when
    /// `need_host`, from the flags first and `source` second.
    pub fn resolve(
        args: &ReaperArgs,
        source: &dyn ReaperSource,
        arch: Arch,
        need_host: bool,
    ) -> Result<Self> {
        let host_arch = host_arch()?;
        let guest = match (&args.guest_reaper, &args.reaper) {
            (Some(file), _) => file.clone(),
            (None, Some(file)) if arch == host_arch => file.clone(),
            _ => source.reaper_for(arch)?,
        };
        check(&guest, arch, true)
            .map_err(|e| refused(e, &format!("the guest's reaper ({arch})")))?;
        let host = if need_host {
            let host = match &args.reaper {
                Some(file) => file.clone(),
                None if arch == host_arch => guest.clone(),
                None => source.reaper_for(host_arch)?,
            };
            check(&host, host_arch, false).map_err(|e| refused(e, "this host's reaper"))?;
            Some(host)
        } else {
            None
        };
        Ok(Reapers { guest, host })
    }

    /// This host's reaper; only `None` when not asked for.
    pub fn host(&self) -> Result<&Path> {
        self.host
            .as_deref()
            .context("no reaper for this host was resolved")
    }
}

/// A binary that cannot serve is a refused request (exit status 2).
fn refused(err: anyhow::Error, what: &str) -> anyhow::Error {
    Refused(format!("{what}: {err:#}")).into()
}

/// The architecture this host runs.
pub fn host_arch() -> Result<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(Arch::X86_64),
        "aarch64" => Ok(Arch::Arm64),
        other => bail!("reaper-lab runs on x86_64 or aarch64 hosts, not {other}"),
    }
}

/// Why a file is not the executable wanted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not a 64-bit little-endian ELF file")]
    NotElf,
    #[error("an ELF executable for machine {found}, not {wanted} ({arch})")]
    WrongMachine { found: u16, wanted: u16, arch: Arch },
    #[error(
        "dynamically linked (it asks for the loader {interp:?}), and the guest has no C \
         library: use the static reaper of the release tarball"
    )]
    Dynamic { interp: String },
    #[error("its program headers lie outside the first {0} bytes read")]
    Truncated(usize),
}

/// ELF `e_machine` of an architecture.
fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::X86_64 => 62, // EM_X86_64
        Arch::Arm64 => 183, // EM_AARCH64
    }
}

/// How much of a binary is read to check it: its ELF header and program
/// headers sit at its start.
const HEAD_BYTES: usize = 64 * 1024;

/// Checks `path` is an ELF executable for `arch`, static when `must_be_static`.
fn check(path: &Path, arch: Arch, must_be_static: bool) -> Result<()> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    std::fs::File::open(path)
        .and_then(|f| f.take(HEAD_BYTES as u64).read_to_end(&mut head))
        .with_context(|| format!("{}: cannot read it", path.display()))?;
    check_elf(&head, arch, must_be_static).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

/// The check of a binary (`check`) on its first bytes.
pub fn check_elf(head: &[u8], arch: Arch, must_be_static: bool) -> Result<(), ElfError> {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        head.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        head.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        head.get(at..at + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    if head.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err(ElfError::NotElf);
    }
    let machine = u16_at(18).ok_or(ElfError::NotElf)?;
    if machine != elf_machine(arch) {
        return Err(ElfError::WrongMachine {
            found: machine,
            wanted: elf_machine(arch),
            arch,
        });
    }
    if !must_be_static {
        return Ok(());
    }
    let phoff = u64_at(32).ok_or(ElfError::NotElf)? as usize;
    let phentsize = u16_at(54).ok_or(ElfError::NotElf)? as usize;
    let phnum = u16_at(56).ok_or(ElfError::NotElf)? as usize;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = u32_at(at).ok_or(ElfError::Truncated(head.len()))?;
        if kind == PT_INTERP {
            let offset = u64_at(at + 8).ok_or(ElfError::Truncated(head.len()))? as usize;
            let size = u64_at(at + 32).ok_or(ElfError::Truncated(head.len()))? as usize;
            let interp = head
                .get(offset..offset + size)
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_default();
            return Err(ElfError::Dynamic { interp });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE header with `machine` and program headers of the
    /// given types (an interpreter path for PT_INTERP).
    fn elf(machine: u16, types: &[u32]) -> Vec<u8> {
        let interp = b"/lib64/ld-linux-x86-64.so.2\0";
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
        let strings_at = 64 + 56 * types.len();
        for &t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            ph[8..16].copy_from_slice(&(strings_at as u64).to_le_bytes());
            ph[32..40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
            b.extend(ph);
        }
        b.extend(interp);
        b
    }

    #[test]
    fn static_binaries_of_the_right_machine_pass() {
        assert_eq!(check_elf(&elf(62, &[1, 1]), Arch::X86_64, true), Ok(()));
        assert_eq!(check_elf(&elf(183, &[1]), Arch::Arm64, true), Ok(()));
    }

    #[test]
    fn wrong_machine_dynamic_and_non_elf_files_are_named() {
        assert_eq!(
            check_elf(&elf(62, &[1]), Arch::Arm64, true),
            Err(ElfError::WrongMachine {
                found: 62,
                wanted: 183,
                arch: Arch::Arm64
            })
        );
        assert_eq!(
            check_elf(&elf(62, &[6, 3, 1]), Arch::X86_64, true),
            Err(ElfError::Dynamic {
                interp: "/lib64/ld-linux-x86-64.so.2".into()
            })
        );
        // This host's own reaper may be dynamic.
        assert_eq!(check_elf(&elf(62, &[3]), Arch::X86_64, false), Ok(()));
        assert_eq!(
            check_elf(b"#!/bin/sh\n", Arch::X86_64, true),
            Err(ElfError::NotElf)
        );
    }

    /// This test binary itself is a real ELF file of the host's machine.
    #[test]
    fn a_real_binary_is_read() {
        let me = std::env::current_exe().unwrap();
        check(&me, host_arch().unwrap(), false).unwrap();
    }

    struct Fixed(PathBuf);
    impl ReaperSource for Fixed {
        fn reaper_for(&self, _: Arch) -> Result<PathBuf> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn flags_come_before_the_source() {
        let me = std::env::current_exe().unwrap();
        let host = host_arch().unwrap();
        // The test binary is dynamic: fine for the host, refused for a guest.
        let err =
            Reapers::resolve(&ReaperArgs::default(), &Fixed(me.clone()), host, true).unwrap_err();
        assert!(format!("{err:#}").contains("dynamically linked"), "{err:#}");
        let other = if host == Arch::X86_64 {
            Arch::Arm64
        } else {
            Arch::X86_64
        };
        let args = ReaperArgs {
            reaper: Some(me.clone()),
            guest_reaper: Some(PathBuf::from("/nonexistent/reaper")),
        };
        let err = Reapers::resolve(&args, &Fixed(me), other, true).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/reaper"),
            "{err:#}"
        );
    }
}
