//! The symbol catalog: teardown concepts mapped to the kernel functions that
//! implement them on each kernel version.
//!
//! Names drift (see ../shared/ENVIRONMENT.md): the reaper's per-VMA unmap is
//! `unmap_page_range` up to 6.18 and `zap_vma_for_reaping` on 7.x, the PTE
//! lock is inline on 6.1, `__pte_offset_map_lock` on 6.18 and
//! `pte_offset_map_lock` on 7.x. Each concept lists candidates in order of
//! preference and is resolved against the running kernel's symbol names; a
//! concept with no symbol is reported absent, never dropped.
//!
//! Names were checked against the kallsyms and BTF of the Debian kernels the
//! VM harness boots (6.1.176 amd64/arm64, 6.12.95 amd64/arm64, 6.19.14,
//! 7.0.13, 7.1.13, 7.3.4 cloud and rt, 7.2.13 amd64/arm64; fixtures in
//! tests/data/kallsyms and tests/data/btf, resolved concept by concept in
//! `drift_tests`: `pte_offset_map_lock` from 7.0, `zap_vma_for_reaping`
//! from 7.1), this machine's 6.18, and the
//! mm/ history between them: `unmap_page_range` is inlined into
//! `__zap_vma_range` and `zap_vma_for_reaping` factored out of
//! `__oom_reap_task_mm` in the 7.x zap cleanups; `__pte_offset_map_lock`
//! appeared in 6.5 (pte_offset_map rework) and became `pte_offset_map_lock`
//! in 7.x; `page_remove_rmap` became `folio_remove_rmap_ptes` in 6.9.
//!
//! Exact timing (fentry, else kprobe) needs the name in BTF (fentry) or in
//! kallsyms (kprobe, under its real name, which may carry a clone suffix
//! such as `.isra.0`); [`resolve_with_btf`] records both.

use std::collections::{HashMap, HashSet};

use crate::model::ResolvedConcept;

mod btf;
pub use btf::{BtfFacts, BtfSource, RtLockOffsets, VmaSource, VmaSourceError, vma_source};

/// A catalog concept's id: the model's vocabulary (run files hold
/// [`ConceptId::name`]); [`entry`] gives its catalog entry.
pub use crate::model::ConceptId;

/// Where the PTE lock is taken on kernels that inline it: `zap_pte_range`,
/// itself often inlined up to `unmap_page_range` (Debian 6.1 x86_64). The
/// report's PTE-lock rows and PREEMPT_RT's owner filter share this rule.
pub const INLINED_PTE_LOCK_CALLERS: [&str; 3] =
    ["zap_pte_range", "zap_pmd_range", "unmap_page_range"];

/// PREEMPT_RT's `spin_lock()`: the function the PTE-lock caller calls.
pub const RT_SPIN_LOCK: &str = "rt_spin_lock";

/// Whether reaper times a concept's function with fentry/kprobes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Timed per call (gets a probe slot).
    Timed,
    /// A per-page leaf: called for every page (or small folio) unmapped,
    /// 66-68k times in a 1G teardown on 6.1, so a probe on it costs more
    /// than the call it times and moves the A/B it is meant to measure
    /// (issue 29). Sampling covers it by default; `record --exact-leaves`
    /// gives it a slot and times it per call.
    PerPage,
    /// Called once per mmu_gather batch (a batch frees a few hundred pages):
    /// page freeing and the TLB flush inside the walk, 180-210 calls per
    /// context in a 256M teardown on 6.1 and about four times that at 1G,
    /// most of the function probes' hits. In the 6.1 VM (issue 29) the
    /// default probes took 1.21x the time of sampling alone with them and
    /// 1.11x without, and their probes' cost moved with the work in the
    /// reverse-order A/B. Sampling covers them by default;
    /// `record --exact-batches` times them per call.
    PerBatch,
    /// On the path of a contended lock: the spin slow path, entered on
    /// every contended spinlock acquisition on the machine (lruvec and zone
    /// locks far more often than PTE locks: about 450 calls per context in
    /// a 256M teardown on 7.2, 170-280 on 6.1, almost none of them PTE-lock
    /// waits on 7.2), and the PTE-lock function, called once per page table;
    /// both exits run with the lock held, inside the critical section the
    /// other walker then waits on. Together they were most of the default
    /// probes' hits. Their figures (the exact PTE-lock wait, the slow
    /// path's row, lock waits on kernels without `lock:contention_*`) are
    /// taken only with `record --exact-locks`; sampling measures the
    /// PTE-lock wait by default (the seed thread's own method).
    LockPath,
    /// Never timed, with the reason.
    NotTimed(&'static str),
}

