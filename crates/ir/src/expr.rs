//! The DSL: `Expr` handles with operator overloading and method chaining.
//!
//! ```
//! use natgrad_ir::{Builder, DType, Shape};
//! let b = Builder::new(DType::F32);
//! let x = b.input("x", Shape::batched(&[784]));
//! let w = b.param("w1", Shape::fixed(&[784, 400]));
//! let c = b.param("b1", Shape::fixed(&[400]));
//! let h = (x.matmul(&w) + &c).sigmoid().named("h1");
//! let graph = b.finish(&[&h]).unwrap();
//! assert_eq!(graph.shape(graph.outputs()[0]).to_string(), "[B,400]");
//! ```
//!
//! Operators cannot return `Result`, so the first error is kept in the builder (later
//! operations become no-ops) and returned by [`Builder::finish`] or [`Builder::check`].

use std::cell::RefCell;
use std::ops;
use std::panic::Location;
use std::rc::Rc;

use crate::{
    Binary, Compare, DType, Dim, Error, Graph, NodeId, Op, Provenance, Reduce, Result, Shape, Site, Unary,
    Window,
};

struct State {
    graph: Graph,
    dtype: DType,
    error: Option<Error>,
}

/// Builds one graph; hands out [`Expr`]s that refer to it.
#[derive(Clone)]
pub struct Builder {
    state: Rc<RefCell<State>>,
}

impl Builder {
    /// A builder whose inputs, params and constants default to `dtype`.
    pub fn new(dtype: DType) -> Builder {
        Builder { state: Rc::new(RefCell::new(State { graph: Graph::new(), dtype, error: None })) }
    }

    /// The default dtype.
    pub fn dtype(&self) -> DType {
        self.state.borrow().dtype
    }

    /// A named input (data fed at run time); `shape` may use the batch dimension `B`.
    #[track_caller]
    pub fn input(&self, name: &str, shape: Shape) -> Expr {
        let op = Op::Input { name: name.to_string(), dtype: self.dtype(), shape };
        self.leaf(op, None, Location::caller())
    }

    /// A named trainable parameter.
    #[track_caller]
    pub fn param(&self, name: &str, shape: Shape) -> Expr {
        let op = Op::Param { name: name.to_string(), dtype: self.dtype(), shape };
        self.leaf(op, None, Location::caller())
    }

    /// A scalar constant.
    #[track_caller]
    pub fn scalar(&self, value: f64) -> Expr {
        self.leaf(Op::scalar(self.dtype(), value), None, Location::caller())
    }

    /// The run-time batch size as a scalar.
    #[track_caller]
    pub fn batch_size(&self) -> Expr {
        self.leaf(Op::BatchSize { dtype: self.dtype() }, None, Location::caller())
    }

    /// Wraps an existing node of the graph being built.
    pub fn expr(&self, id: NodeId) -> Expr {
        Expr { builder: self.clone(), id }
    }

    /// The first error recorded so far, if any.
    pub fn check(&self) -> Result<()> {
        match &self.state.borrow().error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// A copy of the graph built so far, with `outputs` as its outputs; the first recorded
    /// error instead, if there was one.
    pub fn finish(&self, outputs: &[&Expr]) -> Result<Graph> {
        self.check()?;
        if outputs.iter().any(|e| !Rc::ptr_eq(&e.builder.state, &self.state)) {
            let site = Site { op: "return", name: None, location: None };
            return Err(Error::Type { site, message: "an output comes from another builder".into() });
        }
        let mut graph = self.state.borrow().graph.clone();
        graph.set_outputs(outputs.iter().map(|e| e.id).collect());
        Ok(graph)
    }

    fn leaf(&self, op: Op, name: Option<&str>, location: &'static Location<'static>) -> Expr {
        let fallback = NodeId::from_index(0);
        self.add(op, &[], name, location).unwrap_or_else(|| self.expr(fallback))
    }

    /// Adds a node unless an error was recorded before; records the error if adding fails.
    fn add(
        &self,
        op: Op,
        inputs: &[NodeId],
        name: Option<&str>,
        location: &'static Location<'static>,
    ) -> Option<Expr> {
        let mut state = self.state.borrow_mut();
        if state.error.is_some() {
            return None;
        }
        let provenance = Provenance { name: name.map(str::to_string), location: Some(location) };
        match state.graph.add_with(op, inputs, provenance) {
            Ok(id) => Some(Expr { builder: self.clone(), id }),
            Err(e) => {
                state.error = Some(e);
                None
            }
        }
    }

    fn record(&self, error: Error) {
        self.state.borrow_mut().error.get_or_insert(error);
    }

    /// Records a type error of `op` at the user's source line `location`.
    fn record_at(&self, op: &'static str, location: &'static Location<'static>, message: String) {
        let site =
            Site { op, name: None, location: Some(format!("{}:{}", location.file(), location.line())) };
        self.record(Error::Type { site, message });
    }
}

/// A value in a graph under construction.
#[derive(Clone)]
pub struct Expr {
    builder: Builder,
    id: NodeId,
}

impl Expr {
    /// The node this expression refers to.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The builder it belongs to.
    pub fn builder(&self) -> &Builder {
        &self.builder
    }

