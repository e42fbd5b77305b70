//! The kernel matrix as data: which cells `vm-test` boots (the CI set, and
//! what `--all` adds), and what each kernel series must show there. The
//! checks ([`checks`](super::checks)) read [`expectation`] and nothing
//! else to decide what a kernel should do.
//!
//! A row's facts come from the kernels themselves: the symbols from the
//! kallsyms/BTF fixtures under reaper-cli/tests/data (the catalog's unit
//! tests resolve the same names), the attach modes and orders from
//! `vm-test` runs, the VMA order from the seed thread (the reverse-order
//! reaper was merged in 6.18).

use super::arch::Arch;
use super::kernel::{DebianKernel, Flavour, Line};
use reaper_model::{AttachMode, ConceptId};

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellDef {
    pub line: Line,
    /// Version prefix within the line (`None`: its newest kernel).
    pub version: Option<&'static str>,
    pub flavour: Flavour,
    pub arch: Arch,
}

impl CellDef {
    pub fn kernel(&self) -> DebianKernel {
        DebianKernel::new(self.line, self.version, self.flavour)
    }
}

const fn cloud(line: Line, arch: Arch) -> CellDef {
    CellDef {
        line,
        version: None,
        flavour: Flavour::Cloud,
        arch,
    }
}

/// `cargo xtask vm-test` (and `.ci/run`): the oldest line (5.10, without
/// process_mrelease: the refusal and the stand-ins), the oldest line with
/// the whole mechanism set, the LTS most users run, and the newest, on both
/// architectures. Eight cells of 2-4 minutes each under TCG; the bullseye
/// pair took 72 and 99 s on the shared machine (no mrelease race to wait
/// for), so they add about 3 minutes to `.ci/run`.
pub const CI_CELLS: [CellDef; 8] = [
    cloud(Line::Bullseye, Arch::X86_64),
    cloud(Line::Bullseye, Arch::Arm64),
    cloud(Line::Bookworm, Arch::X86_64),
    cloud(Line::Bookworm612, Arch::X86_64),
    cloud(Line::Sid, Arch::X86_64),
    cloud(Line::Bookworm, Arch::Arm64),
    cloud(Line::Bookworm612, Arch::Arm64),
    cloud(Line::Sid, Arch::Arm64),
];

/// The flavours `--all` tries on every line and architecture (a cell is
/// skipped when the line's suite does not build that flavour there).
pub const ALL_FLAVOURS: [Flavour; 3] = [Flavour::Cloud, Flavour::Rt, Flavour::Generic];

/// The VMA order the reaper walks in: the run file's own vocabulary
/// (forward before 6.18, reverse from 6.18: the reverse-order OOM reaper).
pub use reaper_model::VmaOrderKind as Order;

/// How the function probes must attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Every timed function with this mode.
    All(AttachMode),
    /// Every timed function with kprobes, after fentry was refused with an
    /// error containing this text (arm64 6.1: ENOTSUPP 524, no ftrace
    /// direct calls).
    KprobeAfterFentryRefusal(&'static str),
    /// Every timed function, fentry or kprobe.
    EveryFunction,
    /// Whatever the kernel allows, as long as the run says what it could not
    /// measure.
    Any,
}

/// Which teardown mechanisms a kernel has, and so which figures come from
/// their usual source and which from a stand-in (or refuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mechanisms {
    /// `process_mrelease(2)` (5.15+): without it `record`'s default mode
    /// refuses and the cell records `--no-mrelease`.
    pub mrelease: bool,
    /// The `mmap:exit_mmap` tracepoint (6.1+): without it "kill → exit_mmap
    /// done" comes from exit_mmap's function probe, and says so.
    pub exit_mmap_tracepoint: bool,
    /// `lock:contention_begin/end` (5.19+): without them lock waits come
    /// from the spin slow path's function probe, and say so.
    pub contention_tracepoints: bool,
}

/// Everything since 6.1.
const MODERN: Mechanisms = Mechanisms {
    mrelease: true,
    exit_mmap_tracepoint: true,
    contention_tracepoints: true,
};

/// 5.10 (Debian bullseye, Android 12 GKI without its backports): none of
/// the three (checked in its source and tracefs, 5.10.223).
const BEFORE_5_15: Mechanisms = Mechanisms {
    mrelease: false,
    exit_mmap_tracepoint: false,
    contention_tracepoints: false,
};

/// What a kernel series shows on one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// First series (major, minor) the row covers.
    pub since: (u32, u32),
    /// First series it no longer covers.
    pub until: (u32, u32),
    /// `None`: both architectures.
    pub arch: Option<Arch>,
    pub attach: Attach,
    pub order: Order,
    /// Concept → the symbol it must resolve to (`None`: inline, absent).
    pub symbols: &'static [(ConceptId, Option<&'static str>)],
    /// What the kernel offers of the mechanisms reaper prefers.
    pub mechanisms: Mechanisms,
}

