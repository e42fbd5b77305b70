//! What A and B are, decided once from the command line: one source
//! without and with patches, two revisions of a git tree, or two prebuilt
//! kernels; and then made ready to boot ([`prepare`]): built (B
//! incrementally in A's tree or build directory) or fetched.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::schedule::Side;
use crate::arch::Arch;
use crate::error::Refused;
use crate::kernel::config::{self, BaseConfig};
use crate::kernel::patches::{self, Patch};
use crate::kernel::source::SourceChoice;
use crate::kernel::{self, BuildArgs, BuildSpec, Built};
use crate::vm::kernel::{Flavour, KernelChoice};

/// How A and B differ.
#[derive(Debug, Clone)]
pub enum Design {
    /// One source built twice: B with `patches` applied.
    Patch {
        source: SourceChoice,
        patches: Vec<Patch>,
    },
    /// Two revisions of a git tree; B gets `patches` on top of `candidate`.
    Revisions {
        dir: PathBuf,
        base: String,
        candidate: String,
        patches: Vec<Patch>,
    },
    /// Two kernels built elsewhere, or Debian's by name.
    Prebuilt { a: KernelChoice, b: KernelChoice },
}

/// The experiment: its design, and how its sides are called.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub design: Design,
    pub arch: Arch,
    /// The user's `.config` and variant fragments, for built sides.
    pub base_config: Option<BaseConfig>,
    pub fragments: Vec<PathBuf>,
    pub jobs: usize,
}

/// What the command line says about the kernels (from `reaper-lab ab`'s
/// flags).
pub struct KernelFlags<'a> {
    pub build: &'a BuildArgs,
    pub base: Option<&'a str>,
    pub candidate: Option<&'a str>,
    pub kernel_a: Option<&'a str>,
    pub kernel_b: Option<&'a str>,
    pub flavour: Flavour,
}

impl Experiment {
    /// Decides the design, refusing what cannot be an A/B.
    pub fn from_flags(flags: &KernelFlags) -> Result<Self> {
        let build = flags.build;
        let patches = patches::read_all(&build.patches)?;
        let design = match (flags.kernel_a, flags.kernel_b) {
            (Some(a), Some(b)) => Design::Prebuilt {
                a: KernelChoice::parse(a, flags.flavour).context("--kernel-a")?,
                b: KernelChoice::parse(b, flags.flavour).context("--kernel-b")?,
            },
            (Some(_), None) | (None, Some(_)) => {
                return Err(Refused("--kernel-a and --kernel-b go together".into()).into());
            }
            (None, None) => match (&build.src, flags.base) {
                (Some(dir), Some(base)) => {
                    let candidate = flags.candidate.unwrap_or(base).to_string();
                    if flags.candidate.is_none() && patches.is_empty() {
                        return Err(Refused(format!(
                            "--base {base} without --candidate or --patch: B would be A; give \
                             --candidate REV, --patch FILE, or --candidate {base} for an A/A run"
                        ))
                        .into());
                    }
                    Design::Revisions {
                        dir: dir.clone(),
                        base: base.to_string(),
                        candidate,
                        patches,
                    }
                }
                _ if patches.is_empty() => {
                    return Err(Refused(
                        "nothing tells A from B: give --patch FILE (B is the source with it), \
                         --src DIR --base REV --candidate REV (two revisions of a git tree), or \
                         --kernel-a and --kernel-b (two prebuilt kernels)"
                            .into(),
                    )
                    .into());
                }
                _ => Design::Patch {
                    source: build.source_choice(None),
                    patches,
                },
            },
        };
        Ok(Experiment {
            design,
            arch: build.arch,
            base_config: build.config.as_deref().map(BaseConfig::read).transpose()?,
            fragments: build.fragments.clone(),
            jobs: build.jobs.unwrap_or_else(kernel::make::default_jobs),
        })
    }

