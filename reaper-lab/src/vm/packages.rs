//! Debian kernel package names and contents, read rather than assumed.
//!
//! Across suites and years Debian has shipped a kernel release `R` as
//! `linux-image-R-unsigned` (image and config in `/boot`), as a signed
//! `linux-image-R`, and as a small `linux-image-R` metapackage depending on
//! `linux-binary-R` (image, in `/boot` or `/usr/lib/modules/R`) and
//! `linux-base-R` (config). So the release is taken from whichever of those
//! names a suite's index lists, and the image and config from whatever the
//! release's packages unpack to.

use std::fmt;
use std::path::{Path, PathBuf};

/// A Debian kernel flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Flavour {
    /// The cloud flavour: few drivers, fast to fetch and boot.
    #[default]
    Cloud,
    /// The generic flavour (`linux-image-<arch>`).
    Generic,
    /// PREEMPT_RT.
    Rt,
}

impl Flavour {
    /// The flavour's part of a Debian kernel release (`-cloud`), empty for
    /// the generic one.
    pub fn release_part(self) -> Option<&'static str> {
        match self {
            Self::Cloud => Some("cloud"),
            Self::Generic => None,
            Self::Rt => Some("rt"),
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cloud => "cloud",
            Self::Generic => "generic",
            Self::Rt => "rt",
        })
    }
}

/// Prefixes of package names that are named after a kernel release.
const RELEASE_PACKAGE_PREFIXES: [&str; 2] = ["linux-image-", "linux-binary-"];
/// Suffix of the unsigned twin of a signed image package.
const UNSIGNED: &str = "-unsigned";

/// The kernel release a package is named after, if it is an image or binary
/// package of `flavour` on `debian_arch`: `linux-image-6.1.0-50-cloud-amd64`
/// → `6.1.0-50-cloud-amd64`. Debug, 16k-page and other-flavour packages are
/// not.
pub fn release_of(package: &str, flavour: Flavour, debian_arch: &str) -> Option<String> {
    let release = RELEASE_PACKAGE_PREFIXES
        .iter()
        .find_map(|p| package.strip_prefix(p))?;
    let release = release.strip_suffix(UNSIGNED).unwrap_or(release);
    let before_arch = release.strip_suffix(debian_arch)?.strip_suffix('-')?;
    let version = match flavour.release_part() {
        Some(part) => before_arch.strip_suffix(part)?.strip_suffix('-')?,
        None => before_arch,
    };
    // What is left must be a version (`6.1.0-50`, `7.3.4+deb13`), whose last
    // dash-separated part starts with a digit; a flavour name does not.
    let last = version.rsplit('-').next()?;
    let first = version.split('-').next()?;
    (last.starts_with(|c: char| c.is_ascii_digit())
        && first.starts_with(|c: char| c.is_ascii_digit()))
    .then(|| release.to_string())
}

/// The upstream version a release starts with: `7.3.4` of `7.3.4+deb13-rt-amd64`.
pub fn upstream(release: &str) -> &str {
    let end = release
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(release.len());
    &release[..end]
}

