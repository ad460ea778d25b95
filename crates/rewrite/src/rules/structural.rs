//! Layout rules: broadcast / reshape / transpose chains, and elementwise ops moved inside
//! broadcasts so they run on the small operand.

use natgrad_ir::{Graph, NodeId, Op};

use super::Family::Structural;
use super::Guard::{SameTypeAsRoot, Scalar};
use super::Rule;
use crate::pattern::Build;

/// Structural rules, tried in this order.
#[rustfmt::skip]
pub const STRUCTURAL: &[Rule] = &[
    Rule::pattern("broadcast-noop",      Structural, "(broadcast ?x)",             "?x").when(SameTypeAsRoot("x")), // broadcast to its own shape
    Rule::pattern("reshape-noop",        Structural, "(reshape ?x)",               "?x").when(SameTypeAsRoot("x")), // reshape to its own shape
    Rule::pattern("broadcast-broadcast", Structural, "(broadcast (broadcast ?x))", "(broadcast ?x)"),              // stretching twice = stretching once
    Rule::pattern("reshape-reshape",     Structural, "(reshape (reshape ?x))",     "(reshape ?x)"),                // row-major order is kept
    Rule::pattern("reshape-of-scalar",   Structural, "(reshape (broadcast ?x))",   "(broadcast ?x)").when(Scalar("x")), // a uniform tensor in any shape
    Rule::custom("transpose-transpose",  Structural, &["transpose"], transpose_transpose),                         // tᵩ(tᵨ x) = t_{ρ∘φ} x
    Rule::custom("unary-of-broadcast",   Structural, &["neg", "exp", "log", "log1p", "sqrt", "square", "pow", "sigmoid", "tanh", "relu", "softplus"], unary_of_broadcast), // f(bcast x) = bcast f(x)
    Rule::custom("binary-of-broadcasts", Structural, &["add", "sub", "mul", "div", "maximum", "lt", "le", "gt", "ge", "eq", "ne"], binary_of_broadcasts), // f(bcast a, bcast b) = bcast f(a, b)
];

/// `transpose(transpose(x, p), q)` = `transpose(x, p∘q)`, or `x` when that is the identity.
fn transpose_transpose(graph: &Graph, id: NodeId) -> Option<Build> {
    let (Op::Transpose { perm: outer }, [inner]) = (graph.op(id), graph.inputs(id)) else { return None };
    let (Op::Transpose { perm: first }, [x]) = (graph.op(*inner), graph.inputs(*inner)) else { return None };
    let composed: Vec<usize> = outer.iter().map(|&o| first[o]).collect();
    if composed.iter().enumerate().all(|(i, &p)| i == p) {
        return Some(Build::Existing(*x));
    }
    Some(Build::New(Op::Transpose { perm: composed }, vec![Build::Existing(*x)]))
}

/// An elementwise unary op applied to a broadcast runs on the broadcast's operand.
fn unary_of_broadcast(graph: &Graph, id: NodeId) -> Option<Build> {
    let (op @ Op::Unary(_), [operand]) = (graph.op(id), graph.inputs(id)) else { return None };
    let (Op::Broadcast { shape }, [x]) = (graph.op(*operand), graph.inputs(*operand)) else { return None };
    let inner = Build::New(op.clone(), vec![Build::Existing(*x)]);
    Some(Build::New(Op::Broadcast { shape: shape.clone() }, vec![inner]))
}

/// A binary op on two broadcasts of equally typed operands runs before the broadcast.
fn binary_of_broadcasts(graph: &Graph, id: NodeId) -> Option<Build> {
    let (op, [a, b]) = (graph.op(id), graph.inputs(id)) else { return None };
    let (Op::Broadcast { shape }, [x]) = (graph.op(*a), graph.inputs(*a)) else { return None };
    let (Op::Broadcast { .. }, [y]) = (graph.op(*b), graph.inputs(*b)) else { return None };
    if graph.ty(*x) != graph.ty(*y) {
        return None;
    }
    let inner = Build::New(op.clone(), vec![Build::Existing(*x), Build::Existing(*y)]);
    Some(Build::New(Op::Broadcast { shape: shape.clone() }, vec![inner]))
}
