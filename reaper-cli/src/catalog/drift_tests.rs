//! Symbol drift, caught by a unit test: every catalog concept resolved on
//! the real kallsyms (and, where reaper uses it, BTF) of each kernel the VM
//! harness boots, against the symbol that kernel really has.
//!
//! The fixtures under tests/data/kallsyms and tests/data/btf are cut from
//! the booted images (the command that regenerates them is in
//! tests/data/kallsyms/README.md). A kernel that renames a function breaks
//! the line of its fixture here; a new concept breaks every fixture until
//! its symbol on each kernel is written down.

use super::*;

/// How a concept resolves on one kernel: `None` when no candidate exists
/// (inlined or not yet introduced).
type Expected = &'static [(&'static str, Option<&'static str>)];

/// Concepts whose symbol is the same on every kernel of the matrix.
const STABLE: Expected = &[
    ("reaper_work", Some("__oom_reap_task_mm")),
    ("reaper_kthread", Some("oom_reaper")),
    ("victim_teardown", Some("exit_mmap")),
    ("victim_unmap", Some("unmap_vmas")),
    ("tlb_flush", Some("tlb_flush_mmu")),
    ("tlb_finish", Some("tlb_finish_mmu")),
    ("page_freeing", Some("free_pages_and_swap_cache")),
];
/// 6.1: the PTE lock is inline, rmap removal is page-based.
const V6_1: Expected = &[
    ("per_vma_unmap", Some("unmap_page_range")),
    ("vma_zap_worker", None),
    ("pte_lock", None),
    ("rmap_removal", Some("page_remove_rmap")),
];
/// 6.12 to 6.19: `__pte_offset_map_lock` (6.5) and the folio rmap (6.9).
const V6_12: Expected = &[
    ("per_vma_unmap", Some("unmap_page_range")),
    ("vma_zap_worker", None),
    ("pte_lock", Some("__pte_offset_map_lock")),
    ("rmap_removal", Some("folio_remove_rmap_ptes")),
];
/// 7.0: the PTE-lock function loses its underscores; the per-VMA unmap is
/// still `unmap_page_range`.
const V7_0: Expected = &[
    ("per_vma_unmap", Some("unmap_page_range")),
    ("vma_zap_worker", None),
    ("pte_lock", Some("pte_offset_map_lock")),
    ("rmap_removal", Some("folio_remove_rmap_ptes")),
];
/// 7.1 on: the zap cleanups.
const V7_1: Expected = &[
    ("per_vma_unmap", Some("zap_vma_for_reaping")),
    ("vma_zap_worker", Some("__zap_vma_range")),
    ("pte_lock", Some("pte_offset_map_lock")),
    ("rmap_removal", Some("folio_remove_rmap_ptes")),
];
const X86_64: Expected = &[
    ("spin_slowpath", Some("native_queued_spin_lock_slowpath")),
    ("mrelease_syscall", Some("__x64_sys_process_mrelease")),
];
const ARM64: Expected = &[
    ("spin_slowpath", Some("queued_spin_lock_slowpath")),
    ("mrelease_syscall", Some("__arm64_sys_process_mrelease")),
];

/// A real kernel's fixtures and what each concept resolves to there.
struct RealKernel {
    /// File name under tests/data/kallsyms (and tests/data/btf when `btf`).
    fixture: &'static str,
    btf: bool,
    version: Expected,
    arch: Expected,
}

const fn real(fixture: &'static str, btf: bool, version: Expected, arch: Expected) -> RealKernel {
    RealKernel {
        fixture,
        btf,
        version,
        arch,
    }
}

