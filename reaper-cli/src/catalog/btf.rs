//! What the catalog needs from kernel BTF ([`BtfFacts`]: which candidates
//! fentry can attach to, the per-VMA functions' parameters, where
//! `vm_area_struct.vm_start` is) and where the per-VMA function's VMA start
//! comes from on a kernel ([`vma_source`]).

use std::collections::{HashMap, HashSet};

use super::{CONCEPTS, VMA_ARGUMENTS, vma_argument};

/// What reaper needs from kernel BTF: which catalog candidates fentry can
/// attach to, the per-VMA functions' parameters, and where
/// `vm_area_struct.vm_start` is. Built from the kernel's BTF, or from a
/// fixture (tests/data/btf) in tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtfFacts {
    functions: HashSet<String>,
    /// Per-VMA function → (parameter name, struct pointed to) in order.
    params: HashMap<String, Vec<(String, Option<String>)>>,
    /// `offsetof(struct vm_area_struct, vm_start)`.
    pub vm_start_offset: Option<u32>,
    /// PREEMPT_RT's lock owner and the task fields it is named by; `None`
    /// unless `spinlock_t` is an `rt_mutex_base` at offset 0 (RT's layout).
    pub rt_lock: Option<RtLockOffsets>,
}

/// Where a PREEMPT_RT PTE lock's owner is, and its pid, tgid and comm
/// (`reaper_common::collision::RtOwnerConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtLockOffsets {
    /// `offsetof(struct rt_mutex_base, owner)`.
    pub owner: u32,
    /// `offsetof(struct task_struct, pid)`.
    pub task_pid: u32,
    /// `offsetof(struct task_struct, tgid)`.
    pub task_tgid: u32,
    /// `offsetof(struct task_struct, comm)`.
    pub task_comm: u32,
}

impl RtLockOffsets {
    /// Read from BTF; `None` on a kernel whose `spinlock_t` is not an
    /// `rt_mutex_base` (every kernel but PREEMPT_RT) or when a field is
    /// missing.
    fn from_btf<B: BtfSource>(btf: &B) -> Option<Self> {
        (btf.struct_member_offset("spinlock", "lock")? == 0).then_some(())?;
        Some(Self {
            owner: btf.struct_member_offset("rt_mutex_base", "owner")?,
            task_pid: btf.struct_member_offset("task_struct", "pid")?,
            task_tgid: btf.struct_member_offset("task_struct", "tgid")?,
            task_comm: btf.struct_member_offset("task_struct", "comm")?,
        })
    }
}

/// What [`BtfFacts::from_btf`] reads from a parsed kernel BTF; the
/// loader's BTF parser (`probes::btf`) implements it, so the catalog does
/// not depend on the loader.
pub trait BtfSource {
    /// Whether BTF has a function of that name.
    fn function_exists(&self, name: &str) -> bool;
    /// A function's parameters in order: (name, struct pointed to).
    fn function_params(&self, function: &str) -> Option<Vec<(String, Option<String>)>>;
    /// `offsetof(struct name, member)`.
    fn struct_member_offset(&self, name: &str, member: &str) -> Option<u32>;
}

impl BtfFacts {
    /// Extracts the facts about catalog candidates from a parsed BTF.
    pub fn from_btf<B: BtfSource>(btf: &B) -> Self {
        let mut facts = Self {
            vm_start_offset: btf.struct_member_offset("vm_area_struct", "vm_start"),
            rt_lock: RtLockOffsets::from_btf(btf),
            ..Self::default()
        };
        for name in CONCEPTS.iter().flat_map(|c| c.candidates.iter()) {
            if btf.function_exists(name) {
                facts.functions.insert((*name).to_owned());
            }
        }
        for arg in VMA_ARGUMENTS {
            if let Some(params) = btf.function_params(arg.symbol) {
                facts.params.insert(arg.symbol.to_owned(), params);
            }
        }
        facts
    }

