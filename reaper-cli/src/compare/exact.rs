//! Exact per-function timing (fentry/fexit or kprobes), where a run has it.
//!
//! Run files carry it per episode as `function_timing` (`functions`: one
//! `{context, concept, symbol, calls, total_ns, ...}` per context ×
//! function). It is read from the raw JSON, so a diff works on files
//! written before the field existed and tolerates layout changes: an
//! episode without the field contributes nothing, and a (context, function)
//! pair missing from an episode that has it was not called (0 ns). Rows are
//! matched by catalog concept when entries name one (so differently named
//! functions of two kernels line up), else by symbol. Besides the
//! `functions` list, a bare list of such entries, or objects keyed by
//! context and/or function holding them, are accepted.

use std::collections::BTreeMap;

use super::clean::exclusion;
use super::load::RunSet;

/// Field names that hold a function's inclusive time, ns.
const TOTAL_FIELDS: [&str; 3] = ["total_ns", "inclusive_ns", "total_inclusive_ns"];
/// Field names that hold the function name.
const FUNCTION_FIELDS: [&str; 3] = ["function", "symbol", "name"];

/// One side's exact timing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExactTiming {
    /// Episodes that carried `function_timing`.
    pub episodes: usize,
    /// Inclusive time per (context, concept or function), ms, one value per
    /// such episode.
    pub series: BTreeMap<(String, String), Vec<f64>>,
    /// The symbols seen per key (for concept keys: the kernel's functions).
    pub symbols: BTreeMap<(String, String), Vec<String>>,
    /// The run (index into the set's runs) of each value of every series.
    pub run_of: Vec<usize>,
    /// Attach modes of the timed functions ("fentry", "kprobe"), distinct.
    pub modes: Vec<String>,
    /// The reaper's VMA traversal order ("forward", "reverse", "mixed") and
    /// in how many episodes it was seen, from `function_timing.vma_orders`
    /// of the reaper contexts.
    pub reaper_orders: BTreeMap<String, usize>,
}

/// The reaper's VMA order in one episode's `function_timing`, if recorded.
fn reaper_order(function_timing: &serde_json::Value) -> Option<String> {
    function_timing
        .get("vma_orders")?
        .as_array()?
        .iter()
        .filter(|o| {
            o.get("context")
                .and_then(serde_json::Value::as_str)
                .and_then(crate::model::Context::from_name)
                .is_some_and(crate::model::Context::is_reaper)
        })
        .find_map(|o| o.get("order").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
}

/// One timed function found in a `function_timing` value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Context name.
    pub context: String,
    /// Catalog concept, when the entry names one.
    pub concept: Option<String>,
    /// Kernel function.
    pub symbol: String,
    /// Inclusive time, ns.
    pub ns: f64,
    /// How it was timed ("fentry", "kprobe"), when the entry says.
    pub mode: Option<String>,
}

impl Entry {
    fn key(&self) -> (String, String) {
        (
            self.context.clone(),
            self.concept.clone().unwrap_or_else(|| self.symbol.clone()),
        )
    }
}

fn total_of(object: &serde_json::Map<String, serde_json::Value>) -> Option<f64> {
    TOTAL_FIELDS
        .iter()
        .find_map(|f| object.get(*f).and_then(serde_json::Value::as_f64))
}

fn walk(
    value: &serde_json::Value,
    context: Option<&str>,
    function: Option<&str>,
    out: &mut Vec<Entry>,
) {
    match value {
        serde_json::Value::Array(items) => {
            for item in items {
                walk(item, context, function, out);
            }
        }
        serde_json::Value::Object(object) => {
            let context = object
                .get("context")
                .and_then(serde_json::Value::as_str)
                .or(context);
            let function = FUNCTION_FIELDS
                .iter()
                .find_map(|f| object.get(*f).and_then(serde_json::Value::as_str))
                .or(function);
            if let Some(ns) = total_of(object) {
                if let (Some(c), Some(f)) = (context, function) {
                    out.push(Entry {
                        context: c.to_owned(),
                        concept: object
                            .get("concept")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned),
                        symbol: f.to_owned(),
                        ns,
                        mode: object
                            .get("mode")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned),
                    });
                }
                return;
            }
            for (key, child) in object {
                if !child.is_object() && !child.is_array() {
                    continue;
                }
                if context.is_none() {
                    walk(child, Some(key), function, out);
                } else {
                    walk(child, context, function.or(Some(key)), out);
                }
            }
        }
        _ => {}
    }
}

/// The timed functions of one episode's `function_timing`: its
/// `functions` list when it has one (call edges and VMA orders are not
/// per-function totals), else whatever entries the value holds.
pub fn entries(function_timing: &serde_json::Value) -> Vec<Entry> {
    let mut out = Vec::new();
    let functions = function_timing.get("functions").filter(|f| f.is_array());
    walk(functions.unwrap_or(function_timing), None, None, &mut out);
    out
}

