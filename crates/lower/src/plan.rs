//! Lowering: turns an optimized graph and its fusion groups into units of work — fused
//! kernels and host steps — split into phases by the inputs they depend on, and ordered.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use natgrad_ir::{DType, Dim, Graph, NodeId, Op, Reduce, Shape, TensorType, Window};
use natgrad_rewrite::FusionGroup;
use natgrad_rewrite::fusion::{Role, role};

use crate::Error;
use crate::kernel::{Access, ColumnSum, KernelSpec};
use crate::legalize::KernelBody;

/// When a unit runs: once when a batch size's buffers are made, or in a numbered phase.
/// `Setup` orders before every `Run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Constants and the batch size, written once per memory plan.
    Setup,
    /// Phase `k`: the work depending on the inputs of phase `k` (and earlier ones).
    Run(usize),
}

/// Which inputs and params each phase needs first. Work depending only on earlier phases'
/// inputs is not redone when a later phase runs again (the Fisher product's forward pass
/// runs in phase 0, its tangent and backward passes in phase 1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Partition {
    phases: Vec<Vec<String>>,
}

impl Partition {
    /// One phase holding every input and param.
    pub fn single() -> Partition {
        Partition::default()
    }

    /// `phases[k]` names the inputs and params first needed in phase `k`.
    pub fn new(phases: Vec<Vec<String>>) -> Partition {
        Partition { phases }
    }

    /// The phase of input `name`: as named, or 0 for a single-phase partition.
    fn phase_of(&self, name: &str) -> Option<usize> {
        if self.phases.is_empty() {
            return Some(0);
        }
        self.phases.iter().position(|names| names.iter().any(|n| n == name))
    }
}

/// Where lowering time went.
#[derive(Clone, Debug, Default)]
pub struct PlanTimes {
    /// Simplifier.
    pub simplify: Duration,
    /// Lowering to units.
    pub lower: Duration,
}

/// A graph ready for any backend: the optimized graph, its units in execution order and
/// which node's value lives in which node's buffer.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The optimized graph whose values the units compute.
    pub graph: Graph,
    /// Element type of every value.
    pub dtype: DType,
    /// Every input and param of the source graph (the optimized one may have dropped some).
    pub leaves: BTreeMap<String, TensorType>,
    /// Units, phase by phase, each phase in dependency order.
    pub units: Vec<Unit>,
    /// For every node with a buffer, the node that owns the buffer (reshapes alias their
    /// operand's buffer).
    pub storage: HashMap<NodeId, NodeId>,
    /// Phase of every input and param of the optimized graph, by name.
    pub input_phase: BTreeMap<String, usize>,
    /// Time spent building the plan.
    pub times: PlanTimes,
}

impl Plan {
    /// Simplifies `graph` (when `simplify`) and lowers it; every node must have `dtype`.
    pub fn build(graph: &Graph, partition: &Partition, dtype: DType, simplify: bool) -> Result<Plan, Error> {
        if let Some(bad) = graph.node_ids().find(|&id| graph.dtype(id) != dtype) {
            return Err(Error::DType {
                node: graph.site(bad).to_string(),
                expected: dtype,
                got: graph.dtype(bad),
            });
        }
        let mut times = PlanTimes::default();
        let start = Instant::now();
        let simplified = if simplify {
            natgrad_rewrite::simplify(graph, &natgrad_rewrite::Options::default())?
        } else {
            let fusion = natgrad_rewrite::fusion_groups(graph);
            natgrad_rewrite::Simplified { graph: graph.clone(), fusion, stats: Default::default() }
        };
        times.simplify = start.elapsed();
        let start = Instant::now();
        let lowered = lower(&simplified.graph, &simplified.fusion, partition)?;
        times.lower = start.elapsed();
        let leaves = graph
            .node_ids()
            .filter_map(|id| match graph.op(id) {
                Op::Input { name, .. } | Op::Param { name, .. } => Some((name.clone(), graph.ty(id).clone())),
                _ => None,
            })
            .collect();
        Ok(Plan {
            graph: simplified.graph,
            dtype,
            leaves,
            units: lowered.units,
            storage: lowered.storage,
            input_phase: lowered.input_phase,
            times,
        })
    }

