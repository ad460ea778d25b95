//! The gradient and the curvature-vector products of the paper, built as graphs.
//!
//! Each product graph holds its own forward pass on the **metric batch** — an input named
//! [`METRIC_INPUT`], separate from the gradient batch and needing no targets (section 7) —
//! one tangent input per parameter (`v.w1`, `v.b1`, …) and one output per parameter, in the
//! model's flat layout order.

use natgrad_ir::{Graph, Model, NodeId, Op, OutputKind, Provenance};

use crate::emit::{Emit, Tangent};
use crate::{Error, Result, grad_in, lop_in, materialize, rop_in};

/// Name of the metric-batch input of every product graph.
pub const METRIC_INPUT: &str = "x_metric";
/// Name of the metric-batch targets (only the products whose loss needs targets have it).
pub const METRIC_TARGETS: &str = "t_metric";

/// A curvature-vector product `v ↦ G v` as a graph.
#[derive(Clone, Debug)]
pub struct Product {
    /// The graph; its outputs are `results`.
    pub graph: Graph,
    /// The metric batch input `[B, n_in]`.
    pub data: NodeId,
    /// The metric batch targets, when the product depends on them.
    pub targets: Option<NodeId>,
    /// The param nodes, in flat layout order.
    pub params: Vec<NodeId>,
    /// The tangent input of each param (same order, same types).
    pub vectors: Vec<NodeId>,
    /// `(G v)` for each param (same order).
    pub results: Vec<NodeId>,
}

impl Product {
    /// The names of `nodes` (inputs and params).
    fn names(&self, nodes: impl IntoIterator<Item = NodeId>) -> Vec<String> {
        nodes.into_iter().filter_map(|id| self.graph.op(id).leaf_name().map(str::to_string)).collect()
    }

    /// The inputs by phase: phase 0 runs the forward pass on the metric batch (params, data,
    /// targets), phase 1 the tangent and backward passes (the vector `v`), so one `prepare`
    /// serves every `apply` of a solve.
    pub fn phases(&self) -> Vec<Vec<String>> {
        let forward = self.params.iter().copied().chain([self.data]).chain(self.targets);
        vec![self.names(forward), self.vector_names()]
    }

    /// The tangent input names (`v.w1`, …), in flat layout order.
    pub fn vector_names(&self) -> Vec<String> {
        self.names(self.vectors.iter().copied())
    }
}

/// Loss and gradient as a graph (on the gradient batch, input named like the model's).
#[derive(Clone, Debug)]
pub struct GradientGraph {
    /// The graph; outputs are `[loss, grads…]`.
    pub graph: Graph,
    /// The data input.
    pub data: NodeId,
    /// The targets input (equal to `data` for an autoencoder).
    pub targets: NodeId,
    /// The param nodes, in flat layout order.
    pub params: Vec<NodeId>,
    /// The scalar loss.
    pub loss: NodeId,
    /// ∂loss/∂param for each param.
    pub grads: Vec<NodeId>,
}

/// The loss and its gradient with respect to every parameter.
pub fn gradient(model: &Model) -> Result<GradientGraph> {
    let (mut graph, map) = model.graph.extract(&[model.loss], |op| op.clone())?;
    let at = |id: NodeId| map[id.index()].expect("extracted");
    let params = param_nodes(model, &mut graph)?;
    let loss = at(model.loss);
    let tangents = grad_in(&mut graph, loss, &params)?;
    let grads = materialize_all(&mut graph, &tangents, &params, "grad")?;
    let mut outputs = vec![loss];
    outputs.extend(&grads);
    graph.set_outputs(outputs);
    Ok(GradientGraph { graph, data: at(model.input), targets: at(model.targets), params, loss, grads })
}

