//! The sampling floor: a bare cpu-clock perf event at the profilers'
//! frequency on every online CPU, with no ring buffer, no stack unwind and
//! no program: the timer interrupts any cpu-clock sampler takes, and nothing
//! else. What a teardown costs under it is what 4 kHz sampling costs on this
//! machine whoever samples (on a KVM guest every expiry is a VM exit and a
//! timer re-arm), so the bench can tell reaper's own overhead from the
//! host's price of sampling. The attr layout and the syscall are
//! perf-event-open-sys's (the `perf-event` crate's generated bindings),
//! not a hand-copied struct.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Result, bail, ensure};
use perf_event_open_sys::bindings::{
    PERF_COUNT_SW_CPU_CLOCK, PERF_FLAG_FD_CLOEXEC, PERF_SAMPLE_IP, PERF_TYPE_SOFTWARE,
    perf_event_attr,
};

/// Open cpu-clock events, one per online CPU; closed on drop.
pub struct SamplingTimer {
    events: Vec<OwnedFd>,
}

impl SamplingTimer {
    /// Starts a `freq` Hz cpu-clock event on every online CPU.
    pub fn start(freq: u32) -> Result<Self> {
        ensure!(freq > 0, "the sampling floor needs a frequency above 0 Hz");
        let mut attr = perf_event_attr {
            type_: PERF_TYPE_SOFTWARE,
            size: size_of::<perf_event_attr>() as u32,
            config: u64::from(PERF_COUNT_SW_CPU_CLOCK),
            // The least a sample can carry.
            sample_type: u64::from(PERF_SAMPLE_IP),
            ..perf_event_attr::default()
        };
        attr.__bindgen_anon_1.sample_freq = u64::from(freq);
        attr.set_freq(1);
        let cpus = online_cpus()?;
        let mut events = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            // SAFETY: a valid attr of the size it states; the returned fd
            // is owned below.
            let fd = unsafe {
                perf_event_open_sys::perf_event_open(
                    &raw mut attr,
                    -1,
                    cpu as libc::c_int,
                    -1,
                    libc::c_ulong::from(PERF_FLAG_FD_CLOEXEC),
                )
            };
            if fd < 0 {
                let err = std::io::Error::last_os_error();
                bail!(
                    "perf_event_open(cpu-clock, {freq} Hz, CPU {cpu}) for the sampling floor: {err}"
                );
            }
            // SAFETY: a new fd from the kernel, owned by nothing else.
            events.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(Self { events })
    }

    /// CPU time the events have counted, ns: proof that the timers ran.
    pub fn counted_ns(&self) -> Result<u64> {
        let mut total = 0u64;
        for fd in &self.events {
            let mut value = 0u64;
            // SAFETY: reads one u64 (read_format 0) into a local.
            let n =
                unsafe { libc::read(fd.as_raw_fd(), (&raw mut value).cast(), size_of::<u64>()) };
            ensure!(
                n == size_of::<u64>() as isize,
                "reading a sampling-floor event: {}",
                std::io::Error::last_os_error()
            );
            total += value;
        }
        Ok(total)
    }
}

/// The CPUs in `/sys/devices/system/cpu/online` ("0-3,5").
fn online_cpus() -> Result<Vec<usize>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    parse_cpu_list(&text)
}

fn parse_cpu_list(text: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>()?..=b.parse::<usize>()?),
            None => cpus.push(part.parse()?),
        }
    }
    ensure!(!cpus.is_empty(), "no online CPU in {text:?}");
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_ranges_and_singles() {
        assert_eq!(parse_cpu_list("0-3,5\n").unwrap(), vec![0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("0\n").unwrap(), vec![0]);
        assert!(parse_cpu_list("\n").is_err());
        assert!(parse_cpu_list("0-x").is_err());
    }
}
