//! The reference interpreter: plain loops, numerically stable formulas, f32 or f64.
//! It is the numeric oracle every backend is tested against.

use std::collections::HashMap;

use crate::tensor::strides;
use crate::{Binary, Dim, Error, Graph, NodeId, Op, Reduce, Result, Scalar, Tensor, Unary};

/// Values for a graph's inputs and params, by name.
#[derive(Clone, Debug)]
pub struct Bindings<T> {
    values: HashMap<String, Tensor<T>>,
    batch: Option<usize>,
}

impl<T: Scalar> Default for Bindings<T> {
    fn default() -> Self {
        Bindings { values: HashMap::new(), batch: None }
    }
}

impl<T: Scalar> Bindings<T> {
    /// No values bound.
    pub fn new() -> Bindings<T> {
        Bindings::default()
    }

    /// Binds `name` (an input or param) to `value`.
    pub fn set(&mut self, name: impl Into<String>, value: Tensor<T>) -> &mut Self {
        self.values.insert(name.into(), value);
        self
    }

    /// Builder form of [`Bindings::set`].
    pub fn with(mut self, name: impl Into<String>, value: Tensor<T>) -> Self {
        self.set(name, value);
        self
    }

    /// Fixes the batch size `B` (otherwise taken from the bound inputs that use `B`).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = Some(batch);
        self
    }

    /// The value bound to `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.values.get(name)
    }
}

/// Evaluates the graph's outputs.
pub fn eval<T: Scalar>(graph: &Graph, bindings: &Bindings<T>) -> Result<Vec<Tensor<T>>> {
    eval_nodes(graph, bindings, graph.outputs())
}

/// Evaluates the given nodes; only the nodes they depend on are computed (and bound).
pub fn eval_nodes<T: Scalar>(
    graph: &Graph,
    bindings: &Bindings<T>,
    wanted: &[NodeId],
) -> Result<Vec<Tensor<T>>> {
    if let Some(bad) = wanted.iter().find(|id| !graph.contains(**id)) {
        return Err(Error::Binding {
            message: format!("node {bad} is not in the graph ({} nodes)", graph.len()),
        });
    }
    let needed = graph.ancestors(wanted);
    let batch = batch_size(graph, bindings, &needed)?;
    let mut values: Vec<Option<Tensor<T>>> = vec![None; graph.len()];
    for id in graph.node_ids().filter(|id| needed[id.index()]) {
        let operands: Vec<&Tensor<T>> =
            graph.inputs(id).iter().map(|i| values[i.index()].as_ref().expect("topological order")).collect();
        let value = eval_node(graph, id, &operands, bindings, batch)?;
        values[id.index()] = Some(value);
    }
    Ok(wanted.iter().map(|id| values[id.index()].clone().expect("computed above")).collect())
}

/// The batch size: given explicitly, or read from the first needed input that uses `B`.
fn batch_size<T: Scalar>(graph: &Graph, bindings: &Bindings<T>, needed: &[bool]) -> Result<usize> {
    if let Some(batch) = bindings.batch {
        return Ok(batch);
    }
    for id in graph.node_ids().filter(|id| needed[id.index()]) {
        if let Op::Input { name, shape, .. } = graph.op(id)
            && let Some(axis) = shape.0.iter().position(|d| *d == Dim::Batch)
            && let Some(&batch) = bindings.get(name).and_then(|v| v.shape().get(axis))
        {
            return Ok(batch);
        }
    }
    let uses_batch = graph.node_ids().any(|id| {
        needed[id.index()] && (graph.shape(id).has_batch() || matches!(graph.op(id), Op::BatchSize { .. }))
    });
    if uses_batch {
        return Err(Error::Binding {
            message: "the batch size B is unknown: bind an input that uses B, or call Bindings::with_batch"
                .into(),
        });
    }
    Ok(1)
}

fn bound<'a, T: Scalar>(
    graph: &Graph,
    id: NodeId,
    kind: &str,
    name: &str,
    bindings: &'a Bindings<T>,
    batch: usize,
) -> Result<&'a Tensor<T>> {
    let ty = graph.ty(id);
    let value = bindings
        .get(name)
        .ok_or_else(|| Error::Binding { message: format!("missing value for {kind} '{name}' ({ty})") })?;
    if value.shape() != ty.shape.resolve(batch) {
        return Err(Error::Binding {
            message: format!("{kind} '{name}' expects {ty} (B = {batch}), got shape {:?}", value.shape()),
        });
    }
    Ok(value)
}