impl Expectation {
    /// The symbol `concept` must resolve to, if the row names it.
    pub fn symbol(&self, concept: ConceptId) -> Option<Option<&'static str>> {
        self.symbols
            .iter()
            .find(|(c, _)| *c == concept)
            .map(|(_, s)| *s)
    }
}

/// 5.10: the names of 6.1 (bullseye's 5.10.223 kallsyms, cloud amd64 and
/// arm64: `__oom_reap_task_mm`, `unmap_page_range`, `page_remove_rmap`;
/// the PTE lock inline in `zap_pte_range`).
const SYMBOLS_5_10: &[(ConceptId, Option<&str>)] = SYMBOLS_6_1;
/// Symbols up to 6.5: no PTE-lock function (inlined into zap_pte_range),
/// the old rmap name.
const SYMBOLS_6_1: &[(ConceptId, Option<&str>)] = &[
    (ConceptId::ReaperWork, Some("__oom_reap_task_mm")),
    (ConceptId::PerVmaUnmap, Some("unmap_page_range")),
    (ConceptId::PteLock, None),
    (ConceptId::RmapRemoval, Some("page_remove_rmap")),
    (ConceptId::VmaZapWorker, None),
];
/// 6.12 (LTS): the 6.5 PTE-lock function and the 6.9 folio rmap name.
const SYMBOLS_6_12: &[(ConceptId, Option<&str>)] = &[
    (ConceptId::ReaperWork, Some("__oom_reap_task_mm")),
    (ConceptId::PerVmaUnmap, Some("unmap_page_range")),
    (ConceptId::PteLock, Some("__pte_offset_map_lock")),
    (ConceptId::RmapRemoval, Some("folio_remove_rmap_ptes")),
    (ConceptId::VmaZapWorker, None),
];
/// 6.19: still unmap_page_range and __pte_offset_map_lock (fixture 6.19.14).
const SYMBOLS_6_19: &[(ConceptId, Option<&str>)] = SYMBOLS_6_12;
/// 7.0: `pte_offset_map_lock`, still `unmap_page_range` (fixture 7.0.13).
const SYMBOLS_7_0: &[(ConceptId, Option<&str>)] = &[
    (ConceptId::ReaperWork, Some("__oom_reap_task_mm")),
    (ConceptId::PerVmaUnmap, Some("unmap_page_range")),
    (ConceptId::PteLock, Some("pte_offset_map_lock")),
    (ConceptId::RmapRemoval, Some("folio_remove_rmap_ptes")),
    (ConceptId::VmaZapWorker, None),
];
/// 7.1 on: the zap cleanups (`zap_vma_for_reaping`, `__zap_vma_range`,
/// `pte_offset_map_lock`; fixtures 7.1, 7.2.13, 7.3.4).
const SYMBOLS_7_1: &[(ConceptId, Option<&str>)] = &[
    (ConceptId::ReaperWork, Some("__oom_reap_task_mm")),
    (ConceptId::PerVmaUnmap, Some("zap_vma_for_reaping")),
    (ConceptId::PteLock, Some("pte_offset_map_lock")),
    (ConceptId::RmapRemoval, Some("folio_remove_rmap_ptes")),
    (ConceptId::VmaZapWorker, Some("__zap_vma_range")),
];

