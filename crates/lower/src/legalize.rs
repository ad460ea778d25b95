//! Legalization: the IR's elementwise ops written as kernel primitives, in the numerically
//! stable forms every backend shares (the reference interpreter computes the same ones):
//!
//! * `σ(x) = x ≥ 0 ? 1/(1+e) : e/(1+e)` with `e = exp(−|x|)` (no overflow for any x);
//! * `softplus(x) = (x > 0 ? x : 0) + log1p(exp(−|x|))`;
//! * `relu(x) = x ≤ 0 ? 0 : x` (NaN passes through);
//! * a comparison is `cmp ? 1 : 0`, `select(c, a, b)` is `c ≠ 0 ? a : b`.

use std::collections::HashMap;

use natgrad_ir::{Binary, Compare, Unary};

use crate::kernel::{KExpr, KUnary};

/// Appends legal expressions to a kernel body; constants are shared.
#[derive(Default)]
pub(crate) struct KernelBody {
    exprs: Vec<KExpr>,
    constants: HashMap<u64, usize>,
}

impl KernelBody {
    /// The expressions written so far.
    pub(crate) fn finish(self) -> Vec<KExpr> {
        self.exprs
    }

    fn push(&mut self, expr: KExpr) -> usize {
        self.exprs.push(expr);
        self.exprs.len() - 1
    }

    /// Kernel input `slot`.
    pub(crate) fn input(&mut self, slot: usize) -> usize {
        self.push(KExpr::Input(slot))
    }

    /// The constant `c` (one expression per distinct value).
    pub(crate) fn constant(&mut self, c: f64) -> usize {
        if let Some(&e) = self.constants.get(&c.to_bits()) {
            return e;
        }
        let e = self.push(KExpr::Const(c));
        self.constants.insert(c.to_bits(), e);
        e
    }

    fn primitive(&mut self, op: KUnary, x: usize) -> usize {
        self.push(KExpr::Unary(op, x))
    }

    fn choose(&mut self, cmp: Compare, lhs: usize, rhs: usize, then: usize, otherwise: usize) -> usize {
        self.push(KExpr::Choose { cmp, lhs, rhs, then, otherwise })
    }

    /// `exp(−|x|)`, the shared core of the stable sigmoid and softplus.
    fn exp_neg_abs(&mut self, x: usize) -> usize {
        let a = self.primitive(KUnary::Abs, x);
        let na = self.primitive(KUnary::Neg, a);
        self.primitive(KUnary::Exp, na)
    }

    /// An IR unary op of `x`.
    pub(crate) fn unary(&mut self, op: Unary, x: usize) -> usize {
        match op {
            Unary::Neg => self.primitive(KUnary::Neg, x),
            Unary::Exp => self.primitive(KUnary::Exp, x),
            Unary::Log => self.primitive(KUnary::Log, x),
            Unary::Log1p => self.primitive(KUnary::Log1p, x),
            Unary::Sqrt => self.primitive(KUnary::Sqrt, x),
            Unary::Square => self.primitive(KUnary::Square, x),
            Unary::Tanh => self.primitive(KUnary::Tanh, x),
            Unary::Pow(p) => self.primitive(KUnary::Pow(p.get()), x),
            Unary::Sigmoid => {
                let e = self.exp_neg_abs(x);
                let one = self.constant(1.0);
                let denominator = self.binary(Binary::Add, one, e);
                let positive = self.binary(Binary::Div, one, denominator);
                let negative = self.binary(Binary::Mul, e, positive);
                let zero = self.constant(0.0);
                self.choose(Compare::Ge, x, zero, positive, negative)
            }
            Unary::Softplus => {
                let zero = self.constant(0.0);
                let positive_part = self.choose(Compare::Gt, x, zero, x, zero);
                let e = self.exp_neg_abs(x);
                let tail = self.primitive(KUnary::Log1p, e);
                self.binary(Binary::Add, positive_part, tail)
            }
            Unary::Relu => {
                let zero = self.constant(0.0);
                self.choose(Compare::Le, x, zero, zero, x)
            }
        }
    }

    /// An IR binary op.
    pub(crate) fn binary(&mut self, op: Binary, x: usize, y: usize) -> usize {
        self.push(KExpr::Binary(op, x, y))
    }

    /// An IR comparison: 1 where it holds, else 0.
    pub(crate) fn compare(&mut self, cmp: Compare, x: usize, y: usize) -> usize {
        let (one, zero) = (self.constant(1.0), self.constant(0.0));
        self.choose(cmp, x, y, one, zero)
    }

    /// The IR select: `c ≠ 0 ? a : b`.
    pub(crate) fn select(&mut self, c: usize, a: usize, b: usize) -> usize {
        let zero = self.constant(0.0);
        self.choose(Compare::Ne, c, zero, a, b)
    }
}
