//! Constant folding: ops whose operands are all constants are evaluated by the reference
//! interpreter (in f64, rounded to the node's dtype); uniform tensor constants become a
//! broadcast scalar, the canonical form other rules match.

use natgrad_ir::{Bindings, F64Bits, Graph, NodeId, Op, Provenance, eval};

use super::Family::Fold;
use super::Rule;
use crate::pattern::Build;

/// Folding rules.
#[rustfmt::skip]
pub const FOLD: &[Rule] = &[
    Rule::custom("const-uniform", Fold, &["const"], uniform_constant),        // [c, c, …] = broadcast(c)
    Rule::custom("fold-constants", Fold, FOLDABLE, fold_constants),           // f(constants) = constant
];

/// Ops folded when all operands are constants.
const FOLDABLE: &[&str] = &[
    "neg",
    "exp",
    "log",
    "log1p",
    "sqrt",
    "square",
    "pow",
    "sigmoid",
    "tanh",
    "relu",
    "softplus",
    "add",
    "sub",
    "mul",
    "div",
    "maximum",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "select",
    "softmax",
    "log_softmax",
    "matmul",
    "reshape",
    "transpose",
    "im2col",
    "col2im",
    "sum",
    "mean",
    "max",
];

/// Largest constant folding may create.
const MAX_FOLDED_ELEMENTS: usize = 4096;

fn uniform_constant(graph: &Graph, id: NodeId) -> Option<Build> {
    let Op::Constant { dtype, shape, .. } = graph.op(id) else { return None };
    if shape.rank() == 0 {
        return None;
    }
    let value = graph.op(id).uniform_constant()?;
    let scalar = Build::New(Op::scalar(*dtype, value), Vec::new());
    Some(Build::New(Op::Broadcast { shape: shape.clone() }, vec![scalar]))
}

fn fold_constants(graph: &Graph, id: NodeId) -> Option<Build> {
    let inputs = graph.inputs(id);
    let ty = graph.ty(id);
    if inputs.is_empty()
        || ty.shape.has_batch()
        || ty.shape.num_elements(1) > MAX_FOLDED_ELEMENTS
        || !inputs.iter().all(|&i| matches!(graph.op(i), Op::Constant { .. }))
    {
        return None;
    }
    let mut tiny = Graph::new();
    let operands: Vec<NodeId> = inputs
        .iter()
        .map(|&i| tiny.add_with(graph.op(i).clone(), &[], Provenance::default()))
        .collect::<Result<_, _>>()
        .ok()?;
    let root = tiny.add_with(graph.op(id).clone(), &operands, Provenance::default()).ok()?;
    tiny.set_outputs(vec![root]);
    let value = eval::<f64>(&tiny, &Bindings::new()).ok()?.remove(0);
    let values = value.data().iter().map(|v| F64Bits::new(ty.dtype.round(*v))).collect();
    Some(Build::New(Op::Constant { dtype: ty.dtype, shape: ty.shape.clone(), values }, Vec::new()))
}