    /// A side's column label in diff, gate and the tables.
    pub fn label(&self, side: Side) -> String {
        match (&self.design, side) {
            (Design::Patch { .. }, Side::A) => "Without patch".into(),
            (Design::Patch { .. }, Side::B) => "With patch".into(),
            (Design::Revisions { base, .. }, Side::A) => format!("base {base}"),
            (
                Design::Revisions {
                    candidate, patches, ..
                },
                Side::B,
            ) => {
                if patches.is_empty() {
                    format!("candidate {candidate}")
                } else {
                    format!("candidate {candidate} + patch")
                }
            }
            (Design::Prebuilt { a, .. }, Side::A) => a.label(),
            (Design::Prebuilt { b, .. }, Side::B) => b.label(),
        }
    }

    /// The directory of a side's runs under the output directory.
    pub fn dir(&self, side: Side) -> &'static str {
        match (&self.design, side) {
            (Design::Patch { .. }, Side::A) => "without-patch",
            (Design::Patch { .. }, Side::B) => "with-patch",
            (Design::Revisions { .. }, Side::A) => "base",
            (Design::Revisions { .. }, Side::B) => "candidate",
            (Design::Prebuilt { .. }, Side::A) => "kernel-a",
            (Design::Prebuilt { .. }, Side::B) => "kernel-b",
        }
    }

    /// A name for the default output directory.
    pub fn out_name(&self) -> String {
        let arch = self.arch;
        match &self.design {
            Design::Patch { source, patches } => {
                let source = match source {
                    SourceChoice::Debian { series } => series.clone(),
                    _ => "src".into(),
                };
                format!("{source}-{arch}-{}", patches::set_hash(patches))
            }
            Design::Revisions {
                base, candidate, ..
            } => format!("git-{}-{}-{arch}", file_part(base), file_part(candidate)),
            Design::Prebuilt { a, b } => format!("{}-vs-{}-{arch}", a.label(), b.label()),
        }
    }

    /// The patches B gets, if any.
    pub fn patches(&self) -> &[Patch] {
        match &self.design {
            Design::Patch { patches, .. } | Design::Revisions { patches, .. } => patches,
            Design::Prebuilt { .. } => &[],
        }
    }
}

/// `text` reduced to characters safe in a file name.
fn file_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One side, ready to boot.
#[derive(Debug, Clone)]
pub struct SideKernel {
    /// What it is, for humans: source and version, revision, or kernel name.
    pub description: String,
    /// `uname -r` when known before booting.
    pub release: Option<String>,
    /// The image to boot and its `.config` (the guest's /boot/config-*).
    pub image: PathBuf,
    pub config: Option<PathBuf>,
    /// sha256 (12 hex) of that `.config`, when there is one.
    pub config_hash: Option<String>,
    /// The build, when reaper-lab built it.
    pub build: Option<Built>,
}

/// Builds or fetches both sides: A first, so B (built in the same tree or
/// build directory) recompiles only what differs.
pub fn prepare(exp: &Experiment) -> Result<(SideKernel, SideKernel)> {
    let spec = |source: SourceChoice, patches: Vec<Patch>| BuildSpec {
        source,
        arch: exp.arch,
        patches,
        base_config: exp.base_config.clone(),
        extra_fragments: exp.fragments.clone(),
        jobs: exp.jobs,
    };
    match &exp.design {
        Design::Patch { source, patches } => {
            let a = kernel::build(&spec(source.clone(), Vec::new()))?;
            let b = kernel::build(&spec(source.clone(), patches.clone()))?;
            Ok((built(a), built(b)))
        }
        Design::Revisions {
            dir,
            base,
            candidate,
            patches,
        } => {
            let rev = |rev: &str| SourceChoice::Git {
                dir: dir.clone(),
                rev: rev.to_string(),
            };
            let a = kernel::build(&spec(rev(base), Vec::new()))?;
            let b = kernel::build(&spec(rev(candidate), patches.clone()))?;
            Ok((built(a), built(b)))
        }
        Design::Prebuilt { a, b } => Ok((prebuilt(a, exp.arch)?, prebuilt(b, exp.arch)?)),
    }
}

