//! No import cycle between sibling modules in any of the workspace's
//! userspace crates (issue 28 found xtask's `setup` ↔ `setup_qemu` ↔ `apt` ↔
//! `run` and `vm/debian` ↔ `vm/kernel` ↔ `vm/packages`; issue 24 reaper-cli's
//! `cli` ↔ `cmd` and `report/summary` ↔ `pte_lock`; a cycle makes a module
//! impossible to understand, test or move without the others).
//!
//! The check reads the sources: each file is a module (`a/b.rs` and
//! `a/b/mod.rs` are `a::b`); each `crate::` and `super::` path outside
//! comments and the `#[cfg(test)] mod tests` block is a reference, resolved to an absolute
//! module path. A reference from `p::x::…` to `p::y::…` is an edge `x → y`
//! among the children of `p`; a cycle among them fails the test. References
//! between a module and its own ancestors or descendants are not edges: a
//! parent declares its children and a child uses its parent's items by
//! design.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module path, e.g. `["vm", "kernel"]`.
type ModPath = Vec<String>;

/// The module path of a source file under `src`.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The first identifier of `text`, if it starts with one.
fn ident(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0).then(|| &text[..end])
}

/// The paths `rest` continues a `prefix::` with: `a::b::C` is one, a
/// `{a::b, c}` group one per entry (nested groups too), `self` and `*`
/// entries end a path where they stand.
fn paths_after(rest: &str) -> Vec<ModPath> {
    if let Some(group) = rest.strip_prefix('{') {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0usize, 0usize);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.extend(paths_after(group[start..i].trim()));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(paths_after(group[start..i].trim()));
                    start = i + 1;
                }
                _ => {}
            }
        }
        return out;
    }
    let Some(first) = ident(rest).filter(|i| *i != "self") else {
        return vec![Vec::new()];
    };
    match rest[first.len()..].strip_prefix("::") {
        Some(next) => paths_after(next)
            .into_iter()
            .map(|mut tail| {
                tail.insert(0, first.to_string());
                tail
            })
            .collect(),
        None => vec![vec![first.to_string()]],
    }
}

/// Absolute paths that the code of module `me` refers to.
fn references(me: &ModPath, code: &str) -> Vec<ModPath> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // e.g. `reaper_lab::…` is another crate
        }
        found.extend(paths_after(&code[at + "crate::".len()..]));
    }
    for (at, _) in code.match_indices("super::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // counted with the first `super::` of a chain
        }
        let mut rest = &code[at..];
        let mut base = me.clone();
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        for tail in paths_after(rest) {
            let mut path = base.clone();
            path.extend(tail);
            found.push(path);
        }
    }
    found
}

/// Source files of `src`, recursively.
fn rust_files(src: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

type Edges = BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>>;

/// Sibling edges `parent → {child → {child}}` of the crate under `src`.
fn sibling_edges(src: &Path) -> std::io::Result<Edges> {
    let files: Vec<_> = rust_files(src)?
        .into_iter()
        .filter(|f| !super::size::is_test_file(f))
        .collect();
    let modules: BTreeSet<ModPath> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges = Edges::new();
    for file in &files {
        let me = module_of(src, file);
        let text = std::fs::read_to_string(file)?;
        let code: String = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default()
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        for target in references(&me, &code) {
            let common = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common >= me.len() || common >= target.len() {
                continue; // an ancestor or a descendant
            }
            let parent = me[..common].to_vec();
            let to = &target[common];
            let mut sibling = parent.clone();
            sibling.push(to.clone());
            if !modules.contains(&sibling) {
                continue; // an item of the parent, not a module
            }
            edges
                .entry(parent)
                .or_default()
                .entry(me[common].clone())
                .or_default()
                .insert(to.clone());
        }
    }
    Ok(edges)
}

/// A cycle in `graph`, as the modules on it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

/// The import cycles of the crate whose sources are under `src`, one
/// message each (one per parent module that has any).
pub fn cycles(src: &Path) -> std::io::Result<Vec<String>> {
    Ok(sibling_edges(src)?
        .iter()
        .filter_map(|(parent, graph)| {
            find_cycle(graph).map(|c| format!("in crate::{}: {}", parent.join("::"), c.join(" → ")))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check sees the kinds of cycle it is for.
    #[test]
    fn a_cycle_through_super_and_crate_paths_is_found() {
        let dir = std::env::temp_dir().join(format!("xtask-cycles-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("vm")).unwrap();
        std::fs::write(src.join("main.rs"), "mod setup;\nmod apt;\nmod vm;\n").unwrap();
        std::fs::write(src.join("setup.rs"), "use crate::apt::AptRoot;\n").unwrap();
        std::fs::write(
            src.join("apt.rs"),
            "fn f() { crate::setup::packages::privileged(); }\n",
        )
        .unwrap();
        std::fs::write(src.join("vm/mod.rs"), "pub mod debian;\npub mod kernel;\n").unwrap();
        std::fs::write(
            src.join("vm/debian.rs"),
            "use super::{arch::Arch, kernel};\n#[cfg(test)]\nmod tests {}\n",
        )
        .unwrap();
        std::fs::write(
            src.join("vm/kernel.rs"),
            "use super::super::vm::debian;\n#[cfg(test)]\nmod tests { use crate::setup; }\n",
        )
        .unwrap();
        let mut found = cycles(&src).unwrap();
        found.sort();
        assert_eq!(
            found,
            [
                "in crate::: apt → setup → apt",
                "in crate::vm: debian → kernel → debian"
            ]
        );
        // Break both: no cycle.
        std::fs::write(src.join("apt.rs"), "fn f() {}\n").unwrap();
        std::fs::write(src.join("vm/kernel.rs"), "use super::super::setup;\n").unwrap();
        assert!(cycles(&src).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