/// The diagonal of the uncentred covariance of per-example gradients, `(1/N) Σᵢ gᵢ ⊙ gᵢ`
/// (Martens' HF preconditioner), as a graph with outputs `[loss, squares…]` in layout order.
/// Built from the gradient graph: a dense weight's gradient `hᵀδ` becomes `N·(h⊙h)ᵀ(δ⊙δ)`
/// and a bias's `Σ δ` becomes `N·Σ δ⊙δ` (δ carries the 1/N of the mean loss). Other
/// parameter uses are an error naming the parameter.
pub fn squared_gradients(model: &Model) -> Result<GradientGraph> {
    let mut g = gradient(model)?;
    let mut squares = Vec::with_capacity(g.grads.len());
    for (&grad, &param) in g.grads.iter().zip(&g.params) {
        let graph = &mut g.graph;
        let provenance = Provenance::default();
        let op = graph.op(grad).clone();
        let inputs = graph.inputs(grad).to_vec();
        let mut e = Emit { graph, provenance };
        let squared = match (&op, inputs.as_slice()) {
            (Op::MatMul { transpose_a: true, transpose_b: false }, &[h, delta]) => {
                let h2 = e.unary(natgrad_ir::Unary::Square, h)?;
                let d2 = e.unary(natgrad_ir::Unary::Square, delta)?;
                Some(e.op(op.clone(), &[h2, d2])?)
            }
            (Op::Reduce { kind: natgrad_ir::Reduce::Sum, axes, keep_dims: false }, &[delta])
                if axes == &[0] =>
            {
                let d2 = e.unary(natgrad_ir::Unary::Square, delta)?;
                Some(e.op(op.clone(), &[d2])?)
            }
            _ if e.graph.op(grad).uniform_constant() == Some(0.0)
                || matches!(e.graph.op(grad), Op::Broadcast { .. }) =>
            {
                None
            }
            _ => {
                let what = format!(
                    "per-example squared gradients need dense layers; the gradient of {} is `{}`",
                    e.graph.site(param),
                    op.name()
                );
                return Err(Error::Arguments { mode: "squared_gradients", what });
            }
        };
        squares.push(match squared {
            Some(sum) => per_example_sum_to_mean_of_squares(&mut e, sum)?,
            None => grad,
        });
    }
    let mut outputs = vec![g.loss];
    outputs.extend(&squares);
    g.graph.set_outputs(outputs);
    g.grads = squares;
    Ok(g)
}

/// `N · x`: turns Σᵢ (δᵢ/N)²-style sums into (1/N) Σᵢ (N δᵢ)².
fn per_example_sum_to_mean_of_squares(e: &mut Emit, x: NodeId) -> Result<NodeId> {
    let dtype = e.graph.dtype(x);
    let n = e.op(Op::BatchSize { dtype }, &[])?;
    let shape = e.graph.shape(x).clone();
    let n = e.broadcast(n, shape)?;
    e.mul(x, n)
}

/// The Fisher-vector product of eq. (7), (8), (30), averaged over the metric batch, built
/// naïvely as the paper's Theano code does: `Lop(y, θ, M · Rop(y, θ, v)) / N` with
/// `M = β²` (linear), `1 / (y(1−y))` (sigmoid) or `1 / y` (softmax). The simplifier is
/// responsible for cancelling the divisions.
pub fn fisher_product(model: &Model) -> Result<Product> {
    let mut p = Setup::new(model, model.output)?;
    let y = p.at(model.output);
    let jv = rop_in(&mut p.graph, &[y], &p.params, &p.vectors)?[0];
    let cotangent = match jv {
        Tangent::Zero => Tangent::Zero,
        Tangent::Value(jv) => {
            let mut e = p.emit();
            let weighted = match model.kind {
                // M = β²
                OutputKind::Linear { beta } => e.scale(jv, beta * beta)?,
                // M = diag(1 / (y(1−y)))
                OutputKind::Sigmoid => {
                    let one = e.constant_like(y, 1.0)?;
                    let one_minus = e.sub(one, y)?;
                    let variance = e.mul(y, one_minus)?;
                    e.div(jv, variance)?
                }
                // M = diag(1 / y)
                OutputKind::Softmax => e.div(jv, y)?,
            };
            Tangent::Value(per_example_mean(&mut e, weighted)?)
        }
    };
    p.finish(&[y], cotangent, "Gv")
}

/// The extended Gauss-Newton product of eq. (10), `J_rᵀ H_{L∘r} J_r v`, for the model's loss
/// as written in the DSL: `H_{L∘r} J_r v` is the Rop of `∂L/∂r` along `J_r v`. `G` is PSD
/// only for losses convex in `r` (all three built-in losses are). Uses the metric targets
/// when the loss depends on them.
pub fn gauss_newton_product(model: &Model) -> Result<Product> {
    let mut p = Setup::new(model, model.loss)?;
    let (r, loss) = (p.at(model.preactivation), p.at(model.loss));
    let grad_r = grad_in(&mut p.graph, loss, &[r])?[0];
    let jrv = rop_in(&mut p.graph, &[r], &p.params, &p.vectors)?[0];
    let hjv = match (grad_r, jrv) {
        (Tangent::Value(grad_r), Tangent::Value(jrv)) => rop_in(&mut p.graph, &[grad_r], &[r], &[jrv])?[0],
        _ => Tangent::Zero,
    };
    p.finish(&[r], hjv, "Gv")
}

