//! Which kernel to boot: a Debian cloud kernel resolved at run time through
//! its metapackage (`linux-image-cloud-<arch>`) in a given suite, or a kernel
//! image the user built.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::arch::Arch;
use super::debian;

/// A Debian kernel line the harness knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebianKernel {
    /// Debian 12's own 6.1 kernel.
    Bookworm,
    /// The 6.12 kernel Debian 12 carries in bookworm-backports.
    Bookworm612,
    /// The newest unstable kernel.
    Sid,
}

impl DebianKernel {
    pub const ALL: [DebianKernel; 3] = [Self::Bookworm, Self::Bookworm612, Self::Sid];

    pub fn name(self) -> &'static str {
        match self {
            Self::Bookworm => "bookworm",
            Self::Bookworm612 => "bookworm-6.12",
            Self::Sid => "sid",
        }
    }

    /// The suite whose metapackage points at this kernel.
    pub fn suite(self) -> &'static str {
        match self {
            Self::Bookworm => "bookworm",
            Self::Bookworm612 => "bookworm-backports",
            Self::Sid => "sid",
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
    /// Parses `bookworm`, `bookworm-6.12`, `sid`, or a path to an image.
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(kernel) = DebianKernel::ALL.into_iter().find(|k| k.name() == text) {
            return Ok(Self::Debian(kernel));
        }
        let path = PathBuf::from(text);
        if path.is_file() {
            return Ok(Self::Path(path));
        }
        bail!(
            "--kernel {text:?} is neither a known Debian kernel (bookworm, bookworm-6.12, sid) \
             nor an existing kernel image file (bzImage for x86_64, Image for arm64)"
        )
    }

    /// A short name for tables and directories.
    pub fn label(&self) -> String {
        match self {
            Self::Debian(k) => k.name().to_string(),
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

/// Where a Debian package carries the image and config of `release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    pub package: String,
    pub image: String,
    pub config_package: String,
    pub config: String,
}

/// The packages that may hold `release`'s image, newest layout first:
/// sid splits the image (`linux-binary-*`) from its config (`linux-base-*`);
/// bookworm ships both in `linux-image-*-unsigned`.
pub fn image_sources(release: &str) -> [ImageSource; 2] {
    [
        ImageSource {
            package: format!("linux-binary-{release}"),
            image: format!("usr/lib/modules/{release}/vmlinuz"),
            config_package: format!("linux-base-{release}"),
            config: format!("usr/lib/modules/{release}/config"),
        },
        ImageSource {
            package: format!("linux-image-{release}-unsigned"),
            image: format!("boot/vmlinuz-{release}"),
            config_package: format!("linux-image-{release}-unsigned"),
            config: format!("boot/config-{release}"),
        },
    ]
}

/// The package names listed as `Depends:` in `apt-cache depends` output,
/// without `<virtual>` brackets or `:arch` suffixes.
pub fn parse_depends(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('|');
            let name = line.strip_prefix("Depends:")?.trim();
            let name = name.trim_start_matches('<').trim_end_matches('>');
            Some(name.split(':').next().unwrap_or(name).to_string())
        })
        .collect()
}

/// The kernel release a cloud metapackage depends on, e.g.
/// `6.1.0-50-cloud-amd64` from `linux-image-6.1.0-50-cloud-amd64`.
pub fn release_from_meta(depends: &[String], debian_arch: &str) -> Option<String> {
    let suffix = format!("-cloud-{debian_arch}");
    depends.iter().find_map(|dep| {
        let release = dep.strip_prefix("linux-image-")?;
        let flavourless = release.strip_suffix(&suffix)?;
        let versioned = flavourless.starts_with(|c: char| c.is_ascii_digit());
        versioned.then(|| release.to_string())
    })
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
            let mut resolved = resolve_debian(*kernel, arch)?;
            if let Some(config) = config {
                resolved.config = Some(config.to_path_buf());
            }
            Ok(resolved)
        }
    }
}

fn resolve_debian(kernel: DebianKernel, arch: Arch) -> Result<Kernel> {
    let cache = super::cache::cache_dir()?;
    let memo =
        cache
            .join("resolved")
            .join(format!("kernel-{}-{}.json", kernel.name(), arch.debian()));
    let what = format!("the {} {} kernel", kernel.name(), arch.debian());
    debian::memoized(
        &memo,
        &what,
        |k: &Kernel| k.image.is_file(),
        || fetch_debian(kernel, arch, &cache),
    )
    .with_context(|| format!("getting {what}"))
}

