//! tracefs: find or mount it, and read tracepoint record layouts from each
//! event's `format` file so the probes use this kernel's field offsets.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use reaper_common::tracepoint_offsets::TracepointOffsets;

/// Where tracefs is mounted on modern kernels.
const TRACEFS: &str = "/sys/kernel/tracing";
/// The legacy location under debugfs.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// tracefs problems.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    /// Neither mounted nor mountable.
    #[error(
        "tracefs is not mounted at {TRACEFS} and mounting it failed ({0}); mount it with `mount -t tracefs nodev {TRACEFS}`"
    )]
    Mount(std::io::Error),
    /// A tracepoint does not exist on this kernel.
    #[error("tracepoint {0} does not exist on this kernel (no {1})")]
    NoSuchEvent(String, PathBuf),
    /// A field the probes read is missing from a format.
    #[error(
        "tracepoint {event} has no field `{field}` in its format; this kernel's record layout is not supported"
    )]
    NoSuchField {
        /// category/name.
        event: String,
        /// Field name.
        field: String,
    },
}

/// The tracefs root, mounting tracefs if needed. Returns whether reaper
/// mounted it.
pub fn ensure_mounted() -> Result<(PathBuf, bool), TracefsError> {
    for root in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(root).join("events").is_dir() {
            return Ok((PathBuf::from(root), false));
        }
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS])
        .status();
    match status {
        Ok(s) if s.success() && Path::new(TRACEFS).join("events").is_dir() => {
            Ok((PathBuf::from(TRACEFS), true))
        }
        Ok(s) => Err(TracefsError::Mount(std::io::Error::other(format!(
            "mount exited with {s}"
        )))),
        Err(err) => Err(TracefsError::Mount(err)),
    }
}

/// Field name → byte offset, parsed from a tracefs `format` file.
pub fn parse_format(text: &str) -> HashMap<String, u32> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let decl = line.strip_prefix("field:")?.split(';').next()?;
            let offset = line
                .split(';')
                .find_map(|part| part.trim().strip_prefix("offset:"))?
                .parse()
                .ok()?;
            // The name is the last identifier of the declaration, before any
            // array suffix: `char comm[16]`, `__data_loc char[] comm`.
            let name = decl
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()?;
            let name = name.split('[').next()?;
            Some((name.to_owned(), offset))
        })
        .collect()
}

/// Whether a tracepoint exists.
pub fn has_event(root: &Path, category: &str, name: &str) -> bool {
    root.join("events").join(category).join(name).is_dir()
}

/// The offset of `field` in `category/name`.
pub fn field_offset(
    root: &Path,
    category: &str,
    name: &str,
    field: &str,
) -> Result<u32, TracefsError> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = std::fs::read_to_string(&path)
        .map_err(|_| TracefsError::NoSuchEvent(format!("{category}:{name}"), path))?;
    parse_format(&text)
        .get(field)
        .copied()
        .ok_or_else(|| TracefsError::NoSuchField {
            event: format!("{category}:{name}"),
            field: field.into(),
        })
}

/// The offsets the probes need. A tracepoint missing on this kernel leaves
/// its offset 0 and is reported when its probe fails to attach.
pub fn probe_offsets(root: &Path) -> TracepointOffsets {
    let get = |category, name, field| field_offset(root, category, name, field).unwrap_or(0);
    TracepointOffsets {
        contention_begin_lock: get("lock", "contention_begin", "lock_addr"),
        contention_begin_flags: get("lock", "contention_begin", "flags"),
        contention_end_lock: get("lock", "contention_end", "lock_addr"),
        mrelease_enter_pidfd: get("syscalls", "sys_enter_process_mrelease", "pidfd"),
        mrelease_exit_ret: get("syscalls", "sys_exit_process_mrelease", "ret"),
        exit_group_code: get("syscalls", "sys_enter_exit_group", "error_code"),
        process_free_pid: get("sched", "sched_process_free", "pid"),
        oom_pid: get("oom", "wake_reaper", "pid"),
        signal_generate_sig: get("signal", "signal_generate", "sig"),
        signal_generate_pid: get("signal", "signal_generate", "pid"),
        rss_stat_mm_id: get("kmem", "rss_stat", "mm_id"),
        rss_stat_curr: get("kmem", "rss_stat", "curr"),
        rss_stat_member: get("kmem", "rss_stat", "member"),
        rss_stat_size: get("kmem", "rss_stat", "size"),
        nr_exit_group: if cfg!(target_arch = "x86_64") {
            reaper_common::tracepoint_offsets::NR_EXIT_GROUP_X86_64
        } else if cfg!(target_arch = "aarch64") {
            reaper_common::tracepoint_offsets::NR_EXIT_GROUP_GENERIC
        } else {
            0
        },
        ..TracepointOffsets::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/data/tracefs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).expect(&path)
    }

    #[test]
    fn sched_process_free_pid_moved_between_6_1_and_6_18() {
        assert_eq!(
            parse_format(&fixture("6.18-sched_process_free.format"))["pid"],
            12
        );
        assert_eq!(
            parse_format(&fixture("6.1-sched_process_free.format"))["pid"],
            24
        );
    }

    #[test]
    fn contention_begin_fields() {
        let fields = parse_format(&fixture("6.18-contention_begin.format"));
        assert_eq!(fields["lock_addr"], 8);
        assert_eq!(fields["flags"], 16);
        assert_eq!(fields["common_pid"], 4);
    }

    #[test]
    fn rss_stat_fields() {
        let fields = parse_format(&fixture("6.18-rss_stat.format"));
        assert_eq!(
            (
                fields["mm_id"],
                fields["curr"],
                fields["member"],
                fields["size"]
            ),
            (8, 12, 16, 24)
        );
    }

    #[test]
    fn syscall_exit_ret() {
        assert_eq!(
            parse_format(&fixture("6.18-sys_exit_process_mrelease.format"))["ret"],
            16
        );
    }
}