fn eval_node<T: Scalar>(
    graph: &Graph,
    id: NodeId,
    operands: &[&Tensor<T>],
    bindings: &Bindings<T>,
    batch: usize,
) -> Result<Tensor<T>> {
    let out_shape = graph.shape(id).resolve(batch);
    Ok(match graph.op(id) {
        Op::Input { name, .. } => bound(graph, id, "input", name, bindings, batch)?.clone(),
        Op::Param { name, .. } => bound(graph, id, "param", name, bindings, batch)?.clone(),
        Op::Constant { values, .. } => Tensor::from_fn(out_shape, |i| T::from_f64(values[i].get())),
        Op::BatchSize { .. } => Tensor::scalar(T::from_f64(batch as f64)),
        Op::Unary(u) => map(operands[0], |x| unary(*u, x)),
        Op::Binary(b) => zip(operands[0], operands[1], |x, y| binary(*b, x, y)),
        Op::Compare(c) => {
            zip(operands[0], operands[1], |x, y| if c.holds(x, y) { T::one() } else { T::zero() })
        }
        Op::Select => {
            let (c, a, b) = (operands[0], operands[1], operands[2]);
            Tensor::from_fn(out_shape, |i| if c.data()[i] != T::zero() { a.data()[i] } else { b.data()[i] })
        }
        Op::Softmax { axis } => softmax(operands[0], *axis, false),
        Op::LogSoftmax { axis } => softmax(operands[0], *axis, true),
        Op::MatMul { transpose_a, transpose_b } => {
            matmul(operands[0], operands[1], *transpose_a, *transpose_b, out_shape)
        }
        Op::Broadcast { .. } => broadcast(operands[0], out_shape),
        Op::Reshape { .. } => Tensor::new(out_shape, operands[0].data().to_vec())?,
        Op::Transpose { perm } => transpose(operands[0], perm),
        Op::Im2col { window } => {
            let x = operands[0];
            let mut out = Tensor::zeros(out_shape);
            let dims = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
            window.for_each_patch_value(dims, |column, pixel| out.data_mut()[column] = x.data()[pixel]);
            out
        }
        Op::Col2im { window, .. } => {
            let columns = operands[0];
            let dims = [out_shape[0], out_shape[1], out_shape[2], out_shape[3]];
            let mut out = Tensor::zeros(out_shape);
            window.for_each_patch_value(dims, |column, pixel| {
                out.data_mut()[pixel] = out.data()[pixel] + columns.data()[column]
            });
            out
        }
        Op::Reduce { kind, axes, .. } => reduce(operands[0], *kind, axes, out_shape),
    })
}

/// Elementwise unary functions, in forms that stay finite for |x| up to 1e4.
fn unary<T: Scalar>(op: Unary, x: T) -> T {
    match op {
        Unary::Neg => -x,
        Unary::Exp => x.exp(),
        Unary::Log => x.ln(),
        Unary::Log1p => x.ln_1p(),
        Unary::Sqrt => x.sqrt(),
        Unary::Square => x * x,
        Unary::Pow(p) => x.powf(T::from_f64(p.get())),
        // σ(x) = 1/(1+e⁻ˣ) for x ≥ 0, eˣ/(1+eˣ) otherwise: the exponent is never positive.
        Unary::Sigmoid => {
            if x >= T::zero() {
                T::one() / (T::one() + (-x).exp())
            } else {
                let e = x.exp();
                e / (T::one() + e)
            }
        }
        Unary::Tanh => x.tanh(),
        Unary::Relu => {
            if x > T::zero() || x.is_nan() {
                x
            } else {
                T::zero()
            }
        }
        // softplus(x) = max(x, 0) + ln(1 + e^−|x|)
        Unary::Softplus => x.max(T::zero()) + (-x.abs()).exp().ln_1p(),
    }
}

fn binary<T: Scalar>(op: Binary, x: T, y: T) -> T {
    match op {
        Binary::Add => x + y,
        Binary::Sub => x - y,
        Binary::Mul => x * y,
        Binary::Div => x / y,
        Binary::Maximum => {
            if x.is_nan() || y.is_nan() {
                T::nan()
            } else if x >= y {
                x
            } else {
                y
            }
        }
    }
}

fn map<T: Scalar>(a: &Tensor<T>, f: impl Fn(T) -> T) -> Tensor<T> {
    Tensor::from_fn(a.shape().to_vec(), |i| f(a.data()[i]))
}

fn zip<T: Scalar>(a: &Tensor<T>, b: &Tensor<T>, f: impl Fn(T, T) -> T) -> Tensor<T> {
    Tensor::from_fn(a.shape().to_vec(), |i| f(a.data()[i], b.data()[i]))
}

