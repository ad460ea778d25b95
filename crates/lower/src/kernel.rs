//! Fused elementwise kernels as data: what a backend's code generator reads.
//!
//! A kernel loops over the `rows × cols` space of its group's shape (`cols` is the last
//! dimension). It reads each input with an [`Access`] mode, evaluates [`KExpr`]s in order
//! and stores some of them to full `rows × cols` output buffers.

use natgrad_ir::{Binary, Compare, DType, Unary};

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

/// One value computed inside a kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum KExpr {
    /// Input `i` of the kernel.
    Input(usize),
    /// A constant.
    Const(f64),
    /// A unary op of an earlier expression.
    Unary(Unary, usize),
    /// A binary op of two earlier expressions.
    Binary(Binary, usize, usize),
    /// A comparison (1 or 0) of two earlier expressions.
    Compare(Compare, usize, usize),
    /// `select(c, a, b)` of three earlier expressions.
    Select(usize, usize, usize),
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
}
