//! A kernel tree the user keeps in git (`--src DIR` with revisions),
//! built at any revision without touching the user's checkout: the user's
//! repository is only read (its objects, through `git --git-dir`), and the
//! revision's files are checked out into a mirror directory in the build
//! cache with a private index (`GIT_INDEX_FILE`), never the user's index,
//! work tree or refs. `git status` in DIR is the same before and after.
//!
//! Switching the mirror from one revision to another (`git read-tree -m
//! -u`) rewrites only the files that differ, so their objects in the build
//! directory (`make O=`) are the only ones make rebuilds: the candidate is
//! an incremental build of the base.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::patches::hex;
use crate::apt::run_captured;

/// The user's repository, read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// DIR as given (canonical).
    pub dir: PathBuf,
    /// Its git directory (absolute; a linked work tree's own one).
    git_dir: PathBuf,
    /// A name for the cache: a hash of the repository's common git
    /// directory, so every work tree of one repository shares a mirror.
    pub key: String,
}

/// A revision resolved to its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// As the user wrote it (`HEAD~1`, `v6.1`, a branch).
    pub rev: String,
    /// The full commit id.
    pub sha: String,
    /// Its subject line.
    pub subject: String,
}

impl Commit {
    /// `abc123def456 (HEAD~1: mm: subject)`.
    pub fn describe(&self) -> String {
        format!("{} ({}: {})", &self.sha[..12], self.rev, self.subject)
    }
}

/// Whether `dir` is inside a git work tree.
pub fn is_repo(dir: &Path) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"true"))
}

