//! Which kernel to boot: a Debian kernel named by its line (a suite,
//! optionally with a version) and flavour, resolved at run time from that
//! suite's package index, or a kernel image the user built.
//!
//! Package names and file layouts are not hard-coded here: the release is
//! read from the suite's package names ([`packages`](super::packages)), and
//! the image and config are looked for in whatever the release's packages
//! unpack to.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::debian;
use super::packages;
pub use super::packages::Flavour;
use crate::apt::AptRoot;
use crate::arch::Arch;

/// A Debian kernel line: the suite its packages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Line {
    /// Debian 11's own kernel (5.10: no process_mrelease, no mmap:exit_mmap
    /// or lock:contention_* tracepoints).
    Bullseye,
    /// Debian 12's own kernel (6.1).
    Bookworm,
    /// The 6.12 kernel Debian 12 carries in bookworm-backports.
    Bookworm612,
    /// Debian 13's own kernel (6.12).
    Trixie,
    /// Debian 13's backported kernels (6.19 to the newest).
    TrixieBackports,
    /// The newest unstable kernel.
    Sid,
}

impl Line {
    pub const ALL: [Line; 6] = [
        Self::Bullseye,
        Self::Bookworm,
        Self::Bookworm612,
        Self::Trixie,
        Self::TrixieBackports,
        Self::Sid,
    ];

    /// The name `--kernel` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bullseye => "bullseye",
            Self::Bookworm => "bookworm",
            Self::Bookworm612 => "bookworm-6.12",
            Self::Trixie => "trixie",
            Self::TrixieBackports => "trixie-backports",
            Self::Sid => "sid",
        }
    }

    /// The Debian suite whose package index holds this line.
    pub fn suite(self) -> &'static str {
        match self {
            Self::Bullseye => "bullseye",
            Self::Bookworm => "bookworm",
            Self::Bookworm612 => "bookworm-backports",
            Self::Trixie => "trixie",
            Self::TrixieBackports => "trixie-backports",
            Self::Sid => "sid",
        }
    }

    /// The line named `text`; the suite name `bookworm-backports` is an
    /// alias of `bookworm-6.12`.
    pub fn parse(text: &str) -> Option<Line> {
        Self::ALL
            .into_iter()
            .find(|l| l.name() == text || l.suite() == text)
    }
}

/// A Debian kernel: a line, optionally a version prefix (`6.19`), a flavour.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DebianKernel {
    pub line: Line,
    /// Upstream version prefix, e.g. `6.19` or `7.0.13`; `None`: the newest.
    pub version: Option<String>,
    pub flavour: Flavour,
}

impl DebianKernel {
    pub fn new(line: Line, version: Option<&str>, flavour: Flavour) -> Self {
        DebianKernel {
            line,
            version: version.map(str::to_string),
            flavour,
        }
    }

    /// Parses `LINE` or `LINE:VERSION`, e.g. `trixie-backports:6.19`.
    pub fn parse(text: &str, flavour: Flavour) -> Option<Self> {
        let (line, version) = match text.split_once(':') {
            Some((line, version)) => (line, Some(version)),
            None => (text, None),
        };
        let version = version.filter(|v| packages::is_version_prefix(v));
        if text.contains(':') && version.is_none() {
            return None;
        }
        Some(Self::new(Line::parse(line)?, version, flavour))
    }

    /// `trixie-backports:6.19`: what `--kernel` takes (with `--flavour`).
    pub fn name(&self) -> String {
        match &self.version {
            Some(version) => format!("{}:{version}", self.line.name()),
            None => self.line.name().to_string(),
        }
    }

    /// A file or directory name: `trixie-backports_6.19`, with `-rt` or
    /// `-generic` for flavours other than cloud.
    pub fn file_name(&self) -> String {
        let name = self.name().replace(':', "_");
        match self.flavour {
            Flavour::Cloud => name,
            other => format!("{name}-{other}"),
        }
    }
}

/// The `--kernel` choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelChoice {
    Debian(DebianKernel),
    Path(PathBuf),
}

impl KernelChoice {
    /// Parses a line (`bookworm`, `bookworm-6.12`, `trixie`,
    /// `trixie-backports[:VERSION]`, `sid`, ...) or a path to an image.
    pub fn parse(text: &str, flavour: Flavour) -> Result<Self> {
        if let Some(kernel) = DebianKernel::parse(text, flavour) {
            return Ok(Self::Debian(kernel));
        }
        let path = PathBuf::from(text);
        if path.is_file() {
            return Ok(Self::Path(path));
        }
        let lines: Vec<&str> = Line::ALL.iter().map(|l| l.name()).collect();
        bail!(
            "--kernel {text:?} is neither a Debian kernel line ({}, optionally :VERSION such as \
             trixie-backports:6.19) nor an existing kernel image file (bzImage for x86_64, \
             Image for arm64)",
            lines.join(", ")
        )
    }

    /// A short name for tables and directories.
    pub fn label(&self) -> String {
        match self {
            Self::Debian(k) => k.file_name(),
            Self::Path(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "custom".to_string()),
        }
    }
}

/// A kernel ready to boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kernel {
    /// `uname -r` of the kernel when known before booting.
    pub release: Option<String>,
    /// Debian package version, when it came from Debian.
    pub version: Option<String>,
    pub image: PathBuf,
    pub config: Option<PathBuf>,
}

/// Resolves the `--kernel` choice to a bootable image.
pub fn resolve(choice: &KernelChoice, arch: Arch, config: Option<&Path>) -> Result<Kernel> {
    match choice {
        KernelChoice::Path(image) => Ok(Kernel {
            release: None,
            version: None,
            image: image.clone(),
            config: config.map(Path::to_path_buf),
        }),
        KernelChoice::Debian(kernel) => {
            let mut resolved = resolve_debian(kernel, arch)?;
            if let Some(config) = config {
                resolved.config = Some(config.to_path_buf());
            }
            Ok(resolved)
        }
    }
}

