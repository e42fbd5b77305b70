//! The kernel configuration reaper builds: a base (`make tinyconfig`, or
//! the user's own `.config` given with `--config FILE`), then reaper's
//! fragments and any variant fragments given with `--fragment`
//! ([`super::fragments`]) (later ones override
//! earlier ones, as in merge_config.sh), then `make olddefconfig`; and the
//! check that every option of the fragments kept its value (Kconfig
//! silently drops an option whose dependencies are missing, or keeps one
//! that something selects).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::fragments::Fragment;
use super::make::Make;
use super::patches::hex;

/// Where the fragments are written for merge_config.sh, in the build's
/// output directory.
const FRAGMENT_DIR: &str = ".reaper-lab-fragments";
/// The first line Kconfig writes into every `.config` it generates.
const KCONFIG_HEADER: &str = "# Automatically generated file; DO NOT EDIT.";

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

    #[test]
    fn the_repository_fragments_exist_for_both_arches() {
        use super::super::fragments::reaper_fragments;
        use crate::arch::Arch;
        for arch in [Arch::X86_64, Arch::Arm64] {
            for f in reaper_fragments(arch) {
                assert!(!wanted_options(&f.text).is_empty(), "{}", f.name);
            }
        }
    }
}
