//! The one `Op` enum and its per-concern tables: arity, printer name, attributes.
//!
//! Shape rules live in `infer.rs`, interpreter kernels in `interp.rs`, derivative rules in
//! the autodiff crate; each is one exhaustive `match`, so a new variant fails to compile
//! until every concern handles it.

use crate::{DType, Shape};

/// A float stored as its bit pattern so that `Eq` and `Hash` are total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct F64Bits(u64);

impl F64Bits {
    /// Stores `value`; every NaN is stored as the one canonical NaN.
    pub fn new(value: f64) -> F64Bits {
        if value.is_nan() { F64Bits(f64::NAN.to_bits()) } else { F64Bits(value.to_bits()) }
    }

    /// The stored value.
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// Elementwise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    /// −x
    Neg,
    /// eˣ
    Exp,
    /// ln x
    Log,
    /// ln(1 + x)
    Log1p,
    /// √x
    Sqrt,
    /// x²
    Square,
    /// xᵖ with a constant exponent p
    Pow(F64Bits),
    /// 1 / (1 + e⁻ˣ)
    Sigmoid,
    /// tanh x
    Tanh,
    /// max(x, 0)
    Relu,
    /// ln(1 + eˣ)
    Softplus,
}

impl Unary {
    /// Every unary op, for tests and parsers (`Pow` with exponent 2).
    pub const ALL: [Unary; 11] = [
        Unary::Neg,
        Unary::Exp,
        Unary::Log,
        Unary::Log1p,
        Unary::Sqrt,
        Unary::Square,
        Unary::Pow(F64Bits(0x4000_0000_0000_0000)),
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Relu,
        Unary::Softplus,
    ];

    /// Printer name.
    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Log1p => "log1p",
            Unary::Sqrt => "sqrt",
            Unary::Square => "square",
            Unary::Pow(_) => "pow",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Relu => "relu",
            Unary::Softplus => "softplus",
        }
    }
}

/// Elementwise functions of two operands of the same shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a · b
    Mul,
    /// a / b
    Div,
    /// max(a, b)
    Maximum,
}

impl Binary {
    /// Every binary op.
    pub const ALL: [Binary; 5] = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Maximum];

    /// Printer name.
    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Maximum => "maximum",
        }
    }

    /// Whether `op(a, b) = op(b, a)`.
    pub fn is_commutative(self) -> bool {
        match self {
            Binary::Add | Binary::Mul | Binary::Maximum => true,
            Binary::Sub | Binary::Div => false,
        }
    }
}

/// Elementwise comparisons; the result is 1 where true and 0 where false, in the operands' dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compare {
    /// a < b
    Lt,
    /// a ≤ b
    Le,
    /// a > b
    Gt,
    /// a ≥ b
    Ge,
    /// a = b
    Eq,
    /// a ≠ b
    Ne,
}

impl Compare {
    /// Every comparison.
    pub const ALL: [Compare; 6] =
        [Compare::Lt, Compare::Le, Compare::Gt, Compare::Ge, Compare::Eq, Compare::Ne];

    /// Printer name.
    pub fn name(self) -> &'static str {
        match self {
            Compare::Lt => "lt",
            Compare::Le => "le",
            Compare::Gt => "gt",
            Compare::Ge => "ge",
            Compare::Eq => "eq",
            Compare::Ne => "ne",
        }
    }

    /// Evaluates the comparison.
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Compare::Lt => a < b,
            Compare::Le => a <= b,
            Compare::Gt => a > b,
            Compare::Ge => a >= b,
            Compare::Eq => a == b,
            Compare::Ne => a != b,
        }
    }
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// Σ
    Sum,
    /// Σ / count
    Mean,
    /// max
    Max,
}

impl Reduce {
    /// Printer name.
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
            Reduce::Max => "max",
        }
    }
}

/// The sliding window of a 2-D convolution over NHWC images `[N, H, W, C]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Steps between windows (rows, columns); at least 1.
    pub stride: [usize; 2],
    /// Zeros added on each side (rows, columns).
    pub padding: [usize; 2],
}

impl Window {
    /// Window positions along (rows, columns) over an image of `size`, or `None` when the
    /// kernel does not fit the padded image (or a kernel size or stride is zero, or the
    /// padded size overflows).
    pub fn positions(&self, size: [usize; 2]) -> Option<[usize; 2]> {
        let along = |axis: usize| {
            let padded = self.padding[axis].checked_mul(2)?.checked_add(size[axis])?;
            let fits = self.kernel[axis] >= 1 && self.stride[axis] >= 1 && padded >= self.kernel[axis];
            fits.then(|| (padded - self.kernel[axis]) / self.stride[axis] + 1)
        };
        Some([along(0)?, along(1)?])
    }

    /// Visits every patch value of images `[n, h, w, c]` (row-major, NHWC) that lies inside
    /// the image: `visit(column_index, pixel_index)` with the index into the im2col result
    /// `[n, OH, OW, KH·KW·c]` and into the image. Padding values (zero) are not visited.
    pub fn for_each_patch_value(&self, [n, h, w, c]: [usize; 4], mut visit: impl FnMut(usize, usize)) {
        let Some([oh, ow]) = self.positions([h, w]) else { return };
        let [kh, kw] = self.kernel;
        let patch = kh * kw * c;
        for image in 0..n {
            for (row, col) in (0..oh).flat_map(|r| (0..ow).map(move |q| (r, q))) {
                let column_base = ((image * oh + row) * ow + col) * patch;
                for i in 0..kh {
                    let y = (row * self.stride[0] + i).checked_sub(self.padding[0]).filter(|&y| y < h);
                    for j in 0..kw {
                        let x = (col * self.stride[1] + j).checked_sub(self.padding[1]).filter(|&x| x < w);
                        if let (Some(y), Some(x)) = (y, x) {
                            let pixel = ((image * h + y) * w + x) * c;
                            let column = column_base + (i * kw + j) * c;
                            (0..c).for_each(|k| visit(column + k, pixel + k));
                        }
                    }
                }
            }
        }
    }