    /// Its shape (the empty shape once the builder holds an error).
    pub fn shape(&self) -> Shape {
        let state = self.builder.state.borrow();
        if state.graph.contains(self.id) { state.graph.shape(self.id).clone() } else { Shape::scalar() }
    }

    /// Gives the node a user name (shown in the text form and in errors).
    pub fn named(self, name: &str) -> Expr {
        let mut state = self.builder.state.borrow_mut();
        if state.graph.contains(self.id) {
            state.graph.set_name(self.id, name);
        }
        drop(state);
        self
    }

    #[track_caller]
    fn apply(&self, op: Op, operands: &[&Expr]) -> Expr {
        let location = Location::caller();
        if operands.iter().any(|e| !Rc::ptr_eq(&e.builder.state, &self.builder.state)) {
            self.builder.record_at(op.name(), location, "operands come from different builders".into());
            return self.clone();
        }
        let ids: Vec<NodeId> = operands.iter().map(|e| e.id).collect();
        self.builder.add(op, &ids, None, location).unwrap_or_else(|| self.clone())
    }

    #[track_caller]
    fn unary(&self, u: Unary) -> Expr {
        self.apply(Op::Unary(u), &[self])
    }

    /// Applies a binary elementwise op after numpy-style broadcasting of both operands.
    #[track_caller]
    fn elementwise(&self, op: Op, other: &Expr) -> Expr {
        let location = Location::caller();
        let (a, b) = (self.shape(), other.shape());
        let Some(target) = broadcast_shapes(&a, &b) else {
            let dtype = self.builder.dtype();
            let message = format!("{dtype}{a} vs {dtype}{b}: shapes cannot be broadcast together");
            self.builder.record_at(op.name(), location, message);
            return self.clone();
        };
        let lhs = self.broadcast_to(target.clone());
        let rhs = other.broadcast_to(target);
        lhs.apply(op, &[&lhs, &rhs])
    }

    /// Broadcasts to `shape` (numpy rules); no node is added if the shape already matches.
    #[track_caller]
    pub fn broadcast_to(&self, shape: Shape) -> Expr {
        if self.shape() == shape { self.clone() } else { self.apply(Op::Broadcast { shape }, &[self]) }
    }

    /// Same elements in a new shape.
    #[track_caller]
    pub fn reshape(&self, shape: Shape) -> Expr {
        self.apply(Op::Reshape { shape }, &[self])
    }

    /// Permutes axes: result axis `i` is axis `perm[i]`.
    #[track_caller]
    pub fn transpose(&self, perm: &[usize]) -> Expr {
        self.apply(Op::Transpose { perm: perm.to_vec() }, &[self])
    }

    /// Matrix product `self · other`.
    #[track_caller]
    pub fn matmul(&self, other: &Expr) -> Expr {
        self.matmul_t(other, false, false)
    }

    /// Matrix product with either operand transposed (no copy is made).
    #[track_caller]
    pub fn matmul_t(&self, other: &Expr, transpose_a: bool, transpose_b: bool) -> Expr {
        self.apply(Op::MatMul { transpose_a, transpose_b }, &[self, other])
    }

    /// The patches of NHWC images `[N, H, W, C]` under `window`: `[N, OH, OW, KH·KW·C]`.
    #[track_caller]
    pub fn im2col(&self, window: Window) -> Expr {
        self.apply(Op::Im2col { window }, &[self])
    }

