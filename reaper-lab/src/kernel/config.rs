//! The kernel configuration reaper builds: a base (`make tinyconfig`, or
//! the user's own `.config` given with `--config FILE`), then reaper's
//! fragments (`kernel/reaper.config` and `kernel/reaper-<arch>.config` of
//! the repository, compiled into reaper-lab so it needs no checkout) and
//! any variant fragments given with `--fragment` (later ones override
//! earlier ones, as in merge_config.sh), then `make olddefconfig`; and the
//! check that every option of the fragments kept its value (Kconfig
//! silently drops an option whose dependencies are missing, or keeps one
//! that something selects).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::make::Make;
use super::patches::hex;
use crate::arch::Arch;

/// reaper's fragment for every architecture.
const REAPER: &str = include_str!("../../../kernel/reaper.config");
/// reaper's x86_64 fragment.
const REAPER_X86_64: &str = include_str!("../../../kernel/reaper-x86_64.config");
/// reaper's arm64 fragment.
const REAPER_ARM64: &str = include_str!("../../../kernel/reaper-arm64.config");
/// Where the fragments are written for merge_config.sh, in the build's
/// output directory.
const FRAGMENT_DIR: &str = ".reaper-lab-fragments";
/// The first line Kconfig writes into every `.config` it generates.
const KCONFIG_HEADER: &str = "# Automatically generated file; DO NOT EDIT.";

/// One config fragment: its name (for messages) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub name: String,
    pub text: String,
}

impl Fragment {
    /// Reads a fragment file the user gave.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config fragment {}", path.display()))?;
        Ok(Fragment {
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            text,
        })
    }
}

/// reaper's fragments for `arch`, common one first.
pub fn reaper_fragments(arch: Arch) -> [Fragment; 2] {
    let arch_text = match arch {
        Arch::X86_64 => REAPER_X86_64,
        Arch::Arm64 => REAPER_ARM64,
    };
    [
        Fragment {
            name: "reaper.config".into(),
            text: REAPER.into(),
        },
        Fragment {
            name: format!("reaper-{arch}.config"),
            text: arch_text.into(),
        },
    ]
}

/// The fragments for `arch`: reaper's, then the variant's `extra` files in
/// the order given.
pub fn fragments(arch: Arch, extra: &[PathBuf]) -> Result<Vec<Fragment>> {
    let mut list = reaper_fragments(arch).to_vec();
    for path in extra {
        list.push(Fragment::read(path)?);
    }
    Ok(list)
}

/// The hash of the fragments' contents (12 hex digits), and of the user's
/// base `.config` when there is one: the "config" part of a build's cache
/// key. Without a base it is the hash of the fragments alone, as it always
/// was, so earlier builds stay cached.
pub fn fragments_hash(fragments: &[Fragment], base: Option<&BaseConfig>) -> String {
    let mut h = Sha256::new();
    for f in fragments {
        h.update(f.text.as_bytes());
    }
    if let Some(base) = base {
        h.update(b"\0base .config\0");
        h.update(base.text.as_bytes());
    }
    hex(&h.finalize())[..12].to_string()
}

/// The user's own `.config` (`--config FILE`), the base reaper's fragments
/// are merged onto instead of tinyconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseConfig {
    pub path: PathBuf,
    pub text: String,
}

impl BaseConfig {
    /// Reads it, and says so when it does not look like a whole `.config`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--config {}: cannot read it", path.display()))?;
        if wanted_options(&text).is_empty() {
            bail!(
                "--config {}: no CONFIG_ option in it; pass a kernel .config",
                path.display()
            );
        }
        if !text.lines().take(5).any(|l| l.trim() == KCONFIG_HEADER) {
            eprintln!(
                "reaper-lab: note: --config {} has no Kconfig header, so it is taken as a whole \
                 .config (options it leaves out get their defaults); to add a few options on top \
                 of reaper's config, pass it with --fragment instead",
                path.display()
            );
        }
        Ok(BaseConfig {
            path: path.to_path_buf(),
            text,
        })
    }
}

/// The sha256 of a finished `.config` (12 hex digits), for results.md.
pub fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes))[..12].to_string())
}

/// The options of a fragment: `CONFIG_X=value` lines as `Some(value)`, and
/// `# CONFIG_X is not set` lines (how a variant turns an option off) as
/// `None`. Other comments are kept out.
pub fn wanted_options(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if let Some(name) = l
                .strip_prefix("# ")
                .and_then(|r| r.strip_suffix(" is not set"))
            {
                return name
                    .starts_with("CONFIG_")
                    .then(|| (name.to_string(), None));
            }
            let (k, v) = l.split_once('=')?;
            k.starts_with("CONFIG_")
                .then(|| (k.to_string(), Some(v.to_string())))
        })
        .collect()
}

/// Options of the fragments that `.config` does not carry with their value
/// (the last fragment naming an option wins). An option a fragment turns
/// off is missing when `.config` still sets it.
pub fn missing_options(fragment_texts: &[String], config: &str) -> Vec<String> {
    let have: std::collections::HashSet<&str> = config.lines().map(str::trim).collect();
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    for (k, v) in fragment_texts.iter().flat_map(|t| wanted_options(t)) {
        wanted.retain(|(old, _)| *old != k);
        wanted.push((k, v));
    }
    wanted
        .into_iter()
        .filter_map(|(k, v)| match v {
            Some(v) => {
                let line = format!("{k}={v}");
                (!have.contains(line.as_str())).then_some(line)
            }
            None => {
                let set = format!("{k}=");
                have.iter()
                    .any(|l| l.starts_with(&set))
                    .then(|| format!("{k} off"))
            }
        })
        .collect()
}