/// Every real kernel with fixtures: Debian bookworm 6.1.0-50, bookworm-
/// backports 6.12.95, trixie-backports 6.19.14, 7.0.13, 7.1.13, 7.3.4 (cloud
/// and rt), sid 7.2.13, and the development machine's 6.18.
const REAL_KERNELS: &[RealKernel] = &[
    real("6.1.176-x86_64", true, V6_1, X86_64),
    real("6.1.176-arm64", true, V6_1, ARM64),
    real("6.12.95-x86_64", true, V6_12, X86_64),
    real("6.12.95-arm64", true, V6_12, ARM64),
    real("6.18-x86_64", true, V6_12, X86_64),
    real("6.19.14-x86_64", true, V6_12, X86_64),
    real("7.0.13-x86_64", true, V7_0, X86_64),
    real("7.1.13-x86_64", true, V7_1, X86_64),
    real("7.2.13-x86_64", true, V7_1, X86_64),
    real("7.2.13-arm64", true, V7_1, ARM64),
    real("7.3.4-x86_64", true, V7_1, X86_64),
    real("7.3.4-rt-x86_64", false, V7_1, X86_64),
];

impl RealKernel {
    fn expected(&self, concept: ConceptId) -> Option<Option<&'static str>> {
        [STABLE, self.version, self.arch]
            .into_iter()
            .flatten()
            .find(|(c, _)| *c == concept.name())
            .map(|(_, s)| *s)
    }

    fn resolved(&self) -> Vec<ResolvedConcept> {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
        let read = |dir: &str| {
            let path = format!("{data}/{dir}/{}", self.fixture);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let symbols = KernelSymbols::from_kallsyms(&read("kallsyms"));
        let btf = self.btf.then(|| BtfFacts::from_fixture(&read("btf")));
        resolve_all_with_btf(&symbols, btf.as_ref())
    }
}

#[test]
fn every_concept_resolves_to_the_real_symbol_on_every_kernel() {
    let mut wrong = Vec::new();
    for kernel in REAL_KERNELS {
        for resolved in kernel.resolved() {
            let Some(want) = kernel.expected(resolved.concept) else {
                wrong.push(format!(
                    "{}: no expectation for concept {}; write down its symbol on this kernel",
                    kernel.fixture, resolved.concept
                ));
                continue;
            };
            if resolved.symbol.as_deref() != want {
                wrong.push(format!(
                    "{}: {} resolved to {:?}, the kernel has {want:?}",
                    kernel.fixture, resolved.concept, resolved.symbol
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn timed_functions_are_in_btf_where_fentry_needs_them() {
    for kernel in REAL_KERNELS.iter().filter(|k| k.btf) {
        for resolved in kernel.resolved() {
            let timed = entry(resolved.concept).timing.can_be_timed();
            if timed && resolved.symbol.is_some() {
                assert_eq!(
                    resolved.in_btf,
                    Some(true),
                    "{}: {} ({:?}) is not in BTF",
                    kernel.fixture,
                    resolved.concept,
                    resolved.symbol
                );
            }
        }
    }
}

#[test]
fn the_per_vma_function_gives_its_vma_on_every_kernel_with_btf() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/btf");
    for kernel in REAL_KERNELS.iter().filter(|k| k.btf) {
        let per_vma = kernel
            .expected(ConceptId::PerVmaUnmap)
            .flatten()
            .expect("every kernel has a per-VMA unmap function");
        let path = format!("{data}/{}", kernel.fixture);
        let btf = BtfFacts::from_fixture(&std::fs::read_to_string(&path).expect(&path));
        let source = vma_source(per_vma, Some(&btf))
            .unwrap_or_else(|e| panic!("{}: {per_vma}: {e}", kernel.fixture));
        assert_eq!(
            source.index,
            vma_argument(per_vma).unwrap().index,
            "{}",
            kernel.fixture
        );
    }
}

/// A fixture added without an entry here would never be checked.
#[test]
fn every_real_fixture_is_checked() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kallsyms");
    // Written from ENVIRONMENT.md's drift table before real fixtures existed;
    // kept for the older tests that use them.
    let synthetic = ["6.1-x86_64", "7.2-arm64", "README.md"];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            synthetic.contains(&name.as_str()) || REAL_KERNELS.iter().any(|k| k.fixture == name),
            "tests/data/kallsyms/{name} is in no REAL_KERNELS entry"
        );
    }
}
