//! Per-context, per-function sampled period (Children: samples whose stack
//! contains the function) per episode, for both sides.
//!
//! Catalog concepts come first and are matched by concept, not by name, so a
//! 6.1 `page_remove_rmap` lines up with a 6.18 `folio_remove_rmap_ptes`.
//! Then the functions with the largest median period on either side.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{CONCEPTS, ConceptId, frame_for};
use crate::model::{Context, Episode, Run, SampledStack};
use crate::report::rows::episode_stacks;
use crate::report::stacks::children_self;

use super::clean::{Coverage, LossPolicy, Scope, coverage, exclusion};
use super::load::RunSet;
use super::stats::median;

/// The per-episode Children period of every function of one context, ms.
type EpisodeCosts = BTreeMap<String, f64>;

/// One row of a per-context table: a function (or concept) on both sides.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionSeries {
    /// Catalog concept id, for concept rows.
    pub concept: Option<ConceptId>,
    /// The function name, "a → b" when the sides name it differently.
    pub name: String,
    /// Side A's per-episode period, ms (empty when not measurable).
    pub a: Vec<f64>,
    /// Side B's per-episode period, ms.
    pub b: Vec<f64>,
    /// Why side A has no values (a concept absent or inline on its kernel).
    pub why_a: Option<String>,
    /// Why side B has no values.
    pub why_b: Option<String>,
    /// The run (index into side A's runs) of each of A's values.
    pub runs_a: Vec<usize>,
    /// The run of each of B's values.
    pub runs_b: Vec<usize>,
    /// Side A's episodes used and left out (the same for every row of a
    /// context: the sampled scope's).
    pub coverage_a: Coverage,
    /// Side B's.
    pub coverage_b: Coverage,
}

/// Contexts present in either side, in id order.
pub fn contexts(a: &RunSet, b: &RunSet) -> Vec<Context> {
    let present: BTreeSet<Context> = a
        .runs
        .iter()
        .chain(&b.runs)
        .flat_map(|r| &r.run.episodes)
        .flat_map(|e| &e.contexts)
        .map(|c| c.context)
        .collect();
    present.into_iter().collect()
}

/// A context's stacks in one episode.
pub fn stacks_of(episode: &Episode, context: Context) -> Vec<SampledStack> {
    episode_stacks(episode, context).cloned().collect()
}

/// (run, per-episode costs) over the episodes of a set that the sampled
/// scope may use ([`super::clean`]).
fn costs<'a>(
    set: &'a RunSet,
    context: Context,
    policy: &LossPolicy,
) -> Vec<(&'a Run, EpisodeCosts)> {
    set.runs
        .iter()
        .flat_map(|r| r.run.episodes.iter().map(move |e| (&r.run, e)))
        .filter(|(_, e)| exclusion(e, Scope::Sampled, policy).is_none())
        .map(|(run, e)| {
            let costs = children_self(&stacks_of(e, context))
                .into_iter()
                .map(|(symbol, cost)| (symbol, cost.children_ns as f64 / 1e6))
                .collect();
            (run, costs)
        })
        .collect()
}

/// The run index of each entry of `costs` (runs told apart by identity).
fn run_ids(set: &RunSet, costs: &[(&Run, EpisodeCosts)]) -> Vec<usize> {
    costs
        .iter()
        .map(|(run, _)| {
            set.runs
                .iter()
                .position(|r| std::ptr::eq(&r.run, *run))
                .unwrap_or(0)
        })
        .collect()
}

fn series(costs: &[(&Run, EpisodeCosts)], symbol: impl Fn(&Run) -> Option<String>) -> Vec<f64> {
    costs
        .iter()
        .map(|(run, c)| symbol(run).and_then(|s| c.get(&s).copied()).unwrap_or(0.0))
        .collect()
}

/// The function a concept is sampled as in a run: the resolved symbol
/// only. An inline fallback (the PTE lock inside `zap_pte_range` on 6.1)
/// stands for much more than the concept, so it is not compared.
fn concept_symbol(run: &Run, id: ConceptId) -> Option<String> {
    run.symbols
        .iter()
        .find(|r| r.concept == id)
        .and_then(|r| r.symbol.clone())
}

/// Distinct symbols a concept resolves to over a set's runs.
fn concept_symbols(set: &RunSet, id: ConceptId) -> Vec<String> {
    set.distinct(|r| concept_symbol(r, id).unwrap_or_default())
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
}

/// Why a concept has no function on a side's kernel.
fn concept_absent(set: &RunSet, id: ConceptId) -> String {
    let inline = set
        .runs
        .first()
        .and_then(|r| frame_for(&r.run.symbols, id))
        .filter(|_| crate::catalog::entry(id).inline_fallback.is_some());
    match inline {
        Some(caller) => format!("inline in {caller} on this kernel"),
        None => "absent on this kernel".to_owned(),
    }
}

fn nonzero(values: &[f64]) -> bool {
    median(values).is_some_and(|m| m > 0.0)
}

