//! `cargo xtask dist`: release tarballs, one per architecture:
//! `target/dist/reaper-VERSION-TARGET.tar.gz` holding the static musl
//! `reaper` and `reaper-lab`, their man pages and shell completions
//! ([`docs`]), README.md, LICENSE-MIT, LICENSE-APACHE and
//! THIRD-PARTY-NOTICES.md ([`notices`]).
//!
//! The binaries are static musl builds ([`crate::build::musl_binary`]),
//! reaper's the same the VM harness boots; the harness in turn boots the arm64
//! guest with the binary unpacked from the tarball ([`unpacked_binary`]), so
//! what is shipped is what the arm64 cells test.

mod archive;
mod docs;
mod notices;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use reaper_lab::vm::arch::Arch;

use crate::build::{Shipped, musl_binary};
use crate::workspace::{target_dir, workspace_root};

/// Repository files copied into every tarball as they are.
const COPIED: [&str; 3] = ["README.md", "LICENSE-MIT", "LICENSE-APACHE"];
/// The generated notice's name in the tarball.
const NOTICE: &str = "THIRD-PARTY-NOTICES.md";

/// `cargo xtask dist` arguments.
#[derive(clap::Args)]
pub struct DistArgs {
    /// Architectures to package (repeatable; default: x86_64 and arm64).
    #[arg(long = "arch", value_enum)]
    arches: Vec<Arch>,
    /// Where the tarballs go.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `cargo xtask dist`: prints each tarball's path on stdout.
pub fn run(args: DistArgs) -> Result<ExitCode> {
    crate::setup::ensure(crate::setup::Task::Dist)?;
    let arches = if args.arches.is_empty() {
        vec![Arch::X86_64, Arch::Arm64]
    } else {
        args.arches
    };
    let out = args.out.unwrap_or_else(default_out);
    for arch in arches {
        println!("{}", tarball(arch, &out)?.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn default_out() -> PathBuf {
    target_dir().join("dist")
}

/// The architecture of this host, whose binary can run `reaper generate`.
fn host_arch() -> Result<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(Arch::X86_64),
        "aarch64" => Ok(Arch::Arm64),
        other => bail!("cargo xtask dist runs on x86_64 or aarch64 hosts, not {other}"),
    }
}

/// The directory name inside the tarball, and the tarball's stem.
fn dist_name(version: &str, arch: Arch) -> String {
    format!("reaper-{version}-{}", arch.rust_target())
}

/// Seconds since the epoch for every file in the tarball: the last commit's
/// time (`SOURCE_DATE_EPOCH` wins), so rebuilding one commit gives the same
/// archive.
fn source_date() -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return epoch;
    }
    std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// Builds the tarball for `arch` into `out` and returns its path.
pub fn tarball(arch: Arch, out: &Path) -> Result<PathBuf> {
    let started = Instant::now();
    let binary = musl_binary(Shipped::Reaper, arch)?;
    let lab = musl_binary(Shipped::ReaperLab, arch)?;
    let host = host_arch()?;
    let host_binary = if host == arch {
        binary.clone()
    } else {
        musl_binary(Shipped::Reaper, host)?
    };
    let (version, crates) = notices::shipped_crates(arch.rust_target())?;
    let name = dist_name(&version, arch);
    let staging = out.join(&name);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("emptying {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    for (from, name) in [
        (&binary, Shipped::Reaper.bin()),
        (&lab, Shipped::ReaperLab.bin()),
    ] {
        std::fs::copy(from, staging.join(name))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    docs::generate(&host_binary, &staging)?;
    for file in COPIED {
        std::fs::copy(workspace_root().join(file), staging.join(file))
            .with_context(|| format!("copying {file}"))?;
    }
    std::fs::write(
        staging.join(NOTICE),
        notices::render(&version, arch.rust_target(), &crates),
    )
    .with_context(|| format!("writing {NOTICE}"))?;
    let tarball = out.join(format!("{name}.tar.gz"));
    archive::write_tar_gz(&tarball, &name, &staging, source_date())?;
    std::fs::remove_dir_all(&staging).ok();
    check_layout(&tarball, &name)?;
    let size = std::fs::metadata(&tarball)?.len();
    eprintln!(
        "xtask dist: {} ({:.1} MB, {} third-party crates) in {:.1} s",
        tarball.display(),
        size as f64 / 1e6,
        crates.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(tarball)
}

/// The members every tarball must have, below its top directory.
const REQUIRED: [&str; 12] = [
    "reaper",
    "reaper-lab",
    "man/man1/reaper.1",
    "man/man1/reaper-record.1",
    "man/man1/reaper-lab.1",
    "man/man1/reaper-lab-ab.1",
    "completions/reaper.bash",
    "completions/reaper-lab.bash",
    "README.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
    NOTICE,
];

/// Fails when the written tarball lacks one of the [`REQUIRED`] members.
fn check_layout(tarball: &Path, name: &str) -> Result<()> {
    let members = archive::list(tarball)?;
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|m| !members.contains(&Path::new(name).join(m)))
        .collect();
    if !missing.is_empty() {
        bail!("{} lacks {}", tarball.display(), missing.join(", "));
    }
    Ok(())
}

/// Builds the tarball for `arch` into `target/dist` and returns the `reaper`
/// unpacked from it (into `target/dist/unpacked/TARGET/`), for the VM guest.
pub fn unpacked_binary(arch: Arch) -> Result<PathBuf> {
    let out = default_out();
    let tarball = tarball(arch, &out)?;
    let name = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .context("tarball name")?
        .to_string();
    let dest = out.join("unpacked").join(arch.rust_target()).join("reaper");
    archive::extract_file(&tarball, &Path::new(&name).join("reaper"), &dest)?;
    eprintln!(
        "xtask dist: the {arch} guest runs {} from {}",
        dest.display(),
        tarball.display()
    );
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            dist_name("0.1.0", Arch::Arm64),
            "reaper-0.1.0-aarch64-unknown-linux-musl"
        );
    }
}
