//! PREEMPT_RT PTE-lock owners, userspace side: the loader global with
//! which the lock tracepoints log each sleeping PTE-lock wait of a tracked
//! walker and read the lock's owner (`reaper_common::collision::RtOwnerConfig`,
//! `reaper-ebpf/src/probes/rt_owner.rs`).

use reaper_common::{
    collision::{RT_PTE_CALLERS, RtOwnerConfig},
    function_timing::{CollisionConfig, SLOT_NONE},
};

use crate::catalog::{BtfFacts, INLINED_PTE_LOCK_CALLERS, RT_SPIN_LOCK};
use crate::model::{ConceptId, ResolvedConcept};

/// Whether, and how, the owners are read on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RtOwners {
    /// Not PREEMPT_RT (or no BTF to tell): the spin slow path's log is used.
    NotRt,
    /// PREEMPT_RT, but the logs are off (no `--exact-locks`, or a part is
    /// missing; the collision setup says why).
    LogsOff,
    /// PREEMPT_RT, and the owners cannot be read: why.
    Refused(String),
    /// Read, with this global.
    On(RtOwnerConfig),
}

impl RtOwners {
    /// The loader global: off unless [`RtOwners::On`].
    pub fn global(&self) -> RtOwnerConfig {
        match self {
            Self::On(config) => *config,
            _ => RtOwnerConfig::DISABLED,
        }
    }

    /// The owners as logged: the RT waits are read at the lock tracepoints
    /// (`lock:contention_begin/end`), so when the kernel refused them
    /// (`refusal`, its answer) no wait is logged, and the report must say
    /// "not measured" with that answer rather than "no PTE-lock wait".
    pub fn after_lock_tracepoints(self, refusal: Option<String>) -> Self {
        match (self, refusal) {
            (Self::On(_), Some(answer)) => Self::Refused(format!(
                "the lock tracepoints (lock:contention_begin/end) did not attach: {answer}"
            )),
            (owners, _) => owners,
        }
    }
}

/// The owners' setup for a recording whose collision logs are `collision`
/// (walker steps on or off), on a kernel with `btf`, resolved `symbols`,
/// and kallsyms ranges from `range_of`.
pub fn config(
    collision: &CollisionConfig,
    btf: Option<&BtfFacts>,
    symbols: &[ResolvedConcept],
    range_of: impl Fn(&str) -> Option<(u64, u64)>,
) -> RtOwners {
    let Some(offsets) = btf.and_then(|b| b.rt_lock) else {
        return RtOwners::NotRt;
    };
    if collision.walker_slot == SLOT_NONE {
        return RtOwners::LogsOff;
    }
    let Some((start, end)) = range_of(RT_SPIN_LOCK) else {
        return RtOwners::Refused(format!("{RT_SPIN_LOCK} is not in /proc/kallsyms"));
    };
    let callers = pte_callers(symbols);
    let ranges: Vec<[u64; 2]> = callers
        .iter()
        .filter_map(|name| range_of(name))
        .map(|(start, end)| [start, end])
        .take(RT_PTE_CALLERS)
        .collect();
    if ranges.is_empty() {
        return RtOwners::Refused(format!(
            "none of the PTE-lock callers ({}) is in /proc/kallsyms",
            callers.join(", ")
        ));
    }
    let mut pte_callers = [[0; 2]; RT_PTE_CALLERS];
    pte_callers[..ranges.len()].copy_from_slice(&ranges);
    RtOwners::On(RtOwnerConfig {
        owner_offset: offsets.owner,
        task_pid_offset: offsets.task_pid,
        task_tgid_offset: offsets.task_tgid,
        task_comm_offset: offsets.task_comm,
        rt_spin_lock: [start, end],
        pte_callers,
    })
}

