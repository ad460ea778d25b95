//! Facts about nodes that guards ask for: constant values, non-zero and positive values.
//! "Known" means mathematically: `σ(x) > 0` although it may underflow in floating point —
//! the rewrites these facts enable are exactly the ones that remove such underflows.

use natgrad_ir::{Binary, Graph, NodeId, Op, Unary};

/// The value of a constant whose elements are all equal, looking through broadcasts and
/// reshapes.
pub fn constant_value(graph: &Graph, id: NodeId) -> Option<f64> {
    match graph.op(id) {
        Op::Constant { .. } => graph.op(id).uniform_constant(),
        Op::Broadcast { .. } | Op::Reshape { .. } => constant_value(graph, graph.inputs(id)[0]),
        _ => None,
    }
}

/// Whether `id` is known to be non-zero everywhere.
pub fn nonzero(graph: &Graph, id: NodeId) -> bool {
    if positive(graph, id) {
        return true;
    }
    let inputs = graph.inputs(id);
    match graph.op(id) {
        Op::Constant { .. } => constant_value(graph, id).is_some_and(|v| v != 0.0),
        Op::Unary(Unary::Neg) => nonzero(graph, inputs[0]),
        Op::Binary(Binary::Mul) => nonzero(graph, inputs[0]) && nonzero(graph, inputs[1]),
        Op::Binary(Binary::Div) => nonzero(graph, inputs[0]),
        Op::Broadcast { .. } | Op::Reshape { .. } | Op::Transpose { .. } => nonzero(graph, inputs[0]),
        _ => false,
    }
}

/// Whether `id` is known to be positive everywhere.
pub fn positive(graph: &Graph, id: NodeId) -> bool {
    let inputs = graph.inputs(id);
    match graph.op(id) {
        Op::Constant { .. } => constant_value(graph, id).is_some_and(|v| v > 0.0),
        Op::BatchSize { .. } => true,
        Op::Unary(Unary::Sigmoid | Unary::Exp | Unary::Softplus) | Op::Softmax { .. } => true,
        Op::Binary(Binary::Mul | Binary::Div | Binary::Add) => {
            positive(graph, inputs[0]) && positive(graph, inputs[1])
        }
        // 1 − σ(x) = σ(−x) > 0
        Op::Binary(Binary::Sub) => {
            constant_value(graph, inputs[0]) == Some(1.0)
                && matches!(graph.op(inputs[1]), Op::Unary(Unary::Sigmoid))
        }
        Op::Broadcast { .. } | Op::Reshape { .. } | Op::Transpose { .. } => positive(graph, inputs[0]),
        _ => false,
    }
}