    /// Parses the fixture format written by [`BtfFacts::to_fixture`].
    pub fn from_fixture(text: &str) -> Self {
        let mut facts = Self::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["func", name] => {
                    facts.functions.insert((*name).to_owned());
                }
                ["vm_start_offset", off] => facts.vm_start_offset = off.parse().ok(),
                ["rt_lock", owner, pid, tgid, comm] => {
                    facts.rt_lock = (|| {
                        Some(RtLockOffsets {
                            owner: owner.parse().ok()?,
                            task_pid: pid.parse().ok()?,
                            task_tgid: tgid.parse().ok()?,
                            task_comm: comm.parse().ok()?,
                        })
                    })();
                }
                ["param", func, _index, name, pointee] => {
                    facts.params.entry((*func).to_owned()).or_default().push((
                        (*name).to_owned(),
                        (*pointee != "-").then(|| (*pointee).to_owned()),
                    ));
                }
                _ => {}
            }
        }
        facts
    }

    /// The fixture form: one fact per line, sorted.
    pub fn to_fixture(&self) -> String {
        let mut funcs: Vec<&String> = self.functions.iter().collect();
        funcs.sort();
        let mut out: Vec<String> = funcs.iter().map(|f| format!("func {f}")).collect();
        if let Some(off) = self.vm_start_offset {
            out.push(format!("vm_start_offset {off}"));
        }
        if let Some(rt) = self.rt_lock {
            out.push(format!(
                "rt_lock {} {} {} {}",
                rt.owner, rt.task_pid, rt.task_tgid, rt.task_comm
            ));
        }
        let mut params: Vec<_> = self.params.iter().collect();
        params.sort();
        for (func, list) in params {
            for (i, (name, pointee)) in list.iter().enumerate() {
                out.push(format!(
                    "param {func} {i} {name} {}",
                    pointee.as_deref().unwrap_or("-")
                ));
            }
        }
        out.join("\n") + "\n"
    }

    /// Whether BTF describes the function.
    pub fn has_function(&self, name: &str) -> bool {
        self.functions.contains(name)
    }
}

/// Where the per-VMA function's VMA start address comes from on a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmaSource {
    /// 0-based argument index.
    pub index: u32,
    /// Address or VMA pointer.
    pub kind: reaper_common::function_timing::VmaArgKind,
    /// `vm_area_struct.vm_start` offset (used with a VMA pointer).
    pub vm_start_offset: u32,
}

/// Why the per-VMA function's VMA cannot be read on a kernel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VmaSourceError {
    /// The catalog does not describe the function's VMA argument.
    #[error("reaper does not know how {0} receives its VMA")]
    Unknown(String),
    /// BTF has the function but not the parameter (a changed signature).
    #[error("{symbol} has no parameter {param:?} in this kernel's BTF (its signature changed)")]
    NoParameter {
        /// The function.
        symbol: String,
        /// The parameter the catalog names.
        param: &'static str,
    },
    /// A VMA pointer needs `vm_area_struct.vm_start` from BTF.
    #[error("reading {0}'s VMA needs vm_area_struct.vm_start from kernel BTF, which is missing")]
    NoVmStart(String),
}

/// Finds the VMA argument of `symbol` on this kernel: the catalog's
/// parameter, located by name in BTF when BTF has the function (so a
/// reordered signature is followed, a renamed one refused), and the
/// `vm_start` offset from BTF (never compiled in).
pub fn vma_source(symbol: &str, btf: Option<&BtfFacts>) -> Result<VmaSource, VmaSourceError> {
    use reaper_common::function_timing::VmaArgKind;
    let arg = vma_argument(symbol).ok_or_else(|| VmaSourceError::Unknown(symbol.to_owned()))?;
    let index = match btf.and_then(|b| b.params.get(symbol)) {
        Some(params) => {
            let found = params.iter().position(|(name, pointee)| {
                name == arg.param
                    && (arg.kind != VmaArgKind::VmaPointer
                        || pointee.as_deref() == Some("vm_area_struct"))
            });
            found.ok_or_else(|| VmaSourceError::NoParameter {
                symbol: symbol.to_owned(),
                param: arg.param,
            })? as u32
        }
        None => arg.index,
    };
    let vm_start_offset = match arg.kind {
        VmaArgKind::Address => 0,
        VmaArgKind::VmaPointer => btf
            .and_then(|b| b.vm_start_offset)
            .ok_or_else(|| VmaSourceError::NoVmStart(symbol.to_owned()))?,
    };
    Ok(VmaSource {
        index,
        kind: arg.kind,
        vm_start_offset,
    })
}
