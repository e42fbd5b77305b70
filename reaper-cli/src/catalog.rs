//! The symbol catalog: teardown concepts mapped to the kernel functions that
//! implement them on each kernel version.
//!
//! Names drift (see ../shared/ENVIRONMENT.md): the reaper's per-VMA unmap is
//! `unmap_page_range` up to 6.18 and `zap_vma_for_reaping` on 7.x, the PTE
//! lock is inline on 6.1, `__pte_offset_map_lock` on 6.18 and
//! `pte_offset_map_lock` on 7.x. Each concept lists candidates in order of
//! preference and is resolved against the running kernel's symbol names; a
//! concept with no symbol is reported absent, never dropped.

use std::collections::HashSet;

use crate::model::ResolvedConcept;

/// A teardown concept and its candidate symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concept {
    /// Stable id used in run files and reports.
    pub id: &'static str,
    /// Human description.
    pub description: &'static str,
    /// Candidate kernel symbols, most preferred first.
    pub candidates: &'static [&'static str],
    /// A caller whose frame stands in for this concept when the function is
    /// inlined everywhere (the PTE lock on 6.1 is inlined into `zap_pte_range`).
    pub inline_fallback: Option<&'static str>,
}

/// Every concept reaper knows about.
pub const CONCEPTS: &[Concept] = &[
    Concept {
        id: "reaper_work",
        description: "reaper work (process_mrelease and the oom_reaper kthread)",
        candidates: &["__oom_reap_task_mm"],
        inline_fallback: None,
    },
    Concept {
        id: "reaper_kthread",
        description: "oom_reaper kthread loop",
        candidates: &["oom_reaper"],
        inline_fallback: None,
    },
    Concept {
        id: "victim_teardown",
        description: "victim address-space teardown",
        candidates: &["exit_mmap"],
        inline_fallback: None,
    },
    Concept {
        id: "victim_unmap",
        description: "victim's unmap of all VMAs",
        candidates: &["unmap_vmas"],
        inline_fallback: None,
    },
    Concept {
        id: "per_vma_unmap",
        description: "per-VMA unmap (reaper)",
        candidates: &["zap_vma_for_reaping", "unmap_page_range"],
        inline_fallback: None,
    },
    Concept {
        id: "pte_lock",
        description: "PTE spinlock acquisition",
        candidates: &["__pte_offset_map_lock", "pte_offset_map_lock"],
        inline_fallback: Some("zap_pte_range"),
    },
    Concept {
        id: "rmap_removal",
        description: "rmap removal",
        candidates: &["folio_remove_rmap_ptes", "page_remove_rmap"],
        inline_fallback: None,
    },
    Concept {
        id: "tlb_flush",
        description: "TLB flush during unmap",
        candidates: &["tlb_flush_mmu"],
        inline_fallback: None,
    },
    Concept {
        id: "tlb_finish",
        description: "TLB gather finish",
        candidates: &["tlb_finish_mmu"],
        inline_fallback: None,
    },
    Concept {
        id: "page_freeing",
        description: "page freeing",
        candidates: &["free_pages_and_swap_cache"],
        inline_fallback: None,
    },
    Concept {
        id: "spin_slowpath",
        description: "spinlock slow path",
        candidates: &[
            "native_queued_spin_lock_slowpath",
            "queued_spin_lock_slowpath",
        ],
        inline_fallback: None,
    },
    Concept {
        id: "mrelease_syscall",
        description: "process_mrelease syscall",
        candidates: &[
            "__x64_sys_process_mrelease",
            "__arm64_sys_process_mrelease",
            "__do_sys_process_mrelease",
        ],
        inline_fallback: None,
    },
];

/// Looks a concept up by id.
pub fn concept(id: &str) -> Option<&'static Concept> {
    CONCEPTS.iter().find(|c| c.id == id)
}

/// Strips the compiler's clone suffixes (`.isra.0`, `.constprop.0`,
/// `.part.0`, `.cold`, ...) so a clone matches its source function.
pub fn base_name(symbol: &str) -> &str {
    symbol.split_once('.').map_or(symbol, |(base, _)| base)
}

/// The set of (base) function names a kernel has.
#[derive(Clone, Debug, Default)]
pub struct KernelSymbols {
    names: HashSet<String>,
}