    /// The adjoint of [`Expr::im2col`]: patches back to `image`-sized NHWC images, values
    /// that came from one pixel added.
    #[track_caller]
    pub fn col2im(&self, window: Window, image: [usize; 2]) -> Expr {
        self.apply(Op::Col2im { window, image }, &[self])
    }

    /// 2-D convolution (cross-correlation, as in every deep-learning framework) of NHWC
    /// images `[N, H, W, C]` with `filters` `[KH, KW, C, F]`: `[N, OH, OW, F]`. Written as
    /// `im2col(self) · reshape(filters, [KH·KW·C, F])`, so its derivatives are im2col, col2im
    /// and matmuls.
    #[track_caller]
    pub fn conv2d(&self, filters: &Expr, stride: [usize; 2], padding: [usize; 2]) -> Expr {
        let dims = filters.shape().0;
        let [Dim::Fixed(kh), Dim::Fixed(kw), Dim::Fixed(c), Dim::Fixed(f)] = dims.as_slice() else {
            let dtype = self.builder.dtype();
            let message = format!(
                "filters {dtype}{}: expected fixed [KH, KW, C, F] (NHWC convolution)",
                filters.shape()
            );
            self.builder.record_at("conv2d", Location::caller(), message);
            return self.clone();
        };
        let window = Window { kernel: [*kh, *kw], stride, padding };
        let matrix = filters.reshape(Shape(vec![Dim::Fixed(kh * kw * c), Dim::Fixed(*f)]));
        self.im2col(window).matmul(&matrix)
    }

    /// Elementwise `self + other` (broadcasting).
    #[track_caller]
    pub fn add(&self, other: &Expr) -> Expr {
        self.elementwise(Op::Binary(Binary::Add), other)
    }

    /// Elementwise `self − other` (broadcasting).
    #[track_caller]
    pub fn sub(&self, other: &Expr) -> Expr {
        self.elementwise(Op::Binary(Binary::Sub), other)
    }

    /// Elementwise `self · other` (broadcasting).
    #[track_caller]
    pub fn mul(&self, other: &Expr) -> Expr {
        self.elementwise(Op::Binary(Binary::Mul), other)
    }

    /// Elementwise `self / other` (broadcasting).
    #[track_caller]
    pub fn div(&self, other: &Expr) -> Expr {
        self.elementwise(Op::Binary(Binary::Div), other)
    }

    /// Elementwise maximum (broadcasting).
    #[track_caller]
    pub fn maximum(&self, other: &Expr) -> Expr {
        self.elementwise(Op::Binary(Binary::Maximum), other)
    }

    /// Elementwise comparison, 1 where it holds and 0 elsewhere (broadcasting).
    #[track_caller]
    pub fn compare(&self, cmp: Compare, other: &Expr) -> Expr {
        self.elementwise(Op::Compare(cmp), other)
    }

    /// `on_true` where `self ≠ 0`, else `on_false` (all three of one shape).
    #[track_caller]
    pub fn select(&self, on_true: &Expr, on_false: &Expr) -> Expr {
        self.apply(Op::Select, &[self, on_true, on_false])
    }

    /// A scalar constant of this expression's dtype.
    #[track_caller]
    pub fn constant(&self, value: f64) -> Expr {
        self.builder.scalar(value)
    }

    /// −x
    #[track_caller]
    pub fn neg(&self) -> Expr {
        self.unary(Unary::Neg)
    }
    /// eˣ
    #[track_caller]
    pub fn exp(&self) -> Expr {
        self.unary(Unary::Exp)
    }
    /// ln x
    #[track_caller]
    pub fn log(&self) -> Expr {
        self.unary(Unary::Log)
    }
    /// ln(1 + x)
    #[track_caller]
    pub fn log1p(&self) -> Expr {
        self.unary(Unary::Log1p)
    }
    /// √x
    #[track_caller]
    pub fn sqrt(&self) -> Expr {
        self.unary(Unary::Sqrt)
    }
    /// x²
    #[track_caller]
    pub fn square(&self) -> Expr {
        self.unary(Unary::Square)
    }
    /// xᵖ for a constant p
    #[track_caller]
    pub fn pow(&self, p: f64) -> Expr {
        self.unary(Unary::Pow(crate::F64Bits::new(p)))
    }
    /// Logistic sigmoid.
    #[track_caller]
    pub fn sigmoid(&self) -> Expr {
        self.unary(Unary::Sigmoid)
    }
    /// tanh
    #[track_caller]
    pub fn tanh(&self) -> Expr {
        self.unary(Unary::Tanh)
    }
    /// max(x, 0)
    #[track_caller]
    pub fn relu(&self) -> Expr {
        self.unary(Unary::Relu)
    }
    /// ln(1 + eˣ)
    #[track_caller]
    pub fn softplus(&self) -> Expr {
        self.unary(Unary::Softplus)
    }
    /// Softmax along `axis`.
    #[track_caller]
    pub fn softmax(&self, axis: usize) -> Expr {
        self.apply(Op::Softmax { axis }, &[self])
    }
    /// Log-softmax along `axis`.
    #[track_caller]
    pub fn log_softmax(&self, axis: usize) -> Expr {
        self.apply(Op::LogSoftmax { axis }, &[self])
    }