/// Writes `.config` in the build's output directory: the base (the user's
/// `.config`, or tinyconfig) + `frags` (from [`fragments`]) +
/// olddefconfig, then checks every fragment option survived.
pub fn configure(make: &Make, frags: &[Fragment], base: Option<&BaseConfig>) -> Result<()> {
    let out = make.out_dir();
    match base {
        Some(base) => std::fs::write(out.join(".config"), &base.text)
            .with_context(|| format!("copying {} into {}", base.path.display(), out.display()))?,
        None => make.quiet(&["tinyconfig"])?,
    }
    let dir = out.join(FRAGMENT_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut paths = Vec::with_capacity(frags.len());
    for (n, f) in frags.iter().enumerate() {
        let path = dir.join(format!("{n:02}-{}", f.name));
        std::fs::write(&path, &f.text).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    // merge_config.sh -m writes ./.config: run it in the output directory.
    let mut merge = std::process::Command::new("sh");
    merge
        .arg(make.tree.join("scripts/kconfig/merge_config.sh"))
        .args(["-m", ".config"])
        .args(&paths)
        .current_dir(out)
        .envs(make.env());
    crate::apt::run_captured(merge, "merging reaper's config fragments")?;
    make.quiet(&["olddefconfig"])?;
    let texts: Vec<String> = frags.iter().map(|f| f.text.clone()).collect();
    let config =
        std::fs::read_to_string(out.join(".config")).context("reading the generated .config")?;
    let missing = missing_options(&texts, &config);
    if !missing.is_empty() {
        bail!(
            "Kconfig did not keep options of reaper's fragments as asked (a dependency is off{}, \
             a tool is missing, e.g. pahole for DEBUG_INFO_BTF, or another option selects one \
             a variant turns off): {}",
            if base.is_some() {
                " in your --config"
            } else {
                ""
            },
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_options_are_the_dropped_ones() {
        let frag = "# why\nCONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n".to_string();
        let config = "CONFIG_A=y\n# CONFIG_B is not set\n";
        assert_eq!(missing_options(&[frag], config), ["CONFIG_B=y"]);
    }

    #[test]
    fn a_later_fragment_turns_an_option_off() {
        let base = "CONFIG_A=y\nCONFIG_B=y\n".to_string();
        let variant = "# B off, because\n# CONFIG_B is not set\n".to_string();
        let texts = [base, variant];
        assert!(missing_options(&texts, "CONFIG_A=y\n# CONFIG_B is not set\n").is_empty());
        assert!(missing_options(&texts, "CONFIG_A=y\n").is_empty());
        // Something selected it back on: the variant did not take.
        assert_eq!(
            missing_options(&texts, "CONFIG_A=y\nCONFIG_B=y\n"),
            ["CONFIG_B off"]
        );
    }

    fn variant() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/variants/no-ftrace-syscalls.config")
    }

    #[test]
    fn the_default_fragments_hash_is_the_variant_free_one() {
        // The cache key of the default build must not move when variants exist.
        let arch = Arch::X86_64;
        let default = fragments(arch, &[]).unwrap();
        assert_eq!(
            fragments_hash(&default, None),
            fragments_hash(&default[..2], None)
        );
        let with_variant = fragments(arch, &[variant()]).unwrap();
        assert_ne!(
            fragments_hash(&default, None),
            fragments_hash(&with_variant, None)
        );
        // A user's base .config is part of the key.
        let base = BaseConfig {
            path: "x".into(),
            text: "CONFIG_A=y\n".into(),
        };
        assert_ne!(
            fragments_hash(&default, None),
            fragments_hash(&default, Some(&base))
        );
    }

    /// The embedded fragments are the repository's files, byte for byte,
    /// and hash as those files always did (the build cache key).
    #[test]
    fn embedded_fragments_are_the_repository_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel");
        for arch in [Arch::X86_64, Arch::Arm64] {
            let mut h = Sha256::new();
            for f in reaper_fragments(arch) {
                let file = std::fs::read_to_string(dir.join(&f.name)).unwrap();
                assert_eq!(f.text, file, "{}", f.name);
                h.update(file.as_bytes());
            }
            let embedded = reaper_fragments(arch).to_vec();
            assert_eq!(fragments_hash(&embedded, None), hex(&h.finalize())[..12]);
        }
    }

    #[test]
    fn the_no_ftrace_syscalls_variant_turns_it_off() {
        let text = std::fs::read_to_string(variant()).unwrap();
        assert_eq!(
            wanted_options(&text),
            [("CONFIG_FTRACE_SYSCALLS".to_string(), None)]
        );
    }

    #[test]
    fn the_repository_fragments_exist_for_both_arches() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            for f in reaper_fragments(arch) {
                assert!(!wanted_options(&f.text).is_empty(), "{}", f.name);
            }
        }
    }
}