impl Repo {
    /// Opens the repository whose work tree is `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        if crate::host::find_in_path("git").is_none() {
            crate::host::install(&["git (to read --src revisions)".into()], &["git"])?;
            if crate::host::find_in_path("git").is_none() {
                bail!(
                    "--src {} with revisions needs git; install it (Debian: git)",
                    dir.display()
                );
            }
        }
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("--src {}: no such directory", dir.display()))?;
        let ask = |args: &[&str]| -> Result<String> {
            let mut cmd = Command::new("git");
            cmd.arg("-C").arg(&dir).args(args);
            Ok(
                run_captured(cmd, &format!("git {} in {}", args.join(" "), dir.display()))?
                    .trim()
                    .to_string(),
            )
        };
        let git_dir = PathBuf::from(ask(&["rev-parse", "--absolute-git-dir"])?);
        let common = ask(&["rev-parse", "--git-common-dir"])?;
        let common = std::fs::canonicalize(git_dir.join(&common)).unwrap_or(git_dir.clone());
        let key = hex(&Sha256::digest(common.as_os_str().as_encoded_bytes()))[..8].to_string();
        Ok(Repo { dir, git_dir, key })
    }

    /// `git` reading this repository (never writing it).
    fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir").arg(&self.git_dir);
        // Nothing of ours may take the user's index lock or refresh it.
        cmd.env("GIT_OPTIONAL_LOCKS", "0");
        cmd
    }

    /// Resolves `rev` to a commit.
    pub fn resolve(&self, rev: &str) -> Result<Commit> {
        let mut parse = self.git();
        parse.args(["rev-parse", "--verify", "--end-of-options"]);
        parse.arg(format!("{rev}^{{commit}}"));
        let sha = run_captured(
            parse,
            &format!("resolving {rev:?} in {}", self.dir.display()),
        )
        .with_context(|| {
            format!(
                "--src {}: {rev:?} is not a commit there",
                self.dir.display()
            )
        })?
        .trim()
        .to_string();
        let mut log = self.git();
        log.args(["log", "-1", "--format=%s", &sha]);
        let subject = run_captured(log, &format!("reading the subject of {sha}"))?
            .trim()
            .to_string();
        Ok(Commit {
            rev: rev.to_string(),
            sha,
            subject,
        })
    }

    /// The text of `path` at `commit`.
    pub fn show(&self, commit: &Commit, path: &str) -> Result<String> {
        let mut show = self.git();
        show.args(["show", &format!("{}:{path}", commit.sha)]);
        run_captured(show, &format!("reading {path} at {}", commit.sha))
    }

    /// `git` on the mirror at `work` with the private index `index`.
    fn mirror_git(&self, work: &Path, index: &Path) -> Command {
        let mut cmd = self.git();
        cmd.arg("--work-tree")
            .arg(work)
            .env("GIT_INDEX_FILE", index)
            .current_dir(work);
        cmd
    }

    /// Makes the mirror `work` (index `index`) hold `commit`'s files: a
    /// fresh checkout the first time, then only the files that differ from
    /// what it holds (and any file found modified is restored).
    pub fn checkout(&self, work: &Path, index: &Path, commit: &Commit) -> Result<()> {
        let state = index.with_extension("commit");
        let held = std::fs::read_to_string(&state).ok();
        let held = held.as_deref().map(str::trim).filter(|h| !h.is_empty());
        let fresh = held.is_none() || !work.is_dir() || !index.is_file();
        if fresh {
            eprintln!(
                "reaper-lab: kernel: checking out {} into {} (once per repository)",
                commit.describe(),
                work.display()
            );
            let _ = std::fs::remove_dir_all(work);
            let _ = std::fs::remove_file(index);
            std::fs::create_dir_all(work)
                .with_context(|| format!("creating {}", work.display()))?;
            let mut read = self.mirror_git(work, index);
            read.args(["read-tree", &commit.sha]);
            run_captured(read, &format!("git read-tree {}", commit.sha))?;
            let mut out = self.mirror_git(work, index);
            out.args(["checkout-index", "-a", "-f", "-u"]);
            run_captured(out, &format!("checking out {}", commit.sha))?;
        } else if held != Some(commit.sha.as_str()) {
            let held = held.unwrap_or_default();
            self.restore_modified(work, index)?;
            eprintln!(
                "reaper-lab: kernel: switching {} to {}",
                work.display(),
                commit.describe()
            );
            let mut switch = self.mirror_git(work, index);
            switch.args(["read-tree", "-m", "-u", held, &commit.sha]);
            run_captured(
                switch,
                &format!("git read-tree -m -u {held} {}", commit.sha),
            )?;
        }
        self.restore_modified(work, index)?;
        std::fs::write(&state, &commit.sha).with_context(|| format!("writing {}", state.display()))
    }

    /// Restores files of the mirror that differ from its index (left by an
    /// interrupted build, or edited by hand), and only those.
    fn restore_modified(&self, work: &Path, index: &Path) -> Result<()> {
        let mut refresh = self.mirror_git(work, index);
        refresh.args(["update-index", "-q", "--refresh"]);
        // Exits 1 when files need updating; diff-files below says which.
        let _ = refresh.output();
        let mut diff = self.mirror_git(work, index);
        diff.args(["diff-files", "--name-only", "-z"]);
        let listed = run_captured(diff, "listing modified files of the mirror")?;
        let paths: Vec<&str> = listed.split('\0').filter(|p| !p.is_empty()).collect();
        if paths.is_empty() {
            return Ok(());
        }
        eprintln!(
            "reaper-lab: kernel: restoring {} modified file(s) in {}",
            paths.len(),
            work.display()
        );
        let mut restore = self.mirror_git(work, index);
        restore
            .args(["checkout-index", "-f", "-u", "--"])
            .args(&paths);
        run_captured(restore, "restoring modified files of the mirror").map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn mtime(p: &Path) -> std::time::SystemTime {
        std::fs::metadata(p).unwrap().modified().unwrap()
    }

    /// The user's repository stays as it was (status, index, HEAD), the
    /// mirror holds each revision's files, and a switch rewrites only the
    /// files that differ.
    #[test]
    fn revisions_are_checked_out_outside_the_users_tree() {
        if crate::host::find_in_path("git").is_none() {
            eprintln!("skipped: no git on PATH");
            return;
        }
        let dir = std::env::temp_dir().join(format!("reaper-lab-git-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let user = dir.join("linux");
        std::fs::create_dir_all(user.join("mm")).unwrap();
        git(&user, &["init", "-q"]);
        std::fs::write(user.join("Makefile"), "VERSION = 6\n").unwrap();
        std::fs::write(user.join("mm/oom_kill.c"), "forward\n").unwrap();
        git(&user, &["add", "."]);
        git(&user, &["commit", "-q", "-m", "base"]);
        std::fs::write(user.join("mm/oom_kill.c"), "reverse\n").unwrap();
        git(&user, &["commit", "-q", "-am", "mm: reverse"]);
        // The user has work in progress: it must survive untouched.
        std::fs::write(user.join("Makefile"), "VERSION = 7\n").unwrap();
        std::fs::write(user.join("notes.txt"), "wip\n").unwrap();
        let status_before = git(&user, &["status", "--porcelain"]);
        let index = user.join(".git/index");
        let index_before = std::fs::read(&index).unwrap();

        let repo = Repo::open(&user).unwrap();
        let base = repo.resolve("HEAD~1").unwrap();
        let cand = repo.resolve("HEAD").unwrap();
        assert_eq!(cand.subject, "mm: reverse");
        assert!(repo.resolve("no-such-branch").is_err());
        let work = dir.join("cache/src");
        let private = dir.join("cache/index");
        repo.checkout(&work, &private, &base).unwrap();
        let read = |p: &str| std::fs::read_to_string(work.join(p)).unwrap();
        assert_eq!(
            (read("Makefile").as_str(), read("mm/oom_kill.c").as_str()),
            ("VERSION = 6\n", "forward\n")
        );
        let makefile_time = mtime(&work.join("Makefile"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        repo.checkout(&work, &private, &cand).unwrap();
        assert_eq!(read("mm/oom_kill.c"), "reverse\n");
        assert_eq!(
            mtime(&work.join("Makefile")),
            makefile_time,
            "unchanged files keep their mtime"
        );
        // A file left patched by an interrupted build is restored.
        std::fs::write(work.join("mm/oom_kill.c"), "patched\n").unwrap();
        repo.checkout(&work, &private, &base).unwrap();
        assert_eq!(read("mm/oom_kill.c"), "forward\n");

        assert_eq!(git(&user, &["status", "--porcelain"]), status_before);
        assert_eq!(std::fs::read(&index).unwrap(), index_before);
        assert_eq!(
            git(&user, &["log", "-1", "--format=%s"]).trim(),
            "mm: reverse"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