    /// Number of phases.
    pub fn phases(&self) -> usize {
        self.input_phase.values().max().map_or(1, |p| p + 1)
    }

    /// Number of fused kernels.
    pub fn kernel_count(&self) -> usize {
        self.units.iter().filter(|u| matches!(u.work, Work::Kernel { .. })).count()
    }

    /// The node of output `index`, or an error naming how many outputs there are.
    pub fn output(&self, index: usize) -> Result<NodeId, Error> {
        let outputs = self.graph.outputs();
        outputs.get(index).copied().ok_or(Error::OutOfRange { what: "output", index, count: outputs.len() })
    }

    /// Elements of node `n`'s value at batch size `batch`.
    pub fn elements(&self, n: NodeId, batch: usize) -> usize {
        self.graph.shape(n).num_elements(batch)
    }
}

/// A row-major value of shape `dims` (rank ≥ 2) as a `[rows, cols]` matrix: its leading
/// dimensions flattened into rows, as [`Work::MatMul`] reads its operands.
pub fn as_matrix(dims: &[usize]) -> [usize; 2] {
    match dims.split_last() {
        Some((&cols, leading)) => [leading.iter().product(), cols],
        None => [1, 1],
    }
}

/// One unit of work. Every backend matches on this exhaustively, so a new kind of work
/// breaks each backend at compile time until it handles it.
#[derive(Clone, Debug)]
pub enum Work {
    /// A fused kernel over the `rows × cols` space of `shape`.
    Kernel {
        /// What it computes.
        spec: KernelSpec,
        /// The iteration space (`cols` is the last dimension).
        shape: Shape,
        /// Stored values read (in `spec.inputs` order), then values written (`spec.outputs`,
        /// then `spec.column_sums`).
        args: Vec<NodeId>,
    },
    /// `out = op(a)·op(b)` on row-major values seen as matrices ([`as_matrix`]: leading
    /// dimensions flattened into rows); a transpose is a stride swap.
    MatMul {
        /// Left operand.
        a: NodeId,
        /// Right operand.
        b: NodeId,
        /// Use `aᵀ`.
        ta: bool,
        /// Use `bᵀ`.
        tb: bool,
    },
    /// Softmax or log-softmax along an axis (maximum subtracted first).
    Softmax {
        /// Operand.
        x: NodeId,
        /// The axis normalised over.
        axis: usize,
        /// Log-softmax instead.
        log: bool,
    },
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    Transpose {
        /// Operand.
        x: NodeId,
        /// The permutation.
        perm: Vec<usize>,
    },
    /// The patches of a 2-D convolution (`im2col`, a gather) or their adjoint (`col2im`, a
    /// scatter-add into zeros), over NHWC images: see [`Window::for_each_patch_value`].
    Patches {
        /// Operand: the images (im2col) or the patches (col2im).
        x: NodeId,
        /// The window.
        window: Window,
        /// col2im instead of im2col.
        adjoint: bool,
    },
    /// A numpy broadcast of `x` written out in full.
    Broadcast {
        /// Operand.
        x: NodeId,
    },
    /// A sum, mean or max over `axes`.
    Reduce {
        /// Operand.
        x: NodeId,
        /// Which reduction.
        kind: Reduce,
        /// Axes reduced (the kept ones stay in order).
        axes: Vec<usize>,
    },
    /// A constant (values repeated cyclically to the output's length), written in set-up.
    Constant {
        /// The values.
        values: Vec<f64>,
    },
    /// The batch size as a scalar, written in set-up.
    BatchSize,
}

