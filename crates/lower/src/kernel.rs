//! Fused elementwise kernels as data: what a backend's code generator reads.
//!
//! A kernel loops over the `rows × cols` space of its group's shape (`cols` is the last
//! dimension). It reads each input with an [`Access`] mode, evaluates [`KExpr`]s in order,
//! stores some of them to full `rows × cols` output buffers and sums some over the rows
//! ([`ColumnSum`]). The expressions are
//! already legal for every backend ([`crate::legalize`]): sigmoid, softplus, relu,
//! comparisons and selects arrive as the primitives below, in their stable forms.

use natgrad_ir::{Binary, Compare, DType};

/// How a kernel reads one of its inputs inside the `rows × cols` loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Element `(r, c)` of a `rows × cols` buffer.
    Full,
    /// Element `c` of a `cols` vector (broadcast down the rows).
    Row,
    /// Element `r` of a `rows` vector (broadcast along the columns).
    Col,
    /// Element 0 (broadcast everywhere).
    Scalar,
}

/// The unary primitives a backend implements (IR ops beyond these are legalized into them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KUnary {
    /// −x
    Neg,
    /// |x|
    Abs,
    /// x²
    Square,
    /// √x
    Sqrt,
    /// eˣ
    Exp,
    /// ln x
    Log,
    /// ln(1 + x)
    Log1p,
    /// tanh x
    Tanh,
    /// xᵖ with a constant exponent p
    Pow(f64),
}

/// One value computed inside a kernel, from earlier ones (indices into `exprs`).
#[derive(Clone, Debug, PartialEq)]
pub enum KExpr {
    /// Input `i` of the kernel.
    Input(usize),
    /// A constant.
    Const(f64),
    /// A unary primitive.
    Unary(KUnary, usize),
    /// A binary op (`Maximum` propagates NaN).
    Binary(Binary, usize, usize),
    /// `lhs cmp rhs ? then : otherwise`, compared as Rust compares floats: with a NaN side
    /// every comparison is false except `Ne`, which is true.
    Choose {
        /// The comparison.
        cmp: Compare,
        /// Its left side.
        lhs: usize,
        /// Its right side.
        rhs: usize,
        /// The value where it holds.
        then: usize,
        /// The value where it does not.
        otherwise: usize,
    },
}

/// A fused kernel, independent of the code generator.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelSpec {
    /// Element type.
    pub dtype: DType,
    /// How each input is read.
    pub inputs: Vec<Access>,
    /// The expressions, in evaluation order.
    pub exprs: Vec<KExpr>,
    /// Expressions stored to the output buffers (each `rows × cols`), in buffer order.
    pub outputs: Vec<usize>,
    /// Expressions summed over every row into `cols`-long buffers, after the outputs.
    pub column_sums: Vec<ColumnSum>,
}

/// A sum over the rows of one kernel expression (a bias gradient), one value per column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColumnSum {
    /// The expression summed.
    pub expr: usize,
    /// Divide by the number of rows afterwards (a mean).
    pub mean: bool,
}