impl KernelSymbols {
    /// Parses `/proc/kallsyms` text (`ADDR TYPE NAME [MODULE]`), keeping
    /// text symbols only.
    pub fn from_kallsyms(text: &str) -> Self {
        let names = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let (_addr, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
                matches!(kind, "t" | "T" | "w" | "W").then(|| base_name(name).to_owned())
            })
            .collect();
        Self { names }
    }

    /// Builds the set from plain names (one per line), e.g. a BTF function list.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            names: names.into_iter().map(|n| base_name(n).to_owned()).collect(),
        }
    }

    /// Reads the running kernel's `/proc/kallsyms`.
    pub fn running() -> std::io::Result<Self> {
        std::fs::read_to_string("/proc/kallsyms").map(|text| Self::from_kallsyms(&text))
    }

    /// Whether the kernel has a function of this (base) name.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no names were read (e.g. kallsyms hidden).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Resolves one concept: the first candidate the kernel has.
pub fn resolve(concept: &Concept, symbols: &KernelSymbols) -> ResolvedConcept {
    ResolvedConcept {
        concept: concept.id.to_owned(),
        symbol: concept
            .candidates
            .iter()
            .find(|c| symbols.contains(c))
            .map(|c| (*c).to_owned()),
        candidates: concept.candidates.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// Resolves every concept.
pub fn resolve_all(symbols: &KernelSymbols) -> Vec<ResolvedConcept> {
    CONCEPTS.iter().map(|c| resolve(c, symbols)).collect()
}

/// The frame that identifies a concept in stacks of a run: the resolved
/// symbol, else the inline fallback, else `None` (absent on that kernel).
pub fn frame_for<'a>(resolved: &'a [ResolvedConcept], id: &str) -> Option<&'a str> {
    let entry = resolved.iter().find(|r| r.concept == id)?;
    entry
        .symbol
        .as_deref()
        .or_else(|| concept(id).and_then(|c| c.inline_fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> KernelSymbols {
        let path = format!("{}/tests/data/kallsyms/{name}", env!("CARGO_MANIFEST_DIR"));
        KernelSymbols::from_kallsyms(&std::fs::read_to_string(&path).expect(&path))
    }

    fn symbol_of(symbols: &KernelSymbols, id: &str) -> Option<String> {
        resolve(concept(id).unwrap(), symbols).symbol
    }

    #[test]
    fn base_name_strips_clone_suffixes() {
        assert_eq!(base_name("unmap_page_range.cold"), "unmap_page_range");
        assert_eq!(base_name("zap_pte_range.isra.0"), "zap_pte_range");
        assert_eq!(base_name("exit_mmap"), "exit_mmap");
    }

    #[test]
    fn resolves_6_1_names() {
        let k = fixture("6.1-x86_64");
        assert_eq!(
            symbol_of(&k, "per_vma_unmap").as_deref(),
            Some("unmap_page_range")
        );
        assert_eq!(
            symbol_of(&k, "pte_lock"),
            None,
            "the PTE lock is inline on 6.1"
        );
        assert_eq!(
            symbol_of(&k, "rmap_removal").as_deref(),
            Some("page_remove_rmap")
        );
        let resolved = resolve_all(&k);
        assert_eq!(frame_for(&resolved, "pte_lock"), Some("zap_pte_range"));
    }

    #[test]
    fn resolves_6_18_names() {
        let k = fixture("6.18-x86_64");
        assert_eq!(
            symbol_of(&k, "pte_lock").as_deref(),
            Some("__pte_offset_map_lock")
        );
        assert_eq!(
            symbol_of(&k, "rmap_removal").as_deref(),
            Some("folio_remove_rmap_ptes")
        );
        assert_eq!(
            symbol_of(&k, "per_vma_unmap").as_deref(),
            Some("unmap_page_range")
        );
        assert_eq!(
            symbol_of(&k, "mrelease_syscall").as_deref(),
            Some("__x64_sys_process_mrelease")
        );
        assert_eq!(
            symbol_of(&k, "spin_slowpath").as_deref(),
            Some("native_queued_spin_lock_slowpath")
        );
    }

    #[test]
    fn resolves_7_2_names() {
        let k = fixture("7.2-arm64");
        assert_eq!(
            symbol_of(&k, "per_vma_unmap").as_deref(),
            Some("zap_vma_for_reaping")
        );
        assert_eq!(
            symbol_of(&k, "pte_lock").as_deref(),
            Some("pte_offset_map_lock")
        );
        assert_eq!(
            symbol_of(&k, "mrelease_syscall").as_deref(),
            Some("__arm64_sys_process_mrelease")
        );
        assert_eq!(
            symbol_of(&k, "spin_slowpath").as_deref(),
            Some("queued_spin_lock_slowpath")
        );
    }

    #[test]
    fn data_symbols_are_ignored() {
        let k = KernelSymbols::from_kallsyms(
            "ffffffff81000000 d exit_mmap\nffffffff81000010 T oom_reaper\n",
        );
        assert!(!k.contains("exit_mmap"));
        assert!(k.contains("oom_reaper"));
    }
}