impl Work {
    /// A short name of the kind of work, for profiles.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Kernel { .. } => "kernel",
            Work::MatMul { .. } => "matmul",
            Work::Softmax { .. } => "softmax",
            Work::Transpose { .. } => "transpose",
            Work::Patches { adjoint: false, .. } => "im2col",
            Work::Patches { adjoint: true, .. } => "col2im",
            Work::Broadcast { .. } => "broadcast",
            Work::Reduce { .. } => "reduce",
            Work::Constant { .. } => "constant",
            Work::BatchSize => "batch_size",
        }
    }
}

/// A unit and the node whose value it produces (kernels produce several: `outputs`).
#[derive(Clone, Debug)]
pub struct Unit {
    /// What to do.
    pub work: Work,
    /// Nodes whose values this unit writes.
    pub outputs: Vec<NodeId>,
    /// Nodes whose values it reads.
    pub reads: Vec<NodeId>,
    /// When it runs.
    pub phase: Phase,
}

/// The units of a graph, before they are attached to a [`Plan`].
struct Lowered {
    units: Vec<Unit>,
    storage: HashMap<NodeId, NodeId>,
    input_phase: BTreeMap<String, usize>,
}

/// Lowers `graph` whose inputs are split into phases by `partition`.
fn lower(graph: &Graph, groups: &[FusionGroup], partition: &Partition) -> Result<Lowered, Error> {
    let mut input_phase = BTreeMap::new();
    // Phase of each node: inputs as given, everything else the max of its operands.
    let mut phase = vec![0usize; graph.len()];
    for id in graph.node_ids() {
        phase[id.index()] = match graph.op(id) {
            Op::Input { name, .. } | Op::Param { name, .. } => {
                let p = partition
                    .phase_of(name)
                    .ok_or_else(|| Error::Lowering(format!("input '{name}' is not assigned to a phase")))?;
                input_phase.insert(name.clone(), p);
                p
            }
            _ => graph.inputs(id).iter().map(|i| phase[i.index()]).max().unwrap_or(0),
        };
    }
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    for (g, group) in groups.iter().enumerate() {
        for &n in &group.nodes {
            if role(graph.op(n)) == Role::Elementwise {
                group_of.insert(n, g);
            }
        }
    }
    // Kernel membership: (group, phase) → elementwise nodes.
    let mut kernels: BTreeMap<(usize, usize), Vec<NodeId>> = BTreeMap::new();
    for (&n, &g) in &group_of {
        kernels.entry((g, phase[n.index()])).or_default().push(n);
    }
    let mut member_of: HashMap<NodeId, (usize, usize)> =
        kernels.iter().flat_map(|(&k, nodes)| nodes.iter().map(move |&n| (n, k))).collect();
    // Sums (and means) over every row of a member that closes its fusion group are
    // accumulated by the member's kernel: the bias gradients of a dense layer.
    let mut column_sums: BTreeMap<(usize, usize), Vec<NodeId>> = BTreeMap::new();
    for id in graph.node_ids() {
        if let Op::Reduce { kind: Reduce::Sum | Reduce::Mean, axes, .. } = graph.op(id) {
            let operand = graph.inputs(id)[0];
            let rank = graph.shape(operand).0.len();
            if let Some(&key) = member_of.get(&operand)
                && rank >= 2
                && axes.iter().copied().eq(0..rank - 1)
                && groups[key.0].nodes.binary_search(&id).is_ok()
                && graph.shape(operand) == &groups[key.0].shape
            {
                column_sums.entry(key).or_default().push(id);
            }
        }
    }
    for (&key, sums) in &column_sums {
        member_of.extend(sums.iter().map(|&r| (r, key)));
    }

    let mut builder = Builder { graph, storage: HashMap::new(), materialize: BTreeSet::new() };
    let mut units: Vec<(usize, Unit)> = Vec::new(); // (first node id, unit)
    for (&key, nodes) in &kernels {
        let mut nodes = nodes.clone();
        nodes.sort();
        let shape = groups[key.0].shape.clone();
        let sums = column_sums.get(&key).map_or(&[][..], Vec::as_slice);
        let unit = builder.kernel(&nodes, sums, &member_of, key, shape, Phase::Run(key.1));
        // Found by fuzzing: in an unsimplified graph a group may be dead code (no member used
        // outside it, none an output); a kernel writing nothing is not scheduled.
        if !unit.outputs.is_empty() {
            units.push((nodes[0].index(), unit));
        }
    }
    for id in graph.node_ids() {
        if member_of.contains_key(&id) {
            continue;
        }
        let p = Phase::Run(phase[id.index()]);
        let op = graph.op(id);
        let inputs = graph.inputs(id);
        let host = |work: Work, reads: Vec<NodeId>| Unit { work, outputs: vec![id], reads, phase: p };
        let unit = match op {
            Op::Input { .. } | Op::Param { .. } => {
                builder.storage.insert(id, id);
                None
            }
            Op::Constant { values, .. } => Some(Unit {
                phase: Phase::Setup,
                ..host(Work::Constant { values: values.iter().map(|v| v.get()).collect() }, vec![])
            }),
            Op::BatchSize { .. } => Some(Unit { phase: Phase::Setup, ..host(Work::BatchSize, vec![]) }),
            Op::MatMul { transpose_a, transpose_b } => Some(host(
                Work::MatMul { a: inputs[0], b: inputs[1], ta: *transpose_a, tb: *transpose_b },
                inputs.to_vec(),
            )),
            Op::Softmax { axis } => {
                Some(host(Work::Softmax { x: inputs[0], axis: *axis, log: false }, inputs.to_vec()))
            }
            Op::LogSoftmax { axis } => {
                Some(host(Work::Softmax { x: inputs[0], axis: *axis, log: true }, inputs.to_vec()))
            }
            Op::Transpose { perm } => {
                Some(host(Work::Transpose { x: inputs[0], perm: perm.clone() }, inputs.to_vec()))
            }
            Op::Im2col { window } => {
                Some(host(Work::Patches { x: inputs[0], window: *window, adjoint: false }, inputs.to_vec()))
            }
            Op::Col2im { window, .. } => {
                Some(host(Work::Patches { x: inputs[0], window: *window, adjoint: true }, inputs.to_vec()))
            }
            Op::Reduce { kind, axes, .. } => {
                Some(host(Work::Reduce { x: inputs[0], kind: *kind, axes: axes.clone() }, inputs.to_vec()))
            }
            // Broadcasts are materialised only if something needs them in full (decided below).
            Op::Broadcast { .. } => None,
            Op::Reshape { .. } => None,
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => {
                return Err(Error::Lowering(format!("elementwise node {id} is in no fusion group")));
            }
        };
        if let Some(unit) = unit {
            builder.storage.insert(id, id);
            units.push((id.index(), unit));
        }
    }
    // Broadcasts read in full by host steps or graph outputs are materialised.
    let mut needed_in_full: BTreeSet<NodeId> = builder.materialize.clone();
    for (_, unit) in &units {
        if !matches!(unit.work, Work::Kernel { .. }) {
            needed_in_full.extend(unit.reads.iter().copied());
        }
    }
    needed_in_full.extend(graph.outputs().iter().copied());
    // Consumers before producers: a reshape needs its operand stored, a stored broadcast
    // needs its source.
    for id in graph.node_ids().rev() {
        match graph.op(id) {
            Op::Reshape { .. } => {
                needed_in_full.insert(graph.inputs(id)[0]);
            }
            Op::Broadcast { .. } if needed_in_full.contains(&id) => {
                needed_in_full.insert(graph.inputs(id)[0]);
            }
            _ => {}
        }
    }
    for id in graph.node_ids() {
        if matches!(graph.op(id), Op::Broadcast { .. }) && needed_in_full.contains(&id) {
            let x = graph.inputs(id)[0];
            builder.storage.insert(id, id);
            let unit = Unit {
                work: Work::Broadcast { x },
                outputs: vec![id],
                reads: vec![x],
                phase: Phase::Run(phase[id.index()]),
            };
            units.push((id.index(), unit));
        }
    }
    for id in graph.node_ids() {
        if let Op::Reshape { .. } = graph.op(id) {
            let source = graph.inputs(id)[0];
            let owner = *builder
                .storage
                .get(&source)
                .ok_or_else(|| Error::Lowering(format!("reshape {id} of an unstored value")))?;
            builder.storage.insert(id, owner);
        }
    }
    for n in &needed_in_full {
        if !builder.storage.contains_key(n) {
            return Err(Error::Lowering(format!(
                "value {n} ({}) is needed but never stored",
                graph.op(*n).name()
            )));
        }
    }
    Ok(Lowered { units: schedule(units, &builder.storage)?, storage: builder.storage, input_phase })
}

