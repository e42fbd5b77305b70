//! One boot of an A/B: the guest script that records a batch of episodes,
//! each `reaper record --runs 1` into its own run directory (the run is
//! the statistical unit of `reaper diff` and `reaper gate`), and the boot.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::schedule::Batch;
use crate::arch::Arch;
use crate::vm::kernel::KernelChoice;
use crate::vm::{self, VmSpec};

/// What every boot of one A/B shares.
pub struct BootSettings<'a> {
    pub arch: Arch,
    pub record: &'a [String],
    pub mem_mib: u32,
    pub timeout: Duration,
    /// The guest's static reaper.
    pub reaper: &'a Path,
}

/// A side's kernel, as a boot needs it.
pub struct BootKernel<'a> {
    pub image: &'a Path,
    pub config: Option<&'a Path>,
    /// Column label, for the progress line.
    pub label: &'a str,
}

/// Boots `batch` of a side on `kernel`, its runs going to `out_dir`;
/// returns the guest's exit status and the guest's `uname -r`.
pub fn boot(
    settings: &BootSettings,
    kernel: &BootKernel,
    batch: &Batch,
    out_dir: &Path,
    n: usize,
    of: usize,
) -> Result<(i32, Option<String>)> {
    let name = format!("{}{}", batch.side.name(), batch.index);
    eprintln!(
        "reaper-lab: ab: boot {n}/{of}: {name} ({}), {} episode(s)",
        kernel.label, batch.episodes
    );
    let mut spec = VmSpec::new(
        KernelChoice::Path(kernel.image.to_path_buf()),
        settings.arch,
        vec![guest_command(settings.record, batch.episodes)],
    );
    spec.kernel_config = kernel.config.map(Path::to_path_buf);
    spec.mem_mib = settings.mem_mib;
    spec.timeout = settings.timeout;
    spec.out_dir = out_dir.join(format!("batch-{}", batch.index));
    spec.console_prefix = format!("[{name}] ");
    spec.binaries
        .push(("reaper".to_string(), settings.reaper.to_path_buf()));
    let outcome = vm::boot(&spec).with_context(|| format!("boot {name}"))?;
    if outcome.exit_status != 0 {
        eprintln!(
            "reaper-lab: ab: warning: reaper record exited with {} in {name}",
            outcome.exit_status
        );
    }
    Ok((outcome.exit_status, outcome.guest_release))
}

/// The guest script of one batch: one `reaper record --runs 1` per episode,
/// each into its own run directory, because `reaper gate` and the p-values
/// of `reaper diff` compare run medians: N episodes are N runs per side. A
/// frozen scenario needs the legacy (v1) freezer next to cgroup v2 memory,
/// as `cargo xtask vm-test` sets it up.
pub fn guest_command(record: &[String], episodes: u32) -> String {
    let mut script = String::new();
    if record.iter().any(|a| a == "--frozen") {
        script.push_str(
            "umount /sys/fs/cgroup 2>/dev/null; mount -t tmpfs none /sys/fs/cgroup\n\
             mkdir -p /sys/fs/cgroup/unified /sys/fs/cgroup/freezer\n\
             mount -t cgroup2 none /sys/fs/cgroup/unified && echo +memory > /sys/fs/cgroup/unified/cgroup.subtree_control\n\
             mount -t cgroup -o freezer none /sys/fs/cgroup/freezer\n",
        );
    }
    let quoted: Vec<String> = record.iter().map(|a| shell_quote(a)).collect();
    let runs: Vec<String> = (1..=episodes).map(|i| i.to_string()).collect();
    script.push_str(&format!(
        "rc=0\nfor i in {}; do\n    reaper record {} --runs 1 -o /out/run-$i || rc=$?\ndone\nexit $rc\n",
        runs.join(" "),
        quoted.join(" ")
    ));
    script
}

/// `word` quoted for the guest's sh when it needs it.
pub fn shell_quote(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ",._=-+/:".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_scenarios_get_the_v1_freezer() {
        let plain = guest_command(&["--victim".into(), "256M,threads=4".into()], 5);
        assert_eq!(
            plain,
            "rc=0\nfor i in 1 2 3 4 5; do\n    reaper record --victim 256M,threads=4 --runs 1 \
             -o /out/run-$i || rc=$?\ndone\nexit $rc\n"
        );
        let frozen = guest_command(&["--oom".into(), "--frozen".into()], 1);
        assert!(frozen.contains("mount -t cgroup -o freezer"));
    }

    #[test]
    fn words_are_quoted_for_sh() {
        assert_eq!(shell_quote("256M,threads=4"), "256M,threads=4");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
