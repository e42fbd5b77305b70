//! Where a kernel build's source comes from: Debian's `linux-source-X.Y`
//! package, resolved and downloaded through the machine's own apt sources
//! and unpacked into the cache; a tree the user points at (`--src`), copied
//! once into the cache; or a revision of a git tree (`--src` with a
//! revision), checked out into a mirror in the cache ([`super::git`]).
//! Either way the build runs on a pristine tree in the cache, never in the
//! user's.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::git::{Commit, Repo};
use crate::apt::run_captured;
use crate::vm::debian::{PackageRecord, parse_show};

/// The kernel source to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChoice {
    /// `linux-source-<series>` from Debian, e.g. series "6.1".
    Debian { series: String },
    /// An unpacked kernel tree.
    Dir(PathBuf),
    /// A revision of the git tree `dir`.
    Git { dir: PathBuf, rev: String },
}

/// A resolved source: what it is called and how to make a base tree of it.
#[derive(Debug, Clone)]
pub struct Source {
    /// For humans and results.md, e.g. "linux-source-6.1 6.1.192-3".
    pub description: String,
    /// For directory names, e.g. "linux-source-6.1_6.1.192-3"; a git
    /// tree's is the same for all its revisions (one mirror, one build
    /// directory: the candidate builds incrementally from the base).
    pub key: String,
    /// The commit, for a git revision (part of the build's cache key).
    pub commit: Option<Commit>,
    origin: Origin,
}

#[derive(Debug, Clone)]
enum Origin {
    Tarball(PathBuf),
    Dir(PathBuf),
    Git(Repo),
}

/// Resolves the choice (may download the Debian package).
pub fn resolve(choice: &SourceChoice, cache: &Path) -> Result<Source> {
    match choice {
        SourceChoice::Debian { series } => debian_source(series, cache),
        SourceChoice::Dir(dir) => dir_source(dir),
        SourceChoice::Git { dir, rev } => git_source(dir, rev),
    }
}

fn git_source(dir: &Path, rev: &str) -> Result<Source> {
    let repo = Repo::open(dir)?;
    let commit = repo.resolve(rev)?;
    let version = repo
        .show(&commit, "Makefile")
        .ok()
        .and_then(|m| makefile_version(&m))
        .with_context(|| {
            format!(
                "--src {}: {} has no kernel Makefile with a VERSION",
                dir.display(),
                commit.describe()
            )
        })?;
    Ok(Source {
        description: format!(
            "{version} from {} at {}",
            repo.dir.display(),
            commit.describe()
        ),
        key: format!("git-{}", repo.key),
        commit: Some(commit),
        origin: Origin::Git(repo),
    })
}

fn debian_source(series: &str, cache: &Path) -> Result<Source> {
    let package = format!("linux-source-{series}");
    let record = candidate(&package).or_else(|err| {
        newest_unpacked(cache, &package).with_context(|| {
            format!("apt could not resolve {package} ({err:#}) and no earlier download is cached")
        })
    })?;
    let key = format!("{}_{}", record.package, record.version.replace(':', "%3a"));
    let dir = cache.join("pkgs").join(format!("{key}_all"));
    let stamp = dir.join(".unpacked");
    if !stamp.exists() {
        download_unpack(&record, &dir)?;
        std::fs::write(&stamp, b"").with_context(|| format!("writing {}", stamp.display()))?;
    }
    let tarball = dir.join(format!("usr/src/{package}.tar.xz"));
    if !tarball.is_file() {
        bail!("{package} {} has no {}", record.version, tarball.display());
    }
    Ok(Source {
        description: format!("{package} {}", record.version),
        key,
        commit: None,
        origin: Origin::Tarball(tarball),
    })
}

/// The host apt's candidate record of `package`.
fn candidate(package: &str) -> Result<PackageRecord> {
    let mut cmd = Command::new("apt-cache");
    cmd.args(["show", "--no-all-versions", package]);
    parse_show(&run_captured(cmd, &format!("apt-cache show {package}"))?)
        .into_iter()
        .next()
        .with_context(|| format!("apt-cache show {package} printed no record; apt-get update?"))
}