struct Builder<'g> {
    graph: &'g Graph,
    storage: HashMap<NodeId, NodeId>,
    /// Broadcast nodes kernels must read in full (no cheap access mode).
    materialize: BTreeSet<NodeId>,
}

impl Builder<'_> {
    /// The kernel computing `nodes` (one phase of one fusion group).
    fn kernel(
        &mut self,
        nodes: &[NodeId],
        sums: &[NodeId],
        member_of: &HashMap<NodeId, (usize, usize)>,
        key: (usize, usize),
        shape: Shape,
        phase: Phase,
    ) -> Unit {
        let g = self.graph;
        let dtype = g.dtype(nodes[0]);
        let mut body = KernelBody::default();
        let mut expr_of: HashMap<NodeId, usize> = HashMap::new();
        let mut inputs: Vec<(NodeId, Access)> = Vec::new();
        let mut reads = Vec::new();
        for &n in nodes {
            let mut operand_exprs = Vec::new();
            for &operand in g.inputs(n) {
                let e = if let Some(&e) = expr_of.get(&operand) {
                    e
                } else {
                    let (source, access, constant) = self.read(operand, &shape);
                    let e = match constant {
                        Some(c) => body.constant(c),
                        None => {
                            let slot = inputs
                                .iter()
                                .position(|&(s, a)| s == source && a == access)
                                .unwrap_or_else(|| {
                                    inputs.push((source, access));
                                    reads.push(source);
                                    inputs.len() - 1
                                });
                            body.input(slot)
                        }
                    };
                    expr_of.insert(operand, e);
                    e
                };
                operand_exprs.push(e);
            }
            let o = &operand_exprs;
            let e = match g.op(n) {
                Op::Unary(u) => body.unary(*u, o[0]),
                Op::Binary(b) => body.binary(*b, o[0], o[1]),
                Op::Compare(c) => body.compare(*c, o[0], o[1]),
                Op::Select => body.select(o[0], o[1], o[2]),
                other => unreachable!("{} is not elementwise", other.name()),
            };
            expr_of.insert(n, e);
        }
        // Members used outside this kernel are stored.
        let outputs: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|&n| {
                g.outputs().contains(&n) || g.users(n).iter().any(|u| member_of.get(u) != Some(&key))
            })
            .collect();
        for &n in outputs.iter().chain(sums) {
            self.storage.insert(n, n);
        }
        let column_sums = sums
            .iter()
            .map(|&r| ColumnSum {
                expr: expr_of[&g.inputs(r)[0]],
                mean: matches!(g.op(r), Op::Reduce { kind: Reduce::Mean, .. }),
            })
            .collect();
        let spec = KernelSpec {
            dtype,
            inputs: inputs.iter().map(|&(_, a)| a).collect(),
            exprs: body.finish(),
            outputs: outputs.iter().map(|n| expr_of[n]).collect(),
            column_sums,
        };
        let mut args: Vec<NodeId> = inputs.iter().map(|&(s, _)| s).collect();
        args.extend(&outputs);
        args.extend(sums);
        let mut written = outputs;
        written.extend(sums);
        Unit { work: Work::Kernel { spec, shape, args }, outputs: written, reads, phase }
    }

    /// How a kernel over `shape` reads `operand`: (stored node, access, or a constant).
    fn read(&mut self, operand: NodeId, shape: &Shape) -> (NodeId, Access, Option<f64>) {
        let g = self.graph;
        if let Op::Broadcast { .. } = g.op(operand) {
            let source = g.inputs(operand)[0];
            if let (Op::Constant { .. }, Some(c)) = (g.op(source), g.op(source).uniform_constant()) {
                return (source, Access::Scalar, Some(c));
            }
            if let Some(access) = access_for(g.shape(source), shape) {
                return (source, access, None);
            }
            self.materialize.insert(operand);
            return (operand, Access::Full, None);
        }
        if let (Op::Constant { .. }, Some(c)) = (g.op(operand), g.op(operand).uniform_constant()) {
            return (operand, Access::Scalar, Some(c));
        }
        let access = if g.shape(operand).size_signature() == (0, 1) { Access::Scalar } else { Access::Full };
        (operand, access, None)
    }
}

