//! Symbolic differentiation for natgrad: forward mode ([`rop()`]) and reverse mode ([`lop()`]) as
//! graph-to-graph transforms, and on top of them the paper's curvature products —
//! [`fisher_product`] (eq. 7, 8, 30), [`gauss_newton_product`] (eq. 10) and
//! [`empirical_fisher_product`] (eq. 9) — plus [`gradient`].
//!
//! Results are ordinary graphs: printable, evaluable by the interpreter, differentiable
//! again. This crate must not depend on a code generator (Cranelift) or a GPU runtime.
//!
//! | module | concern |
//! |---|---|
//! | [`rop`](mod@rop) | forward-mode rule per op (one `match`) |
//! | [`lop`](mod@lop) | reverse-mode rule per op (one `match`) |
//! | `emit` | helpers that append derivative nodes; [`Tangent`] |
//! | [`products`] | gradient, Fisher, Gauss-Newton and empirical-Fisher product graphs |

#![warn(missing_docs)]

mod emit;
mod error;
pub mod lop;
pub mod products;
pub mod rop;

pub use emit::Tangent;
pub use error::{Error, Result};
pub use lop::{lop, lop_in};
pub use products::{
    GradientGraph, METRIC_INPUT, METRIC_TARGETS, Product, empirical_fisher_product, fisher_product,
    gauss_newton_product, gradient, squared_gradients,
};
pub use rop::{rop, rop_in};

use natgrad_ir::{Graph, NodeId, Op, Provenance};

/// A derivative as a graph of its own: the original nodes plus the derivative nodes, with
/// the derivatives as the graph's outputs.
#[derive(Clone, Debug)]
pub struct Derivative {
    /// The extended graph; its outputs are the derivatives (zeros materialised).
    pub graph: Graph,
    /// The derivatives as computed, with structural zeros kept as [`Tangent::Zero`].
    pub results: Vec<Tangent>,
}

impl Derivative {
    /// Materialises zero results as zero tensors shaped like the matching `like` node.
    fn new(mut graph: Graph, like: &[NodeId], results: Vec<Tangent>) -> Result<Derivative> {
        let outputs = like
            .iter()
            .zip(&results)
            .map(|(&l, r)| materialize(&mut graph, *r, l))
            .collect::<Result<Vec<_>>>()?;
        graph.set_outputs(outputs);
        Ok(Derivative { graph, results })
    }
}

/// `grad(loss, wrt)`: reverse mode seeded with 1 on a scalar `loss`.
pub fn grad(graph: &Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Derivative> {
    let mut out = graph.clone();
    let results = grad_in(&mut out, loss, wrt)?;
    Derivative::new(out, wrt, results)
}

/// [`grad`] appending to `graph` in place.
pub fn grad_in(graph: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Vec<Tangent>> {
    if graph.contains(loss) && graph.shape(loss).rank() != 0 {
        let what = format!("the loss {} must be a scalar, it has type {}", graph.site(loss), graph.ty(loss));
        return Err(Error::Arguments { mode: "grad", what });
    }
    let seed = graph.add_with(Op::scalar(graph.dtype(loss), 1.0), &[], Provenance::default())?;
    lop_in(graph, &[loss], wrt, &[seed])
}

/// The node of a tangent, or a zero tensor of `like`'s type for [`Tangent::Zero`].
pub fn materialize(graph: &mut Graph, tangent: Tangent, like: NodeId) -> Result<NodeId> {
    match tangent {
        Tangent::Value(id) => Ok(id),
        Tangent::Zero => {
            let ty = graph.ty(like).clone();
            let zero = graph.add_with(Op::scalar(ty.dtype, 0.0), &[], Provenance::default())?;
            if ty.shape.rank() == 0 {
                return Ok(zero);
            }
            Ok(graph.add_with(Op::Broadcast { shape: ty.shape }, &[zero], Provenance::default())?)
        }
    }
}

/// Checks that `nodes` and `seeds` pair up, exist, and have equal types.
fn check_seeds(mode: &'static str, graph: &Graph, nodes: &[NodeId], seeds: &[NodeId]) -> Result<()> {
    if nodes.len() != seeds.len() {
        let what = format!("{} nodes but {} seeds", nodes.len(), seeds.len());
        return Err(Error::Arguments { mode, what });
    }
    for (&n, &s) in nodes.iter().zip(seeds) {
        if !graph.contains(n) || !graph.contains(s) {
            let what = format!("node {n} or seed {s} is not in the graph ({} nodes)", graph.len());
            return Err(Error::Arguments { mode, what });
        }
        if graph.ty(n) != graph.ty(s) {
            return Err(Error::SeedType {
                mode,
                site: graph.site(n).to_string(),
                seed: graph.ty(s).to_string(),
                node: graph.ty(n).to_string(),
            });
        }
    }
    Ok(())
}
