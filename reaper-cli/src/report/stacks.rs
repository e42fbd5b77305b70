//! Stack arithmetic: merging stacks across episodes, Children/Self per
//! symbol, and the caller-based call tree.
//!
//! All functions are pure and work on sums; callers divide by the episode
//! count when they want per-episode means.

use std::collections::{BTreeMap, HashSet};

use crate::model::{LockWaitStack, SampledStack};

use super::model::CallNode;

/// Merges stacks with identical frame lists, summing samples and period.
/// The result is sorted by frames, so it is deterministic.
pub fn merge_stacks<'a>(stacks: impl IntoIterator<Item = &'a SampledStack>) -> Vec<SampledStack> {
    let mut merged: BTreeMap<&[String], (u64, u64)> = BTreeMap::new();
    for stack in stacks {
        let entry = merged.entry(stack.frames.as_slice()).or_default();
        entry.0 += stack.samples;
        entry.1 += stack.period_ns;
    }
    merged
        .into_iter()
        .map(|(frames, (samples, period_ns))| SampledStack {
            frames: frames.to_vec(),
            samples,
            period_ns,
        })
        .collect()
}

/// Merges lock-wait stacks with identical frames and flags: counts and
/// totals add up, the maximum is the largest maximum.
pub fn merge_lock_waits<'a>(
    waits: impl IntoIterator<Item = &'a LockWaitStack>,
) -> Vec<LockWaitStack> {
    let mut merged: BTreeMap<(&[String], u32), (u64, u64, u64)> = BTreeMap::new();
    for wait in waits {
        let entry = merged
            .entry((wait.frames.as_slice(), wait.flags))
            .or_default();
        entry.0 += wait.count;
        entry.1 += wait.total_ns;
        entry.2 = entry.2.max(wait.max_ns);
    }
    merged
        .into_iter()
        .map(
            |((frames, flags), (count, total_ns, max_ns))| LockWaitStack {
                frames: frames.to_vec(),
                flags,
                count,
                total_ns,
                max_ns,
            },
        )
        .collect()
}

/// Children and Self period of one symbol, ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Period of stacks that contain the symbol (once per stack).
    pub children_ns: u64,
    /// Period of stacks whose leaf is the symbol.
    pub self_ns: u64,
}

/// Children/Self for every symbol in the stacks. A symbol that recurses is
/// counted once per stack, as simpleperf does.
pub fn children_self(stacks: &[SampledStack]) -> BTreeMap<String, Cost> {
    let mut costs: BTreeMap<String, Cost> = BTreeMap::new();
    for stack in stacks {
        let mut seen = HashSet::new();
        for frame in &stack.frames {
            if seen.insert(frame.as_str()) {
                costs.entry(frame.clone()).or_default().children_ns += stack.period_ns;
            }
        }
        if let Some(leaf) = stack.frames.last() {
            costs.entry(leaf.clone()).or_default().self_ns += stack.period_ns;
        }
    }
    costs
}

/// Period of the stacks that contain `symbol`, ns.
pub fn children_of(stacks: &[SampledStack], symbol: &str) -> u64 {
    stacks
        .iter()
        .filter(|s| s.frames.iter().any(|f| f == symbol))
        .map(|s| s.period_ns)
        .sum()
}

/// Period of the stacks where `inner` appears below (called from) `outer`, ns.
pub fn children_within(stacks: &[SampledStack], outer: &str, inner: &str) -> u64 {
    stacks
        .iter()
        .filter(|s| frames_within(&s.frames, outer, inner))
        .map(|s| s.period_ns)
        .sum()
}

/// Whether `inner` occurs after (deeper than) the first `outer` in `frames`.
pub fn frames_within(frames: &[String], outer: &str, inner: &str) -> bool {
    frames
        .iter()
        .position(|f| f == outer)
        .is_some_and(|at| frames[at + 1..].iter().any(|f| f == inner))
}

/// Drops the frames above the first frame named in `anchors`, trying the
/// anchors in order of preference; a stack with no anchor is kept whole (it
/// is shown under its own root).
pub fn trim_to_anchor<'a>(frames: &'a [String], anchors: &[&str]) -> &'a [String] {
    anchors
        .iter()
        .find_map(|anchor| frames.iter().position(|f| f == anchor))
        .map_or(frames, |at| &frames[at..])
}

/// Builds the caller-based call tree: a pseudo-root named `name` whose
/// children are the stacks' (trimmed) outermost frames. Children are sorted
/// by period descending, then by name.
pub fn call_tree(name: &str, stacks: &[SampledStack], anchors: &[&str]) -> CallNode {
    let mut root = TrieNode::default();
    for stack in stacks {
        let frames = trim_to_anchor(&stack.frames, anchors);
        root.insert(frames, stack.period_ns);
    }
    root.into_node(name.to_owned())
}

#[derive(Default)]
struct TrieNode {
    total_ns: u64,
    self_ns: u64,
    children: BTreeMap<String, TrieNode>,
}

impl TrieNode {
    fn insert(&mut self, frames: &[String], period_ns: u64) {
        self.total_ns += period_ns;
        match frames.split_first() {
            None => self.self_ns += period_ns,
            Some((first, rest)) => self
                .children
                .entry(first.clone())
                .or_default()
                .insert(rest, period_ns),
        }
    }

    fn into_node(self, name: String) -> CallNode {
        let mut children: Vec<CallNode> = self
            .children
            .into_iter()
            .map(|(name, child)| child.into_node(name))
            .collect();
        children.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then_with(|| a.name.cmp(&b.name))
        });
        CallNode {
            name,
            total_ns: self.total_ns,
            self_ns: self.self_ns,
            children,
        }
    }
}