fn built(b: Built) -> SideKernel {
    let patches: Vec<String> = b.patches.iter().map(|(name, _, _)| name.clone()).collect();
    let description = if patches.is_empty() {
        b.source.clone()
    } else {
        format!("{} + {}", b.source, patches.join(", "))
    };
    SideKernel {
        description,
        release: Some(b.release.clone()),
        image: b.image.clone(),
        config: Some(b.config.clone()),
        config_hash: Some(b.config_hash.clone()),
        build: Some(b),
    }
}

/// A prebuilt side: a Debian kernel (downloaded), or an image with the
/// `config` that `reaper-lab kernel build` leaves beside it, if there.
fn prebuilt(choice: &KernelChoice, arch: Arch) -> Result<SideKernel> {
    let beside = match choice {
        KernelChoice::Path(image) => image
            .parent()
            .map(|d| d.join("config"))
            .filter(|c| c.is_file()),
        KernelChoice::Debian(_) => None,
    };
    let kernel = crate::vm::kernel::resolve(choice, arch, beside.as_deref())?;
    let config_hash = kernel
        .config
        .as_deref()
        .map(config::file_hash)
        .transpose()?;
    let description = match (choice, &kernel.version) {
        (KernelChoice::Debian(k), Some(version)) => {
            format!(
                "Debian {} {} kernel, package version {version}",
                k.name(),
                k.flavour
            )
        }
        _ => format!("{} (prebuilt image)", display(&kernel.image)),
    };
    Ok(SideKernel {
        description,
        release: kernel.release,
        image: kernel.image,
        config: kernel.config,
        config_hash,
        build: None,
    })
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_args(src: Option<&str>, patches: &[&str]) -> BuildArgs {
        BuildArgs {
            source: "6.1".into(),
            src: src.map(PathBuf::from),
            arch: Arch::X86_64,
            patches: patches.iter().map(PathBuf::from).collect(),
            config: None,
            fragments: Vec::new(),
            jobs: Some(1),
        }
    }

    fn flags<'a>(build: &'a BuildArgs) -> KernelFlags<'a> {
        KernelFlags {
            build,
            base: None,
            candidate: None,
            kernel_a: None,
            kernel_b: None,
            flavour: Flavour::Cloud,
        }
    }

    fn refused(flags: &KernelFlags) -> String {
        let err = Experiment::from_flags(flags).unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:#}");
        format!("{err:#}")
    }

    #[test]
    fn an_ab_needs_something_that_tells_a_from_b() {
        let b = build_args(None, &[]);
        assert!(refused(&flags(&b)).contains("nothing tells A from B"));
        let b = build_args(Some("/tmp"), &[]);
        let f = KernelFlags {
            base: Some("HEAD~1"),
            ..flags(&b)
        };
        assert!(refused(&f).contains("B would be A"));
        let f = KernelFlags {
            kernel_a: Some("bookworm"),
            ..flags(&b)
        };
        assert!(refused(&f).contains("go together"));
    }

    #[test]
    fn designs_and_their_labels() {
        let b = build_args(Some("/src/linux"), &[]);
        let f = KernelFlags {
            base: Some("HEAD~1"),
            candidate: Some("HEAD"),
            ..flags(&b)
        };
        let exp = Experiment::from_flags(&f).unwrap();
        assert!(matches!(exp.design, Design::Revisions { .. }));
        assert_eq!(
            (exp.label(Side::A), exp.label(Side::B)),
            ("base HEAD~1".into(), "candidate HEAD".into())
        );
        assert_eq!(exp.out_name(), "git-HEAD_1-HEAD-x86_64");
        let f = KernelFlags {
            kernel_a: Some("bookworm-6.12"),
            kernel_b: Some("trixie"),
            ..flags(&b)
        };
        let exp = Experiment::from_flags(&f).unwrap();
        assert_eq!(
            (exp.label(Side::A), exp.label(Side::B)),
            ("bookworm-6.12".into(), "trixie".into())
        );
        assert_eq!(exp.dir(Side::B), "kernel-b");
        assert_eq!(exp.out_name(), "bookworm-6.12-vs-trixie-x86_64");
    }
}