impl Timing {
    /// Whether the function gets a probe slot at some setting.
    pub fn can_be_timed(self) -> bool {
        !matches!(self, Self::NotTimed(_))
    }
}

/// Why a [`Timing::PerPage`] function was not timed, and how to time it.
pub const PER_PAGE_LEFT_TO_SAMPLING: &str = "called per page, so left to sampling by default (its probe would cost more than the call); record --exact-leaves times it per call";

/// Why a [`Timing::PerBatch`] function was not timed, and how to time it.
pub const PER_BATCH_LEFT_TO_SAMPLING: &str = "called per mmu_gather batch (hundreds of times a teardown), so left to sampling by default (its probes would weigh on the teardown they time); record --exact-batches times it per call";

/// Why a [`Timing::LockPath`] function was not timed, and how to time it.
pub const LOCK_PATH_LEFT_TO_SAMPLING: &str = "on the path of every contended lock, inside its critical section, so left to sampling by default (its probes would lengthen the lock waits they time); record --exact-locks times it per call";

/// How the per-VMA unmap function receives the VMA it unmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmaArgument {
    /// The function.
    pub symbol: &'static str,
    /// The parameter's name in the kernel source (checked against BTF).
    pub param: &'static str,
    /// Its 0-based index in the source signature.
    pub index: u32,
    /// Whether it is the start address or a `struct vm_area_struct *`.
    pub kind: reaper_common::function_timing::VmaArgKind,
}

/// Signatures of the per-VMA unmap candidates (mm/memory.c):
/// `void unmap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
/// unsigned long addr, unsigned long end, struct zap_details *details)` up to
/// 6.18; `int zap_vma_for_reaping(struct vm_area_struct *vma)` on 7.x.
/// The walker step of both contexts on 7.x (issue 25's walker log):
/// `static void __zap_vma_range(struct mmu_gather *tlb, struct
/// vm_area_struct *vma, unsigned long start, unsigned long end, struct
/// zap_details *details)`. With an address, the range's end is the next
/// parameter.
pub const VMA_ARGUMENTS: &[VmaArgument] = &[
    VmaArgument {
        symbol: "unmap_page_range",
        param: "addr",
        index: 2,
        kind: reaper_common::function_timing::VmaArgKind::Address,
    },
    VmaArgument {
        symbol: "__zap_vma_range",
        param: "start",
        index: 2,
        kind: reaper_common::function_timing::VmaArgKind::Address,
    },
    VmaArgument {
        symbol: "zap_vma_for_reaping",
        param: "vma",
        index: 0,
        kind: reaper_common::function_timing::VmaArgKind::VmaPointer,
    },
];

/// The VMA argument of a per-VMA unmap function, if reaper knows it.
pub fn vma_argument(symbol: &str) -> Option<&'static VmaArgument> {
    VMA_ARGUMENTS.iter().find(|a| a.symbol == symbol)
}

/// A teardown concept and its candidate symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concept {
    /// Stable id used in run files and reports.
    pub id: ConceptId,
    /// Human description.
    pub description: &'static str,
    /// Candidate kernel symbols, most preferred first.
    pub candidates: &'static [&'static str],
    /// A caller whose frame stands in for this concept when the function is
    /// inlined everywhere (the PTE lock on 6.1 is inlined into `zap_pte_range`).
    pub inline_fallback: Option<&'static str>,
    /// Whether its function is timed per call.
    pub timing: Timing,
}

