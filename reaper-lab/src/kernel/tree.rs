//! The one build tree per (source, arch): unpacked once, locked while a
//! build uses it, and patched only for the length of a patched build.
//!
//! A and B of an A/B share this tree so B is a true incremental build: the
//! patches are applied, the image is built (make recompiles only what they
//! touch), the image is copied out, and the patches are reversed. A copy of
//! a built tree is not incremental: the copy rebuilds `tools/objtool`
//! (its build records absolute paths) and every object depends on objtool.
//!
//! The patches applied at a time are copied into `.xtask-applied/` (the
//! name earlier versions used, so their leftovers are still undone) in the
//! tree, so a build that was killed while patched is undone by the next one.
//!
//! A config variant (`--fragment FRAGMENT`) has its own tree beside `base`,
//! named by its fragments' file names ([`tree_name`]): reconfiguring the
//! default tree would recompile most of it twice (for the variant and back),
//! and the variant's tree stays incremental for its own A and B.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::patches::{self, Patch};
use super::source::Source;

/// Where the copies of the currently applied patches live, in the tree.
const APPLIED_DIR: &str = ".xtask-applied";

/// The tree of the default configuration.
pub const DEFAULT_TREE: &str = "base";
/// The tree of builds from the user's `.config`.
const USER_CONFIG_TREE: &str = "config";
/// A git tree's mirror (its checked-out revision) and private index.
const GIT_MIRROR: &str = "src";
const GIT_INDEX: &str = "index";

/// The tree a build with these extra fragments uses: `base` without any,
/// else `base+<stem>+<stem>…` (file stems, reduced to `[A-Za-z0-9_.-]`),
/// so editing a variant's fragment rebuilds that tree incrementally; with
/// the user's own `.config` (`user_config`), `config` instead of `base`
/// (one tree for whatever `.config` the user passes: a new one rebuilds it
/// as incrementally as Kbuild can).
pub fn tree_name(extra_fragments: &[PathBuf], user_config: bool) -> String {
    let mut name = if user_config {
        USER_CONFIG_TREE.to_string()
    } else {
        DEFAULT_TREE.to_string()
    };
    for f in extra_fragments {
        let stem = f
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let stem: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        name.push('+');
        name.push_str(&stem);
    }
    name
}

/// An exclusive hold on one build tree (released on drop).
pub struct Tree {
    /// The source tree.
    pub path: PathBuf,
    /// The build directory (`make O=`), or `None` when building in the tree.
    pub objdir: Option<PathBuf>,
    _lock: File,
}

impl Tree {
    /// Locks the tree `root/name` (waiting for another build of the same
    /// tree), unpacks the source into it if needed, and undoes patches a
    /// killed build left applied. A git revision's tree is the mirror
    /// `root/src`, shared by every revision and variant (so one lock for
    /// all of them), checked out at the revision; its objects go to the
    /// build directory `root/obj-<name>`.
    pub fn open(root: &Path, name: &str, src: &Source) -> Result<Tree> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        // The default tree keeps the lock file name it always had.
        let lock_path = if name == DEFAULT_TREE || src.is_git() {
            root.join(".lock")
        } else {
            root.join(format!(".lock-{name}"))
        };
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            eprintln!(
                "reaper-lab: kernel: waiting for another build in {}",
                root.display()
            );
            lock.lock()
                .with_context(|| format!("locking {}", lock_path.display()))?;
        }
        let (path, objdir) = if src.is_git() {
            (
                root.join(GIT_MIRROR),
                Some(root.join(format!("obj-{name}"))),
            )
        } else {
            (root.join(name), None)
        };
        let tree = Tree {
            path,
            objdir,
            _lock: lock,
        };
        if tree.path.exists() {
            tree.undo_leftover()?;
        }
        src.prepare(&tree.path, &root.join(GIT_INDEX))?;
        if let Some(objdir) = &tree.objdir {
            std::fs::create_dir_all(objdir)
                .with_context(|| format!("creating {}", objdir.display()))?;
        }
        Ok(tree)
    }

    /// Applies `patches` for one build; they are reversed when the returned
    /// guard is dropped (also on error).
    pub fn apply<'t>(&'t self, list: &[Patch]) -> Result<Applied<'t>> {
        if list.is_empty() {
            return Ok(Applied {
                tree: self,
                patches: Vec::new(),
            });
        }
        let dir = self.path.join(APPLIED_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut copies = Vec::with_capacity(list.len());
        for (n, p) in list.iter().enumerate() {
            let copy = dir.join(format!("{n:04}.patch"));
            std::fs::write(&copy, &p.bytes)
                .with_context(|| format!("copying {} into the tree", p.label()))?;
            copies.push(Patch {
                path: copy,
                ..p.clone()
            });
        }
        if let Err(err) = patches::apply_all(&self.path, &copies) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(err);
        }
        Ok(Applied {
            tree: self,
            patches: copies,
        })
    }

    fn undo_leftover(&self) -> Result<()> {
        let dir = self.path.join(APPLIED_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        if files.is_empty() {
            return std::fs::remove_dir(&dir)
                .with_context(|| format!("removing {}", dir.display()));
        }
        let left: Vec<Patch> = files
            .iter()
            .map(|f| Patch::read(f))
            .collect::<Result<_>>()?;
        eprintln!(
            "reaper-lab: kernel: reversing {} patch(es) an interrupted build left applied in {}",
            left.len(),
            self.path.display()
        );
        patches::reverse_all(&self.path, &left)?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
    }
}

