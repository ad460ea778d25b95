//! Forward mode: `rop` pushes tangents from `wrt` to `outputs` (Jacobian-vector products),
//! appending the tangent nodes to the graph. One exhaustive `match`, one arm per op.

use natgrad_ir::{Binary, Compare, Graph, NodeId, Op, Provenance, Reduce, Unary};

use crate::emit::{Emit, Tangent};
use crate::{Derivative, Result};

/// `J v`: the tangents of `outputs` when each `wrt[i]` moves along `tangents[i]`, as a new
/// graph whose outputs are those tangents (zeros materialised).
pub fn rop(graph: &Graph, outputs: &[NodeId], wrt: &[NodeId], tangents: &[NodeId]) -> Result<Derivative> {
    let mut out = graph.clone();
    let results = rop_in(&mut out, outputs, wrt, tangents)?;
    Derivative::new(out, outputs, results)
}

/// [`rop`] appending to `graph` in place; returns one [`Tangent`] per output.
pub fn rop_in(
    graph: &mut Graph,
    outputs: &[NodeId],
    wrt: &[NodeId],
    tangents: &[NodeId],
) -> Result<Vec<Tangent>> {
    crate::check_seeds("rop", graph, wrt, tangents)?;
    if let Some(bad) = outputs.iter().find(|o| !graph.contains(**o)) {
        let what = format!("output {bad} is not in the graph ({} nodes)", graph.len());
        return Err(crate::Error::Arguments { mode: "rop", what });
    }
    let original = graph.len();
    let needed = graph.ancestors(outputs);
    let mut tangent = vec![Tangent::Zero; original];
    let mut seeded = vec![false; original];
    for (&w, &t) in wrt.iter().zip(tangents) {
        tangent[w.index()] = Tangent::Value(t);
        seeded[w.index()] = true;
    }
    for id in (0..original).map(NodeId::from_index) {
        if !needed[id.index()] || seeded[id.index()] {
            continue;
        }
        let inputs = graph.inputs(id).to_vec();
        let dx: Vec<Tangent> = inputs.iter().map(|i| tangent[i.index()]).collect();
        if dx.iter().all(|t| *t == Tangent::Zero) {
            continue;
        }
        let node = graph.node(id);
        let provenance = Provenance { name: None, location: node.location };
        let op = node.op.clone();
        let mut e = Emit { graph, provenance };
        tangent[id.index()] = rule(&mut e, &op, id, &inputs, &dx)?;
    }
    Ok(outputs.iter().map(|o| tangent[o.index()]).collect())
}

