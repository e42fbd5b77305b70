//! Loads the eBPF object embedded at build time, with this kernel's
//! tracepoint offsets as a loader global and map sizes from the CLI.

use aya::{Ebpf, EbpfLoader};
use reaper_common::{
    collision::{GLOBAL_RT_OWNERS, RtOwnerConfig},
    function_timing::{FunctionTimingConfig, GLOBAL_FUNCTION_TIMING},
    lock_wait::LOCK_WAITS_DEFAULT_ENTRIES,
    sampling::{
        KERNEL_STACKS_DEFAULT_ENTRIES, MAP_KERNEL_STACKS, MAP_SAMPLE_COUNTS,
        SAMPLE_COUNTS_DEFAULT_ENTRIES,
    },
    timeline::{MAP_TIMELINE, TIMELINE_DEFAULT_BYTES},
    tracepoint_offsets::{GLOBAL_TRACEPOINT_OFFSETS, TracepointOffsets},
};

/// The eBPF object built by reaper-cli/build.rs (aya-build).
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/reaper-ebpf"));

/// Map sizes, set from CLI flags before loading (libbpf-tools style).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSizes {
    /// Entries of the kernel stack map.
    pub stack_map: u32,
    /// Entries of the (context, stack) sample-count map.
    pub sample_map: u32,
    /// Entries of the lock-wait aggregate map.
    pub lock_map: u32,
    /// Bytes of the timeline ring buffer (power of two, page multiple).
    pub ringbuf_bytes: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        Self {
            stack_map: KERNEL_STACKS_DEFAULT_ENTRIES,
            sample_map: SAMPLE_COUNTS_DEFAULT_ENTRIES,
            lock_map: LOCK_WAITS_DEFAULT_ENTRIES,
            ringbuf_bytes: TIMELINE_DEFAULT_BYTES,
        }
    }
}

/// Loading failures.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The binary was built with AYA_BUILD_SKIP and carries no object.
    #[error(
        "this reaper binary carries no eBPF object (built with AYA_BUILD_SKIP=1); rebuild it with `cargo build`"
    )]
    NoObject,
    /// The ring buffer size is not a power of two.
    #[error("--ringbuf-size {0} must be a power of two of at least 4096 bytes")]
    BadRingSize(u32),
    /// The kernel refused the object or its maps.
    #[error(
        "the kernel refused reaper's eBPF maps or object; is this kernel built with CONFIG_BPF_SYSCALL and do you have CAP_BPF?"
    )]
    Kernel(#[source] aya::EbpfError),
}

/// Loads the object (maps created, programs not yet loaded), with function
/// timing's order detection off.
pub fn load(offsets: &TracepointOffsets, sizes: &MapSizes) -> Result<Ebpf, LoadError> {
    load_with_timing(offsets, sizes, &FunctionTimingConfig::DISABLED)
}

/// Whether the eBPF side logs why it drops or skips events (aya-log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EbpfLog {
    /// No log: `AYA_LOG_LEVEL` 0 in the frozen .rodata, so the verifier
    /// proves every log call dead (no load or run-time cost).
    #[default]
    Off,
    /// Drops and skips logged at debug level (`reaper -vv record`).
    Drops,
}

impl EbpfLog {
    /// The `AYA_LOG_LEVEL` global's value (aya-log-common's `Level`).
    fn level(self) -> &'static u8 {
        match self {
            Self::Off => &0,
            // Level::Debug; the kernel side logs nothing above it.
            Self::Drops => &4,
        }
    }
}

/// Loads the object with function timing's loader global (the per-VMA
/// function's slot and the BTF offset of `vm_area_struct.vm_start`), eBPF
/// logging off.
pub fn load_with_timing(
    offsets: &TracepointOffsets,
    sizes: &MapSizes,
    timing: &FunctionTimingConfig,
) -> Result<Ebpf, LoadError> {
    load_with(offsets, sizes, timing, EbpfLog::Off)
}

/// [`load_with_timing`], with eBPF logging as asked.
pub fn load_with(
    offsets: &TracepointOffsets,
    sizes: &MapSizes,
    timing: &FunctionTimingConfig,
    log: EbpfLog,
) -> Result<Ebpf, LoadError> {
    load_with_loader(
        EbpfLoader::new(),
        offsets,
        sizes,
        (timing, &RtOwnerConfig::DISABLED),
        log,
    )
}

/// A loader, made ahead of [`load_with_loader`]. With the vendored aya
/// (third_party/README.md) it no longer parses the kernel BTF: reaper's
/// object has no CO-RE relocation, so aya never needs it here; fentry/fexit
/// loads get theirs from [`super::kernel_btf::FentryBtf`].
pub fn new_loader<'a>() -> EbpfLoader<'a> {
    EbpfLoader::new()
}

/// [`load_with`] through a loader made by [`new_loader`], with function
/// timing's global and PREEMPT_RT's lock-owner global (`timing`).
pub fn load_with_loader<'a>(
    mut loader: EbpfLoader<'a>,
    offsets: &'a TracepointOffsets,
    sizes: &MapSizes,
    (timing, rt_owners): (&'a FunctionTimingConfig, &'a RtOwnerConfig),
    log: EbpfLog,
) -> Result<Ebpf, LoadError> {
    if EBPF_OBJECT.is_empty() {
        return Err(LoadError::NoObject);
    }
    if !sizes.ringbuf_bytes.is_power_of_two() || sizes.ringbuf_bytes < 4096 {
        return Err(LoadError::BadRingSize(sizes.ringbuf_bytes));
    }
    bump_memlock_rlimit();
    super::collision_maps::shrink_when_off(&mut loader, timing, rt_owners);
    loader
        .override_global(GLOBAL_TRACEPOINT_OFFSETS, offsets, true)
        .override_global(GLOBAL_FUNCTION_TIMING, timing, true)
        .override_global(GLOBAL_RT_OWNERS, rt_owners, true)
        .override_global(aya_log::LEVEL, log.level(), false)
        .map_max_entries(MAP_KERNEL_STACKS, sizes.stack_map)
        .map_max_entries(MAP_SAMPLE_COUNTS, sizes.sample_map)
        .map_max_entries(reaper_common::lock_wait::MAP_LOCK_WAITS, sizes.lock_map)
        .map_max_entries(reaper_common::lock_wait::MAP_PENDING_WAITS, sizes.lock_map)
        .map_max_entries(MAP_TIMELINE, sizes.ringbuf_bytes)
        .load(EBPF_OBJECT)
        .map_err(LoadError::Kernel)
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; lift it.
fn bump_memlock_rlimit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid struct; failure only matters on old kernels.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
    if ret != 0 {
        log::debug!(
            "setrlimit(RLIMIT_MEMLOCK) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}
