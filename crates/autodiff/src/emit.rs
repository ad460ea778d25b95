//! Small helpers that append derivative nodes to a graph, carrying the primal node's
//! provenance, plus the `Tangent` type shared by both modes.

use natgrad_ir::{Binary, Compare, Dim, Graph, NodeId, Op, Provenance, Reduce, Shape, Unary};

use crate::Result;

/// A derivative value: structurally zero (no node is built for it) or a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tangent {
    /// Identically zero: the path is disconnected.
    Zero,
    /// The derivative is this node's value.
    Value(NodeId),
}

impl Tangent {
    /// The node, if the tangent is not structurally zero.
    pub fn node(self) -> Option<NodeId> {
        match self {
            Tangent::Zero => None,
            Tangent::Value(id) => Some(id),
        }
    }
}

/// Appends nodes to `graph`, each with the provenance of the primal node being differentiated.
pub(crate) struct Emit<'g> {
    pub graph: &'g mut Graph,
    pub provenance: Provenance,
}

impl Emit<'_> {
    pub fn op(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        Ok(self.graph.add_with(op, inputs, self.provenance.clone())?)
    }

    pub fn binary(&mut self, op: Binary, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Binary(op), &[a, b])
    }

    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(Binary::Add, a, b)
    }

    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(Binary::Sub, a, b)
    }

    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(Binary::Mul, a, b)
    }

    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(Binary::Div, a, b)
    }

    pub fn unary(&mut self, op: Unary, x: NodeId) -> Result<NodeId> {
        self.op(Op::Unary(op), &[x])
    }

    pub fn neg(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(Unary::Neg, x)
    }

    /// The constant `value` broadcast to the type of `like`.
    pub fn constant_like(&mut self, like: NodeId, value: f64) -> Result<NodeId> {
        let dtype = self.graph.dtype(like);
        let shape = self.graph.shape(like).clone();
        let scalar = self.op(Op::scalar(dtype, value), &[])?;
        self.broadcast(scalar, shape)
    }

    /// `x · value` for a constant value.
    pub fn scale(&mut self, x: NodeId, value: f64) -> Result<NodeId> {
        let c = self.constant_like(x, value)?;
        self.mul(x, c)
    }

    /// 1 where `cmp(a, b)` holds, else 0.
    pub fn mask(&mut self, cmp: Compare, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Compare(cmp), &[a, b])
    }

    /// `select(c, on_true, 0)`.
    pub fn select_or_zero(&mut self, c: NodeId, on_true: NodeId, zero_on_true: bool) -> Result<NodeId> {
        let zero = self.constant_like(on_true, 0.0)?;
        if zero_on_true {
            self.op(Op::Select, &[c, zero, on_true])
        } else {
            self.op(Op::Select, &[c, on_true, zero])
        }
    }

    pub fn broadcast(&mut self, x: NodeId, shape: Shape) -> Result<NodeId> {
        if *self.graph.shape(x) == shape { Ok(x) } else { self.op(Op::Broadcast { shape }, &[x]) }
    }

    pub fn reshape(&mut self, x: NodeId, shape: Shape) -> Result<NodeId> {
        if *self.graph.shape(x) == shape { Ok(x) } else { self.op(Op::Reshape { shape }, &[x]) }
    }

    pub fn reduce(&mut self, kind: Reduce, x: NodeId, axes: Vec<usize>, keep_dims: bool) -> Result<NodeId> {
        if axes.is_empty() && !keep_dims {
            return Ok(x);
        }
        self.op(Op::Reduce { kind, axes, keep_dims }, &[x])
    }

    /// `Σ_axis x` kept as a size-1 axis and broadcast back to the shape of `x`.
    pub fn sum_keep_broadcast(&mut self, x: NodeId, axis: usize) -> Result<NodeId> {
        let shape = self.graph.shape(x).clone();
        let s = self.reduce(Reduce::Sum, x, vec![axis], true)?;
        self.broadcast(s, shape)
    }

    /// The adjoint of broadcasting `shape` up to the shape of `g`: sum over the stretched
    /// and added axes, then reshape to `shape`.
    pub fn sum_to(&mut self, g: NodeId, shape: &Shape) -> Result<NodeId> {
        let out = self.graph.shape(g).clone();
        let offset = out.rank() - shape.rank();
        let axes: Vec<usize> = (0..out.rank())
            .filter(|&axis| axis < offset || (shape.0[axis - offset] != out.0[axis]))
            .collect();
        let summed = self.reduce(Reduce::Sum, g, axes, false)?;
        self.reshape(summed, shape.clone())
    }

    /// The number of elements a reduction over `axes` of `x` combines, as a scalar node.
    pub fn reduced_count(&mut self, x: NodeId, axes: &[usize]) -> Result<NodeId> {
        let dtype = self.graph.dtype(x);
        let dims: Vec<Dim> = axes.iter().map(|&a| self.graph.shape(x).0[a]).collect();
        let fixed: usize = dims.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { 1 }).product();
        let batch_axes = dims.iter().filter(|d| **d == Dim::Batch).count();
        let mut count = if fixed != 1 || batch_axes == 0 {
            Some(self.op(Op::scalar(dtype, fixed as f64), &[])?)
        } else {
            None
        };
        for _ in 0..batch_axes {
            let b = self.op(Op::BatchSize { dtype }, &[])?;
            count = Some(match count {
                Some(c) => self.mul(c, b)?,
                None => b,
            });
        }
        Ok(count.expect("at least one factor"))
    }

    /// Shape of `x` with the reduced `axes` kept as size 1.
    pub fn keep_dims_shape(&self, input_shape: &Shape, axes: &[usize]) -> Shape {
        Shape(
            input_shape
                .0
                .iter()
                .enumerate()
                .map(|(i, d)| if axes.contains(&i) { Dim::Fixed(1) } else { *d })
                .collect(),
        )
    }

    /// Sum of two tangents, building nothing for zeros.
    pub fn add_tangents(&mut self, a: Tangent, b: Tangent) -> Result<Tangent> {
        Ok(match (a, b) {
            (Tangent::Zero, t) | (t, Tangent::Zero) => t,
            (Tangent::Value(x), Tangent::Value(y)) => Tangent::Value(self.add(x, y)?),
        })
    }
}
