//! Fetching Debian packages into the VM cache: resolve a version with
//! `apt-cache show`, download with `apt-get download`, unpack with
//! `dpkg-deb -x`, and remember what was resolved so later runs work offline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Serialize, de::DeserializeOwned};

use crate::apt::{AptRoot, RootSpec, run_captured};

/// How long resolved versions and package lists are trusted before apt is
/// asked again (Debian publishes a few times a day; a day keeps runs offline).
pub const REFRESH_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Set to 1 to never touch the network when a cached resolution exists.
const OFFLINE_ENV: &str = "REAPER_VM_OFFLINE";

/// One record of `apt-cache show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub size: Option<u64>,
    /// The package names of its `Depends:` field.
    pub depends: Vec<String>,
}

/// Parses the records of `apt-cache show` output, in output order.
pub fn parse_show(output: &str) -> Vec<PackageRecord> {
    output
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|r| r.strip_prefix(':'))
                        .map(|v| v.trim().to_string())
                })
            };
            Some(PackageRecord {
                package: field("Package")?,
                version: field("Version")?,
                architecture: field("Architecture").unwrap_or_default(),
                size: field("Size").and_then(|s| s.parse().ok()),
                depends: field("Depends")
                    .map(|d| super::packages::parse_depends_field(&d))
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The private apt root for one Debian suite, under the cache.
pub fn suite_root(cache: &Path, suite: &str) -> Result<AptRoot> {
    AptRoot::create(
        &cache.join("apt").join(suite),
        &RootSpec {
            suites: &[suite],
            include_host_sources: false,
        },
    )
}

/// Refreshes the root's lists unless they are recent.
pub fn refresh(root: &AptRoot) -> Result<()> {
    if root.is_fresh(REFRESH_AFTER) {
        return Ok(());
    }
    root.update()
}

/// The candidate record of `package:arch` in this root.
pub fn candidate(root: &AptRoot, package: &str, arch: &str) -> Result<PackageRecord> {
    let spec = format!("{package}:{arch}");
    parse_show(&root.show(&spec)?)
        .into_iter()
        .next()
        .with_context(|| format!("apt-cache show {spec} printed no package record"))
}

/// Downloads and unpacks the package `record` describes into the cache, or
/// reuses an earlier unpack of the same version. Returns the directory the
/// package was unpacked into.
pub fn fetch_unpacked(
    root: &AptRoot,
    cache: &Path,
    record: &PackageRecord,
    arch: &str,
) -> Result<PathBuf> {
    let spec = format!("{}:{arch}", record.package);
    let dir = cache.join("pkgs").join(format!(
        "{}_{}_{arch}",
        record.package,
        record.version.replace(':', "%3a")
    ));
    let stamp = dir.join(".unpacked");
    if stamp.exists() {
        return Ok(dir);
    }
    let started = Instant::now();
    let debs = cache.join("debs").join(std::process::id().to_string());
    let deb = root.download(&format!("{spec}={}", record.version), &debs)?;
    let bytes = std::fs::metadata(&deb).map(|m| m.len()).unwrap_or(0);
    unpack(&deb, &dir)?;
    std::fs::remove_file(&deb).ok();
    std::fs::remove_dir(&debs).ok();
    std::fs::write(&stamp, b"").with_context(|| format!("writing {}", stamp.display()))?;
    eprintln!(
        "reaper-lab: fetched {spec} {} ({:.1} MiB) in {:.1} s",
        record.version,
        bytes as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    Ok(dir)
}

fn unpack(deb: &Path, dir: &Path) -> Result<()> {
    // Per process: helpers and CI jobs share one cache and may fetch the
    // same package at the same time.
    let tmp = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("-x").arg(deb).arg(&tmp);
    run_captured(cmd, &format!("dpkg-deb -x {}", deb.display()))?;
    if dir.join(".unpacked").exists() {
        // Another process unpacked the same version meanwhile.
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("moving {} to {}", tmp.display(), dir.display()))
}

/// Resolves something through apt with an on-disk memo: a recent memo (or
/// any memo with `REAPER_VM_OFFLINE=1`) is used as is; otherwise `online`
/// runs, and if it fails an older memo is used with a warning.
pub fn memoized<T: Serialize + DeserializeOwned>(
    memo: &Path,
    what: &str,
    valid: impl Fn(&T) -> bool,
    online: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let cached: Option<T> = std::fs::read(memo)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(&valid);
    let offline = std::env::var(OFFLINE_ENV).is_ok_and(|v| v == "1");
    let fresh = is_recent(memo);
    if let Some(value) = cached {
        if fresh || offline {
            return Ok(value);
        }
        return match online() {
            Ok(value) => save(memo, &value).map(|()| value),
            Err(err) => {
                eprintln!(
                    "reaper-lab: warning: could not refresh {what} ({err:#}); using the cached copy"
                );
                Ok(value)
            }
        };
    }
    if offline {
        bail!(
            "{what} is not cached yet and {OFFLINE_ENV}=1 forbids downloading it; run once online"
        );
    }
    let value = online()?;
    save(memo, &value)?;
    Ok(value)
}

fn is_recent(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < REFRESH_AFTER)
}

fn save<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(value).context("serializing a cache record")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_records_are_parsed_in_order() {
        let out = "\
Package: linux-binary-7.2.13+deb14-cloud-arm64
Source: linux-signed-arm64 (7.2.13-1)
Version: 7.2.13-1
Architecture: arm64
Depends: linux-base-7.2.13+deb14-cloud-arm64 (= 7.2.13-1)
Size: 10181552
Description: Linux 7.2.13 for arm64 cloud (kernel image)

Package: linux-binary-7.2.13+deb14-cloud-arm64
Version: 7.2.12-1
Architecture: arm64

";
        let records = parse_show(out);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].package, "linux-binary-7.2.13+deb14-cloud-arm64");
        assert_eq!(records[0].version, "7.2.13-1");
        assert_eq!(records[0].architecture, "arm64");
        assert_eq!(records[0].size, Some(10_181_552));
        assert_eq!(records[0].depends, ["linux-base-7.2.13+deb14-cloud-arm64"]);
        assert_eq!(records[1].size, None);
    }

    #[test]
    fn show_ignores_fields_that_merely_start_alike() {
        let out = "Package: busybox-static\nVersion-Extra: x\nVersion: 1:1.35.0-4+b1\n";
        let records = parse_show(out);
        assert_eq!(records[0].version, "1:1.35.0-4+b1");
    }
}
