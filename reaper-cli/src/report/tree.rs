//! The simpleperf-style caller-based call graph (`|--NN.NN%-- symbol`).
//!
//! Percentages are relative to the parent node. A node's own time is shown
//! first as `[hit in function]` when it reaches the cut-off; a callee that
//! is its caller's only callee and takes all of its time is printed as a
//! continuation line under the caller's name, as simpleperf prints a merged
//! call chain. The last entry of a level uses ` --` instead of `|--`.

use std::fmt::Write;

use super::model::{CallGraph, CallNode};
use super::stacks::percent;

/// Indentation added per level below a `|`, as in the thread.
const LEVEL_INDENT: &str = "    ";

/// Renders a context's call graph. Several roots (stacks without the
/// anchor) are each shown with their share of the context.
pub fn render(graph: &CallGraph) -> String {
    let mut out = String::new();
    let several = graph.roots.len() > 1 || graph.hidden_roots > 0;
    for root in &graph.roots {
        if several {
            let share = percent(root.total_ns, graph.total_ns);
            let _ = writeln!(out, "{} ({share:.2}% of samples)", root.name);
        } else {
            let _ = writeln!(out, "{}", root.name);
        }
        let node = chain_end(root, "", &mut out);
        children(node, "", graph.percent_limit, &mut out);
    }
    if graph.hidden_roots > 0 {
        let _ = writeln!(
            out,
            "({} more root{} below the {:.2}% cut-off)",
            graph.hidden_roots,
            if graph.hidden_roots == 1 { "" } else { "s" },
            graph.percent_limit
        );
    }
    out
}

/// The callee that continues `node`'s chain: its only callee, taking all of
/// its time.
fn sole_callee(node: &CallNode) -> Option<&CallNode> {
    match node.children.as_slice() {
        [only] if node.self_ns == 0 && only.total_ns == node.total_ns => Some(only),
        _ => None,
    }
}

/// Prints the continuation lines of `node`'s chain (each prefixed with
/// `pad`) and returns the chain's last node.
fn chain_end<'a>(node: &'a CallNode, pad: &str, out: &mut String) -> &'a CallNode {
    let mut end = node;
    while let Some(next) = sole_callee(end) {
        let _ = writeln!(out, "{pad}{}", next.name);
        end = next;
    }
    end
}

enum Entry<'a> {
    Hit(f64),
    Callee(f64, &'a CallNode),
}

fn children(node: &CallNode, prefix: &str, percent_limit: f64, out: &mut String) {
    let mut entries = Vec::new();
    let hit = percent(node.self_ns, node.total_ns);
    // A leaf's own time is all of it and needs no line of its own.
    if node.self_ns > 0 && node.self_ns < node.total_ns && hit >= percent_limit {
        entries.push(Entry::Hit(hit));
    }
    entries.extend(
        node.children
            .iter()
            .map(|c| Entry::Callee(percent(c.total_ns, node.total_ns), c)),
    );
    let count = entries.len();
    for (i, entry) in entries.into_iter().enumerate() {
        let last = i + 1 == count;
        let branch = if last { " " } else { "|" };
        let (pct, name) = match &entry {
            Entry::Hit(pct) => (*pct, "[hit in function]"),
            Entry::Callee(pct, callee) => (*pct, callee.name.as_str()),
        };
        let label = format!("--{pct:.2}%-- ");
        let _ = writeln!(out, "{prefix}{branch}{label}{name}");
        if let Entry::Callee(_, callee) = entry {
            let pad = format!("{prefix}{branch}{}", " ".repeat(label.len()));
            let end = chain_end(callee, &pad, out);
            let inner = format!("{prefix}{branch}{LEVEL_INDENT}");
            children(end, &inner, percent_limit, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SampledStack;
    use crate::report::stacks::{call_tree, prune};

    fn graph(stacks: &[(&str, u64)], limit: f64, depth: usize) -> CallGraph {
        let stacks: Vec<SampledStack> = stacks
            .iter()
            .map(|(f, n)| SampledStack {
                frames: f.split(';').map(str::to_owned).collect(),
                samples: *n,
                period_ns: *n,
            })
            .collect();
        let mut forest = call_tree("ctx", &stacks, &["root"]);
        let total = forest.children.len();
        prune(&mut forest, limit, depth + 1);
        CallGraph {
            total_ns: forest.total_ns,
            hidden_roots: total - forest.children.len(),
            roots: forest.children,
            percent_limit: limit,
            max_depth: depth,
        }
    }

    #[test]
    fn percentages_are_relative_to_the_parent_and_last_uses_space() {
        let g = graph(
            &[("root;a;x", 30), ("root;a;y", 10), ("root;b", 60)],
            0.5,
            10,
        );
        let expected = "\
root
|--60.00%-- b
 --40.00%-- a
     |--75.00%-- x
      --25.00%-- y
";
        assert_eq!(render(&g), expected);
    }

    #[test]
    fn hit_in_function_comes_first_and_respects_the_cut_off() {
        let g = graph(
            &[
                ("root;a", 20),
                ("root;a;x", 79),
                ("root;a;y", 1),
                ("root", 1),
            ],
            0.5,
            10,
        );
        let expected = "\
root
|--0.99%-- [hit in function]
 --99.01%-- a
     |--20.00%-- [hit in function]
     |--79.00%-- x
      --1.00%-- y
";
        assert_eq!(render(&g), expected);
        let g = graph(&[("root", 1), ("root;a", 999)], 0.5, 10);
        assert_eq!(render(&g), "root\n --99.90%-- a\n", "0.10% self is cut");
    }

    #[test]
    fn single_full_callee_chains_print_as_continuation_lines() {
        let g = graph(
            &[
                ("root;u;tlb_flush_mmu;free_pages_and_swap_cache", 9),
                (
                    "root;u;tlb_flush_mmu;free_pages_and_swap_cache;release_pages",
                    11,
                ),
                ("root;u", 80),
            ],
            0.5,
            10,
        );
        let expected = "\
root
u
|--80.00%-- [hit in function]
 --20.00%-- tlb_flush_mmu
            free_pages_and_swap_cache
     |--45.00%-- [hit in function]
      --55.00%-- release_pages
";
        assert_eq!(render(&g), expected);
    }

    #[test]
    fn cut_off_hides_small_callees_and_depth_limits_levels() {
        let stacks = [("root;a;b;c", 996), ("root;d", 4)];
        let expected = "\
root
 --99.60%-- a
            b
";
        assert_eq!(render(&graph(&stacks, 0.5, 2)), expected);
        let expected = "\
root
|--99.60%-- a
|           b
 --0.40%-- d
";
        assert_eq!(render(&graph(&stacks, 0.3, 2)), expected);
        assert_eq!(render(&graph(&stacks, 1.0, 1)), "root\n --99.60%-- a\n");
    }

    #[test]
    fn several_roots_show_their_share() {
        let g = graph(&[("root;a", 90), ("other;b", 10)], 0.5, 10);
        let expected = "\
root (90.00% of samples)
a
other (10.00% of samples)
b
";
        assert_eq!(render(&g), expected);
    }
}
