//! The maps of `record --exact-locks`' collision logs (issue 25): each
//! shrunk to one entry before loading when nothing on this kernel writes
//! it (all of them when the logs are off: no `--exact-locks`, or
//! `--no-collision-log`; the last takers where the PTE lock is inline or
//! PREEMPT_RT's owner names the holder), so a recording pays kernel memory
//! only for the maps it fills, and their kernel memory read back after loading
//! (the `memlock:` line of each map fd's `/proc/self/fdinfo`, the kernel's
//! own accounting) for run.json's `recording.collision_maps`.

use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::{Ebpf, EbpfLoader, maps::Map};
use reaper_common::{
    collision::{
        MAP_PTE_LAST_TAKER, MAP_PTE_OPEN_WAITS, MAP_PTE_WAIT_LOG, MAP_RT_PTE_WAITS, MAP_WALKER_LOG,
        RtOwnerConfig,
    },
    function_timing::{CollisionConfig, FunctionTimingConfig, SLOT_NONE},
};

use crate::model::MapMemory;

/// The collision logs' maps, in the order run.json lists them.
pub const MAPS: [&str; 5] = reaper_common::collision::COLLISION_MAPS;

/// Entries of each map while the logs are off: the kernel refuses 0, and
/// the eBPF side reaches them only through bounds-checked lookups (a
/// missing context or depth returns early), with a configuration that
/// sends nothing there.
const OFF_ENTRIES: u32 = 1;

/// Shrinks to [`OFF_ENTRIES`] each collision map nothing writes with
/// `timing` and `rt`.
pub fn shrink_when_off(
    loader: &mut EbpfLoader<'_>,
    timing: &FunctionTimingConfig,
    rt: &RtOwnerConfig,
) {
    for name in unused(&timing.collision, rt) {
        loader.map_max_entries(name, OFF_ENTRIES);
    }
}

/// The collision maps no probe writes with `config` and `rt`: the walker
/// log without a walker step; the open slow-path waits without the slow
/// path's wait log; the wait log without it or PREEMPT_RT's owners; the
/// last takers without the PTE-lock function's exit (inline on 6.1, not
/// used on PREEMPT_RT); PREEMPT_RT's open waits without its owners.
fn unused(config: &CollisionConfig, rt: &RtOwnerConfig) -> Vec<&'static str> {
    let rt_on = rt.owner_offset != 0;
    let off = |slot: u32| slot == SLOT_NONE;
    [
        (MAP_WALKER_LOG, off(config.walker_slot)),
        (MAP_PTE_WAIT_LOG, off(config.wait_slot) && !rt_on),
        (MAP_PTE_OPEN_WAITS, off(config.wait_slot)),
        (MAP_PTE_LAST_TAKER, off(config.pte_slot)),
        (MAP_RT_PTE_WAITS, !rt_on),
    ]
    .into_iter()
    .filter(|&(_, unused)| unused)
    .map(|(name, _)| name)
    .collect()
}

/// Each collision map's entries and kernel memory as the kernel reports
/// them; `None` when the kernel said nothing for any of them (no fdinfo).
pub fn memory(ebpf: &Ebpf) -> Option<Vec<MapMemory>> {
    let maps: Vec<MapMemory> = MAPS
        .into_iter()
        .filter_map(|name| {
            let fd = map_fd(ebpf.map(name)?)?;
            let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
            let (max_entries, memlock_bytes) = parse_fdinfo(&text)?;
            Some(MapMemory {
                map: name.to_owned(),
                max_entries,
                memlock_bytes,
            })
        })
        .collect();
    (!maps.is_empty()).then_some(maps)
}

/// The raw fd of a map of the kinds the collision logs use.
fn map_fd(map: &Map) -> Option<i32> {
    let data = match map {
        Map::Array(d) | Map::PerCpuArray(d) | Map::HashMap(d) | Map::LruHashMap(d) => d,
        _ => return None,
    };
    Some(data.fd().as_fd().as_raw_fd())
}

/// `(max_entries, memlock)` from a BPF map fd's fdinfo text.
fn parse_fdinfo(text: &str) -> Option<(u32, u64)> {
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    Some((
        field("max_entries")?.parse().ok()?,
        field("memlock")?.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map fd's fdinfo as `bpf_map_show_fdinfo()` (kernel/bpf/syscall.c)
    /// prints it: an LRU hash of 4,096 entries.
    const FDINFO_6_1: &str = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\n\
        map_type:\t9\nkey_size:\t8\nvalue_size:\t40\nmax_entries:\t4096\nmap_flags:\t0x0\n\
        map_extra:\t0x0\nmemlock:\t393216\nmap_id:\t12\nfrozen:\t0\n";

    #[test]
    fn fdinfo_gives_entries_and_memlock() {
        assert_eq!(parse_fdinfo(FDINFO_6_1), Some((4096, 393_216)));
    }

    #[test]
    fn fdinfo_without_memlock_says_nothing() {
        let old = "pos:\t0\nflags:\t02000002\nmax_entries:\t3\n";
        assert_eq!(parse_fdinfo(old), None);
        assert_eq!(parse_fdinfo("memlock:\tmany\nmax_entries:\t1\n"), None);
    }

    #[test]
    fn only_the_maps_nothing_writes_are_shrunk() {
        let off = RtOwnerConfig::DISABLED;
        assert_eq!(unused(&CollisionConfig::DISABLED, &off), MAPS.to_vec());
        // 7.x, fentry: every log but PREEMPT_RT's.
        let all = CollisionConfig {
            walker_slot: 1,
            wait_slot: 2,
            pte_slot: 3,
            pte_caller_slot: 3,
            ..CollisionConfig::DISABLED
        };
        assert_eq!(unused(&all, &off), [MAP_RT_PTE_WAITS]);
        // 6.1: the PTE lock is inline, so no last takers.
        let inline = CollisionConfig {
            pte_slot: SLOT_NONE,
            ..all
        };
        assert_eq!(
            unused(&inline, &off),
            [MAP_PTE_LAST_TAKER, MAP_RT_PTE_WAITS]
        );
        // PREEMPT_RT: the walker log, the wait log and the owners' open waits.
        let rt_config = CollisionConfig {
            walker_slot: 1,
            ..CollisionConfig::DISABLED
        };
        let rt = RtOwnerConfig {
            owner_offset: 24,
            ..RtOwnerConfig::DISABLED
        };
        assert_eq!(
            unused(&rt_config, &rt),
            [MAP_PTE_OPEN_WAITS, MAP_PTE_LAST_TAKER]
        );
    }
}