/// The access mode that reads a broadcast of `source` inside a loop over `shape`, if any.
fn access_for(source: &Shape, shape: &Shape) -> Option<Access> {
    let ones = |dims: &[Dim]| dims.iter().all(|d| *d == Dim::Fixed(1));
    let (s, t) = (&source.0, &shape.0);
    if ones(s) {
        return Some(Access::Scalar);
    }
    let last = *t.last()?;
    // [.., 1, n] → rows × n: a row vector.
    if s.last() == Some(&last) && last != Dim::Fixed(1) && ones(&s[..s.len() - 1]) {
        return Some(Access::Row);
    }
    // [a, b, 1] → [a, b, n]: one value per row.
    if s.len() == t.len() && s.last() == Some(&Dim::Fixed(1)) && s[..s.len() - 1] == t[..t.len() - 1] {
        return Some(Access::Col);
    }
    None
}

/// Orders units phase by phase; within a phase, a unit runs after the units producing
/// what it reads (ties broken by node id, so the order is deterministic).
fn schedule(units: Vec<(usize, Unit)>, storage: &HashMap<NodeId, NodeId>) -> Result<Vec<Unit>, Error> {
    let producer: HashMap<NodeId, usize> = units
        .iter()
        .enumerate()
        .flat_map(|(u, (_, unit))| unit.outputs.iter().map(move |&n| (n, u)))
        .collect();
    let owner = |n: NodeId| storage.get(&n).copied().unwrap_or(n);
    let deps: Vec<Vec<usize>> = units
        .iter()
        .map(|(_, unit)| unit.reads.iter().filter_map(|&r| producer.get(&owner(r)).copied()).collect())
        .collect();
    let mut done = vec![false; units.len()];
    let mut order = Vec::new();
    let mut phases: Vec<Phase> = units.iter().map(|(_, u)| u.phase).collect();
    // Set-up units (constants) first, then phases in order.
    phases.sort_unstable();
    phases.dedup();
    for p in phases {
        loop {
            let next = (0..units.len())
                .filter(|&u| !done[u] && units[u].1.phase == p && deps[u].iter().all(|&d| done[d] || d == u))
                .min_by_key(|&u| units[u].0);
            let Some(u) = next else { break };
            done[u] = true;
            order.push(u);
        }
    }
    if let Some(stuck) = (0..units.len()).find(|&u| !done[u]) {
        return Err(Error::Lowering(format!(
            "unit writing {:?} cannot be scheduled (a dependency cycle between fusion groups)",
            units[stuck].1.outputs
        )));
    }
    let mut units: Vec<Option<Unit>> = units.into_iter().map(|(_, u)| Some(u)).collect();
    Ok(order.into_iter().map(|u| units[u].take().expect("scheduled once")).collect())
}
