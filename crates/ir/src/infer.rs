//! Shape and dtype inference: the one rule per op that gives a node its type.

use crate::{Dim, Op, Shape, TensorType, Window};

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
        Op::Im2col { window } => im2col(operands[0], window),
        Op::Col2im { window, image } => col2im(operands[0], window, *image),
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

/// The fixed sizes of dimensions 1–3 of a rank-4 NHWC value.
fn image_dims(t: &TensorType, what: &str) -> Result<[usize; 3], String> {
    match t.shape.0.as_slice() {
        [_, Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(c)] => Ok([*h, *w, *c]),
        _ => Err(format!("{t}: {what} takes a rank-4 NHWC value with fixed H, W and C")),
    }
}

fn im2col(t: &TensorType, window: &Window) -> Result<TensorType, String> {
    let [h, w, c] = image_dims(t, "im2col")?;
    let [oh, ow] = window
        .positions([h, w])
        .ok_or_else(|| format!("{t}: window {} does not fit a {h}×{w} image", window.text()))?;
    let patch = window.kernel[0]
        .checked_mul(window.kernel[1])
        .and_then(|k| k.checked_mul(c))
        .ok_or_else(|| format!("{t}: window {} has too many values per patch", window.text()))?;
    let dims = vec![t.shape.0[0], Dim::Fixed(oh), Dim::Fixed(ow), Dim::Fixed(patch)];
    Ok(TensorType { dtype: t.dtype, shape: Shape(dims) })
}

fn col2im(t: &TensorType, window: &Window, image: [usize; 2]) -> Result<TensorType, String> {
    let [oh, ow, patch] = image_dims(t, "col2im")?;
    let cells = window.kernel[0].saturating_mul(window.kernel[1]);
    let fits = window.positions(image) == Some([oh, ow]) && cells > 0 && patch % cells == 0 && patch > 0;
    if !fits {
        return Err(format!(
            "{t}: not the patches of window {} over a {}×{} image",
            window.text(),
            image[0],
            image[1]
        ));
    }
    let dims = vec![t.shape.0[0], Dim::Fixed(image[0]), Dim::Fixed(image[1]), Dim::Fixed(patch / cells)];
    Ok(TensorType { dtype: t.dtype, shape: Shape(dims) })
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

/// Matrix product. Rank-2 operands multiply as matrices. A first operand of higher rank is a
/// stack of rows (its leading dimensions flattened): `[…, K] × [K, N] → […, N]`, also with
/// the second operand transposed; with `transpose_a`, both operands share their leading
/// dimensions, which are contracted: `[…, K]ᵀ × […, N] → [K, N]` (how a convolution's filter
/// gradient sums over examples and positions).
fn matmul(a: &TensorType, b: &TensorType, ta: bool, tb: bool) -> Result<TensorType, String> {
    let shown = |t: &TensorType, transposed: bool| {
        if transposed { format!("{t}ᵀ") } else { t.to_string() }
    };
    let pair = format!("{} × {}", shown(a, ta), shown(b, tb));
    if a.shape.rank() < 2 || b.shape.rank() < 2 {
        return Err(format!("{pair}: both operands must have rank 2 (or more, for the first)"));
    }
    if a.dtype != b.dtype {
        return Err(format!("{pair}: dtypes differ"));
    }
    let (ra, rb) = (a.shape.rank(), b.shape.rank());
    let dims = if ra == 2 && rb == 2 {
        let (m, k1) = oriented(&a.shape, ta);
        let (k2, n) = oriented(&b.shape, tb);
        if k1 != k2 {
            return Err(format!("{pair}: inner dimensions {k1} ≠ {k2}"));
        }
        vec![m, n]
    } else if !ta {
        if rb != 2 {
            return Err(format!("{pair}: only the first operand may have rank above 2"));
        }
        let k1 = a.shape.0[ra - 1];
        let (k2, n) = oriented(&b.shape, tb);
        if k1 != k2 {
            return Err(format!("{pair}: inner dimensions {k1} ≠ {k2}"));
        }
        let mut dims = a.shape.0[..ra - 1].to_vec();
        dims.push(n);
        dims
    } else {
        if tb || a.shape.0[..ra - 1] != b.shape.0[..rb - 1] {
            return Err(format!(
                "{pair}: a transposed operand of rank above 2 needs an untransposed second operand with the same leading dimensions"
            ));
        }
        vec![a.shape.0[ra - 1], b.shape.0[rb - 1]]
    };
    Ok(TensorType { dtype: a.dtype, shape: Shape(dims) })
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