/// TONGA's metric (eq. 9): the uncentred covariance of per-example gradients,
/// `(1/N) Σᵢ gᵢ (gᵢᵀ v)`, from one Rop of the per-example losses and one Lop. Needs targets.
pub fn empirical_fisher_product(model: &Model) -> Result<Product> {
    let mut p = Setup::new(model, model.per_example_loss)?;
    let losses = p.at(model.per_example_loss);
    let gv = rop_in(&mut p.graph, &[losses], &p.params, &p.vectors)?[0];
    let cotangent = match gv {
        Tangent::Zero => Tangent::Zero,
        Tangent::Value(gv) => Tangent::Value(per_example_mean(&mut p.emit(), gv)?),
    };
    p.finish(&[losses], cotangent, "Fv")
}

/// `x / N` for the metric batch size `N`.
fn per_example_mean(e: &mut Emit, x: NodeId) -> Result<NodeId> {
    let dtype = e.graph.dtype(x);
    let n = e.op(Op::BatchSize { dtype }, &[])?;
    let shape = e.graph.shape(x).clone();
    let n = e.broadcast(n, shape)?;
    e.div(x, n)
}

/// A product graph under construction: the model's forward pass to `root` on the metric
/// batch, its params and their tangent inputs.
struct Setup<'m> {
    model: &'m Model,
    graph: Graph,
    map: Vec<Option<NodeId>>,
    params: Vec<NodeId>,
    vectors: Vec<NodeId>,
}

impl<'m> Setup<'m> {
    fn new(model: &'m Model, root: NodeId) -> Result<Setup<'m>> {
        let (input, targets) = (model.input_name().to_string(), model.targets_name().to_string());
        let (mut graph, map) = model.graph.extract(&[root], |op| match op {
            Op::Input { name, dtype, shape } if *name == input || *name == targets => {
                let name = if *name == input { METRIC_INPUT } else { METRIC_TARGETS };
                Op::Input { name: name.to_string(), dtype: *dtype, shape: shape.clone() }
            }
            other => other.clone(),
        })?;
        let params = param_nodes(model, &mut graph)?;
        let vectors = params
            .iter()
            .map(|&p| {
                let Op::Param { name, dtype, shape } = graph.op(p).clone() else {
                    unreachable!("param node")
                };
                let op = Op::Input { name: format!("v.{name}"), dtype, shape };
                graph.add_with(op, &[], Provenance::default())
            })
            .collect::<natgrad_ir::Result<Vec<_>>>()?;
        Ok(Setup { model, graph, map, params, vectors })
    }

    fn at(&self, id: NodeId) -> NodeId {
        self.map[id.index()].expect("root ancestors are extracted")
    }

    fn emit(&mut self) -> Emit<'_> {
        Emit { graph: &mut self.graph, provenance: Provenance::default() }
    }

    /// Pulls `cotangent` on `outputs` back to the params and wraps up the product.
    fn finish(mut self, outputs: &[NodeId], cotangent: Tangent, label: &str) -> Result<Product> {
        let adjoints = match cotangent {
            Tangent::Zero => vec![Tangent::Zero; self.params.len()],
            Tangent::Value(c) => lop_in(&mut self.graph, outputs, &self.params, &[c])?,
        };
        let results = materialize_all(&mut self.graph, &adjoints, &self.params, label)?;
        self.graph.set_outputs(results.clone());
        let data = self.graph.leaf(METRIC_INPUT).ok_or_else(|| Error::Arguments {
            mode: "product",
            what: format!("the model output does not depend on its input `{}`", self.model.input_name()),
        })?;
        let targets = self.graph.leaf(METRIC_TARGETS);
        Ok(Product { graph: self.graph, data, targets, params: self.params, vectors: self.vectors, results })
    }
}

/// The model's params in flat layout order, added to `graph` where the extracted part
/// does not use them (their derivative is then zero).
fn param_nodes(model: &Model, graph: &mut Graph) -> Result<Vec<NodeId>> {
    let dtype = model.graph.dtype(model.loss);
    model
        .layout
        .slots()
        .iter()
        .map(|slot| match graph.leaf(&slot.name) {
            Some(id) => Ok(id),
            None => {
                let shape = natgrad_ir::Shape::fixed(&slot.shape);
                let op = Op::Param { name: slot.name.clone(), dtype, shape };
                Ok(graph.add_with(op, &[], Provenance::default())?)
            }
        })
        .collect()
}

fn materialize_all(
    graph: &mut Graph,
    tangents: &[Tangent],
    like: &[NodeId],
    label: &str,
) -> Result<Vec<NodeId>> {
    tangents
        .iter()
        .zip(like)
        .map(|(&t, &l)| {
            let id = materialize(graph, t, l)?;
            if let Op::Param { name, .. } = graph.op(l).clone() {
                graph.set_name(id, format!("{label}.{name}"));
            }
            Ok(id)
        })
        .collect()
}