/// Removes nodes whose share of their parent is below `percent_limit`, and
/// nodes deeper than `max_depth` (the node passed in is depth 0). Totals are
/// kept, so the remaining percentages still refer to the whole parent.
pub fn prune(node: &mut CallNode, percent_limit: f64, max_depth: usize) {
    if max_depth == 0 {
        node.children.clear();
        return;
    }
    let parent = node.total_ns;
    node.children
        .retain(|child| percent(child.total_ns, parent) >= percent_limit);
    for child in &mut node.children {
        prune(child, percent_limit, max_depth - 1);
    }
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Sampled inclusive period of `symbol` in a context, ns; `None` when the
/// episode has no profile of the context.
pub(crate) fn sampled_ns(
    episode: &crate::model::Episode,
    context: reaper_common::context::Context,
    symbol: &str,
) -> Option<u64> {
    let profile = episode.contexts.iter().find(|c| c.context == context)?;
    Some(
        profile
            .stacks
            .iter()
            .filter(|s| s.frames.iter().any(|f| f == symbol))
            .map(|s| s.period_ns)
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn stack(frames: &str, samples: u64) -> SampledStack {
        SampledStack {
            frames: frames.split(';').map(str::to_owned).collect(),
            samples,
            period_ns: samples * 250_000,
        }
    }

    #[test]
    fn merge_sums_identical_frame_lists_only() {
        let a = [stack("a;b;c", 2), stack("a;b", 1)];
        let b = [stack("a;b;c", 3), stack("a;b;d", 4)];
        let merged = merge_stacks(a.iter().chain(b.iter()));
        assert_eq!(
            merged,
            vec![stack("a;b", 1), stack("a;b;c", 5), stack("a;b;d", 4)]
        );
    }

    #[test]
    fn merge_lock_waits_keeps_flags_apart_and_takes_max() {
        let w = |flags, count, total_ns, max_ns| LockWaitStack {
            frames: vec!["f".into(), "_raw_spin_lock".into()],
            flags,
            count,
            total_ns,
            max_ns,
        };
        let merged = merge_lock_waits(&[w(1, 2, 100, 70), w(1, 3, 50, 20), w(0, 1, 9, 9)]);
        assert_eq!(merged, vec![w(0, 1, 9, 9), w(1, 5, 150, 70)]);
    }

    #[test]
    fn children_and_self() {
        let stacks = [stack("a;b;c", 2), stack("a;b", 1), stack("a;d", 4)];
        let costs = children_self(&stacks);
        let ns = |n: u64| n * 250_000;
        assert_eq!(
            costs["a"],
            Cost {
                children_ns: ns(7),
                self_ns: 0
            }
        );
        assert_eq!(
            costs["b"],
            Cost {
                children_ns: ns(3),
                self_ns: ns(1)
            }
        );
        assert_eq!(
            costs["c"],
            Cost {
                children_ns: ns(2),
                self_ns: ns(2)
            }
        );
        assert_eq!(
            costs["d"],
            Cost {
                children_ns: ns(4),
                self_ns: ns(4)
            }
        );
    }

    #[test]
    fn recursion_is_counted_once_per_stack() {
        let stacks = [stack("a;r;r;r", 3), stack("r;b;r", 1)];
        let costs = children_self(&stacks);
        assert_eq!(costs["r"].children_ns, 4 * 250_000);
        assert_eq!(costs["r"].self_ns, 4 * 250_000);
        assert_eq!(children_of(&stacks, "r"), 4 * 250_000);
    }

    #[test]
    fn within_needs_inner_below_outer() {
        let stacks = [stack("x;exit_mmap;rmap", 1), stack("rmap;exit_mmap", 2)];
        assert_eq!(children_within(&stacks, "exit_mmap", "rmap"), 250_000);
    }

    #[test]
    fn trim_prefers_anchor_order_and_keeps_stacks_without_anchor() {
        let s = stack("kthread;oom_reaper;x", 1);
        assert_eq!(
            trim_to_anchor(&s.frames, &["oom_reaper", "kthread"]),
            &s.frames[1..]
        );
        let t = stack("kthread;y", 1);
        assert_eq!(
            trim_to_anchor(&t.frames, &["oom_reaper", "kthread"]),
            &t.frames[..]
        );
        let u = stack("u;v", 1);
        assert_eq!(trim_to_anchor(&u.frames, &["oom_reaper"]), &u.frames[..]);
    }

    #[test]
    fn call_tree_totals_self_and_order() {
        let stacks = [
            stack("s;do_exit;m;a", 3),
            stack("do_exit;m;b", 5),
            stack("do_exit;m", 2),
        ];
        let tree = call_tree("ctx", &stacks, &["do_exit"]);
        assert_eq!(tree.children.len(), 1);
        let root = &tree.children[0];
        assert_eq!(
            (root.name.as_str(), root.total_ns),
            ("do_exit", 10 * 250_000)
        );
        let m = &root.children[0];
        assert_eq!(m.self_ns, 2 * 250_000);
        let names: Vec<_> = m.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn prune_by_percent_of_parent_and_depth() {
        let stacks = [stack("r;a;x", 995), stack("r;b", 5)];
        let mut tree = call_tree("ctx", &stacks, &["r"]);
        prune(&mut tree, 0.5, 2);
        let r = &tree.children[0];
        let names: Vec<_> = r.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "0.5% is kept (inclusive)");
        assert!(r.children[0].children.is_empty(), "x is at depth 3");
        prune(&mut tree, 1.0, 10);
        assert_eq!(tree.children[0].children.len(), 1);
    }
}
