//! Shape and dtype inference: the one rule per op that gives a node its type.

use crate::{Dim, Op, Shape, TensorType};

/// The result type of `op` applied to operands of the given types, or a message naming the
/// operand types and what is wrong with them.
pub fn infer(op: &Op, operands: &[&TensorType]) -> Result<TensorType, String> {
    // Every shape in the graph comes from one an op declares; checked here, the element
    // counts computed from them later cannot overflow.
    if let Op::Input { shape, .. }
    | Op::Param { shape, .. }
    | Op::Constant { shape, .. }
    | Op::Broadcast { shape }
    | Op::Reshape { shape } = op
        && shape.fixed_elements().is_none()
    {
        return Err(format!("shape {shape} has more elements than can be addressed"));
    }
    match op {
        Op::Input { dtype, shape, .. } => Ok(TensorType { dtype: *dtype, shape: shape.clone() }),
        Op::Param { dtype, shape, .. } => {
            if shape.has_batch() {
                return Err(format!("parameter shape {shape} may not use the batch dimension B"));
            }
            Ok(TensorType { dtype: *dtype, shape: shape.clone() })
        }
        Op::Constant { dtype, shape, values } => {
            if shape.has_batch() {
                return Err(format!("constant shape {shape} may not use the batch dimension B"));
            }
            let expected = shape.num_elements(0);
            if values.len() != expected {
                return Err(format!(
                    "constant of shape {shape} needs {expected} values, got {}",
                    values.len()
                ));
            }
            Ok(TensorType { dtype: *dtype, shape: shape.clone() })
        }
        Op::BatchSize { dtype } => Ok(TensorType { dtype: *dtype, shape: Shape::scalar() }),
        Op::Unary(_) => Ok(operands[0].clone()),
        Op::Binary(_) | Op::Compare(_) => same_types(operands),
        Op::Select => same_types(operands),
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            let t = operands[0];
            if *axis >= t.shape.rank() {
                return Err(format!("{t}: axis {axis} out of range for rank {}", t.shape.rank()));
            }
            Ok(t.clone())
        }
        Op::MatMul { transpose_a, transpose_b } => {
            matmul(operands[0], operands[1], *transpose_a, *transpose_b)
        }
        Op::Broadcast { shape } => broadcast(operands[0], shape),
        Op::Reshape { shape } => {
            let t = operands[0];
            if t.shape.size_signature() != shape.size_signature() {
                return Err(format!("{t} → {shape}: element counts differ"));
            }
            Ok(TensorType { dtype: t.dtype, shape: shape.clone() })
        }
        Op::Transpose { perm } => {
            let t = operands[0];
            let mut seen = vec![false; t.shape.rank()];
            let valid = perm.len() == t.shape.rank()
                && perm.iter().all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
            if !valid {
                return Err(format!("{t}: {perm:?} is not a permutation of its {} axes", t.shape.rank()));
            }
            let dims = perm.iter().map(|&p| t.shape.0[p]).collect();
            Ok(TensorType { dtype: t.dtype, shape: Shape(dims) })
        }
        Op::Reduce { axes, keep_dims, .. } => {
            let t = operands[0];
            let ascending = axes.windows(2).all(|w| w[0] < w[1]);
            if !ascending || axes.iter().any(|&a| a >= t.shape.rank()) {
                return Err(format!(
                    "{t}: reduction axes {axes:?} must be distinct, ascending and below rank {}",
                    t.shape.rank()
                ));
            }
            let dims = t
                .shape
                .0
                .iter()
                .enumerate()
                .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
                    (false, _) => Some(d),
                    (true, true) => Some(Dim::Fixed(1)),
                    (true, false) => None,
                })
                .collect();
            Ok(TensorType { dtype: t.dtype, shape: Shape(dims) })
        }
    }
}

fn same_types(operands: &[&TensorType]) -> Result<TensorType, String> {
    let first = operands[0];
    if operands.iter().all(|t| *t == first) {
        return Ok(first.clone());
    }
    let listed: Vec<String> = operands.iter().map(|t| t.to_string()).collect();
    Err(format!(
        "{}: operand types differ (elementwise ops need equal types; broadcast explicitly)",
        listed.join(" vs ")
    ))
}

fn matmul(a: &TensorType, b: &TensorType, ta: bool, tb: bool) -> Result<TensorType, String> {
    let shown = |t: &TensorType, transposed: bool| {
        if transposed { format!("{t}ᵀ") } else { t.to_string() }
    };
    let pair = format!("{} × {}", shown(a, ta), shown(b, tb));
    if a.shape.rank() != 2 || b.shape.rank() != 2 {
        return Err(format!("{pair}: both operands must have rank 2"));
    }
    if a.dtype != b.dtype {
        return Err(format!("{pair}: dtypes differ"));
    }
    let (m, k1) = oriented(&a.shape, ta);
    let (k2, n) = oriented(&b.shape, tb);
    if k1 != k2 {
        return Err(format!("{pair}: inner dimensions {k1} ≠ {k2}"));
    }
    Ok(TensorType { dtype: a.dtype, shape: Shape(vec![m, n]) })
}

fn oriented(shape: &Shape, transposed: bool) -> (Dim, Dim) {
    let (r, c) = (shape.0[0], shape.0[1]);
    if transposed { (c, r) } else { (r, c) }
}

fn broadcast(t: &TensorType, target: &Shape) -> Result<TensorType, String> {
    let (from, to) = (&t.shape.0, &target.0);
    let fits = from.len() <= to.len()
        && from.iter().rev().zip(to.iter().rev()).all(|(&f, &o)| f == o || f == Dim::Fixed(1));
    if !fits {
        return Err(format!(
            "{t} → {target}: cannot broadcast (dimensions align from the right; only size-1 dimensions stretch)"
        ));
    }
    Ok(TensorType { dtype: t.dtype, shape: target.clone() })
}
