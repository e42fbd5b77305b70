//! A private apt state ("root") for one set of suites: its own sources, its own
//! package lists and cache, so reaper-lab can resolve and download packages from
//! suites the machine is not configured for (sid, bookworm-backports, arm64)
//! without touching the machine's apt configuration.

pub mod sources;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

/// Debian architectures every root knows, so `pkg:arm64` resolves on amd64.
const ARCHITECTURES: [&str; 2] = ["amd64", "arm64"];
/// The keyring Debian's own archive is signed with, used when the host's
/// source names none.
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Stamp written after a successful `apt-get update`.
const UPDATED_STAMP: &str = "updated.stamp";

/// A private apt configuration rooted at a directory.
pub struct AptRoot {
    dir: PathBuf,
    label: String,
}

/// What the private root's sources contain.
pub struct RootSpec<'a> {
    /// Suites to add on top of the mirror URIs, e.g. `["sid"]`.
    pub suites: &'a [&'a str],
    /// Also copy the host's own sources in (needed to install packages whose
    /// dependencies live in the host's suites).
    pub include_host_sources: bool,
}

impl AptRoot {
    /// Creates (or reuses) a root under `dir` whose sources list `spec.suites`
    /// on the machine's own Debian mirror.
    pub fn create(dir: &Path, spec: &RootSpec) -> Result<Self> {
        let parts = dir.join("parts");
        for sub in [
            parts.clone(),
            dir.join("lists/partial"),
            dir.join("cache/archives/partial"),
        ] {
            std::fs::create_dir_all(&sub)
                .with_context(|| format!("creating apt state directory {}", sub.display()))?;
        }
        let (uris, keyring) = sources::host_mirror()?;
        let stanza = format!(
            "Types: deb\nURIs: {}\nSuites: {}\nComponents: main\nSigned-By: {}\n",
            uris.join(" "),
            spec.suites.join(" "),
            keyring.as_deref().unwrap_or(DEBIAN_KEYRING),
        );
        write_if_changed(&parts.join("reaper-xtask.sources"), &stanza)?;
        if spec.include_host_sources {
            copy_host_sources(&parts)?;
        }
        Ok(AptRoot {
            dir: dir.to_path_buf(),
            label: spec.suites.join("+"),
        })
    }

    fn options(&self) -> Vec<String> {
        self.options_as(running_as_root())
    }

    /// apt's options; `root` says whether apt itself runs as root.
    fn options_as(&self, root: bool) -> Vec<String> {
        let d = self.dir.display();
        let mut opts = vec![
            format!("Dir::Etc::sourceparts={d}/parts"),
            "Dir::Etc::sourcelist=/dev/null".to_string(),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            "Dir::Cache::pkgcache=".to_string(),
            "Dir::Cache::srcpkgcache=".to_string(),
            "Acquire::Languages=none".to_string(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".to_string(),
        ];
        opts.extend(
            ARCHITECTURES
                .iter()
                .map(|a| format!("APT::Architectures::={a}")),
        );
        if root {
            // apt's `_apt` sandbox user cannot write into our private dirs.
            opts.push("APT::Sandbox::User=root".to_string());
        }
        opts.into_iter()
            .flat_map(|o| ["-o".to_string(), o])
            .collect()
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(self.options());
        cmd
    }

    /// `program` with this root's options, run as root (through sudo when
    /// reaper-lab is not root), for commands that change the host.
    fn privileged_command(&self, program: &str) -> Command {
        let mut cmd = crate::host::privileged(program);
        cmd.args(self.options_as(true));
        cmd
    }

    /// True when the lists were refreshed less than `max_age` ago.
    pub fn is_fresh(&self, max_age: Duration) -> bool {
        std::fs::metadata(self.dir.join(UPDATED_STAMP))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < max_age)
    }

    /// `apt-get update` into the private lists.
    pub fn update(&self) -> Result<()> {
        eprintln!("reaper-lab: apt: updating package lists for {}", self.label);
        let mut cmd = self.command("apt-get");
        cmd.args(["-q", "update"]);
        run_captured(cmd, &format!("apt-get update for {}", self.label))?;
        std::fs::write(self.dir.join(UPDATED_STAMP), b"")
            .with_context(|| format!("writing the update stamp in {}", self.dir.display()))
    }