/// The numbers a release sorts by: `6.1.0-50-cloud-amd64` → `[6, 1, 0, 50]`,
/// `7.3.4+deb13-cloud-amd64` → `[7, 3, 4, 13]`.
pub fn sort_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether `text` is a version prefix such as `6.19` or `7.0.13`.
pub fn is_version_prefix(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a release is of upstream version `prefix` (`6.19` matches
/// `6.19.14+deb13-cloud-amd64`, not `6.1.0-50-cloud-amd64`).
pub fn has_version(release: &str, prefix: &str) -> bool {
    let up = upstream(release);
    up == prefix || up.strip_prefix(prefix).is_some_and(|r| r.starts_with('.'))
}

/// The newest release among `package_names` of `flavour` on `debian_arch`,
/// of version `prefix` when given.
pub fn newest_release<'a>(
    package_names: impl IntoIterator<Item = &'a str>,
    flavour: Flavour,
    debian_arch: &str,
    prefix: Option<&str>,
) -> Option<String> {
    package_names
        .into_iter()
        .filter_map(|name| release_of(name.trim(), flavour, debian_arch))
        .filter(|release| prefix.is_none_or(|p| has_version(release, p)))
        .max_by_key(|release| sort_key(release))
}

/// Where to start looking for a release's files: the unsigned image
/// package (its files are the signed one's, without the signature), else
/// the image package itself.
pub fn image_packages(release: &str) -> [String; 2] {
    [
        format!("linux-image-{release}{UNSIGNED}"),
        format!("linux-image-{release}"),
    ]
}

/// The dependencies named after `release` (`linux-binary-R`, `linux-base-R`,
/// `linux-modules-R`), in the order the package lists them.
pub fn release_dependencies(depends: &[String], release: &str) -> Vec<String> {
    depends
        .iter()
        .filter(|d| d.ends_with(release) || d.ends_with(&format!("{release}{UNSIGNED}")))
        .filter(|d| d.starts_with("linux-"))
        .cloned()
        .collect()
}

/// A kernel image and config found in an unpacked package.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KernelFiles {
    pub image: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

impl KernelFiles {
    /// Looks in `dir` (a package unpacked with `dpkg-deb -x`) for `release`'s
    /// image and config, in both layouts Debian has used:
    /// `boot/vmlinuz-R`, `boot/config-R` and `usr/lib/modules/R/{vmlinuz,config}`.
    pub fn find(dir: &Path, release: &str) -> Self {
        let first = |candidates: [PathBuf; 2]| candidates.into_iter().find(|p| p.is_file());
        let modules = dir.join("usr/lib/modules").join(release);
        let boot = dir.join("boot");
        KernelFiles {
            image: first([
                boot.join(format!("vmlinuz-{release}")),
                modules.join("vmlinuz"),
            ]),
            config: first([
                boot.join(format!("config-{release}")),
                modules.join("config"),
            ]),
        }
    }
}

/// The package names of a `Depends:` field, without versions, alternatives
/// after the first, or `:arch` qualifiers.
pub fn parse_depends_field(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter_map(|dep| {
            let first = dep.split('|').next()?.trim();
            let name = first.split([' ', '(']).next()?.trim();
            let name = name.split(':').next()?;
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Package names as the suites list them on 2026-12-01 (a sample).
    const NAMES: &str = "\
linux-image-6.1.0-47-cloud-amd64
linux-image-6.1.0-50-amd64
linux-image-6.1.0-50-amd64-unsigned
linux-image-6.1.0-50-cloud-amd64
linux-image-6.1.0-50-cloud-amd64-unsigned
linux-image-6.1.0-50-cloud-arm64-unsigned
linux-image-6.1.0-50-rt-amd64-unsigned
linux-image-6.1.0-50-cloud-amd64-dbg
linux-image-cloud-amd64
linux-image-amd64
linux-binary-6.19.14+deb13-cloud-amd64
linux-binary-6.19.8+deb13-cloud-amd64
linux-binary-6.19.14+deb13-arm64-16k
linux-binary-6.19.14+deb13-arm64
linux-binary-6.19.14+deb13-rt-arm64
linux-image-7.3.4+deb13-cloud-amd64
linux-binary-7.3.4+deb13-cloud-amd64
linux-image-7.0.13+deb13-cloud-amd64
";

    #[test]
    fn releases_are_read_from_package_names() {
        let amd = |flavour| release_of("linux-image-6.1.0-50-amd64-unsigned", flavour, "amd64");
        assert_eq!(amd(Flavour::Generic).as_deref(), Some("6.1.0-50-amd64"));
        assert_eq!(amd(Flavour::Cloud), None);
        assert_eq!(
            release_of("linux-binary-7.3.4+deb13-rt-arm64", Flavour::Rt, "arm64").as_deref(),
            Some("7.3.4+deb13-rt-arm64")
        );
        for not_a_release in [
            "linux-image-6.1.0-50-cloud-amd64-dbg",
            "linux-image-cloud-amd64",
            "linux-image-amd64",
            "linux-binary-6.19.14+deb13-arm64-16k",
        ] {
            for flavour in [Flavour::Cloud, Flavour::Generic, Flavour::Rt] {
                for arch in ["amd64", "arm64"] {
                    assert_eq!(
                        release_of(not_a_release, flavour, arch),
                        None,
                        "{not_a_release}"
                    );
                }
            }
        }
        assert_eq!(
            release_of(
                "linux-image-6.1.0-50-cloud-amd64",
                Flavour::Generic,
                "amd64"
            ),
            None,
            "the generic flavour is not the cloud one"
        );
    }

    #[test]
    fn newest_release_by_version_and_flavour() {
        let newest = |flavour, arch, prefix| newest_release(NAMES.lines(), flavour, arch, prefix);
        assert_eq!(
            newest(Flavour::Cloud, "amd64", None).as_deref(),
            Some("7.3.4+deb13-cloud-amd64")
        );
        assert_eq!(
            newest(Flavour::Cloud, "amd64", Some("6.19")).as_deref(),
            Some("6.19.14+deb13-cloud-amd64"),
            "6.19.14 sorts above 6.19.8"
        );
        assert_eq!(
            newest(Flavour::Cloud, "amd64", Some("6.1")).as_deref(),
            Some("6.1.0-50-cloud-amd64"),
            "6.1 is not a prefix of 6.19"
        );
        assert_eq!(
            newest(Flavour::Generic, "arm64", None).as_deref(),
            Some("6.19.14+deb13-arm64")
        );
        assert_eq!(newest(Flavour::Rt, "amd64", Some("7.3")), None);
    }

    #[test]
    fn versions() {
        assert!(is_version_prefix("6.19"));
        assert!(is_version_prefix("7.0.13"));
        assert!(!is_version_prefix("latest"));
        assert!(!is_version_prefix("6..1"));
        assert_eq!(upstream("7.3.4+deb13-rt-amd64"), "7.3.4");
        assert_eq!(upstream("6.1.0-50-cloud-amd64"), "6.1.0");
    }

    #[test]
    fn dependencies_named_after_the_release() {
        let deps = parse_depends_field(
            "dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, \
             linux-base-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1), \
             linux-binary-7.3.4+deb13-cloud-amd64:amd64 (= 7.3.4-1~bpo13+1), kmod",
        );
        assert_eq!(
            deps,
            [
                "dracut",
                "linux-base-7.3.4+deb13-cloud-amd64",
                "linux-binary-7.3.4+deb13-cloud-amd64",
                "kmod"
            ]
        );
        assert_eq!(
            release_dependencies(&deps, "7.3.4+deb13-cloud-amd64"),
            [
                "linux-base-7.3.4+deb13-cloud-amd64",
                "linux-binary-7.3.4+deb13-cloud-amd64"
            ]
        );
    }

    #[test]
    fn files_are_found_in_either_layout() {
        let dir = std::env::temp_dir().join(format!("reaper-lab-pkgs-{}", std::process::id()));
        let release = "7.3.4+deb13-cloud-amd64";
        let modules = dir.join("usr/lib/modules").join(release);
        std::fs::create_dir_all(&modules).unwrap();
        std::fs::create_dir_all(dir.join("boot")).unwrap();
        std::fs::write(modules.join("vmlinuz"), "x").unwrap();
        std::fs::write(dir.join("boot").join(format!("config-{release}")), "x").unwrap();
        let found = KernelFiles::find(&dir, release);
        assert_eq!(found.image, Some(modules.join("vmlinuz")));
        assert_eq!(
            found.config,
            Some(dir.join("boot").join(format!("config-{release}")))
        );
        assert_eq!(
            KernelFiles::find(&dir, "6.1.0-50-cloud-amd64"),
            KernelFiles::default()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