    /// The attributes in the text form: `3x3,stride=1x1,pad=1x1`.
    pub fn text(&self) -> String {
        let [k, s, p] = [self.kernel, self.stride, self.padding];
        format!("{}x{},stride={}x{},pad={}x{}", k[0], k[1], s[0], s[1], p[0], p[1])
    }
}

/// Every operation a graph node can perform.
///
/// Leaves (`Input`, `Param`, `Constant`, `BatchSize`) carry their own type; the type of
/// every other node follows from its operands by the rules in `infer.rs`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Data fed at run time (a batch of examples, targets, a tangent vector…).
    Input {
        /// Name the value is bound by.
        name: String,
        /// Element type.
        dtype: DType,
        /// Shape; may use `B`.
        shape: Shape,
    },
    /// A trainable parameter, bound by name.
    Param {
        /// Name the value is bound by.
        name: String,
        /// Element type.
        dtype: DType,
        /// Shape (fixed).
        shape: Shape,
    },
    /// A constant tensor (row-major values; one value for a scalar).
    Constant {
        /// Element type.
        dtype: DType,
        /// Shape (fixed).
        shape: Shape,
        /// Values, already rounded to `dtype`.
        values: Vec<F64Bits>,
    },
    /// The run-time batch size as a scalar (needed by the adjoint of a mean over `B`).
    BatchSize {
        /// Element type of the scalar.
        dtype: DType,
    },
    /// Elementwise function of one operand.
    Unary(Unary),
    /// Elementwise function of two operands of equal type.
    Binary(Binary),
    /// Elementwise comparison (1 or 0) of two operands of equal type.
    Compare(Compare),
    /// `select(c, a, b)`: `a` where `c ≠ 0`, else `b`; all three of equal type.
    Select,
    /// Softmax along one axis.
    Softmax {
        /// The axis normalised over.
        axis: usize,
    },
    /// Log of the softmax along one axis, computed stably.
    LogSoftmax {
        /// The axis normalised over.
        axis: usize,
    },
    /// Matrix product of two rank-2 operands, either optionally transposed.
    MatMul {
        /// Use the first operand transposed.
        transpose_a: bool,
        /// Use the second operand transposed.
        transpose_b: bool,
    },
    /// Numpy-style broadcast (align right; size-1 dimensions stretch) to `shape`.
    Broadcast {
        /// Result shape.
        shape: Shape,
    },
    /// Same elements, new shape (row-major order kept).
    Reshape {
        /// Result shape.
        shape: Shape,
    },
    /// Permutes the axes: result axis `i` is operand axis `perm[i]`.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// The patches of a 2-D convolution (im2col): `[N, H, W, C] → [N, OH, OW, KH·KW·C]`, each
    /// window's values in (kernel row, kernel column, channel) order, zero outside the image.
    /// A convolution is this followed by a matmul with the filters as `[KH·KW·C, F]`.
    Im2col {
        /// The window.
        window: Window,
    },
    /// The adjoint of [`Op::Im2col`] (col2im): `[N, OH, OW, KH·KW·C] → [N, H, W, C]`, every
    /// patch value added back to the pixel it came from.
    Col2im {
        /// The window.
        window: Window,
        /// The image's height and width.
        image: [usize; 2],
    },
    /// Reduction over `axes`; reduced axes are removed, or kept with size 1.
    Reduce {
        /// Which reduction.
        kind: Reduce,
        /// Axes reduced, ascending and distinct.
        axes: Vec<usize>,
        /// Keep reduced axes as size-1 dimensions.
        keep_dims: bool,
    },
}

impl Op {
    /// The number of operands this op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input { .. } | Op::Param { .. } | Op::Constant { .. } | Op::BatchSize { .. } => 0,
            Op::Unary(_)
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::Reduce { .. } => 1,
            Op::Binary(_) | Op::Compare(_) | Op::MatMul { .. } => 2,
            Op::Select => 3,
        }
    }

    /// The name of an input or param; `None` for every other op.
    pub fn leaf_name(&self) -> Option<&str> {
        match self {
            Op::Input { name, .. } | Op::Param { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The op's name in the text form and in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::Constant { .. } => "const",
            Op::BatchSize { .. } => "batch_size",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Select => "select",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::MatMul { .. } => "matmul",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Im2col { .. } => "im2col",
            Op::Col2im { .. } => "col2im",
            Op::Reduce { kind, .. } => kind.name(),
        }
    }

    /// Whether the op maps each output element from the same-index operand elements only
    /// (the ops a fusion group is made of).
    pub fn is_elementwise(&self) -> bool {
        match self {
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => true,
            Op::Input { .. }
            | Op::Param { .. }
            | Op::Constant { .. }
            | Op::BatchSize { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::MatMul { .. }
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::Reduce { .. } => false,
        }
    }

    /// A scalar constant.
    pub fn scalar(dtype: DType, value: f64) -> Op {
        Op::Constant { dtype, shape: Shape::scalar(), values: vec![F64Bits::new(dtype.round(value))] }
    }

    /// The value of a scalar constant, or of a constant whose elements are all equal.
    pub fn uniform_constant(&self) -> Option<f64> {
        match self {
            Op::Constant { values, .. } => {
                let first = values.first()?;
                values.iter().all(|v| v == first).then(|| first.get())
            }
            _ => None,
        }
    }
}
