//! `Graph`: a hash-consed DAG of ops stored in petgraph, with provenance per node.

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use smallvec::SmallVec;

use crate::infer::infer;
use crate::{DType, Error, Op, Result, Shape, Site, TensorType};

/// Handle of a node in one `Graph`. Ids grow in insertion order, which is a topological
/// order: every node's operands have smaller ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// Position of the node in insertion (topological) order.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of the node at position `index`; check it with [`Graph::contains`].
    pub fn from_index(index: usize) -> NodeId {
        NodeId(index as u32)
    }

    fn petgraph(self) -> NodeIndex {
        NodeIndex::new(self.index())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// A node's operands: inline up to three (every op's arity), so adding and hash-consing a
/// node allocates nothing for them.
pub type Operands = SmallVec<[NodeId; 3]>;

/// One node: an op, its operands, its inferred type and its provenance.
#[derive(Clone, Debug)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Operands, in order.
    pub inputs: Operands,
    /// Inferred dtype and shape.
    pub ty: TensorType,
    /// The user's name for the value, if any (printed as a comment).
    pub name: Option<String>,
    /// Source location of the builder call that created the node.
    pub location: Option<&'static Location<'static>>,
}

/// Optional provenance given when a node is added.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// User name for the node.
    pub name: Option<String>,
    /// Source location of the call that created it.
    pub location: Option<&'static Location<'static>>,
}

/// A computation graph: a DAG of ops with a list of outputs.
///
/// Adding an op whose op and operands equal an existing node's returns that node
/// (hash-consing), so common subexpressions are shared from the start.
#[derive(Clone, Default)]
pub struct Graph {
    dag: DiGraph<Node, u32>,
    interned: HashMap<(Op, Operands), NodeId>,
    leaves: HashMap<String, NodeId>,
    outputs: Vec<NodeId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Adds `op` applied to `inputs`, recording the caller's source location.
    #[track_caller]
    pub fn add(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        let location = Location::caller();
        self.add_with(op, inputs, Provenance { name: None, location: Some(location) })
    }

    /// Adds `op` applied to `inputs` with explicit provenance; returns the existing node if
    /// the same op on the same operands was added before.
    pub fn add_with(&mut self, op: Op, inputs: &[NodeId], provenance: Provenance) -> Result<NodeId> {
        let op_name = op.name();
        let site = || Site {
            op: op_name,
            name: provenance.name.clone(),
            location: provenance.location.map(|l| format!("{}:{}", l.file(), l.line())),
        };
        if inputs.len() != op.arity() {
            return Err(Error::Arity { site: site(), expected: op.arity(), got: inputs.len() });
        }
        if let Some(bad) = inputs.iter().find(|id| !self.contains(**id)) {
            return Err(Error::UnknownNode { site: site(), operand: bad.index(), len: self.len() });
        }
        if let Some(leaf) = op.leaf_name()
            && (leaf.is_empty() || leaf.contains(['"', '#', '\n']) || leaf.trim() != leaf)
        {
            let message =
                format!("name {leaf:?} must be non-empty, without quotes, '#', newlines or outer spaces");
            return Err(Error::Type { site: site(), message });
        }
        let key = (op, Operands::from_slice(inputs));
        if let Some(&existing) = self.interned.get(&key) {
            if let Some(name) = provenance.name {
                self.dag[existing.petgraph()].name.get_or_insert(name);
            }
            return Ok(existing);
        }
        let (op, inputs) = key;
        let operand_types: Vec<&TensorType> = inputs.iter().map(|&i| self.ty(i)).collect();
        let ty = infer(&op, &operand_types).map_err(|message| Error::Type { site: site(), message })?;
        if let Some(leaf) = op.leaf_name()
            && let Some(&other) = self.leaves.get(leaf)
        {
            let existing = format!("{} : {} = {}", other, self.ty(other), self.node(other).op.name());
            let name = leaf.to_string();
            return Err(Error::DuplicateName { site: site(), name, existing });
        }
        let leaf = op.leaf_name().map(str::to_string);
        let node = Node {
            op: op.clone(),
            inputs: inputs.clone(),
            ty,
            name: provenance.name,
            location: provenance.location,
        };
        let id = NodeId(self.dag.add_node(node).index() as u32);
        for (position, input) in inputs.iter().enumerate() {
            self.dag.add_edge(input.petgraph(), id.petgraph(), position as u32);
        }
        if let Some(leaf) = leaf {
            self.leaves.insert(leaf, id);
        }
        self.interned.insert((op, inputs), id);
        Ok(id)
    }