/// Patches applied to a [`Tree`] for one build.
pub struct Applied<'t> {
    tree: &'t Tree,
    patches: Vec<Patch>,
}

impl Applied<'_> {
    /// Reverses the patches; the tree is pristine again.
    pub fn reverse(mut self) -> Result<()> {
        self.reverse_now()
    }

    fn reverse_now(&mut self) -> Result<()> {
        if self.patches.is_empty() {
            return Ok(());
        }
        let list = std::mem::take(&mut self.patches);
        patches::reverse_all(&self.tree.path, &list)?;
        let dir = self.tree.path.join(APPLIED_DIR);
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
    }
}

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.reverse_now() {
            eprintln!(
                "reaper-lab: kernel: warning: {err:#}; the next build of this tree retries it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with one file, a patch changing it, and the unpacked "source".
    fn fixture(dir: &Path) -> (Source, Patch) {
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("mm")).unwrap();
        std::fs::write(src.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 1\n").unwrap();
        std::fs::write(src.join("mm/oom_kill.c"), "a\nforward\nc\n").unwrap();
        let patch = dir.join("0001-reverse.patch");
        std::fs::write(
            &patch,
            "Subject: [PATCH] mm: reverse\n---\n--- a/mm/oom_kill.c\n+++ b/mm/oom_kill.c\n\
             @@ -1,3 +1,3 @@\n a\n-forward\n+reverse\n c\n",
        )
        .unwrap();
        let source =
            super::super::source::resolve(&super::super::source::SourceChoice::Dir(src), dir)
                .unwrap();
        (source, Patch::read(&patch).unwrap())
    }

    #[test]
    fn a_variant_has_its_own_tree() {
        assert_eq!(tree_name(&[], false), "base");
        assert_eq!(
            tree_name(
                &[PathBuf::from("kernel/variants/no-ftrace-syscalls.config")],
                false
            ),
            "base+no-ftrace-syscalls"
        );
        assert_eq!(
            tree_name(
                &[PathBuf::from("a b.config"), PathBuf::from("c.config")],
                false
            ),
            "base+a_b+c"
        );
        assert_eq!(tree_name(&[], true), "config");
    }

    #[test]
    fn patches_are_reversed_after_the_build_and_after_an_interrupted_one() {
        let dir = std::env::temp_dir().join(format!("reaper-lab-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (source, patch) = fixture(&dir);
        let root = dir.join("build");
        let file = root.join("base/mm/oom_kill.c");
        {
            let tree = Tree::open(&root, DEFAULT_TREE, &source).unwrap();
            // No patches: nothing to undo, no record left in the tree.
            tree.apply(&[]).unwrap().reverse().unwrap();
            assert!(!root.join("base").join(APPLIED_DIR).exists());
            let applied = tree.apply(std::slice::from_ref(&patch)).unwrap();
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nreverse\nc\n");
            applied.reverse().unwrap();
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nforward\nc\n");
            // A build killed while patched: the guard never runs.
            std::mem::forget(tree.apply(std::slice::from_ref(&patch)).unwrap());
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nreverse\nc\n");
        }
        let _tree = Tree::open(&root, DEFAULT_TREE, &source).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nforward\nc\n");
        assert!(!root.join("base").join(APPLIED_DIR).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
