//! natgrad's simplifier: turns the naive derivative graphs into lean, numerically stable
//! ones, quickly, with every step inspectable.
//!
//! | module | concern |
//! |---|---|
//! | [`rules`] | the rule tables, one per family (structural, algebra, fast-math, fold) |
//! | [`pattern`] | the s-expression pattern language rules are written in |
//! | [`analysis`] | facts guards ask for: constants, non-zero, positive |
//! | `driver` | the only code that mutates graphs: rebuild + hash-consing + rewriting |
//! | [`fusion`] | fusion groups for the backends |
//!
//! [`simplify`] runs the pipeline: the passes of [`PASSES`] in order, repeated to a fixed
//! point within an iteration and node budget, then dead-code elimination and fusion
//! grouping. `NATGRAD_DEBUG=1` (through `tracing`, target `natgrad::rewrite`) prints the IR
//! after each pass with its rule hit counts. This crate must not depend on a code generator.

#![warn(missing_docs)]

pub mod analysis;
mod driver;
pub mod fusion;
pub mod pattern;
pub mod rules;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use natgrad_ir::{Graph, Op};

pub use fusion::{FusionGroup, fusion_groups, print_with_groups};
pub use rules::{Family, Rule, all_rules};

/// The rule passes of the pipeline, in order: name and the families it applies.
pub const PASSES: &[(&str, &[Family])] = &[
    ("structural", &[Family::Structural]),
    ("algebra", &[Family::Algebra, Family::FastMath]),
    ("fold", &[Family::Fold]),
];

/// What the simplifier may do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Also apply the identities that are wrong for NaN/Inf (`x·0 → 0`).
    pub fast_math: bool,
    /// Apply only the rules with these names (for testing one rule at a time).
    pub only: Option<Vec<String>>,
    /// Most pipeline iterations before giving up on a fixed point.
    pub max_iterations: usize,
    /// Largest allowed graph, as a multiple of the input's node count.
    pub max_growth: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options { fast_math: false, only: None, max_iterations: 16, max_growth: 2.0 }
    }
}

impl Options {
    /// Options that enable only the named rule.
    pub fn only(rule: &str) -> Options {
        Options { only: Some(vec![rule.to_string()]), ..Options::default() }
    }
}

/// What one pass did in one iteration.
#[derive(Clone, Debug)]
pub struct PassReport {
    /// Pass name.
    pub pass: &'static str,
    /// Pipeline iteration (from 1).
    pub iteration: usize,
    /// Rule hits in this pass.
    pub hits: BTreeMap<&'static str, usize>,
    /// Nodes after the pass.
    pub nodes: usize,
}

/// Statistics of one `simplify` call.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Nodes in the input graph.
    pub nodes_before: usize,
    /// Nodes in the result.
    pub nodes_after: usize,
    /// Pipeline iterations run.
    pub iterations: usize,
    /// Total hits per rule.
    pub hits: BTreeMap<&'static str, usize>,
    /// Every pass of every iteration.
    pub passes: Vec<PassReport>,
    /// Set when a budget stopped the pipeline: which budget and which rules kept firing.
    pub budget: Option<String>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// The simplified graph with its fusion groups and statistics.
#[derive(Clone, Debug)]
pub struct Simplified {
    /// The optimized graph (same outputs, in order).
    pub graph: Graph,
    /// Fusion groups of the optimized graph.
    pub fusion: Vec<FusionGroup>,
    /// What the pipeline did.
    pub stats: Stats,
}

/// Runs the pipeline on `graph`.
pub fn simplify(graph: &Graph, options: &Options) -> natgrad_ir::Result<Simplified> {
    let start = Instant::now();
    let limits = driver::Limits {
        max_nodes: ((graph.len() as f64 * options.max_growth) as usize).max(graph.len() + 256),
        max_rewrites_per_node: 64,
    };
    let mut stats = Stats { nodes_before: graph.len(), ..Stats::default() };
    let mut current = graph.clone();
    let mut last_hits = BTreeMap::new();
    for iteration in 1..=options.max_iterations {
        stats.iterations = iteration;
        let mut fired = 0;
        last_hits.clear();
        for &(pass, families) in PASSES {
            let enabled = |rule: &Rule| rule_enabled(rule, families, options);
            let result = driver::sweep(&current, &enabled, limits)?;
            current = result.graph;
            verify_in_debug(&current)?;
            for (rule, n) in &result.hits {
                *stats.hits.entry(rule).or_default() += n;
                *last_hits.entry(*rule).or_default() += n;
                fired += n;
            }
            report(pass, iteration, &result.hits, &current);
            stats.passes.push(PassReport { pass, iteration, hits: result.hits, nodes: current.len() });
            if result.over_budget {
                stats.budget = Some(format!(
                    "node budget ({} nodes) reached; rules firing: {}",
                    limits.max_nodes,
                    list(&last_hits)
                ));
            }
        }
        if fired == 0 || stats.budget.is_some() {
            break;
        }
        if iteration == options.max_iterations {
            stats.budget = Some(format!(
                "iteration budget ({iteration}) reached; rules still firing: {}",
                list(&last_hits)
            ));
        }
    }
    if let Some(budget) = &stats.budget {
        tracing::warn!(target: "natgrad::rewrite", "{budget}");
    }
    // Dead-code elimination (and a last CSE): a sweep with no rules keeps only what the
    // outputs need.
    current = driver::sweep(&current, &|_| false, limits)?.graph;
    verify_in_debug(&current)?;
    report("dce", stats.iterations, &BTreeMap::new(), &current);
    let fusion = fusion_groups(&current);
    stats.nodes_after = current.len();
    stats.elapsed = start.elapsed();
    Ok(Simplified { graph: current, fusion, stats })
}

/// In debug builds (and so in every test), re-checks the graph's invariants — arity, operand
/// order, inferred types — after each pass, so a rule that breaks them fails where it ran.
fn verify_in_debug(graph: &Graph) -> natgrad_ir::Result<()> {
    if cfg!(debug_assertions) { graph.verify() } else { Ok(()) }
}

fn rule_enabled(rule: &Rule, families: &[Family], options: &Options) -> bool {
    let name = rule.name;
    let family_on = families.contains(&rule.family) && (rule.family != Family::FastMath || options.fast_math);
    let selected = options.only.as_ref().is_none_or(|only| only.iter().any(|o| o == name));
    family_on && selected
}

fn list(hits: &BTreeMap<&'static str, usize>) -> String {
    hits.iter().map(|(r, n)| format!("{r}×{n}")).collect::<Vec<_>>().join(", ")
}

fn report(pass: &str, iteration: usize, hits: &BTreeMap<&'static str, usize>, graph: &Graph) {
    if tracing::enabled!(target: "natgrad::rewrite", tracing::Level::DEBUG) {
        tracing::debug!(target: "natgrad::rewrite", "after pass `{pass}` (iteration {iteration}): {} nodes; hits: {}\n{graph}", graph.len(), list(hits));
    }
}

/// Number of matmul nodes in a graph.
pub fn matmul_count(graph: &Graph) -> usize {
    graph.node_ids().filter(|&id| matches!(graph.op(id), Op::MatMul { .. })).count()
}
