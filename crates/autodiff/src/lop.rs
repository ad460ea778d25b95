//! Reverse mode: `lop` pulls cotangents from `outputs` back to `wrt` (vector-Jacobian
//! products), appending the adjoint nodes to the graph. One exhaustive `match`, one arm per
//! op; adjoints of broadcasts and reductions sum back to the operand's shape.

use natgrad_ir::{Binary, Compare, Dim, Graph, NodeId, Op, Provenance, Reduce, Unary};

use crate::emit::{Emit, Tangent};
use crate::rop::{pow_slope, sigmoid_slope, tanh_slope};
use crate::{Derivative, Result};

/// `Jᵀ u`: the cotangents of `wrt` given cotangents `u` on `outputs`, as a new graph whose
/// outputs are those cotangents (zeros materialised).
pub fn lop(graph: &Graph, outputs: &[NodeId], wrt: &[NodeId], cotangents: &[NodeId]) -> Result<Derivative> {
    let mut out = graph.clone();
    let results = lop_in(&mut out, outputs, wrt, cotangents)?;
    Derivative::new(out, wrt, results)
}

/// [`lop`] appending to `graph` in place; returns one [`Tangent`] per `wrt` node.
/// Only operands that depend on some `wrt` node get adjoints: nothing is built for data.
pub fn lop_in(
    graph: &mut Graph,
    outputs: &[NodeId],
    wrt: &[NodeId],
    cotangents: &[NodeId],
) -> Result<Vec<Tangent>> {
    crate::check_seeds("lop", graph, outputs, cotangents)?;
    let original = graph.len();
    let upstream = graph.ancestors(outputs);
    let mut depends = vec![false; original];
    for w in wrt {
        depends[w.index()] = true;
    }
    for id in (0..original).map(NodeId::from_index) {
        if graph.inputs(id).iter().any(|i| depends[i.index()]) {
            depends[id.index()] = true;
        }
    }
    let relevant: Vec<bool> = (0..original).map(|i| depends[i] && upstream[i]).collect();
    let mut adjoint = vec![Tangent::Zero; original];
    for (&o, &c) in outputs.iter().zip(cotangents) {
        let mut e = Emit { graph, provenance: Provenance::default() };
        adjoint[o.index()] = e.add_tangents(adjoint[o.index()], Tangent::Value(c))?;
    }
    for id in (0..original).rev().map(NodeId::from_index) {
        let Tangent::Value(g) = adjoint[id.index()] else { continue };
        if !relevant[id.index()] {
            continue;
        }
        let inputs = graph.inputs(id).to_vec();
        let wanted: Vec<bool> = inputs.iter().map(|i| relevant[i.index()]).collect();
        if !wanted.contains(&true) {
            continue;
        }
        let node = graph.node(id);
        let provenance = Provenance { name: None, location: node.location };
        let op = node.op.clone();
        let mut e = Emit { graph, provenance };
        let contributions = rule(&mut e, &op, id, &inputs, g, &wanted)?;
        for ((input, contribution), want) in inputs.iter().zip(contributions).zip(&wanted) {
            if let (Some(c), true) = (contribution, want) {
                adjoint[input.index()] = e.add_tangents(adjoint[input.index()], Tangent::Value(c))?;
            }
        }
    }
    Ok(wrt.iter().map(|w| adjoint[w.index()]).collect())
}