/// Every concept reaper knows about.
pub const CONCEPTS: &[Concept] = &[
    Concept {
        id: ConceptId::ReaperWork,
        description: "reaper work (process_mrelease and the oom_reaper kthread)",
        candidates: &["__oom_reap_task_mm"],
        inline_fallback: None,
        timing: Timing::Timed,
    },
    Concept {
        id: ConceptId::ReaperKthread,
        description: "oom_reaper kthread loop",
        candidates: &[reaper_common::context::OOM_REAPER_KTHREAD],
        inline_fallback: None,
        timing: Timing::NotTimed("the kthread's loop never returns"),
    },
    Concept {
        id: ConceptId::VictimTeardown,
        description: "victim address-space teardown",
        candidates: &["exit_mmap"],
        inline_fallback: None,
        timing: Timing::Timed,
    },
    Concept {
        id: ConceptId::VictimUnmap,
        description: "victim's unmap of all VMAs",
        candidates: &["unmap_vmas"],
        inline_fallback: None,
        timing: Timing::Timed,
    },
    Concept {
        id: ConceptId::PerVmaUnmap,
        description: "per-VMA unmap (reaper)",
        candidates: &["zap_vma_for_reaping", "unmap_page_range"],
        inline_fallback: None,
        timing: Timing::Timed,
    },
    Concept {
        id: ConceptId::VmaZapWorker,
        description: "per-VMA zap worker of both contexts (7.x; unmap_page_range before)",
        candidates: &["__zap_vma_range"],
        inline_fallback: None,
        timing: Timing::Timed,
    },
    Concept {
        id: ConceptId::PteLock,
        description: "PTE spinlock acquisition",
        candidates: &["__pte_offset_map_lock", "pte_offset_map_lock"],
        inline_fallback: Some("zap_pte_range"),
        timing: Timing::LockPath,
    },
    Concept {
        id: ConceptId::RmapRemoval,
        description: "rmap removal",
        candidates: &["folio_remove_rmap_ptes", "page_remove_rmap"],
        inline_fallback: None,
        timing: Timing::PerPage,
    },
    Concept {
        id: ConceptId::TlbFlush,
        description: "TLB flush during unmap",
        candidates: &["tlb_flush_mmu"],
        inline_fallback: None,
        timing: Timing::PerBatch,
    },
    Concept {
        id: ConceptId::TlbFinish,
        description: "TLB gather finish",
        candidates: &["tlb_finish_mmu"],
        inline_fallback: None,
        timing: Timing::Timed,
    },
    Concept {
        id: ConceptId::PageFreeing,
        description: "page freeing",
        candidates: &["free_pages_and_swap_cache"],
        inline_fallback: None,
        timing: Timing::PerBatch,
    },
    Concept {
        id: ConceptId::SpinSlowpath,
        description: "spinlock slow path",
        candidates: &[
            "native_queued_spin_lock_slowpath",
            "queued_spin_lock_slowpath",
        ],
        inline_fallback: None,
        timing: Timing::LockPath,
    },
    Concept {
        id: ConceptId::MreleaseSyscall,
        description: "process_mrelease syscall",
        candidates: &reaper_common::context::MRELEASE_SYSCALL_FRAMES,
        inline_fallback: None,
        timing: Timing::Timed,
    },
];

/// A concept's catalog entry.
pub fn entry(id: ConceptId) -> &'static Concept {
    CONCEPTS
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| unreachable!("every ConceptId is in CONCEPTS (checked by a test)"))
}

/// Strips the compiler's clone suffixes (`.isra.0`, `.constprop.0`,
/// `.part.0`, `.cold`, ...) so a clone matches its source function.
pub fn base_name(symbol: &str) -> &str {
    symbol.split_once('.').map_or(symbol, |(base, _)| base)
}

/// The set of (base) function names a kernel has, with the name each one
/// carries in kallsyms (kprobes attach by that name).
#[derive(Clone, Debug, Default)]
pub struct KernelSymbols {
    names: HashSet<String>,
    /// base name → kallsyms name, when they differ (`zap_pte_range.isra.0`).
    attach_names: HashMap<String, String>,
}

/// Whether a kallsyms name is a function's entry: `.cold` parts (split-off
/// unlikely blocks) are not.
fn is_entry(name: &str) -> bool {
    !name.ends_with(".cold") && !name.contains(".cold.")
}

impl KernelSymbols {
    /// Parses `/proc/kallsyms` text (`ADDR TYPE NAME [MODULE]`), keeping
    /// text symbols only.
    pub fn from_kallsyms(text: &str) -> Self {
        Self::from_kallsyms_keeping(text, |_| true)
    }