    /// Whether `id` names a node of this graph.
    pub fn contains(&self, id: NodeId) -> bool {
        id.index() < self.len()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.dag.node_count()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All node ids in topological (insertion) order.
    pub fn node_ids(&self) -> impl DoubleEndedIterator<Item = NodeId> + ExactSizeIterator + use<> {
        (0..self.len() as u32).map(NodeId)
    }

    /// The node behind `id`. Panics if `id` is from another graph; check with [`Graph::contains`].
    pub fn node(&self, id: NodeId) -> &Node {
        &self.dag[id.petgraph()]
    }

    /// The node's op.
    pub fn op(&self, id: NodeId) -> &Op {
        &self.node(id).op
    }

    /// The node's operands.
    pub fn inputs(&self, id: NodeId) -> &[NodeId] {
        &self.node(id).inputs
    }

    /// The node's type.
    pub fn ty(&self, id: NodeId) -> &TensorType {
        &self.node(id).ty
    }

    /// The node's shape.
    pub fn shape(&self, id: NodeId) -> &Shape {
        &self.node(id).ty.shape
    }

    /// The node's dtype.
    pub fn dtype(&self, id: NodeId) -> DType {
        self.node(id).ty.dtype
    }

    /// Nodes that use `id` as an operand (each once), in ascending order.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut users: Vec<NodeId> = self
            .dag
            .neighbors_directed(id.petgraph(), Direction::Outgoing)
            .map(|n| NodeId(n.index() as u32))
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Sets the user name of a node.
    pub fn set_name(&mut self, id: NodeId, name: impl Into<String>) {
        self.dag[id.petgraph()].name = Some(name.into());
    }

    /// The graph's outputs, in order.
    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// Replaces the list of outputs.
    pub fn set_outputs(&mut self, outputs: Vec<NodeId>) {
        self.outputs = outputs;
    }

    /// The input or param leaf bound by `name`.
    pub fn leaf(&self, name: &str) -> Option<NodeId> {
        self.leaves.get(name).copied()
    }

    /// Input nodes in topological order.
    pub fn input_nodes(&self) -> Vec<NodeId> {
        self.node_ids().filter(|&id| matches!(self.op(id), Op::Input { .. })).collect()
    }

    /// Param nodes in topological order.
    pub fn param_nodes(&self) -> Vec<NodeId> {
        self.node_ids().filter(|&id| matches!(self.op(id), Op::Param { .. })).collect()
    }

    /// The error site of a node: op, user name and location.
    pub fn site(&self, id: NodeId) -> Site {
        let node = self.node(id);
        let leaf = node.op.leaf_name().map(str::to_string);
        Site {
            op: node.op.name(),
            name: node.name.clone().or(leaf),
            location: node.location.map(|l| format!("{}:{}", l.file(), l.line())),
        }
    }

    /// Re-checks every node: operand order, arity and inferred type.
    pub fn verify(&self) -> Result<()> {
        for id in self.node_ids() {
            let node = self.node(id);
            if node.inputs.len() != node.op.arity() {
                return Err(Error::Arity {
                    site: self.site(id),
                    expected: node.op.arity(),
                    got: node.inputs.len(),
                });
            }
            if let Some(bad) = node.inputs.iter().find(|i| **i >= id) {
                return Err(Error::UnknownNode {
                    site: self.site(id),
                    operand: bad.index(),
                    len: id.index(),
                });
            }
            let types: Vec<&TensorType> = node.inputs.iter().map(|&i| self.ty(i)).collect();
            let ty =
                infer(&node.op, &types).map_err(|message| Error::Type { site: self.site(id), message })?;
            if ty != node.ty {
                let message = format!("recorded type {} differs from inferred {ty}", node.ty);
                return Err(Error::Type { site: self.site(id), message });
            }
        }
        if let Some(bad) = self.outputs.iter().find(|o| !self.contains(**o)) {
            let site = Site { op: "return", name: None, location: None };
            return Err(Error::UnknownNode { site, operand: bad.index(), len: self.len() });
        }
        Ok(())
    }

    /// Marks, by node index, `roots` and every node they depend on.
    pub fn ancestors(&self, roots: &[NodeId]) -> Vec<bool> {
        let mut needed = vec![false; self.len()];
        for root in roots {
            needed[root.index()] = true;
        }
        for id in self.node_ids().rev() {
            if needed[id.index()] {
                for input in self.inputs(id) {
                    needed[input.index()] = true;
                }
            }
        }
        needed
    }

    /// A new graph holding only the ancestors of `roots` (in the same relative order), with
    /// every leaf op passed through `map_leaf` (e.g. to rename an input). Returns the graph,
    /// whose outputs are the copied roots, and the old-to-new id map.
    pub fn extract(
        &self,
        roots: &[NodeId],
        map_leaf: impl Fn(&Op) -> Op,
    ) -> Result<(Graph, Vec<Option<NodeId>>)> {
        let needed = self.ancestors(roots);
        let mut out = Graph::new();
        let mut map: Vec<Option<NodeId>> = vec![None; self.len()];
        for id in self.node_ids().filter(|id| needed[id.index()]) {
            let node = self.node(id);
            let op = if node.op.arity() == 0 { map_leaf(&node.op) } else { node.op.clone() };
            let inputs: Vec<NodeId> =
                node.inputs.iter().map(|i| map[i.index()].expect("ancestor copied")).collect();
            let provenance = Provenance { name: node.name.clone(), location: node.location };
            map[id.index()] = Some(out.add_with(op, &inputs, provenance)?);
        }
        out.set_outputs(roots.iter().map(|r| map[r.index()].expect("root copied")).collect());
        Ok((out, map))
    }

    /// Graphviz DOT text (petgraph's exporter), one box per node labelled like the text form.
    pub fn to_dot(&self) -> String {
        let labelled = self.dag.map(
            |index, node| {
                let mut label = format!("%{} = {}\n{}", index.index(), node.op.name(), node.ty);
                if let Some(name) = &node.name {
                    label.push_str(&format!("\n{name}"));
                }
                label
            },
            |_, position| *position,
        );
        format!("{}", petgraph::dot::Dot::with_config(&labelled, &[petgraph::dot::Config::EdgeNoLabel]))
    }
}

/// Graphs are equal when they hold the same nodes (op, operands, user name) in the same
/// order and the same outputs; source locations are provenance, not structure.
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        self.len() == other.len()
            && self.outputs == other.outputs
            && self.node_ids().all(|id| {
                let (a, b) = (self.node(id), other.node(id));
                a.op == b.op && a.inputs == b.inputs && a.name == b.name && a.ty == b.ty
            })
    }
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::print(self))
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::print(self))
    }
}