/// A concept row's name: its function, or "a → b" when the sides name it
/// differently.
fn series_name(names_a: &[String], names_b: &[String]) -> String {
    if names_a == names_b || names_b.is_empty() {
        names_a.join(", ")
    } else if names_a.is_empty() {
        names_b.join(", ")
    } else {
        format!("{} → {}", names_a.join(", "), names_b.join(", "))
    }
}

/// The table rows of one context: concepts with period on either side, then
/// up to `top` other functions by the larger median.
pub fn context_series(
    a: &RunSet,
    b: &RunSet,
    context: Context,
    top: usize,
    policy: &LossPolicy,
) -> Vec<FunctionSeries> {
    let sides = [Side::new(a, context, policy), Side::new(b, context, policy)];
    let (mut rows, shown) = concept_rows(&sides);
    rows.extend(other_rows(&sides, &shown, top));
    rows
}

/// One side's episodes in one context: their per-function costs, the run
/// each came from, and the sampled scope's coverage.
struct Side<'r> {
    set: &'r RunSet,
    costs: Vec<(&'r Run, EpisodeCosts)>,
    runs: Vec<usize>,
    coverage: Coverage,
}

/// A row's values on one side, and why there are none (if so).
type SideValues = (Vec<f64>, Option<String>);

impl<'r> Side<'r> {
    /// `set`'s costs in `context` under `policy`.
    fn new(set: &'r RunSet, context: Context, policy: &LossPolicy) -> Self {
        let costs = costs(set, context, policy);
        let runs = run_ids(set, &costs);
        let coverage = coverage(
            set.runs.iter().flat_map(|r| &r.run.episodes),
            Scope::Sampled,
            policy,
            |_| true,
        );
        Self {
            set,
            costs,
            runs,
            coverage,
        }
    }

    /// A concept's per-episode period on this side, or why it has none
    /// (`names`, the functions it resolves to here, is empty).
    fn concept(&self, id: ConceptId, names: &[String]) -> SideValues {
        if names.is_empty() {
            (Vec::new(), Some(concept_absent(self.set, id)))
        } else {
            (series(&self.costs, |r: &Run| concept_symbol(r, id)), None)
        }
    }
}

/// A table row from both sides' values.
fn row(
    concept: Option<ConceptId>,
    name: String,
    [(a, why_a), (b, why_b)]: [SideValues; 2],
    [side_a, side_b]: &[Side<'_>; 2],
) -> FunctionSeries {
    FunctionSeries {
        concept,
        name,
        a,
        b,
        why_a,
        why_b,
        runs_a: side_a.runs.clone(),
        runs_b: side_b.runs.clone(),
        coverage_a: side_a.coverage.clone(),
        coverage_b: side_b.coverage.clone(),
    }
}

/// The rows of catalog concepts with period on either side, and the
/// functions they name (left out of the other rows).
fn concept_rows(sides: &[Side<'_>; 2]) -> (Vec<FunctionSeries>, BTreeSet<String>) {
    let mut rows = Vec::new();
    let mut shown: BTreeSet<String> = BTreeSet::new();
    for concept in CONCEPTS {
        let (names_a, names_b) = (
            concept_symbols(sides[0].set, concept.id),
            concept_symbols(sides[1].set, concept.id),
        );
        let values_a = sides[0].concept(concept.id, &names_a);
        let values_b = sides[1].concept(concept.id, &names_b);
        if !nonzero(&values_a.0) && !nonzero(&values_b.0) {
            continue;
        }
        // Differently named functions of one concept line up only where
        // both run in this context: 7.x's zap_vma_for_reaping is the
        // reaper's, so in the victim's context it does not stand for the
        // victim's unmap_page_range. Such functions are listed by name.
        let renamed = !names_a.is_empty() && !names_b.is_empty() && names_a != names_b;
        if renamed && !(nonzero(&values_a.0) && nonzero(&values_b.0)) {
            continue;
        }
        let name = series_name(&names_a, &names_b);
        shown.extend(names_a.into_iter().chain(names_b));
        rows.push(row(Some(concept.id), name, [values_a, values_b], sides));
    }
    (rows, shown)
}

/// Up to `top` functions not `shown` as concepts, by the larger median of
/// either side.
fn other_rows(sides: &[Side<'_>; 2], shown: &BTreeSet<String>, top: usize) -> Vec<FunctionSeries> {
    let symbols: BTreeSet<&String> = sides[0]
        .costs
        .iter()
        .chain(&sides[1].costs)
        .flat_map(|(_, c)| c.keys())
        .filter(|s| !shown.contains(*s))
        .collect();
    let mut others: Vec<(f64, FunctionSeries)> = symbols
        .into_iter()
        .map(|symbol| {
            let get = |_: &Run| Some(symbol.clone());
            let (row_a, row_b) = (series(&sides[0].costs, get), series(&sides[1].costs, get));
            let key = median(&row_a)
                .unwrap_or(0.0)
                .max(median(&row_b).unwrap_or(0.0));
            let values = [(row_a, None), (row_b, None)];
            (key, row(None, symbol.clone(), values, sides))
        })
        .filter(|(key, _)| *key > 0.0)
        .collect();
    others.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.name.cmp(&y.1.name)));
    others.into_iter().take(top).map(|(_, row)| row).collect()
}
