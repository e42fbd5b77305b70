//! The maps of `record --exact-locks`' collision logs (issue 25): shrunk to
//! one entry each before loading when the logs are off (no `--exact-locks`,
//! or `--no-collision-log`), so a recording that does not log pays no
//! kernel memory for them, and their kernel memory read back after loading
//! (the `memlock:` line of each map fd's `/proc/self/fdinfo`, the kernel's
//! own accounting) for run.json's `recording.collision_maps`.

use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::{Ebpf, EbpfLoader, maps::Map};
use reaper_common::{
    collision::{MAP_RT_PTE_WAITS, RtOwnerConfig},
    function_timing::{CollisionConfig, FunctionTimingConfig},
};

use crate::model::MapMemory;

/// The collision logs' maps, in the order run.json lists them.
pub const MAPS: [&str; 5] = reaper_common::collision::COLLISION_MAPS;

/// Entries of each map while the logs are off: the kernel refuses 0, and
/// the eBPF side reaches them only through bounds-checked lookups (a
/// missing context or depth returns early), with a configuration that
/// sends nothing there.
const OFF_ENTRIES: u32 = 1;

/// Whether `timing` sends nothing to the collision logs.
pub fn logs_off(timing: &FunctionTimingConfig) -> bool {
    timing.collision == CollisionConfig::DISABLED
}

/// Shrinks the collision maps to [`OFF_ENTRIES`] when `timing` logs
/// nothing, and PREEMPT_RT's open waits unless `rt` reads lock owners.
pub fn shrink_when_off(
    loader: &mut EbpfLoader<'_>,
    timing: &FunctionTimingConfig,
    rt: &RtOwnerConfig,
) {
    if rt.owner_offset == 0 {
        loader.map_max_entries(MAP_RT_PTE_WAITS, OFF_ENTRIES);
    }
    if !logs_off(timing) {
        return;
    }
    for name in MAPS {
        loader.map_max_entries(name, OFF_ENTRIES);
    }
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
    fn only_a_config_that_logs_nothing_shrinks_the_maps() {
        assert!(logs_off(&FunctionTimingConfig::DISABLED));
        let mut on = FunctionTimingConfig::DISABLED;
        on.collision.wait_slot = 3;
        assert!(!logs_off(&on));
    }
}