/// Every kernel series the harness knows, per architecture.
pub const EXPECTATIONS: &[Expectation] = &[
    // fentry/fexit on x86_64 (the per-VMA function too, since its VMA is no
    // longer read with bpf_get_func_arg, 5.17+); arm64 has BPF trampolines
    // only from 6.0, so kprobes there after fentry's ENOTSUPP.
    Expectation {
        since: (5, 10),
        until: (5, 11),
        arch: Some(Arch::X86_64),
        attach: Attach::All(AttachMode::Fentry),
        order: Order::Forward,
        symbols: SYMBOLS_5_10,
        mechanisms: BEFORE_5_15,
    },
    Expectation {
        since: (5, 10),
        until: (5, 11),
        arch: Some(Arch::Arm64),
        attach: Attach::KprobeAfterFentryRefusal("524"),
        order: Order::Forward,
        symbols: SYMBOLS_5_10,
        mechanisms: BEFORE_5_15,
    },
    Expectation {
        since: (6, 1),
        until: (6, 2),
        arch: Some(Arch::X86_64),
        attach: Attach::All(AttachMode::Fentry),
        order: Order::Forward,
        symbols: SYMBOLS_6_1,
        mechanisms: MODERN,
    },
    Expectation {
        since: (6, 1),
        until: (6, 2),
        arch: Some(Arch::Arm64),
        attach: Attach::KprobeAfterFentryRefusal("524"),
        order: Order::Forward,
        symbols: SYMBOLS_6_1,
        mechanisms: MODERN,
    },
    Expectation {
        since: (6, 12),
        until: (6, 13),
        arch: Some(Arch::X86_64),
        attach: Attach::All(AttachMode::Fentry),
        order: Order::Forward,
        symbols: SYMBOLS_6_12,
        mechanisms: MODERN,
    },
    Expectation {
        since: (6, 12),
        until: (6, 13),
        arch: Some(Arch::Arm64),
        attach: Attach::EveryFunction,
        order: Order::Forward,
        symbols: SYMBOLS_6_12,
        mechanisms: MODERN,
    },
    Expectation {
        since: (6, 19),
        until: (7, 0),
        arch: Some(Arch::X86_64),
        attach: Attach::All(AttachMode::Fentry),
        order: Order::Reverse,
        symbols: SYMBOLS_6_19,
        mechanisms: MODERN,
    },
    Expectation {
        since: (6, 19),
        until: (7, 0),
        arch: Some(Arch::Arm64),
        attach: Attach::Any,
        order: Order::Reverse,
        symbols: SYMBOLS_6_19,
        mechanisms: MODERN,
    },
    Expectation {
        since: (7, 0),
        until: (7, 1),
        arch: Some(Arch::X86_64),
        attach: Attach::All(AttachMode::Fentry),
        order: Order::Reverse,
        symbols: SYMBOLS_7_0,
        mechanisms: MODERN,
    },
    Expectation {
        since: (7, 0),
        until: (7, 1),
        arch: Some(Arch::Arm64),
        attach: Attach::Any,
        order: Order::Reverse,
        symbols: SYMBOLS_7_0,
        mechanisms: MODERN,
    },
    Expectation {
        since: (7, 1),
        until: (8, 0),
        arch: Some(Arch::X86_64),
        attach: Attach::All(AttachMode::Fentry),
        order: Order::Reverse,
        symbols: SYMBOLS_7_1,
        mechanisms: MODERN,
    },
    Expectation {
        since: (7, 1),
        until: (8, 0),
        arch: Some(Arch::Arm64),
        attach: Attach::Any,
        order: Order::Reverse,
        symbols: SYMBOLS_7_1,
        mechanisms: MODERN,
    },
];

/// The (major, minor) series of a kernel release (`6.12.57+deb12-cloud-amd64`
/// → (6, 12)).
pub fn series(release: &str) -> Option<(u32, u32)> {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The row for a booted kernel.
pub fn expectation(release: &str, arch: Arch) -> Option<&'static Expectation> {
    let series = series(release)?;
    EXPECTATIONS
        .iter()
        .find(|e| e.since <= series && series < e.until && e.arch.is_none_or(|a| a == arch))
}

/// Whether a cell's kernel must be PREEMPT_RT.
pub fn expects_rt(kernel: &DebianKernel) -> bool {
    kernel.flavour == Flavour::Rt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_series_and_arch() {
        let e = expectation("6.12.57+deb12-cloud-arm64", Arch::Arm64).unwrap();
        assert_eq!(e.order, Order::Forward);
        assert_eq!(
            e.symbol(ConceptId::PteLock),
            Some(Some("__pte_offset_map_lock"))
        );
        let old = expectation("6.1.0-50-cloud-amd64", Arch::X86_64).unwrap();
        assert_eq!(old.symbol(ConceptId::PteLock), Some(None));
        assert_eq!(old.attach, Attach::All(AttachMode::Fentry));
        let new = expectation("7.3.4+deb13-rt-amd64", Arch::X86_64).unwrap();
        assert_eq!(new.order, Order::Reverse);
        assert_eq!(
            new.symbol(ConceptId::PerVmaUnmap),
            Some(Some("zap_vma_for_reaping"))
        );
        let bullseye = expectation("5.10.0-32-cloud-amd64", Arch::X86_64).unwrap();
        assert!(!bullseye.mechanisms.mrelease);
        assert_eq!(bullseye.symbol(ConceptId::PteLock), Some(None));
        assert_eq!(expectation("5.15.0-1-amd64", Arch::X86_64), None);
    }

    #[test]
    fn order_flips_at_6_18() {
        for e in EXPECTATIONS {
            let want = if e.since >= (6, 18) {
                Order::Reverse
            } else {
                Order::Forward
            };
            assert_eq!(e.order, want, "{e:?}");
        }
    }

    #[test]
    fn rows_do_not_overlap() {
        for (i, a) in EXPECTATIONS.iter().enumerate() {
            for b in &EXPECTATIONS[i + 1..] {
                let same_arch = a.arch.is_none() || b.arch.is_none() || a.arch == b.arch;
                let overlap = a.since < b.until && b.since < a.until;
                assert!(!(same_arch && overlap), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn ci_set_has_5_10_and_6_12_on_both_arches() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            assert!(
                CI_CELLS
                    .iter()
                    .any(|c| c.line == Line::Bullseye && c.arch == arch)
            );
        }
    }

    #[test]
    fn ci_set_has_6_12_on_both_arches() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            assert!(
                CI_CELLS
                    .iter()
                    .any(|c| c.line == Line::Bookworm612 && c.arch == arch)
            );
        }
    }
}