    /// [`Self::from_kallsyms`], keeping only the catalog's candidate names:
    /// all that resolving the catalog asks, without a set of every kernel
    /// function (about 150k names, most of `record`'s start-up and RSS).
    pub fn catalog_only_from_kallsyms(text: &str) -> Self {
        let wanted = catalog_candidates();
        Self::from_kallsyms_keeping(text, |base| wanted.binary_search(&base).is_ok())
    }

    /// Reads the running kernel's `/proc/kallsyms` for
    /// [`Self::catalog_only_from_kallsyms`], line by line: its ~8 MiB are
    /// never held at once.
    pub fn running_catalog_only() -> std::io::Result<Self> {
        Self::running_catalog_only_with(|_| {})
    }

    /// [`Self::running_catalog_only`], handing every line to `also` too
    /// (`record` fills its symbol table from the same read).
    pub fn running_catalog_only_with(mut also: impl FnMut(&str)) -> std::io::Result<Self> {
        use std::io::BufRead as _;
        let wanted = catalog_candidates();
        let keep = |base: &str| wanted.binary_search(&base).is_ok();
        let mut reader =
            std::io::BufReader::with_capacity(64 << 10, std::fs::File::open("/proc/kallsyms")?);
        let mut builder = SymbolsBuilder::default();
        let mut line = String::new();
        while {
            line.clear();
            reader.read_line(&mut line)? > 0
        } {
            builder.add(&line, &keep);
            also(&line);
        }
        Ok(builder.finish())
    }

    /// Parses kallsyms text, keeping the text symbols whose base name
    /// `keep` accepts.
    fn from_kallsyms_keeping(text: &str, keep: impl Fn(&str) -> bool) -> Self {
        let mut builder = SymbolsBuilder::default();
        for line in text.lines() {
            builder.add(line, &keep);
        }
        builder.finish()
    }

    /// Builds the set from plain names (one per line), e.g. a BTF function list.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            names: names.into_iter().map(|n| base_name(n).to_owned()).collect(),
            attach_names: HashMap::new(),
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

    /// The name kprobes must use for a (base) name: the plain name, or the
    /// compiler's clone (`foo.isra.0`) when only that exists.
    pub fn attach_name<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        if !self.contains(name) {
            return None;
        }
        Some(self.attach_names.get(name).map_or(name, String::as_str))
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

/// The catalog's candidate names, sorted and unique (binary-searched).
pub(crate) fn catalog_candidates() -> Vec<&'static str> {
    let mut wanted: Vec<&str> = CONCEPTS
        .iter()
        .flat_map(|c| c.candidates.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
}

/// [`KernelSymbols`] being built from kallsyms lines.
#[derive(Default)]
struct SymbolsBuilder {
    symbols: KernelSymbols,
    /// Base names seen under their plain name.
    plain: HashSet<String>,
}

impl SymbolsBuilder {
    /// Adds one `ADDR TYPE NAME [MODULE]` line, if it is a text symbol
    /// whose base name `keep` accepts (split as ASCII, as kallsyms is: the
    /// Unicode split was a tenth of the start-up read's user time).
    fn add(&mut self, line: &str, keep: &impl Fn(&str) -> bool) {
        let mut fields = line.split_ascii_whitespace();
        let (Some(_addr), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            return;
        };
        if !matches!(kind, "t" | "T" | "w" | "W") {
            return;
        }
        let base = base_name(name);
        if !keep(base) {
            return;
        }
        self.symbols.names.insert(base.to_owned());
        if base == name {
            self.plain.insert(base.to_owned());
        } else if is_entry(name) {
            self.symbols
                .attach_names
                .entry(base.to_owned())
                .or_insert_with(|| name.to_owned());
        }
    }