/// (outer, n, inner) sizes around `axis`.
fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// Softmax (or log-softmax) with the maximum subtracted first.
fn softmax<T: Scalar>(a: &Tensor<T>, axis: usize, log: bool) -> Tensor<T> {
    let (outer, n, inner) = split_at_axis(a.shape(), axis);
    let mut out = Tensor::zeros(a.shape().to_vec());
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let max = (0..n).map(|j| a.data()[at(j)]).fold(T::neg_infinity(), T::max);
            let total = (0..n).map(|j| (a.data()[at(j)] - max).exp()).fold(T::zero(), |s, v| s + v);
            for j in 0..n {
                let shifted = a.data()[at(j)] - max;
                out.data_mut()[at(j)] = if log { shifted - total.ln() } else { shifted.exp() / total };
            }
        }
    }
    out
}

/// `a` as a matrix: its leading dimensions flattened into rows.
fn as_matrix(shape: &[usize]) -> (usize, usize) {
    let (&cols, leading) = shape.split_last().expect("matmul operands have rank ≥ 2");
    (leading.iter().product(), cols)
}

fn matmul<T: Scalar>(a: &Tensor<T>, b: &Tensor<T>, ta: bool, tb: bool, out_shape: Vec<usize>) -> Tensor<T> {
    let (ar, ac) = as_matrix(a.shape());
    let (br, bc) = as_matrix(b.shape());
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    let a_at = |i: usize, p: usize| {
        if ta { a.data()[p * ac + i] } else { a.data()[i * ac + p] }
    };
    let b_at = |p: usize, j: usize| {
        if tb { b.data()[j * bc + p] } else { b.data()[p * bc + j] }
    };
    let mut out = Tensor::zeros(out_shape);
    for i in 0..m {
        for p in 0..k {
            let av = a_at(i, p);
            for j in 0..n {
                out.data_mut()[i * n + j] = out.data()[i * n + j] + av * b_at(p, j);
            }
        }
    }
    out
}

fn broadcast<T: Scalar>(a: &Tensor<T>, out_shape: Vec<usize>) -> Tensor<T> {
    let offset = out_shape.len() - a.shape().len();
    let in_strides = strides(a.shape());
    let out_strides = strides(&out_shape);
    let len = out_shape.iter().product();
    let mut data = Vec::with_capacity(len);
    for flat in 0..len {
        let mut source = 0;
        for (axis, &size) in a.shape().iter().enumerate() {
            let index = (flat / out_strides[axis + offset]) % out_shape[axis + offset];
            if size != 1 {
                source += index * in_strides[axis];
            }
        }
        data.push(a.data()[source]);
    }
    Tensor::new(out_shape, data).expect("length matches shape")
}

fn transpose<T: Scalar>(a: &Tensor<T>, perm: &[usize]) -> Tensor<T> {
    let out_shape: Vec<usize> = perm.iter().map(|&p| a.shape()[p]).collect();
    let in_strides = strides(a.shape());
    let out_strides = strides(&out_shape);
    Tensor::from_fn(out_shape.clone(), |flat| {
        let source: usize =
            (0..perm.len()).map(|i| ((flat / out_strides[i]) % out_shape[i]) * in_strides[perm[i]]).sum();
        a.data()[source]
    })
}

fn reduce<T: Scalar>(a: &Tensor<T>, kind: Reduce, axes: &[usize], out_shape: Vec<usize>) -> Tensor<T> {
    let in_strides = strides(a.shape());
    // Destination strides per input axis: 0 along reduced axes.
    let kept: Vec<usize> = (0..a.shape().len()).filter(|ax| !axes.contains(ax)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&ax| a.shape()[ax]).collect();
    let kept_strides = strides(&kept_shape);
    let mut dest_stride = vec![0; a.shape().len()];
    for (k, &ax) in kept.iter().enumerate() {
        dest_stride[ax] = kept_strides[k];
    }
    let init = match kind {
        Reduce::Sum | Reduce::Mean => T::zero(),
        Reduce::Max => T::neg_infinity(),
    };
    let mut out = Tensor::from_fn(out_shape, |_| init);
    for (flat, &value) in a.data().iter().enumerate() {
        let dest: usize =
            (0..a.shape().len()).map(|ax| ((flat / in_strides[ax]) % a.shape()[ax]) * dest_stride[ax]).sum();
        let slot = &mut out.data_mut()[dest];
        *slot = match kind {
            Reduce::Sum | Reduce::Mean => *slot + value,
            Reduce::Max => binary(Binary::Maximum, *slot, value),
        };
    }
    if kind == Reduce::Mean {
        let count: usize = axes.iter().map(|&ax| a.shape()[ax]).product();
        let scale = T::from_f64(count as f64);
        out.data_mut().iter_mut().for_each(|v| *v = *v / scale);
    }
    out
}