    /// `apt-cache pkgnames PREFIX` output: every package name in the root's
    /// lists that starts with `prefix`, one a line.
    pub fn pkgnames(&self, prefix: &str) -> Result<String> {
        let mut cmd = self.command("apt-cache");
        cmd.args(["pkgnames", prefix]);
        run_captured(
            cmd,
            &format!("apt-cache pkgnames {prefix} ({})", self.label),
        )
    }

    /// `apt-cache show PKG` output.
    pub fn show(&self, package: &str) -> Result<String> {
        let mut cmd = self.command("apt-cache");
        cmd.args(["show", package]);
        run_captured(cmd, &format!("apt-cache show {package} ({})", self.label))
    }

    /// `apt-get download SPEC` into `into`; returns the `.deb`'s path.
    pub fn download(&self, spec: &str, into: &Path) -> Result<PathBuf> {
        let tmp = self
            .dir
            .join(format!("download-{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("creating download directory {}", tmp.display()))?;
        let mut cmd = self.command("apt-get");
        cmd.args(["-q", "download", spec]).current_dir(&tmp);
        run_captured(cmd, &format!("apt-get download {spec} ({})", self.label))?;
        let deb = single_deb(&tmp)?;
        std::fs::create_dir_all(into)
            .with_context(|| format!("creating package cache {}", into.display()))?;
        let dest = into.join(
            deb.file_name()
                .context("downloaded .deb has no file name")?,
        );
        std::fs::rename(&deb, &dest)
            .with_context(|| format!("moving {} to {}", deb.display(), dest.display()))?;
        let _ = std::fs::remove_dir(&tmp);
        Ok(dest)
    }

    /// `apt-get install -t SUITE PACKAGES` on the host, resolving from this
    /// root's sources. With `simulate`, apt only prints what it would do.
    pub fn install(&self, target_suite: &str, packages: &[&str], simulate: bool) -> Result<String> {
        let mut cmd = if simulate {
            self.command("apt-get")
        } else {
            self.privileged_command("apt-get")
        };
        cmd.args([
            "-q",
            "-y",
            "--no-install-recommends",
            "install",
            "-t",
            target_suite,
        ]);
        if simulate {
            cmd.arg("--simulate");
        }
        cmd.args(packages);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        run_captured(cmd, &format!("apt-get install {}", packages.join(" ")))
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Copies the host's `.sources` and `.list` files (and `sources.list`) into
/// the root's parts directory, which apt reads in either format.
fn copy_host_sources(parts: &Path) -> Result<()> {
    let mut files = vec![(
        PathBuf::from("/etc/apt/sources.list"),
        "host-sources.list".to_string(),
    )];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for path in dir.filter_map(|e| e.ok().map(|e| e.path())) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".sources") || name.ends_with(".list") {
                files.push((path.clone(), format!("host-{name}")));
            }
        }
    }
    for (src, name) in files {
        if let Ok(text) = std::fs::read_to_string(&src) {
            write_if_changed(&parts.join(name), &text)?;
        }
    }
    Ok(())
}

fn single_deb(dir: &Path) -> Result<PathBuf> {
    let debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    match debs.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected exactly one .deb in {} after apt-get download, found {}",
            dir.display(),
            debs.len()
        ),
    }
}

/// How often, and how long apart, a command is retried while another apt
/// (e.g. a parallel `reaper-lab vm`) holds the same private root's lock.
const LOCK_RETRIES: u32 = 24;
const LOCK_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Runs a command, returning its stdout; on failure the error carries the
/// tail of stderr and the command's purpose. Waits out apt lock contention.
pub fn run_captured(mut cmd: Command, what: &str) -> Result<String> {
    for attempt in 0.. {
        let output = cmd.output().with_context(|| {
            format!(
                "{what}: could not start {:?}; is it installed?",
                cmd.get_program()
            )
        })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("Could not get lock") && attempt < LOCK_RETRIES {
            eprintln!("reaper-lab: {what}: waiting for another apt to release its lock");
            std::thread::sleep(LOCK_RETRY_WAIT);
            continue;
        }
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{what} failed ({}):\n{}", output.status, tail.join("\n"));
    }
    unreachable!("the retry loop returns")
}