    fn finish(mut self) -> KernelSymbols {
        // The plain name wins over any clone.
        let plain = self.plain;
        self.symbols
            .attach_names
            .retain(|base, _| !plain.contains(base));
        self.symbols
    }
}

/// Resolves one concept: the first candidate the kernel has.
pub fn resolve(concept: &Concept, symbols: &KernelSymbols) -> ResolvedConcept {
    ResolvedConcept {
        concept: concept.id,
        symbol: concept
            .candidates
            .iter()
            .find(|c| symbols.contains(c))
            .map(|c| (*c).to_owned()),
        candidates: concept.candidates.iter().map(|c| (*c).to_owned()).collect(),
        attach_name: None,
        in_btf: None,
    }
}

/// Resolves one concept against kallsyms and BTF: the first candidate in
/// either (kallsyms for kprobes, BTF for fentry). Records the kallsyms name
/// when it differs and whether BTF has the function.
pub fn resolve_with_btf(
    concept: &Concept,
    symbols: &KernelSymbols,
    btf: Option<&BtfFacts>,
) -> ResolvedConcept {
    let in_btf = |name: &str| btf.is_some_and(|b| b.has_function(name));
    let symbol = concept
        .candidates
        .iter()
        .find(|c| symbols.contains(c) || in_btf(c))
        .map(|c| (*c).to_owned());
    let attach_name = symbol
        .as_deref()
        .and_then(|s| symbols.attach_name(s))
        .filter(|a| Some(*a) != symbol.as_deref())
        .map(str::to_owned);
    ResolvedConcept {
        concept: concept.id,
        in_btf: btf.and(symbol.as_deref().map(in_btf)),
        attach_name,
        symbol,
        candidates: concept.candidates.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// Resolves every concept against kallsyms and BTF.
pub fn resolve_all_with_btf(
    symbols: &KernelSymbols,
    btf: Option<&BtfFacts>,
) -> Vec<ResolvedConcept> {
    CONCEPTS
        .iter()
        .map(|c| resolve_with_btf(c, symbols, btf))
        .collect()
}

/// Resolves every concept.
pub fn resolve_all(symbols: &KernelSymbols) -> Vec<ResolvedConcept> {
    CONCEPTS.iter().map(|c| resolve(c, symbols)).collect()
}

/// The frame that identifies a concept in stacks of a run: the resolved
/// symbol, else the inline fallback, else `None` (absent on that kernel).
pub fn frame_for(resolved: &[ResolvedConcept], id: ConceptId) -> Option<&str> {
    let resolved = resolved.iter().find(|r| r.concept == id)?;
    resolved.symbol.as_deref().or(entry(id).inline_fallback)
}

/// Every catalog concept of one run resolved to its frame once: reports and
/// diffs look concepts up here instead of searching the run's symbols per
/// row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConceptFrames {
    /// Per concept, in catalog order: the resolved symbol and the frame
    /// (symbol, else inline fallback); `None` when the run did not resolve it.
    entries: Vec<(ConceptId, Option<ResolvedFrame>)>,
}

/// One concept resolved in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ResolvedFrame {
    symbol: Option<String>,
    frame: Option<String>,
    candidates: Vec<String>,
}

impl ConceptFrames {
    /// Resolves every catalog concept against a run's `symbols`.
    pub fn of(resolved: &[ResolvedConcept]) -> Self {
        let entries = CONCEPTS
            .iter()
            .map(|c| {
                let entry = resolved
                    .iter()
                    .find(|r| r.concept == c.id)
                    .map(|r| ResolvedFrame {
                        symbol: r.symbol.clone(),
                        frame: frame_for(resolved, c.id).map(str::to_owned),
                        candidates: r.candidates.clone(),
                    });
                (c.id, entry)
            })
            .collect();
        Self { entries }
    }

    fn entry(&self, id: ConceptId) -> Option<&ResolvedFrame> {
        self.entries
            .iter()
            .find(|(c, _)| *c == id)
            .and_then(|(_, e)| e.as_ref())
    }

    /// The frame that identifies the concept in the run's stacks (symbol,
    /// else inline fallback); `None`: absent on that kernel.
    pub fn frame(&self, id: ConceptId) -> Option<&str> {
        self.entry(id).and_then(|e| e.frame.as_deref())
    }

    /// The kernel function the concept resolved to (no inline fallback).
    pub fn symbol(&self, id: ConceptId) -> Option<&str> {
        self.entry(id).and_then(|e| e.symbol.as_deref())
    }

    /// Whether the run resolved the concept at all (an old run may not list it).
    pub fn listed(&self, id: ConceptId) -> bool {
        self.entry(id).is_some()
    }

