//! What recording reads from the running kernel before it loads anything:
//! /proc/kallsyms (on a thread of its own) and a summary of the kernel's
//! BTF.

use anyhow::Context as _;

use crate::{
    catalog::{self, KernelSymbols},
    probes::raw_tp::{self, RawPlan},
    symbolize::{KernelSymbolizer, SymbolTableBuilder},
};

/// What the kallsyms reader thread hands back: the catalog's symbols and
/// the table stacks are named from.
pub(super) type KallsymsRead =
    std::io::Result<(KernelSymbols, crate::symbolize::KernelSymbolTable)>;

/// Starts reading /proc/kallsyms on its own thread. The kernel formats the
/// file as it is read (~0.1 s of kernel time): it is read once, while the
/// caller parses BTF, for the catalog and for the symbol table stacks are
/// named from.
pub(super) fn spawn_kallsyms_reader() -> std::thread::JoinHandle<KallsymsRead> {
    std::thread::spawn(|| {
        let mut table = SymbolTableBuilder::default();
        let symbols = KernelSymbols::running_catalog_only_with(|line| table.add(line))?;
        Ok((symbols, table.finish()))
    })
}

/// Waits for [`spawn_kallsyms_reader`]'s thread: the catalog's symbols,
/// and the symbolizer stacks are named with.
pub(super) fn join_kallsyms_reader(
    reader: std::thread::JoinHandle<KallsymsRead>,
) -> anyhow::Result<(KernelSymbols, KernelSymbolizer)> {
    let (symbols, table) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the /proc/kallsyms reader panicked"))?
        .context("reading /proc/kallsyms")?;
    Ok((symbols, KernelSymbolizer::new(table)?))
}

/// What recording keeps from the kernel's BTF: reaper's BTF index (a few
/// MiB) is read once, the catalog's facts and every candidate function's
/// type id are kept, and the index is freed before the object's maps and
/// programs are created.
pub(super) struct BtfSummary {
    /// Which tracepoints may run as raw tracepoints.
    pub raw: RawPlan,
    /// The catalog's facts, when the kernel has BTF.
    pub facts: Option<catalog::BtfFacts>,
    /// Whether the kernel has BTF at all.
    pub has_btf: bool,
    /// Each catalog candidate function's BTF type id.
    function_ids: Vec<(&'static str, u32)>,
}

impl BtfSummary {
    /// Reads the kernel's BTF and resolves the raw-tracepoint plan (which
    /// may move `offsets`).
    pub(super) fn read(offsets: &mut reaper_common::tracepoint_offsets::TracepointOffsets) -> Self {
        let kernel_btf = crate::probes::btf::KernelBtf::from_sys_fs().ok();
        let raw = raw_tp::resolve(kernel_btf.as_ref(), offsets);
        let facts = kernel_btf.as_ref().map(catalog::BtfFacts::from_btf);
        let function_ids = kernel_btf.as_ref().map_or_else(Vec::new, |index| {
            catalog::catalog_candidates()
                .into_iter()
                .filter_map(|name| Some((name, index.function_id(name)?)))
                .collect()
        });
        Self {
            raw,
            facts,
            has_btf: kernel_btf.is_some(),
            function_ids,
        }
    }

    /// The BTF type id of the catalog candidate function `name`.
    pub(super) fn function_id(&self, name: &str) -> Option<u32> {
        self.function_ids
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|&(_, id)| id)
    }
}
