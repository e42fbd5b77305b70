//! The kernel configuration reaper builds: `make tinyconfig`, then the
//! fragments kept in the repository's `kernel/` directory (`reaper.config`
//! and `reaper-<arch>.config`) and any variant fragments given with
//! `--config` (later ones override earlier ones, as in merge_config.sh),
//! then `make olddefconfig`; and the check that every option of the
//! fragments kept its value (Kconfig silently drops an option whose
//! dependencies are missing, or keeps one that something selects).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::make::Make;
use super::patches::hex;
use crate::vm::arch::Arch;

/// The fragments for `arch`, common one first, then the variant's `extra`
/// in the order given.
pub fn fragments(arch: Arch, extra: &[PathBuf]) -> Vec<PathBuf> {
    let dir = crate::vm::cache::workspace_root().join("kernel");
    let mut list = vec![
        dir.join("reaper.config"),
        dir.join(format!("reaper-{arch}.config")),
    ];
    list.extend(extra.iter().cloned());
    list
}

/// The hash of the fragments' contents (12 hex digits): the "config" part
/// of a build's cache key.
pub fn fragments_hash(fragments: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    for f in fragments {
        let bytes = std::fs::read(f)
            .with_context(|| format!("reading the config fragment {}", f.display()))?;
        h.update(&bytes);
    }
    Ok(hex(&h.finalize())[..12].to_string())
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

/// Writes `.config` in `tree`: tinyconfig + `frags` (from [`fragments`]) +
/// olddefconfig, then checks every fragment option survived.
pub fn configure(make: &Make, frags: &[PathBuf]) -> Result<()> {
    make.quiet(&["tinyconfig"])?;
    let mut merge = std::process::Command::new("sh");
    merge
        .arg("scripts/kconfig/merge_config.sh")
        .args(["-m", ".config"])
        .args(frags)
        .current_dir(&make.tree)
        .envs(make.env());
    crate::apt::run_captured(merge, "merging reaper's config fragments")?;
    make.quiet(&["olddefconfig"])?;
    let texts = frags
        .iter()
        .map(|f| std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let config = std::fs::read_to_string(make.tree.join(".config"))
        .context("reading the generated .config")?;
    let missing = missing_options(&texts, &config);
    if !missing.is_empty() {
        bail!(
            "Kconfig did not keep options of reaper's fragments as asked (a dependency is off, \
             a tool is missing, e.g. pahole for DEBUG_INFO_BTF, or another option selects one \
             a variant turns off): {}",
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
    fn the_default_fragments_hash_is_the_variant_free_one() {
        // The cache key of the default build must not move when variants exist.
        let arch = Arch::X86_64;
        assert_eq!(
            fragments_hash(&fragments(arch, &[])).unwrap(),
            fragments_hash(&fragments(arch, &[])[..2]).unwrap()
        );
        let variant =
            crate::vm::cache::workspace_root().join("kernel/variants/no-ftrace-syscalls.config");
        assert_ne!(
            fragments_hash(&fragments(arch, &[])).unwrap(),
            fragments_hash(&fragments(arch, &[variant])).unwrap()
        );
    }

    #[test]
    fn the_no_ftrace_syscalls_variant_turns_it_off() {
        let variant =
            crate::vm::cache::workspace_root().join("kernel/variants/no-ftrace-syscalls.config");
        let text = std::fs::read_to_string(variant).unwrap();
        assert_eq!(
            wanted_options(&text),
            [("CONFIG_FTRACE_SYSCALLS".to_string(), None)]
        );
    }

    #[test]
    fn the_repository_fragments_exist_for_both_arches() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            for f in fragments(arch, &[]) {
                let text = std::fs::read_to_string(&f).unwrap();
                assert!(!wanted_options(&text).is_empty(), "{}", f.display());
            }
        }
    }
}