/// Offline fallback: the newest version of `package` already unpacked.
fn newest_unpacked(cache: &Path, package: &str) -> Result<PackageRecord> {
    let prefix = format!("{package}_");
    let mut found: Vec<String> = std::fs::read_dir(cache.join("pkgs"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && n.ends_with("_all"))
        .collect();
    found.sort();
    let name = found.pop().context("none found")?;
    let version = name[prefix.len()..name.len() - 4].replace("%3a", ":");
    Ok(PackageRecord {
        package: package.to_string(),
        version,
        architecture: "all".to_string(),
        size: None,
        depends: Vec::new(),
    })
}

fn download_unpack(record: &PackageRecord, dir: &Path) -> Result<()> {
    let tmp = dir.with_extension("download");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let spec = format!("{}={}", record.package, record.version);
    eprintln!("reaper-lab: kernel: downloading {spec} through apt (about 140 MB)");
    let mut cmd = Command::new("apt-get");
    cmd.args(["-q", "download", &spec]).current_dir(&tmp);
    run_captured(cmd, &format!("apt-get download {spec}"))?;
    let deb = std::fs::read_dir(&tmp)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download {spec} left no .deb"))?;
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mut x = Command::new("dpkg-deb");
    x.arg("-x").arg(&deb).arg(&partial);
    run_captured(x, &format!("dpkg-deb -x {}", deb.display()))?;
    std::fs::rename(&partial, dir).with_context(|| format!("moving to {}", dir.display()))?;
    std::fs::remove_dir_all(&tmp).ok();
    Ok(())
}

fn dir_source(dir: &Path) -> Result<Source> {
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("--src {}: no such directory", dir.display()))?;
    let makefile = std::fs::read_to_string(dir.join("Makefile"))
        .with_context(|| format!("--src {}: no kernel Makefile", dir.display()))?;
    let version = makefile_version(&makefile)
        .with_context(|| format!("--src {}: Makefile has no VERSION", dir.display()))?;
    let path_hash = &super::patches::hex(&<sha2::Sha256 as sha2::Digest>::digest(
        dir.as_os_str().as_encoded_bytes(),
    ))[..8];
    Ok(Source {
        description: format!("{version} from {}", dir.display()),
        key: format!("src-{version}-{path_hash}"),
        commit: None,
        origin: Origin::Dir(dir),
    })
}

/// "6.1.192" from the top Makefile's VERSION/PATCHLEVEL/SUBLEVEL lines.
pub fn makefile_version(makefile: &str) -> Option<String> {
    let field = |name: &str| {
        makefile.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let (v, p) = (field("VERSION")?, field("PATCHLEVEL")?);
    Ok::<_, ()>(match field("SUBLEVEL").filter(|s| !s.is_empty()) {
        Some(s) => format!("{v}.{p}.{s}"),
        None => format!("{v}.{p}"),
    })
    .ok()
}

impl Source {
    /// Whether it is a revision of a git tree (built with `O=` in a build
    /// directory beside its mirror).
    pub fn is_git(&self) -> bool {
        matches!(self.origin, Origin::Git(_))
    }

    /// Makes `tree` hold the pristine source: unpacks it when `tree` does
    /// not exist yet; a git revision is checked out (or switched to) with
    /// the private index `index`.
    pub fn prepare(&self, tree: &Path, index: &Path) -> Result<()> {
        match (&self.origin, &self.commit) {
            (Origin::Git(repo), Some(commit)) => repo.checkout(tree, index, commit),
            _ if tree.exists() => Ok(()),
            _ => self.unpack_into(tree),
        }
    }

    /// Fills `tree` (which must not exist) with the pristine source.
    fn unpack_into(&self, tree: &Path) -> Result<()> {
        let partial = tree.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        match &self.origin {
            Origin::Tarball(tarball) => {
                eprintln!(
                    "reaper-lab: kernel: unpacking {} (about a minute)",
                    self.description
                );
                let mut cmd = Command::new("tar");
                cmd.arg("-xJf")
                    .arg(tarball)
                    .arg("--strip-components=1")
                    .arg("-C")
                    .arg(&partial);
                run_captured(cmd, &format!("unpacking {}", tarball.display()))?;
            }
            Origin::Dir(dir) => {
                eprintln!("reaper-lab: kernel: copying {}", dir.display());
                copy_tree(dir, &partial)?;
            }
            Origin::Git(_) => bail!("a git revision is checked out, not unpacked"),
        }
        std::fs::rename(&partial, tree).with_context(|| format!("moving to {}", tree.display()))
    }
}

/// `cp -a --reflink=auto FROM/. TO`: a copy that keeps timestamps (so make
/// sees a built tree as built) and shares blocks where the filesystem can.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut cmd = Command::new("cp");
    cmd.args(["-a", "--reflink=auto"])
        .arg(from.join("."))
        .arg(to);
    run_captured(
        cmd,
        &format!("copying {} to {}", from.display(), to.display()),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_the_top_makefile() {
        let mk = "# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\n";
        assert_eq!(makefile_version(mk).as_deref(), Some("6.1.192"));
        assert_eq!(
            makefile_version("VERSION = 7\nPATCHLEVEL = 0\nSUBLEVEL =\n").as_deref(),
            Some("7.0")
        );
    }
}