/// The tangent of `y = op(x…)` given the operand tangents `dx` (not all zero).
fn rule(e: &mut Emit, op: &Op, y: NodeId, x: &[NodeId], dx: &[Tangent]) -> Result<Tangent> {
    let d = |i: usize| dx[i].node();
    let v = |t: NodeId| Ok(Tangent::Value(t));
    match op {
        // Leaves have no operands; a seeded leaf never reaches this match.
        Op::Input { .. } | Op::Param { .. } | Op::Constant { .. } | Op::BatchSize { .. } => Ok(Tangent::Zero),
        Op::Unary(u) => {
            let (x, dx) = (x[0], d(0).expect("non-zero"));
            match u {
                // y = −x; dy = −dx
                Unary::Neg => v(e.neg(dx)?),
                // y = eˣ; dy = y·dx
                Unary::Exp => v(e.mul(dx, y)?),
                // y = ln x; dy = dx / x
                Unary::Log => v(e.div(dx, x)?),
                // y = ln(1+x); dy = dx / (1+x)
                Unary::Log1p => {
                    let one = e.constant_like(x, 1.0)?;
                    let denom = e.add(one, x)?;
                    v(e.div(dx, denom)?)
                }
                // y = √x; dy = dx / (2y)
                Unary::Sqrt => {
                    let two_y = e.scale(y, 2.0)?;
                    v(e.div(dx, two_y)?)
                }
                // y = x²; dy = 2x·dx
                Unary::Square => {
                    let two_x = e.scale(x, 2.0)?;
                    v(e.mul(two_x, dx)?)
                }
                // y = xᵖ; dy = p·xᵖ⁻¹·dx
                Unary::Pow(p) => {
                    let slope = pow_slope(e, x, p.get())?;
                    v(e.mul(slope, dx)?)
                }
                // y = σ(x); dy = y(1−y)·dx
                Unary::Sigmoid => {
                    let slope = sigmoid_slope(e, y)?;
                    v(e.mul(slope, dx)?)
                }
                // y = tanh x; dy = (1−y²)·dx
                Unary::Tanh => {
                    let slope = tanh_slope(e, y)?;
                    v(e.mul(slope, dx)?)
                }
                // y = max(x,0); dy = [x>0]·dx
                Unary::Relu => {
                    let zero = e.constant_like(x, 0.0)?;
                    let mask = e.mask(Compare::Gt, x, zero)?;
                    v(e.mul(mask, dx)?)
                }
                // y = ln(1+eˣ); dy = σ(x)·dx
                Unary::Softplus => {
                    let s = e.unary(Unary::Sigmoid, x)?;
                    v(e.mul(s, dx)?)
                }
            }
        }
        Op::Binary(b) => {
            let (a, bb) = (x[0], x[1]);
            match b {
                // y = a+b; dy = da+db
                Binary::Add => e.add_tangents(dx[0], dx[1]),
                // y = a−b; dy = da−db
                Binary::Sub => {
                    let neg_db = match d(1) {
                        Some(db) => Tangent::Value(e.neg(db)?),
                        None => Tangent::Zero,
                    };
                    e.add_tangents(dx[0], neg_db)
                }
                // y = a·b; dy = da·b + a·db
                Binary::Mul => {
                    let left = d(0).map(|da| e.mul(da, bb)).transpose()?;
                    let right = d(1).map(|db| e.mul(a, db)).transpose()?;
                    e.add_tangents(to_tangent(left), to_tangent(right))
                }
                // y = a/b; dy = (da − y·db)/b
                Binary::Div => {
                    let y_db = d(1).map(|db| e.mul(y, db)).transpose()?;
                    let neg = y_db.map(|t| e.neg(t)).transpose()?;
                    let numerator = e.add_tangents(dx[0], to_tangent(neg))?;
                    v(e.div(numerator.node().expect("non-zero"), bb)?)
                }
                // y = max(a,b); dy = [a≥b]·da + [a<b]·db
                Binary::Maximum => {
                    let left = match d(0) {
                        Some(da) => Tangent::Value(masked(e, Compare::Ge, a, bb, da)?),
                        None => Tangent::Zero,
                    };
                    let right = match d(1) {
                        Some(db) => Tangent::Value(masked(e, Compare::Lt, a, bb, db)?),
                        None => Tangent::Zero,
                    };
                    e.add_tangents(left, right)
                }
            }
        }
        // Piecewise constant: the derivative is zero wherever it exists.
        Op::Compare(_) => Ok(Tangent::Zero),
        // y = select(c,a,b); dy = select(c,da,db)
        Op::Select => match (d(1), d(2)) {
            (Some(da), Some(db)) => v(e.op(Op::Select, &[x[0], da, db])?),
            (Some(da), None) => v(e.select_or_zero(x[0], da, false)?),
            (None, Some(db)) => v(e.select_or_zero(x[0], db, true)?),
            (None, None) => Ok(Tangent::Zero),
        },
        // y = softmax(x); dy = y·(dx − Σ y·dx)
        Op::Softmax { axis } => {
            let dx = d(0).expect("non-zero");
            let y_dx = e.mul(y, dx)?;
            let total = e.sum_keep_broadcast(y_dx, *axis)?;
            let centred = e.sub(dx, total)?;
            v(e.mul(y, centred)?)
        }
        // y = log softmax(x); dy = dx − Σ softmax(x)·dx
        Op::LogSoftmax { axis } => {
            let dx = d(0).expect("non-zero");
            let p = e.op(Op::Softmax { axis: *axis }, &[x[0]])?;
            let p_dx = e.mul(p, dx)?;
            let total = e.sum_keep_broadcast(p_dx, *axis)?;
            v(e.sub(dx, total)?)
        }
        // y = op(A)·op(B); dy = op(dA)·op(B) + op(A)·op(dB)
        Op::MatMul { .. } => {
            let left = d(0).map(|da| e.op(op.clone(), &[da, x[1]])).transpose()?;
            let right = d(1).map(|db| e.op(op.clone(), &[x[0], db])).transpose()?;
            e.add_tangents(to_tangent(left), to_tangent(right))
        }
        // Linear ops: dy = op(dx)
        Op::Broadcast { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Im2col { .. }
        | Op::Col2im { .. } => v(e.op(op.clone(), &[d(0).expect("non-zero")])?),
        Op::Reduce { kind, axes, keep_dims } => {
            let dx = d(0).expect("non-zero");
            match kind {
                // y = Σx (or mean): dy = Σdx (or mean)
                Reduce::Sum | Reduce::Mean => v(e.op(op.clone(), &[dx])?),
                // y = max x; dy = Σ [x = y]·dx / #ties
                Reduce::Max => {
                    let shape = e.graph.shape(x[0]).clone();
                    let kept = e.keep_dims_shape(&shape, axes);
                    let y_kept = e.reshape(y, kept)?;
                    let y_full = e.broadcast(y_kept, shape)?;
                    let ties = e.mask(Compare::Eq, x[0], y_full)?;
                    let count = e.reduce(Reduce::Sum, ties, axes.clone(), *keep_dims)?;
                    let picked = e.mul(ties, dx)?;
                    let total = e.reduce(Reduce::Sum, picked, axes.clone(), *keep_dims)?;
                    v(e.div(total, count)?)
                }
            }
        }
    }
}

fn to_tangent(node: Option<NodeId>) -> Tangent {
    node.map_or(Tangent::Zero, Tangent::Value)
}

/// `[cmp(a, b)] · t`
fn masked(e: &mut Emit, cmp: Compare, a: NodeId, b: NodeId, t: NodeId) -> Result<NodeId> {
    let mask = e.mask(cmp, a, b)?;
    e.mul(mask, t)
}

/// p·xᵖ⁻¹ (x itself when p = 2, a constant when p = 1).
pub(crate) fn pow_slope(e: &mut Emit, x: NodeId, p: f64) -> Result<NodeId> {
    if p == 1.0 {
        return e.constant_like(x, 1.0);
    }
    let power = if p == 2.0 { x } else { e.unary(Unary::Pow(natgrad_ir::F64Bits::new(p - 1.0)), x)? };
    e.scale(power, p)
}

/// σ'(x) = y(1−y) from y = σ(x).
pub(crate) fn sigmoid_slope(e: &mut Emit, y: NodeId) -> Result<NodeId> {
    let one = e.constant_like(y, 1.0)?;
    let one_minus = e.sub(one, y)?;
    e.mul(y, one_minus)
}

/// tanh'(x) = 1 − y² from y = tanh x.
pub(crate) fn tanh_slope(e: &mut Emit, y: NodeId) -> Result<NodeId> {
    let one = e.constant_like(y, 1.0)?;
    let y2 = e.unary(Unary::Square, y)?;
    e.sub(one, y2)
}
