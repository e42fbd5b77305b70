//! reaper's kernel config fragments (`kernel/reaper.config` and
//! `kernel/reaper-<arch>.config` of the repository, compiled into
//! reaper-lab so it needs no checkout), the variant fragments a user adds
//! with `--fragment`, and the hash that keys the build cache.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::patches::hex;
use crate::arch::Arch;

/// reaper's fragment for every architecture.
const REAPER: &str = include_str!("../../../kernel/reaper.config");
/// reaper's x86_64 fragment.
const REAPER_X86_64: &str = include_str!("../../../kernel/reaper-x86_64.config");
/// reaper's arm64 fragment.
const REAPER_ARM64: &str = include_str!("../../../kernel/reaper-arm64.config");
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
/// base `.config` (its text) when there is one: the "config" part of a build's cache
/// key. Without a base it is the hash of the fragments alone, as it always
/// was, so earlier builds stay cached.
pub fn fragments_hash(fragments: &[Fragment], base: Option<&str>) -> String {
    let mut h = Sha256::new();
    for f in fragments {
        h.update(f.text.as_bytes());
    }
    if let Some(base) = base {
        h.update(b"\0base .config\0");
        h.update(base.as_bytes());
    }
    hex(&h.finalize())[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::super::config::wanted_options;
    use super::*;

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
        assert_ne!(
            fragments_hash(&default, None),
            fragments_hash(&default, Some("CONFIG_A=y\n"))
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
}
