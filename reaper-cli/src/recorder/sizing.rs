//! The kernel stack map's size when `--stack-map-size` is not given: the
//! default, or more when a scenario can take more samples than the default
//! assumes.
//!
//! The map (`KERNEL_STACKS`, a preallocated hash keyed by the stack's own
//! hash) keeps every distinct kernel stack of a run's episodes, and a stack
//! is lost only when the map is full. Distinct stacks never outnumber the
//! samples (and the lock waits, which reuse their thread's stack), so a map
//! with as many entries as the run's expected samples cannot fill. Measured
//! (2026-12-04): 5 episodes of `--victim 256M,threads=4` in a bookworm 6.1
//! TCG guest, about 2,200 samples, fit in a 512-entry map (a 256-entry one
//! lost 0.9% and 23% of the last two episodes' samples); a host `--victim
//! 2G` episode took 682 samples at 4 kHz, 85 ms of sampled CPU time per GiB
//! over both contexts (the README's 2026-11-26 example: 136 ms/GiB). The
//! expected samples here assume [`CPU_MS_PER_GIB`] of sampled CPU time per
//! GiB, twice that for 16,384 VMAs (the host's `256M,vmas=16384` took twice
//! the time of 64 VMAs): an over-estimate on hardware, so sizing errs on
//! the side of no loss. Only tracked tasks are sampled, so the CPU count
//! does not enter. Under qemu TCG a teardown takes many more samples than
//! this assumes (a sid 7.2 arm64 guest: 10,200–11,500 per `256M,vmas=16384`
//! episode, 2026-12-04), yet their distinct stacks stayed within the
//! default map (no loss over 3 episodes): distinct stacks grow far slower
//! than samples, and the VM matrix's `no-lost-stacks` check watches it.

use reaper_common::sampling::KERNEL_STACKS_DEFAULT_ENTRIES;

use crate::size::VictimSpec;

/// Sampled CPU time per GiB torn down, ms, both contexts together: about
/// 4–6× what the development host measured, so a slower machine still fits.
pub const CPU_MS_PER_GIB: f64 = 500.0;
/// VMAs at which the teardown's work doubles (the host's 256M,vmas=16384
/// took twice the sampled time of 64 VMAs).
const VMAS_DOUBLING: f64 = 16384.0;
/// Largest map chosen by itself: 131,072 entries of up to 127 frames, about
/// 144 MiB of kernel memory while recording (the README's recommended
/// recording for gating used it); beyond that `--stack-map-size` says so.
pub const MAX_AUTO_ENTRIES: u32 = 131_072;

/// Samples the episodes of `victim` are expected to take at most.
pub fn expected_samples(victim: &VictimSpec, episodes: u32, freq_hz: u64) -> f64 {
    let gib = victim.bytes as f64 / f64::from(1u32 << 30);
    let vma_factor = 1.0 + f64::from(victim.vmas) / VMAS_DOUBLING;
    let per_episode = gib * CPU_MS_PER_GIB / 1000.0 * vma_factor * freq_hz as f64;
    per_episode * f64::from(episodes)
}

/// The stack map's entries for `episodes` episodes of `victim` (`None`:
/// not a synthetic victim, so the default).
pub fn stack_map_entries(victim: Option<&VictimSpec>, episodes: u32, freq_hz: u64) -> u32 {
    let Some(victim) = victim else {
        return KERNEL_STACKS_DEFAULT_ENTRIES;
    };
    let expected = expected_samples(victim, episodes, freq_hz).ceil();
    if expected <= f64::from(KERNEL_STACKS_DEFAULT_ENTRIES) {
        return KERNEL_STACKS_DEFAULT_ENTRIES;
    }
    if expected >= f64::from(MAX_AUTO_ENTRIES) {
        return MAX_AUTO_ENTRIES;
    }
    (expected as u32).next_power_of_two().min(MAX_AUTO_ENTRIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn victim(bytes: u64, vmas: u32) -> VictimSpec {
        VictimSpec {
            bytes,
            vmas,
            threads: 4,
        }
    }

    #[test]
    fn default_scenarios_keep_the_default_map() {
        // The VM matrix's 256M,threads=4 ×3 and 256M,vmas=16384 ×3, with
        // their 3 retries.
        assert_eq!(
            stack_map_entries(Some(&victim(256 << 20, 64)), 6, 4000),
            16384
        );
        assert_eq!(
            stack_map_entries(Some(&victim(256 << 20, 16384)), 6, 4000),
            16384
        );
        // The default 1G victim, one episode and its retries.
        assert_eq!(
            stack_map_entries(Some(&victim(1 << 30, 64)), 4, 4000),
            16384
        );
        assert_eq!(stack_map_entries(None, 1000, 4000), 16384);
    }

    #[test]
    fn larger_scenarios_get_a_map_for_their_samples() {
        // 2G × (10 + 3 retries): 2 × 0.5 s × 4000 × 13 ≈ 52,000 samples.
        let v = victim(2 << 30, 64);
        let expected = 52_000.0 * (1.0 + 64.0 / 16384.0);
        assert!((expected_samples(&v, 13, 4000) - expected).abs() < 1.0);
        assert_eq!(stack_map_entries(Some(&v), 13, 4000), 65536);
        // Capped: 64G × 100.
        assert_eq!(
            stack_map_entries(Some(&victim(64 << 30, 64)), 100, 4000),
            MAX_AUTO_ENTRIES
        );
    }
}
