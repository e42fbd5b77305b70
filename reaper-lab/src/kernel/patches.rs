//! Kernel patches for `reaper-lab kernel build --patch FILE`: a plain diff,
//! one mail (`git format-patch`), or a series of mails in one mbox file
//! (what `git format-patch --stdout` writes and `git am` takes; a cover
//! letter without a diff is skipped), each mail one patch; their subject
//! and hash (for labels and the build cache), applying them in order with
//! `patch -p1` (failing with the file and hunk that did not apply), and
//! reversing them again once the patched image is built.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::mbox;

/// One patch: a file, or one mail of an mbox series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The file it was read from (a copy in the tree while applied).
    pub path: PathBuf,
    /// Its place in a series of several mails in `path`: (n, of).
    pub part: Option<(usize, usize)>,
    /// The `Subject:` line without its `[PATCH …]` tag, or the file name.
    pub subject: String,
    /// sha256 of its bytes, hex.
    pub sha256: String,
    /// Its bytes (what patch(1) is given).
    pub bytes: Vec<u8>,
}

impl Patch {
    /// Reads a patch file holding one patch (or taken as one).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("--patch {}: cannot read it", path.display()))?;
        Ok(Self::from_bytes(path, None, bytes))
    }

    fn from_bytes(path: &Path, part: Option<(usize, usize)>, bytes: Vec<u8>) -> Self {
        let text = String::from_utf8_lossy(&bytes);
        let subject = subject(&text).unwrap_or_else(|| {
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        Patch {
            path: path.to_path_buf(),
            part,
            subject,
            sha256: hex(&Sha256::digest(&bytes)),
            bytes,
        }
    }

    /// Reads `--patch FILE`: a plain diff or one mail is one patch (hashed
    /// as the whole file, as always); an mbox of several mails is one patch
    /// per mail that carries a diff, in order.
    pub fn read_series(path: &Path) -> Result<Vec<Self>> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("--patch {}: cannot read it", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let mails = mbox::split(&text);
        if mails.len() <= 1 {
            return Ok(vec![Self::from_bytes(path, None, bytes)]);
        }
        let with_diff: Vec<&str> = mails
            .iter()
            .copied()
            .filter(|m| mbox::has_diff(m))
            .collect();
        for skipped in mails.iter().filter(|m| !mbox::has_diff(m)) {
            eprintln!(
                "reaper-lab: --patch {}: skipping a mail without a diff ({})",
                path.display(),
                subject(skipped).unwrap_or_else(|| "no subject".into())
            );
        }
        if with_diff.is_empty() {
            bail!(
                "--patch {}: none of its {} mails holds a diff",
                path.display(),
                mails.len()
            );
        }
        let of = with_diff.len();
        Ok(with_diff
            .into_iter()
            .enumerate()
            .map(|(n, mail)| Self::from_bytes(path, Some((n + 1, of)), mail.as_bytes().to_vec()))
            .collect())
    }

    /// The file name, with `[n/of]` for a mail of a series.
    pub fn label(&self) -> String {
        let name = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        match self.part {
            Some((n, of)) => format!("{name} [{n}/{of}]"),
            None => name,
        }
    }
}

/// The patches of every `--patch FILE`, in order ([`Patch::read_series`]).
pub fn read_all(files: &[PathBuf]) -> Result<Vec<Patch>> {
    let mut all = Vec::new();
    for file in files {
        all.extend(Patch::read_series(file)?);
    }
    Ok(all)
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

/// The `Subject:` of a mail-formatted patch (with its folded continuation
/// lines), without `[PATCH …]` prefixes.
pub fn subject(text: &str) -> Option<String> {
    let mut lines = text
        .lines()
        .take_while(|l| !l.starts_with("diff ") && !l.starts_with("--- "))
        .skip_while(|l| !l.starts_with("Subject:"));
    let mut line = lines.next()?.strip_prefix("Subject:")?.trim().to_string();
    for folded in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        line.push(' ');
        line.push_str(folded.trim());
    }
    let mut s = line.as_str();
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
            "reaper-lab: kernel: applied {} ({})",
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
            part: None,
            subject: h.to_string(),
            sha256: h.repeat(64),
            bytes: Vec::new(),
        };
        assert_eq!(set_hash(&[]), "none");
        assert_ne!(set_hash(&[p("a"), p("b")]), set_hash(&[p("b"), p("a")]));
    }

    use super::super::mbox::tests::SERIES;

    #[test]
    fn an_mbox_series_is_one_patch_per_mail_with_a_diff() {
        let dir = std::env::temp_dir().join(format!("reaper-lab-mbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("series.mbox");
        std::fs::write(&file, SERIES).unwrap();
        let series = Patch::read_series(&file).unwrap();
        let subjects: Vec<&str> = series.iter().map(|p| p.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "mm/oom_kill: first change that has a long subject folded over two lines",
                "mm: second"
            ]
        );
        assert_eq!(series[1].label(), "series.mbox [2/2]");
        assert!(String::from_utf8_lossy(&series[1].bytes).starts_with("From 3333"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A plain diff, or one mail, is one patch hashed as the whole file, so
    /// builds cached before series were read keep their keys.
    #[test]
    fn a_single_patch_is_the_whole_file() {
        let diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        let dir = std::env::temp_dir().join(format!("reaper-lab-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("x.diff");
        std::fs::write(&file, diff).unwrap();
        let series = Patch::read_series(&file).unwrap();
        assert_eq!(series, [Patch::read(&file).unwrap()]);
        assert_eq!(series[0].sha256, hex(&Sha256::digest(diff.as_bytes())));
        assert_eq!(series[0].label(), "x.diff");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