    /// Sum over `axes`.
    #[track_caller]
    pub fn sum(&self, axes: &[usize], keep_dims: bool) -> Expr {
        self.reduce(Reduce::Sum, axes, keep_dims)
    }
    /// Mean over `axes`.
    #[track_caller]
    pub fn mean(&self, axes: &[usize], keep_dims: bool) -> Expr {
        self.reduce(Reduce::Mean, axes, keep_dims)
    }
    /// Maximum over `axes`.
    #[track_caller]
    pub fn max(&self, axes: &[usize], keep_dims: bool) -> Expr {
        self.reduce(Reduce::Max, axes, keep_dims)
    }
    /// Sum of all elements, a scalar.
    #[track_caller]
    pub fn sum_all(&self) -> Expr {
        let axes: Vec<usize> = (0..self.shape().rank()).collect();
        self.reduce(Reduce::Sum, &axes, false)
    }

    #[track_caller]
    fn reduce(&self, kind: Reduce, axes: &[usize], keep_dims: bool) -> Expr {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        self.apply(Op::Reduce { kind, axes, keep_dims }, &[self])
    }
}

/// The numpy broadcast of two shapes; `B` stretches from 1 like any other size.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Option<Shape> {
    let rank = a.rank().max(b.rank());
    let at = |s: &Shape, i: usize| {
        if i + s.rank() < rank { Dim::Fixed(1) } else { s.0[i + s.rank() - rank] }
    };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (Dim::Fixed(1), y) => Some(y),
            (x, Dim::Fixed(1)) => Some(x),
            _ => None,
        })
        .collect::<Option<Vec<Dim>>>()
        .map(Shape)
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $dsl:ident) => {
        impl ops::$trait<&Expr> for &Expr {
            type Output = Expr;
            #[track_caller]
            fn $method(self, rhs: &Expr) -> Expr {
                self.$dsl(rhs)
            }
        }
        impl ops::$trait<Expr> for Expr {
            type Output = Expr;
            #[track_caller]
            fn $method(self, rhs: Expr) -> Expr {
                (&self).$dsl(&rhs)
            }
        }
        impl ops::$trait<&Expr> for Expr {
            type Output = Expr;
            #[track_caller]
            fn $method(self, rhs: &Expr) -> Expr {
                (&self).$dsl(rhs)
            }
        }
        impl ops::$trait<f64> for &Expr {
            type Output = Expr;
            #[track_caller]
            fn $method(self, rhs: f64) -> Expr {
                self.$dsl(&self.constant(rhs))
            }
        }
        impl ops::$trait<f64> for Expr {
            type Output = Expr;
            #[track_caller]
            fn $method(self, rhs: f64) -> Expr {
                (&self).$dsl(&self.constant(rhs))
            }
        }
        impl ops::$trait<&Expr> for f64 {
            type Output = Expr;
            #[track_caller]
            fn $method(self, rhs: &Expr) -> Expr {
                rhs.constant(self).$dsl(rhs)
            }
        }
    };
}

binary_operator!(Add, add, add);
binary_operator!(Sub, sub, sub);
binary_operator!(Mul, mul, mul);
binary_operator!(Div, div, div);

impl ops::Neg for &Expr {
    type Output = Expr;
    #[track_caller]
    fn neg(self) -> Expr {
        Expr::neg(self)
    }
}

impl ops::Neg for Expr {
    type Output = Expr;
    #[track_caller]
    fn neg(self) -> Expr {
        Expr::neg(&self)
    }
}
