//! The driver: the only code that mutates graphs. One sweep rebuilds the graph in
//! topological order through hash-consing (so CSE is part of every sweep), canonicalises
//! commutative operands, and rewrites each new node with the enabled rules until none
//! applies — operands first, so one sweep usually reaches the fixed point.

use std::collections::BTreeMap;

use natgrad_ir::{Graph, NodeId, Op, Provenance};

use crate::analysis::constant_value;
use crate::pattern::Build;
use crate::rules::{Rule, index};

/// Limits that keep a sweep from running away (Theano's 7M-node loop is the anti-example).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Largest graph a sweep may build.
    pub max_nodes: usize,
    /// Rewrites of one node (and of the nodes its replacements create) before giving up.
    pub max_rewrites_per_node: usize,
}

/// The result of one sweep.
pub(crate) struct SweepResult {
    pub graph: Graph,
    pub hits: BTreeMap<&'static str, usize>,
    pub over_budget: bool,
}

struct Sweep<'a> {
    enabled: &'a dyn Fn(&Rule) -> bool,
    graph: Graph,
    hits: BTreeMap<&'static str, usize>,
    limits: Limits,
    over_budget: bool,
}

/// Rebuilds `source` (its outputs' ancestors) applying the rules `enabled` accepts.
pub(crate) fn sweep(
    source: &Graph,
    enabled: &dyn Fn(&Rule) -> bool,
    limits: Limits,
) -> natgrad_ir::Result<SweepResult> {
    let mut s = Sweep { enabled, graph: Graph::new(), hits: BTreeMap::new(), limits, over_budget: false };
    let needed = source.ancestors(source.outputs());
    let mut map: Vec<Option<NodeId>> = vec![None; source.len()];
    for id in source.node_ids().filter(|id| needed[id.index()]) {
        let node = source.node(id);
        let inputs: Vec<NodeId> =
            node.inputs.iter().map(|i| map[i.index()].expect("topological order")).collect();
        let provenance = Provenance { name: node.name.clone(), location: node.location };
        map[id.index()] = Some(s.add(node.op.clone(), inputs, &provenance, 0)?);
    }
    let outputs = source.outputs().iter().map(|o| map[o.index()].expect("outputs are needed")).collect();
    s.graph.set_outputs(outputs);
    Ok(SweepResult { graph: s.graph, hits: s.hits, over_budget: s.over_budget })
}

impl Sweep<'_> {
    /// Adds a node (commutative operands canonicalised) and rewrites it.
    fn add(
        &mut self,
        op: Op,
        mut inputs: Vec<NodeId>,
        provenance: &Provenance,
        depth: usize,
    ) -> natgrad_ir::Result<NodeId> {
        if let Op::Binary(b) = &op
            && b.is_commutative()
            && operand_rank(&self.graph, inputs[1]) < operand_rank(&self.graph, inputs[0])
        {
            inputs.swap(0, 1);
        }
        let id = self.graph.add_with(op, &inputs, provenance.clone())?;
        self.rewrite(id, provenance, depth)
    }

    /// Applies the first matching enabled rule, repeatedly, to `id`.
    fn rewrite(
        &mut self,
        mut id: NodeId,
        provenance: &Provenance,
        depth: usize,
    ) -> natgrad_ir::Result<NodeId> {
        let rules = index();
        for _ in 0..self.limits.max_rewrites_per_node {
            if self.graph.len() > self.limits.max_nodes || depth > self.limits.max_rewrites_per_node {
                self.over_budget = true;
                return Ok(id);
            }
            let Some(candidates) = rules.by_root.get(self.graph.op(id).name()) else { return Ok(id) };
            let found =
                candidates.iter().map(|&i| &rules.compiled[i]).filter(|c| (self.enabled)(c.rule)).find_map(
                    |c| {
                        let build = c.apply(&self.graph, id)?;
                        (build != Build::Existing(id)).then_some((c.rule.name, build))
                    },
                );
            let Some((name, build)) = found else { return Ok(id) };
            *self.hits.entry(name).or_default() += 1;
            let carried = Provenance { name: None, location: provenance.location };
            let replacement = self.build(build, &carried, depth + 1)?;
            if replacement == id {
                return Ok(id);
            }
            if let (Some(name), None) = (&provenance.name, &self.graph.node(replacement).name) {
                self.graph.set_name(replacement, name.clone());
            }
            id = replacement;
        }
        self.over_budget = true;
        Ok(id)
    }

    fn build(&mut self, build: Build, provenance: &Provenance, depth: usize) -> natgrad_ir::Result<NodeId> {
        match build {
            Build::Existing(id) => Ok(id),
            Build::New(op, children) => {
                let inputs = children
                    .into_iter()
                    .map(|c| self.build(c, provenance, depth))
                    .collect::<Result<_, _>>()?;
                self.add(op, inputs, provenance, depth)
            }
        }
    }
}

/// Canonical operand order of commutative ops: non-constants by id, constants last.
fn operand_rank(graph: &Graph, id: NodeId) -> (bool, NodeId) {
    (constant_value(graph, id).is_some(), id)
}