    /// The candidates the run tried for the concept (empty when not listed).
    pub fn candidates(&self, id: ConceptId) -> &[String] {
        self.entry(id).map_or(&[], |e| &e.candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> KernelSymbols {
        let path = format!("{}/tests/data/kallsyms/{name}", env!("CARGO_MANIFEST_DIR"));
        KernelSymbols::from_kallsyms(&std::fs::read_to_string(&path).expect(&path))
    }

    fn symbol_of(symbols: &KernelSymbols, id: &str) -> Option<String> {
        resolve(entry(ConceptId::from_name(id).unwrap()), symbols).symbol
    }

    /// The catalog-only table `record` builds resolves every concept (symbol
    /// and kprobe name) exactly as the table of every kernel function does.
    #[test]
    fn catalog_only_symbols_resolve_like_the_full_table() {
        let dir = format!("{}/tests/data/kallsyms", env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect(&dir) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            // The fixtures hold catalog names; a real kernel has ~150k more.
            let text = std::fs::read_to_string(&path).unwrap()
                + "ffffffff81300000 T not_in_the_catalog\nffffffff81300100 t other.isra.0\n";
            let full = KernelSymbols::from_kallsyms(&text);
            let only = KernelSymbols::catalog_only_from_kallsyms(&text);
            assert!(!only.contains("not_in_the_catalog") && !only.contains("other"));
            assert!(only.len() + 2 <= full.len(), "{}", path.display());
            assert_eq!(
                resolve_all_with_btf(&only, None),
                resolve_all_with_btf(&full, None),
                "{}",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} kallsyms fixtures");
    }

    #[test]
    fn every_concept_id_names_one_catalog_entry() {
        assert_eq!(ConceptId::ALL.len(), CONCEPTS.len());
        for id in ConceptId::ALL {
            assert_eq!(entry(id).id, id);
        }
        let ids: Vec<ConceptId> = CONCEPTS.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            ConceptId::ALL,
            "CONCEPTS in the vocabulary's order, once each"
        );
    }

    #[test]
    fn concept_frames_resolve_like_frame_for() {
        let resolved = resolve_all(&fixture("6.1.176-x86_64"));
        let frames = ConceptFrames::of(&resolved);
        for c in CONCEPTS {
            assert_eq!(frames.frame(c.id), frame_for(&resolved, c.id), "{}", c.id);
            let r = resolved.iter().find(|r| r.concept == c.id).unwrap();
            assert_eq!(frames.symbol(c.id), r.symbol.as_deref());
            assert_eq!(frames.candidates(c.id), r.candidates.as_slice());
        }
        // 6.1 inlines the PTE lock: the frame is the inline fallback.
        assert_eq!(frames.symbol(ConceptId::PteLock), None);
        assert_eq!(frames.frame(ConceptId::PteLock), Some("zap_pte_range"));
        let none = ConceptFrames::of(&[]);
        assert!(!none.listed(ConceptId::PteLock));
        assert_eq!(none.frame(ConceptId::PteLock), None);
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
        assert_eq!(
            frame_for(&resolved, ConceptId::PteLock),
            Some("zap_pte_range")
        );
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

    fn btf_fixture(name: &str) -> BtfFacts {
        let path = format!("{}/tests/data/btf/{name}", env!("CARGO_MANIFEST_DIR"));
        BtfFacts::from_fixture(&std::fs::read_to_string(&path).expect(&path))
    }

    /// Both fixtures of a real kernel resolved together.
    fn real(name: &str) -> Vec<ResolvedConcept> {
        resolve_all_with_btf(&fixture(name), Some(&btf_fixture(name)))
    }

    fn get<'a>(resolved: &'a [ResolvedConcept], id: &str) -> &'a ResolvedConcept {
        resolved.iter().find(|r| r.concept.name() == id).unwrap()
    }

    #[test]
    fn real_6_1_kernels_resolve_with_btf() {
        for name in ["6.1.176-x86_64", "6.1.176-arm64"] {
            let r = real(name);
            let per_vma = get(&r, "per_vma_unmap");
            assert_eq!(
                per_vma.symbol.as_deref(),
                Some("unmap_page_range"),
                "{name}"
            );
            assert_eq!(per_vma.in_btf, Some(true), "{name}");
            assert_eq!(get(&r, "pte_lock").symbol, None, "{name}: inline on 6.1");
            assert_eq!(get(&r, "vma_zap_worker").symbol, None, "{name}");
            assert_eq!(
                get(&r, "rmap_removal").symbol.as_deref(),
                Some("page_remove_rmap")
            );
            assert_eq!(get(&r, "reaper_work").in_btf, Some(true), "{name}");
            let source = vma_source("unmap_page_range", Some(&btf_fixture(name))).unwrap();
            assert_eq!(source.index, 2);
            assert_eq!(
                source.kind,
                reaper_common::function_timing::VmaArgKind::Address
            );
        }
    }

    #[test]
    fn real_7_2_kernels_resolve_with_btf() {
        for name in ["7.2.13-x86_64", "7.2.13-arm64"] {
            let r = real(name);
            let per_vma = get(&r, "per_vma_unmap");
            assert_eq!(
                per_vma.symbol.as_deref(),
                Some("zap_vma_for_reaping"),
                "{name}"
            );
            assert_eq!(per_vma.in_btf, Some(true), "{name}");
            assert_eq!(
                get(&r, "pte_lock").symbol.as_deref(),
                Some("pte_offset_map_lock"),
                "{name}"
            );
            assert_eq!(
                get(&r, "vma_zap_worker").symbol.as_deref(),
                Some("__zap_vma_range"),
                "{name}"
            );
            let btf = btf_fixture(name);
            let source = vma_source("zap_vma_for_reaping", Some(&btf)).unwrap();
            assert_eq!(source.index, 0);
            assert_eq!(
                source.kind,
                reaper_common::function_timing::VmaArgKind::VmaPointer
            );
            assert_eq!(Some(source.vm_start_offset), btf.vm_start_offset);
        }
        let x86 = real("7.2.13-x86_64");
        assert_eq!(
            get(&x86, "mrelease_syscall").symbol.as_deref(),
            Some("__x64_sys_process_mrelease")
        );
    }

    #[test]
    fn vma_pointer_without_btf_is_refused_with_a_reason() {
        let err = vma_source("zap_vma_for_reaping", None).unwrap_err();
        assert!(err.to_string().contains("vm_area_struct.vm_start"), "{err}");
        let plain = vma_source("unmap_page_range", None).unwrap();
        assert_eq!(plain.index, 2);
        assert!(vma_source("exit_mmap", None).is_err());
    }

    #[test]
    fn clone_names_are_kept_for_kprobes() {
        let k = KernelSymbols::from_kallsyms(
            "1 t zap_pte_range.isra.0\n2 t unmap_page_range.cold\n3 T unmap_page_range\n4 t foo.cold\n",
        );
        assert_eq!(k.attach_name("zap_pte_range"), Some("zap_pte_range.isra.0"));
        assert_eq!(k.attach_name("unmap_page_range"), Some("unmap_page_range"));
        assert_eq!(
            k.attach_name("foo"),
            Some("foo"),
            "only a .cold part: plain name"
        );
        assert_eq!(k.attach_name("nope"), None);
    }

    #[test]
    fn every_timed_concept_has_a_slot() {
        let timed = CONCEPTS.iter().filter(|c| c.timing.can_be_timed()).count();
        assert!(timed <= reaper_common::function_timing::SLOT_COUNT as usize);
    }

    /// Regenerates tests/data/btf from full BTF files:
    /// `REAPER_BLESS_BTF="NAME=PATH ..." cargo test -p reaper-cli bless_btf -- --ignored`.
    #[test]
    #[ignore = "regenerates fixtures from BTF files named in REAPER_BLESS_BTF"]
    fn bless_btf_fixtures() {
        let spec = std::env::var("REAPER_BLESS_BTF").expect("REAPER_BLESS_BTF");
        for pair in spec.split_whitespace() {
            let (name, path) = pair.split_once('=').expect("NAME=PATH");
            let btf = crate::probes::btf::KernelBtf::from_file(path).expect(path);
            let out = format!("{}/tests/data/btf/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = format!(
                "# catalog facts from the BTF of {name} (bless_btf_fixtures)\n{}",
                BtfFacts::from_btf(&btf).to_fixture()
            );
            std::fs::write(&out, text).expect(&out);
        }
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

#[cfg(test)]
mod drift_tests;
