//! The kernel configuration reaper builds: `make tinyconfig`, then the
//! fragments kept in the repository's `kernel/` directory (`reaper.config`
//! and `reaper-<arch>.config`), then `make olddefconfig`; and the check
//! that every option of the fragments kept its value (Kconfig silently drops
//! an option whose dependencies are missing).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::make::Make;
use super::patches::hex;
use crate::vm::arch::Arch;

/// The fragments for `arch`, common one first.
pub fn fragments(arch: Arch) -> Vec<PathBuf> {
    let dir = crate::vm::cache::workspace_root().join("kernel");
    vec![
        dir.join("reaper.config"),
        dir.join(format!("reaper-{arch}.config")),
    ]
}

/// The hash of the fragments' contents (12 hex digits): the "config" part
/// of a build's cache key.
pub fn fragments_hash(arch: Arch) -> Result<String> {
    let mut h = Sha256::new();
    for f in fragments(arch) {
        let bytes = std::fs::read(&f)
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

/// `CONFIG_X=value` lines of a fragment (comments and `# … is not set` kept
/// out: the fragments only turn options on).
pub fn wanted_options(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            k.starts_with("CONFIG_")
                .then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Options of the fragments that `.config` does not carry with their value.
pub fn missing_options(fragment_texts: &[String], config: &str) -> Vec<String> {
    let have: std::collections::HashSet<&str> = config.lines().map(str::trim).collect();
    fragment_texts
        .iter()
        .flat_map(|t| wanted_options(t))
        .map(|(k, v)| format!("{k}={v}"))
        .filter(|line| !have.contains(line.as_str()))
        .collect()
}

/// Writes `.config` in `tree`: tinyconfig + fragments + olddefconfig, then
/// checks every fragment option survived.
pub fn configure(make: &Make, arch: Arch) -> Result<()> {
    make.quiet(&["tinyconfig"])?;
    let frags = fragments(arch);
    let mut merge = std::process::Command::new("sh");
    merge
        .arg("scripts/kconfig/merge_config.sh")
        .args(["-m", ".config"])
        .args(&frags)
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
            "Kconfig dropped options of reaper's fragments (a dependency is off or a tool is \
             missing, e.g. pahole for DEBUG_INFO_BTF): {}",
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
    fn the_repository_fragments_exist_for_both_arches() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            for f in fragments(arch) {
                let text = std::fs::read_to_string(&f).unwrap();
                assert!(!wanted_options(&text).is_empty(), "{}", f.display());
            }
        }
    }
}