/// Adjoints of the operands of `y = op(x…)` given the cotangent `g` of `y`; `None` where the
/// adjoint is zero or not `wanted`.
fn rule(
    e: &mut Emit,
    op: &Op,
    y: NodeId,
    x: &[NodeId],
    g: NodeId,
    wanted: &[bool],
) -> Result<Vec<Option<NodeId>>> {
    let one = |t: NodeId| Ok(vec![Some(t)]);
    match op {
        // Leaves have no operands.
        Op::Input { .. } | Op::Param { .. } | Op::Constant { .. } | Op::BatchSize { .. } => Ok(Vec::new()),
        Op::Unary(u) => {
            let x = x[0];
            match u {
                // y = −x; x̄ = −ȳ
                Unary::Neg => one(e.neg(g)?),
                // y = eˣ; x̄ = ȳ·y
                Unary::Exp => one(e.mul(g, y)?),
                // y = ln x; x̄ = ȳ/x
                Unary::Log => one(e.div(g, x)?),
                // y = ln(1+x); x̄ = ȳ/(1+x)
                Unary::Log1p => {
                    let c = e.constant_like(x, 1.0)?;
                    let denom = e.add(c, x)?;
                    one(e.div(g, denom)?)
                }
                // y = √x; x̄ = ȳ/(2y)
                Unary::Sqrt => {
                    let two_y = e.scale(y, 2.0)?;
                    one(e.div(g, two_y)?)
                }
                // y = x²; x̄ = ȳ·2x
                Unary::Square => {
                    let two_x = e.scale(x, 2.0)?;
                    one(e.mul(g, two_x)?)
                }
                // y = xᵖ; x̄ = ȳ·p·xᵖ⁻¹
                Unary::Pow(p) => {
                    let slope = pow_slope(e, x, p.get())?;
                    one(e.mul(g, slope)?)
                }
                // y = σ(x); x̄ = ȳ·y(1−y)
                Unary::Sigmoid => {
                    let slope = sigmoid_slope(e, y)?;
                    one(e.mul(g, slope)?)
                }
                // y = tanh x; x̄ = ȳ·(1−y²)
                Unary::Tanh => {
                    let slope = tanh_slope(e, y)?;
                    one(e.mul(g, slope)?)
                }
                // y = max(x,0); x̄ = ȳ·[x>0]
                Unary::Relu => {
                    let zero = e.constant_like(x, 0.0)?;
                    let mask = e.mask(Compare::Gt, x, zero)?;
                    one(e.mul(g, mask)?)
                }
                // y = ln(1+eˣ); x̄ = ȳ·σ(x)
                Unary::Softplus => {
                    let s = e.unary(Unary::Sigmoid, x)?;
                    one(e.mul(g, s)?)
                }
            }
        }
        Op::Binary(b) => {
            let (a, bb) = (x[0], x[1]);
            let left = |e: &mut Emit| -> Result<Option<NodeId>> {
                if !wanted[0] {
                    return Ok(None);
                }
                Ok(Some(match b {
                    // ā = ȳ for a+b and a−b
                    Binary::Add | Binary::Sub => g,
                    // y = a·b; ā = ȳ·b
                    Binary::Mul => e.mul(g, bb)?,
                    // y = a/b; ā = ȳ/b
                    Binary::Div => e.div(g, bb)?,
                    // y = max(a,b); ā = ȳ·[a≥b]
                    Binary::Maximum => {
                        let mask = e.mask(Compare::Ge, a, bb)?;
                        e.mul(g, mask)?
                    }
                }))
            };
            let right = |e: &mut Emit| -> Result<Option<NodeId>> {
                if !wanted[1] {
                    return Ok(None);
                }
                Ok(Some(match b {
                    // y = a+b; b̄ = ȳ
                    Binary::Add => g,
                    // y = a−b; b̄ = −ȳ
                    Binary::Sub => e.neg(g)?,
                    // y = a·b; b̄ = ȳ·a
                    Binary::Mul => e.mul(g, a)?,
                    // y = a/b; b̄ = −ȳ·y/b
                    Binary::Div => {
                        let gy = e.mul(g, y)?;
                        let q = e.div(gy, bb)?;
                        e.neg(q)?
                    }
                    // y = max(a,b); b̄ = ȳ·[a<b]
                    Binary::Maximum => {
                        let mask = e.mask(Compare::Lt, a, bb)?;
                        e.mul(g, mask)?
                    }
                }))
            };
            Ok(vec![left(e)?, right(e)?])
        }
        // Piecewise constant: zero adjoints.
        Op::Compare(_) => Ok(vec![None, None]),
        // y = select(c,a,b); ā = select(c,ȳ,0), b̄ = select(c,0,ȳ); c is not differentiable.
        Op::Select => {
            let a = if wanted[1] { Some(e.select_or_zero(x[0], g, false)?) } else { None };
            let b = if wanted[2] { Some(e.select_or_zero(x[0], g, true)?) } else { None };
            Ok(vec![None, a, b])
        }
        // y = softmax(x); x̄ = y·(ȳ − Σ ȳ·y)
        Op::Softmax { axis } => {
            let gy = e.mul(g, y)?;
            let total = e.sum_keep_broadcast(gy, *axis)?;
            let centred = e.sub(g, total)?;
            one(e.mul(y, centred)?)
        }
        // y = log softmax(x); x̄ = ȳ − softmax(x)·Σ ȳ
        Op::LogSoftmax { axis } => {
            let p = e.op(Op::Softmax { axis: *axis }, &[x[0]])?;
            let total = e.sum_keep_broadcast(g, *axis)?;
            let scaled = e.mul(p, total)?;
            one(e.sub(g, scaled)?)
        }
        // C = op_a(A)·op_b(B): Ā = ȳ·op_b(B)ᵀ (transposed back if ta), B̄ = op_a(A)ᵀ·ȳ (likewise)
        Op::MatMul { transpose_a: ta, transpose_b: tb } => {
            let (ta, tb) = (*ta, *tb);
            let mm = |e: &mut Emit, l: NodeId, r: NodeId, tl: bool, tr: bool| {
                e.op(Op::MatMul { transpose_a: tl, transpose_b: tr }, &[l, r])
            };
            let a = match (wanted[0], ta) {
                (false, _) => None,
                (true, false) => Some(mm(e, g, x[1], false, !tb)?),
                (true, true) => Some(mm(e, x[1], g, tb, true)?),
            };
            let b = match (wanted[1], tb) {
                (false, _) => None,
                (true, false) => Some(mm(e, x[0], g, !ta, false)?),
                (true, true) => Some(mm(e, g, x[0], true, ta)?),
            };
            Ok(vec![a, b])
        }
        // y = broadcast(x); x̄ = Σ over the stretched axes of ȳ
        Op::Broadcast { .. } => {
            let shape = e.graph.shape(x[0]).clone();
            one(e.sum_to(g, &shape)?)
        }
        // y = reshape(x); x̄ = reshape(ȳ) back
        Op::Reshape { .. } => {
            let shape = e.graph.shape(x[0]).clone();
            one(e.reshape(g, shape)?)
        }
        // y = transpose(x, p); x̄ = transpose(ȳ, p⁻¹)
        Op::Transpose { perm } => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            one(e.op(Op::Transpose { perm: inverse }, &[g])?)
        }
        // y = im2col(x); x̄ = col2im(ȳ) (the adjoint adds each patch value back to its pixel)
        Op::Im2col { window } => {
            let image = match e.graph.shape(x[0]).0.as_slice() {
                [_, Dim::Fixed(h), Dim::Fixed(w), _] => [*h, *w],
                _ => unreachable!("im2col's operand is a checked NHWC image"),
            };
            one(e.op(Op::Col2im { window: *window, image }, &[g])?)
        }
        // y = col2im(x); x̄ = im2col(ȳ)
        Op::Col2im { window, .. } => one(e.op(Op::Im2col { window: *window }, &[g])?),
        Op::Reduce { kind, axes, .. } => {
            let shape = e.graph.shape(x[0]).clone();
            let kept = e.keep_dims_shape(&shape, axes);
            let g_kept = e.reshape(g, kept.clone())?;
            match kind {
                // y = Σx; x̄ = broadcast(ȳ)
                Reduce::Sum => one(e.broadcast(g_kept, shape)?),
                // y = mean x; x̄ = broadcast(ȳ / count)
                Reduce::Mean => {
                    let count = e.reduced_count(x[0], axes)?;
                    let count = e.broadcast(count, kept)?;
                    let scaled = e.div(g_kept, count)?;
                    one(e.broadcast(scaled, shape)?)
                }
                // y = max x; x̄ = broadcast(ȳ)·[x = y] / #ties
                Reduce::Max => {
                    let y_kept = e.reshape(y, kept)?;
                    let y_full = e.broadcast(y_kept, shape.clone())?;
                    let ties = e.mask(Compare::Eq, x[0], y_full)?;
                    let count = e.reduce(Reduce::Sum, ties, axes.clone(), true)?;
                    let share = e.div(g_kept, count)?;
                    let share = e.broadcast(share, shape)?;
                    one(e.mul(share, ties)?)
                }
            }
        }
    }
}