/// The functions whose direct `rt_spin_lock` calls take a PTE lock: the
/// resolved PTE-lock function (its kallsyms name), or the zap path where
/// it is inlined; the same rule as the report's PTE-lock rows.
fn pte_callers(symbols: &[ResolvedConcept]) -> Vec<String> {
    let pte_lock = symbols
        .iter()
        .find(|c| c.concept == ConceptId::PteLock)
        .and_then(|c| c.attach_name.clone().or_else(|| c.symbol.clone()));
    match pte_lock {
        Some(name) => vec![name],
        None => INLINED_PTE_LOCK_CALLERS.map(str::to_owned).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sid 7.2 rt's offsets, in the BTF fixture format.
    fn rt_btf() -> BtfFacts {
        let facts = BtfFacts::from_fixture("rt_lock 24 2856 2860 3400\n");
        assert_eq!(facts.to_fixture(), "rt_lock 24 2856 2860 3400\n");
        facts
    }

    fn logs_on() -> CollisionConfig {
        CollisionConfig {
            walker_slot: 3,
            ..CollisionConfig::DISABLED
        }
    }

    fn pte_lock(symbol: Option<&str>) -> Vec<ResolvedConcept> {
        vec![ResolvedConcept {
            concept: ConceptId::PteLock,
            symbol: symbol.map(str::to_owned),
            candidates: vec![],
            attach_name: None,
            in_btf: None,
        }]
    }

    fn kallsyms(name: &str) -> Option<(u64, u64)> {
        match name {
            "rt_spin_lock" => Some((0x1000, 0x1080)),
            "pte_offset_map_lock" => Some((0x2000, 0x2100)),
            "unmap_page_range" => Some((0x3000, 0x3800)),
            _ => None,
        }
    }

    #[test]
    fn a_non_rt_kernel_and_logs_off_leave_the_owners_off() {
        let symbols = pte_lock(Some("pte_offset_map_lock"));
        assert_eq!(
            config(&logs_on(), Some(&BtfFacts::default()), &symbols, kallsyms),
            RtOwners::NotRt
        );
        assert_eq!(
            config(&logs_on(), None, &symbols, kallsyms),
            RtOwners::NotRt
        );
        assert_eq!(
            config(
                &CollisionConfig::DISABLED,
                Some(&rt_btf()),
                &symbols,
                kallsyms
            ),
            RtOwners::LogsOff
        );
        assert_eq!(RtOwners::LogsOff.global(), RtOwnerConfig::DISABLED);
    }

    #[test]
    fn the_owner_and_the_callers_come_from_btf_and_kallsyms() {
        let symbols = pte_lock(Some("pte_offset_map_lock"));
        let RtOwners::On(c) = config(&logs_on(), Some(&rt_btf()), &symbols, kallsyms) else {
            panic!("owners off");
        };
        assert_eq!(
            (c.owner_offset, c.task_pid_offset, c.task_comm_offset),
            (24, 2856, 3400)
        );
        assert_eq!(c.rt_spin_lock, [0x1000, 0x1080]);
        assert_eq!(c.pte_callers[0], [0x2000, 0x2100]);
        assert_eq!(c.pte_callers[1], [0, 0]);
        // rtlock_slowlock_locked, rt_spin_lock, pte_offset_map_lock, ...
        let mut frames = [0u64; reaper_common::collision::RT_STACK_FRAMES];
        frames[..3].copy_from_slice(&[0x9000, 0x1040, 0x2010]);
        assert!(c.is_pte_wait(&frames));
        // An lruvec lock: rt_spin_lock called from elsewhere.
        frames[..3].copy_from_slice(&[0x9000, 0x1040, 0x5010]);
        assert!(!c.is_pte_wait(&frames));
    }

    #[test]
    fn an_inline_pte_lock_uses_the_zap_path_and_a_missing_symbol_says_so() {
        let inline = pte_lock(None);
        let RtOwners::On(c) = config(&logs_on(), Some(&rt_btf()), &inline, kallsyms) else {
            panic!("owners off");
        };
        assert_eq!(c.pte_callers[0], [0x3000, 0x3800]);
        let none = |name: &str| (name == "rt_spin_lock").then_some((0x1000, 0x1080));
        let RtOwners::Refused(why) = config(&logs_on(), Some(&rt_btf()), &inline, none) else {
            panic!("not refused");
        };
        assert!(why.contains("zap_pte_range"), "{why}");
    }
}
