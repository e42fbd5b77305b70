//! Kernel patches for `cargo xtask kernel build --patch FILE`: their subject
//! and hash (for labels and the build cache), applying them in order with
//! `patch -p1` (failing with the file and hunk that did not apply), and
//! reversing them again once the patched image is built.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// One patch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub path: PathBuf,
    /// The `Subject:` line without its `[PATCH …]` tag, or the file name.
    pub subject: String,
    /// sha256 of the file's bytes, hex.
    pub sha256: String,
}

impl Patch {
    /// Reads a patch file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("--patch {}: cannot read it", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let subject = subject(&text).unwrap_or_else(|| {
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        Ok(Patch {
            path: path.to_path_buf(),
            subject,
            sha256: hex(&Sha256::digest(&bytes)),
        })
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of a patch set (order matters), "none" for no patches.
pub fn set_hash(patches: &[Patch]) -> String {
    if patches.is_empty() {
        return "none".to_string();
    }
    let mut h = Sha256::new();
    for p in patches {
        h.update(p.sha256.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())[..12].to_string()
}

/// The `Subject:` of a mail-formatted patch, without `[PATCH …]` prefixes.
pub fn subject(text: &str) -> Option<String> {
    let line = text
        .lines()
        .take_while(|l| !l.starts_with("diff ") && !l.starts_with("--- "))
        .find_map(|l| l.strip_prefix("Subject:"))?;
    let mut s = line.trim();
    while let Some(rest) = s.strip_prefix('[') {
        s = rest
            .split_once(']')
            .map_or(rest, |(_, after)| after)
            .trim_start();
    }
    (!s.is_empty()).then(|| s.to_string())
}

/// Which way patch(1) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// Applies `patches` to the tree in order. Each is first tried with
/// `--dry-run`, so a failing patch leaves the tree as it was; the ones
/// already applied are reversed before the error is returned.
pub fn apply_all(tree: &Path, patches: &[Patch]) -> Result<()> {
    for (n, p) in patches.iter().enumerate() {
        let dry = run_patch(tree, &p.path, Direction::Forward, true)?;
        if !dry.0 {
            let undo = reverse_all(tree, &patches[..n]);
            bail!(
                "patch {} does not apply to {}:\n{}{}",
                p.path.display(),
                tree.display(),
                failure_summary(&dry.1),
                undo.err().map_or_else(String::new, |e| format!(
                    "\n(and undoing the earlier patches failed: {e:#})"
                ))
            );
        }
        let real = run_patch(tree, &p.path, Direction::Forward, false)?;
        if !real.0 {
            bail!(
                "patch {} failed after a clean dry run:\n{}",
                p.path.display(),
                real.1
            );
        }
        eprintln!(
            "xtask: kernel: applied {} ({})",
            p.path.display(),
            p.subject
        );
    }
    Ok(())
}

/// Reverses `patches` (applied in this order) last first, leaving the tree
/// as it was before [`apply_all`].
pub fn reverse_all(tree: &Path, patches: &[Patch]) -> Result<()> {
    for p in patches.iter().rev() {
        let (ok, text) = run_patch(tree, &p.path, Direction::Reverse, false)?;
        if !ok {
            bail!(
                "reversing patch {} in {} failed:\n{}",
                p.path.display(),
                tree.display(),
                failure_summary(&text)
            );
        }
    }
    Ok(())
}

fn run_patch(
    tree: &Path,
    patch: &Path,
    direction: Direction,
    dry_run: bool,
) -> Result<(bool, String)> {
    let patch =
        std::path::absolute(patch).with_context(|| format!("resolving {}", patch.display()))?;
    let mut cmd = Command::new("patch");
    cmd.args(["-p1", "--batch", "--no-backup-if-mismatch"]);
    cmd.arg(match direction {
        Direction::Forward => "--forward",
        Direction::Reverse => "--reverse",
    });
    cmd.arg("-i").arg(&patch).current_dir(tree);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd
        .output()
        .context("running patch(1); install the `patch` package")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// The lines of patch(1)'s output that say which file and hunk failed.
pub fn failure_summary(output: &str) -> String {
    let mut file = None;
    let mut lines = Vec::new();
    for line in output.lines() {
        if let Some(f) = line
            .strip_prefix("checking file ")
            .or(line.strip_prefix("patching file "))
        {
            file = Some(f.to_string());
        } else if line.starts_with("Hunk #") && line.contains("FAILED") {
            lines.push(format!(
                "  {}: {line}",
                file.as_deref().unwrap_or("(unknown file)")
            ));
        } else if line.contains("Reversed (or previously applied)")
            || line.contains("can't find file")
            || line.contains("malformed patch")
            || line.contains("Only garbage")
        {
            lines.push(format!("  {line}"));
        }
    }
    if lines.is_empty() {
        output.to_string()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_drops_patch_tags() {
        let text = "From: x\nSubject: [PATCH 6.1] mm/oom_kill: The OOM reaper walks\n\n---\n";
        assert_eq!(
            subject(text).as_deref(),
            Some("mm/oom_kill: The OOM reaper walks")
        );
        assert_eq!(subject("--- a/x\n+++ b/x\n"), None);
    }

    #[test]
    fn failed_hunks_name_file_and_hunk() {
        let out = "checking file mm/oom_kill.c\nHunk #2 FAILED at 530.\n1 out of 2 hunks FAILED\n";
        assert_eq!(
            failure_summary(out),
            "  mm/oom_kill.c: Hunk #2 FAILED at 530."
        );
    }

    #[test]
    fn set_hash_depends_on_order() {
        let p = |h: &str| Patch {
            path: PathBuf::from(h),
            subject: h.to_string(),
            sha256: h.repeat(64),
        };
        assert_eq!(set_hash(&[]), "none");
        assert_ne!(set_hash(&[p("a"), p("b")]), set_hash(&[p("b"), p("a")]));
    }
}
