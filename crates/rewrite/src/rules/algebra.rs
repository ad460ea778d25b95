//! Algebraic identities. `ALGEBRA` is float-exact (or, for the guarded cancellations, exact
//! in real arithmetic and strictly more accurate in floats); `FAST_MATH` holds the ones that
//! are wrong for NaN or Inf and runs only when asked for.

use natgrad_ir::{Dim, Graph, NodeId, Op, Reduce};

use super::Family::{Algebra, FastMath};
use super::Guard::{NonZero, Positive};
use super::Rule;
use crate::pattern::Build;

/// Float-exact identities, tried in this order.
#[rustfmt::skip]
pub const ALGEBRA: &[Rule] = &[
    Rule::pattern("neg-neg",      Algebra, "(neg (neg ?x))",        "?x"),             // −(−x) = x
    Rule::pattern("mul-one",      Algebra, "(mul ?x 1)",            "?x"),             // x·1 = x
    Rule::pattern("div-one",      Algebra, "(div ?x 1)",            "?x"),             // x/1 = x
    Rule::pattern("sub-zero",     Algebra, "(sub ?x 0)",            "?x"),             // x−0 = x (also for x = −0)
    Rule::pattern("add-neg-zero", Algebra, "(add ?x -0)",           "?x"),             // x+(−0) = x
    Rule::pattern("mul-neg-one",  Algebra, "(mul ?x -1)",           "(neg ?x)"),       // x·(−1) = −x
    Rule::pattern("sub-neg",      Algebra, "(sub ?a (neg ?b))",     "(add ?a ?b)"),    // a−(−b) = a+b
    Rule::pattern("add-neg",      Algebra, "(add ?a (neg ?b))",     "(sub ?a ?b)"),    // a+(−b) = a−b
    Rule::pattern("mul-neg-neg",  Algebra, "(mul (neg ?a) (neg ?b))", "(mul ?a ?b)"),  // (−a)(−b) = ab
    Rule::pattern("mul-self",     Algebra, "(mul ?x ?x)",           "(square ?x)"),    // x·x = x²
    Rule::pattern("div-cancel",   Algebra, "(div (mul ?a ?b) ?a)",  "?b").when(NonZero("a")), // (a·b)/a = b, a ≠ 0
    Rule::pattern("exp-log",      Algebra, "(exp (log ?x))",        "?x").when(Positive("x")), // e^(ln x) = x, x > 0
    Rule::pattern("log-exp",      Algebra, "(log (exp ?x))",        "?x"),             // ln eˣ = x
    Rule::custom("sum-of-broadcast", Algebra, &["sum"], sum_of_broadcast),            // Σ over the stretched axes of bcast x = n·x
];

/// Identities that are wrong for NaN/Inf operands; enabled by `Options::fast_math`.
#[rustfmt::skip]
pub const FAST_MATH: &[Rule] = &[
    Rule::pattern("mul-zero",     FastMath, "(mul ?x 0)",           "0"),              // x·0 = 0 (not for NaN, ±Inf)
    Rule::pattern("add-zero",     FastMath, "(add ?x 0)",           "?x"),             // x+0 = x (not for x = −0)
    Rule::pattern("sub-self",     FastMath, "(sub ?x ?x)",          "0"),              // x−x = 0 (not for NaN, ±Inf)
    Rule::pattern("div-self",     FastMath, "(div ?x ?x)",          "1"),              // x/x = 1 (not for 0, NaN, ±Inf)
];

/// `sum(broadcast(x), stretched axes)` = `n · x` with `n` the number of copies (a
/// `batch_size` factor when `B` was stretched): one multiply instead of a reduction.
fn sum_of_broadcast(graph: &Graph, id: NodeId) -> Option<Build> {
    let (Op::Reduce { kind: Reduce::Sum, axes, .. }, [operand]) = (graph.op(id), graph.inputs(id)) else {
        return None;
    };
    let (Op::Broadcast { .. }, [x]) = (graph.op(*operand), graph.inputs(*operand)) else { return None };
    let (out, source) = (graph.shape(*operand), graph.shape(*x));
    let offset = out.rank() - source.rank();
    let stretched: Vec<usize> = (0..out.rank())
        .filter(|&a| a < offset || (source.0[a - offset] == Dim::Fixed(1) && out.0[a] != Dim::Fixed(1)))
        .collect();
    if *axes != stretched {
        return None;
    }
    let ty = graph.ty(id);
    let fixed: usize =
        stretched.iter().filter_map(|&a| if let Dim::Fixed(n) = out.0[a] { Some(n) } else { None }).product();
    let mut count = Build::New(Op::scalar(ty.dtype, fixed as f64), Vec::new());
    for _ in stretched.iter().filter(|&&a| out.0[a] == Dim::Batch) {
        let batch = Build::New(Op::BatchSize { dtype: ty.dtype }, Vec::new());
        count = if fixed == 1 {
            batch
        } else {
            Build::New(Op::Binary(natgrad_ir::Binary::Mul), vec![count, batch])
        };
    }
    let count = if ty.shape.rank() == 0 {
        count
    } else {
        Build::New(Op::Broadcast { shape: ty.shape.clone() }, vec![count])
    };
    let x = if *graph.shape(*x) == ty.shape {
        Build::Existing(*x)
    } else {
        Build::New(Op::Reshape { shape: ty.shape.clone() }, vec![Build::Existing(*x)])
    };
    Some(Build::New(Op::Binary(natgrad_ir::Binary::Mul), vec![x, count]))
}