fn resolve_debian(kernel: &DebianKernel, arch: Arch) -> Result<Kernel> {
    let cache = crate::paths::cache_dir()?;
    let memo = cache.join("resolved").join(format!(
        "kernel-{}-{}.json",
        kernel.file_name(),
        arch.debian()
    ));
    let what = format!("the {} {} kernel", kernel.name(), arch.debian());
    debian::memoized(
        &memo,
        &what,
        |k: &Kernel| k.image.is_file(),
        || fetch_debian(kernel, arch, &cache),
    )
    .with_context(|| format!("getting {what}"))
}

/// Whether the suite of `line` offers `flavour` on `arch` (for `--all`).
pub fn offered(kernel: &DebianKernel, arch: Arch) -> Result<Option<String>> {
    let cache = crate::paths::cache_dir()?;
    let root = debian::suite_root(&cache, kernel.line.suite())?;
    debian::refresh(&root)?;
    let names = root.pkgnames("linux-")?;
    Ok(packages::newest_release(
        names.lines(),
        kernel.flavour,
        arch.debian(),
        kernel.version.as_deref(),
    ))
}

fn fetch_debian(kernel: &DebianKernel, arch: Arch, cache: &Path) -> Result<Kernel> {
    let suite = kernel.line.suite();
    let root = debian::suite_root(cache, suite)?;
    debian::refresh(&root)?;
    let deb_arch = arch.debian();
    let names = root.pkgnames("linux-")?;
    let release = packages::newest_release(
        names.lines(),
        kernel.flavour,
        deb_arch,
        kernel.version.as_deref(),
    )
    .with_context(|| {
        format!(
            "{suite} offers no {} {deb_arch} kernel{} (no linux-image-*/linux-binary-* package \
             named after such a release)",
            kernel.flavour,
            kernel
                .version
                .as_deref()
                .map_or(String::new(), |v| format!(" of version {v}")),
        )
    })?;
    let (files, version, seen) = release_files(&root, cache, &release, deb_arch, suite)?;
    if files.config.is_none() {
        eprintln!(
            "reaper-lab: warning: none of {seen:?} holds {release}'s config; the guest gets no \
             /boot/config-{release}"
        );
    }
    let image = files.image.with_context(|| {
        format!("none of {seen:?} in {suite} contains a kernel image for {release}")
    })?;
    Ok(Kernel {
        release: Some(release),
        version: Some(version),
        image,
        config: files.config,
    })
}

/// `release`'s kernel image and config, unpacked from `suite` into the
/// cache: starting from the release's image package, its dependencies named
/// after the release are followed until an image and a config have been
/// seen. Also hands back the image package's version and the packages
/// looked in.
fn release_files(
    root: &AptRoot,
    cache: &Path,
    release: &str,
    deb_arch: &str,
    suite: &str,
) -> Result<(packages::KernelFiles, String, Vec<String>)> {
    let start = packages::image_packages(release)
        .into_iter()
        .find_map(|p| debian::candidate(root, &p, deb_arch).ok())
        .with_context(|| format!("no linux-image package in {suite} for {release}"))?;
    let version = start.version.clone();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen: Vec<String> = Vec::new();
    let (mut image, mut config) = (None, None);
    while let Some(record) = queue.pop_front() {
        seen.push(record.package.clone());
        let dir = debian::fetch_unpacked(root, cache, &record, deb_arch)?;
        let files = packages::KernelFiles::find(&dir, release);
        image = image.or(files.image);
        config = config.or(files.config);
        if image.is_some() && config.is_some() {
            break;
        }
        for dep in packages::release_dependencies(&record.depends, release) {
            if seen.contains(&dep) || queue.iter().any(|r| r.package == dep) {
                continue;
            }
            // The index may lack a dependency (trixie-backports lists no
            // linux-base for some superseded releases); the image may still
            // be in another one.
            match debian::candidate(root, &dep, deb_arch) {
                Ok(dep) => queue.push_back(dep),
                Err(err) => {
                    eprintln!("reaper-lab: {release}: {dep} is not in {suite}'s index ({err:#})");
                    seen.push(dep);
                }
            }
        }
    }
    Ok((packages::KernelFiles { image, config }, version, seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_lines_by_name_with_versions_and_flavours() {
        let parse = |t: &str| KernelChoice::parse(t, Flavour::Cloud).unwrap();
        assert_eq!(
            parse("bookworm-6.12"),
            KernelChoice::Debian(DebianKernel::new(Line::Bookworm612, None, Flavour::Cloud))
        );
        assert_eq!(Line::Bookworm612.suite(), "bookworm-backports");
        assert_eq!(Line::parse("bookworm-backports"), Some(Line::Bookworm612));
        let tb = parse("trixie-backports:6.19");
        assert_eq!(
            tb,
            KernelChoice::Debian(DebianKernel::new(
                Line::TrixieBackports,
                Some("6.19"),
                Flavour::Cloud
            ))
        );
        assert_eq!(tb.label(), "trixie-backports_6.19");
        let rt = DebianKernel::parse("trixie-backports", Flavour::Rt).unwrap();
        assert_eq!(rt.name(), "trixie-backports");
        assert_eq!(rt.file_name(), "trixie-backports-rt");
        assert!(KernelChoice::parse("trixie-backports:latest", Flavour::Cloud).is_err());
        let err = KernelChoice::parse("buster", Flavour::Cloud)
            .unwrap_err()
            .to_string();
        assert!(err.contains("trixie-backports"), "{err}");
    }
}