/// Exact timing over a run set's clean episodes ([`super::clean`]).
pub fn exact(set: &RunSet) -> ExactTiming {
    let mut per_episode: Vec<BTreeMap<(String, String), f64>> = Vec::new();
    let mut run_of: Vec<usize> = Vec::new();
    let mut symbols: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut modes: Vec<String> = Vec::new();
    let mut reaper_orders: BTreeMap<String, usize> = BTreeMap::new();
    for (run_index, loaded) in set.runs.iter().enumerate() {
        let episodes = loaded
            .raw
            .get("episodes")
            .and_then(serde_json::Value::as_array);
        for (i, episode) in episodes.into_iter().flatten().enumerate() {
            if episode.get("partial").and_then(serde_json::Value::as_bool) == Some(true)
                || loaded.run.episodes.get(i).and_then(exclusion).is_some()
            {
                continue;
            }
            let Some(timing) = episode.get("function_timing") else {
                continue;
            };
            if let Some(order) = reaper_order(timing) {
                *reaper_orders.entry(order).or_default() += 1;
            }
            let mut map = BTreeMap::new();
            for entry in entries(timing) {
                if let Some(mode) = entry.mode.as_ref().filter(|m| !modes.contains(m)) {
                    modes.push(mode.clone());
                }
                let seen = symbols.entry(entry.key()).or_default();
                if !seen.contains(&entry.symbol) {
                    seen.push(entry.symbol.clone());
                }
                *map.entry(entry.key()).or_insert(0.0) += entry.ns;
            }
            per_episode.push(map);
            run_of.push(run_index);
        }
    }
    let mut timing = ExactTiming {
        episodes: per_episode.len(),
        series: BTreeMap::new(),
        run_of,
        symbols,
        modes,
        reaper_orders,
    };
    let keys: Vec<(String, String)> = per_episode.iter().flat_map(|m| m.keys().cloned()).collect();
    for key in keys {
        if timing.series.contains_key(&key) {
            continue;
        }
        let values = per_episode
            .iter()
            .map(|m| m.get(&key).copied().unwrap_or(0.0) / 1e6)
            .collect();
        timing.series.insert(key, values);
    }
    timing
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn triples(v: &serde_json::Value) -> Vec<(String, String, f64)> {
        let mut got: Vec<_> = entries(v)
            .into_iter()
            .map(|e| (e.key().0, e.key().1, e.ns))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        got
    }

    #[test]
    fn run_file_layout_uses_the_functions_list_by_concept() {
        let v = json!({
            "functions": [
                {"context": "mrelease_caller", "concept": "per_vma_unmap", "symbol": "zap_vma_for_reaping",
                 "mode": "fentry", "calls": 64, "total_ns": 2_000_000, "max_ns": 1, "hist_log2_ns": [0, 1]}
            ],
            "edges": [{"context": "mrelease_caller", "parent": "a", "child": "b", "calls": 1, "total_ns": 9}],
            "vma_orders": [{"context": "mrelease_caller", "function": "zap_vma_for_reaping", "order": "reverse",
                            "vmas": 64, "first": 1, "last": 0, "forward_steps": 0, "reverse_steps": 63}],
            "probe_hits": {"zap_vma_for_reaping": 64}
        });
        assert_eq!(
            triples(&v),
            vec![("mrelease_caller".into(), "per_vma_unmap".into(), 2e6)]
        );
        assert_eq!(entries(&v)[0].symbol, "zap_vma_for_reaping");
    }

    #[test]
    fn reaper_order_comes_from_the_reaper_contexts() {
        let v = json!({ "functions": [], "vma_orders": [
            {"context": "victim_exit", "order": "forward"},
            {"context": "mrelease_caller", "order": "reverse"}
        ]});
        assert_eq!(reaper_order(&v).as_deref(), Some("reverse"));
        assert_eq!(reaper_order(&json!({"functions": []})), None);
    }

    #[test]
    fn flat_list_layout() {
        let v = json!([
            {"context": "mrelease_caller", "function": "__oom_reap_task_mm", "calls": 1, "total_ns": 2_000_000},
            {"context": "victim_exit", "symbol": "exit_mmap", "inclusive_ns": 5_000_000},
            {"context": "victim_exit", "calls": 3}
        ]);
        assert_eq!(
            triples(&v),
            vec![
                ("mrelease_caller".into(), "__oom_reap_task_mm".into(), 2e6),
                ("victim_exit".into(), "exit_mmap".into(), 5e6),
            ]
        );
    }

    #[test]
    fn keyed_layouts() {
        let v = json!({
            "victim_exit": {"exit_mmap": {"total_ns": 7}},
            "mrelease_caller": [{"function": "f", "total_ns": 3}]
        });
        assert_eq!(
            triples(&v),
            vec![
                ("mrelease_caller".into(), "f".into(), 3.0),
                ("victim_exit".into(), "exit_mmap".into(), 7.0),
            ]
        );
    }

    #[test]
    fn unknown_layouts_give_nothing() {
        assert!(entries(&json!("fentry refused")).is_empty());
        assert!(entries(&json!({"x": 1})).is_empty());
    }
}