fn fetch_debian(kernel: DebianKernel, arch: Arch, cache: &Path) -> Result<Kernel> {
    let root = debian::suite_root(cache, kernel.suite())?;
    debian::refresh(&root)?;
    let deb_arch = arch.debian();
    let meta = format!("linux-image-cloud-{deb_arch}");
    let depends = parse_depends(&root.depends(&format!("{meta}:{deb_arch}"))?);
    let release = release_from_meta(&depends, deb_arch).with_context(|| {
        format!(
            "{meta} in {} depends on no versioned linux-image-*-cloud-{deb_arch} \
             (depends: {depends:?}); Debian may have renamed its kernel packages",
            kernel.suite()
        )
    })?;
    let (source, record) = image_sources(&release)
        .into_iter()
        .find_map(|s| Some((debian::candidate(&root, &s.package, deb_arch).ok()?, s)))
        .map(|(record, source)| (source, record))
        .with_context(|| {
            format!(
                "no package in {} carries the image of {release}",
                kernel.suite()
            )
        })?;
    let image_dir = debian::fetch_unpacked(&root, cache, &record, deb_arch)?;
    let config_dir = if source.config_package == source.package {
        image_dir.clone()
    } else {
        let config_record = debian::candidate(&root, &source.config_package, deb_arch)?;
        debian::fetch_unpacked(&root, cache, &config_record, deb_arch)?
    };
    let version = Some(record.version.clone());
    let image = image_dir.join(&source.image);
    if !image.is_file() {
        bail!("{} does not contain {}", source.package, source.image);
    }
    let config = Some(config_dir.join(&source.config)).filter(|p| p.is_file());
    Ok(Kernel {
        release: Some(release),
        version,
        image,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID_AMD64_META: &str = "\
linux-image-cloud-amd64
  Depends: linux-base-cloud-amd64
  Depends: linux-image-7.2.13+deb14-cloud-amd64
";
    const BOOKWORM_ARM64_META: &str = "\
linux-image-cloud-arm64:arm64
  Depends: linux-image-6.1.0-50-cloud-arm64:arm64
";
    const IMAGE_DEPENDS: &str = "\
linux-image-7.2.13+deb14-cloud-amd64
  PreDepends: linux-base
 |Depends: dracut
  Depends: <linux-initramfs-tool>
    dracut
  Depends: linux-binary-7.2.13+deb14-cloud-amd64
  Breaks: fwupdate
";

    #[test]
    fn depends_are_parsed_without_arch_or_brackets() {
        assert_eq!(
            parse_depends(BOOKWORM_ARM64_META),
            ["linux-image-6.1.0-50-cloud-arm64"]
        );
        assert_eq!(
            parse_depends(IMAGE_DEPENDS),
            [
                "dracut",
                "linux-initramfs-tool",
                "linux-binary-7.2.13+deb14-cloud-amd64"
            ]
        );
    }

    #[test]
    fn release_comes_from_the_versioned_image_dependency() {
        let sid = parse_depends(SID_AMD64_META);
        assert_eq!(
            release_from_meta(&sid, "amd64").as_deref(),
            Some("7.2.13+deb14-cloud-amd64")
        );
        let bookworm = parse_depends(BOOKWORM_ARM64_META);
        assert_eq!(
            release_from_meta(&bookworm, "arm64").as_deref(),
            Some("6.1.0-50-cloud-arm64")
        );
        assert_eq!(release_from_meta(&sid, "arm64"), None);
    }

    #[test]
    fn release_ignores_flavour_metapackages() {
        let deps = vec!["linux-image-cloud-amd64".to_string()];
        assert_eq!(release_from_meta(&deps, "amd64"), None);
    }

    #[test]
    fn image_sources_cover_both_debian_layouts() {
        let [sid, bookworm] = image_sources("6.12.95+deb12-cloud-amd64");
        assert_eq!(sid.package, "linux-binary-6.12.95+deb12-cloud-amd64");
        assert_eq!(
            sid.image,
            "usr/lib/modules/6.12.95+deb12-cloud-amd64/vmlinuz"
        );
        assert_eq!(sid.config_package, "linux-base-6.12.95+deb12-cloud-amd64");
        assert_eq!(
            bookworm.package,
            "linux-image-6.12.95+deb12-cloud-amd64-unsigned"
        );
        assert_eq!(bookworm.image, "boot/vmlinuz-6.12.95+deb12-cloud-amd64");
        assert_eq!(bookworm.config, "boot/config-6.12.95+deb12-cloud-amd64");
    }

    #[test]
    fn kernel_choice_names_and_paths() {
        assert_eq!(
            KernelChoice::parse("bookworm-6.12").unwrap(),
            KernelChoice::Debian(DebianKernel::Bookworm612)
        );
        assert_eq!(DebianKernel::Bookworm612.suite(), "bookworm-backports");
        let err = KernelChoice::parse("trixie").unwrap_err().to_string();
        assert!(err.contains("bookworm-6.12"), "{err}");
    }
}
