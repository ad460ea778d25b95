//! Algebraic identities. `ALGEBRA` is float-exact (or, for the guarded cancellations, exact
//! in real arithmetic and strictly more accurate in floats); `FAST_MATH` holds the ones that
//! are wrong for NaN or Inf and runs only when asked for.

use super::Family::{Algebra, FastMath};
use super::Guard::{NonZero, Positive};
use super::Rule;

/// Float-exact identities, tried in this order.
#[rustfmt::skip]
pub const ALGEBRA: &[Rule] = &[
    Rule::pattern("neg-neg",      Algebra, "(neg (neg ?x))",        "?x"),             // −(−x) = x
    Rule::pattern("mul-one",      Algebra, "(mul ?x 1)",            "?x"),             // x·1 = x
    Rule::pattern("div-one",      Algebra, "(div ?x 1)",            "?x"),             // x/1 = x
    Rule::pattern("sub-zero",     Algebra, "(sub ?x 0)",            "?x"),             // x−0 = x (also for x = −0)
    Rule::pattern("add-neg-zero", Algebra, "(add ?x -0)",           "?x"),             // x+(−0) = x
    Rule::pattern("mul-neg-one",  Algebra, "(mul ?x -1)",           "(neg ?x)"),       // x·(−1) = −x
    Rule::pattern("sub-neg",      Algebra, "(sub ?a (neg ?b))",     "(add ?a ?b)"),    // a−(−b) = a+b
    Rule::pattern("add-neg",      Algebra, "(add ?a (neg ?b))",     "(sub ?a ?b)"),    // a+(−b) = a−b
    Rule::pattern("mul-neg-neg",  Algebra, "(mul (neg ?a) (neg ?b))", "(mul ?a ?b)"),  // (−a)(−b) = ab
    Rule::pattern("mul-self",     Algebra, "(mul ?x ?x)",           "(square ?x)"),    // x·x = x²
    Rule::pattern("div-cancel",   Algebra, "(div (mul ?a ?b) ?a)",  "?b").when(NonZero("a")), // (a·b)/a = b, a ≠ 0
    Rule::pattern("exp-log",      Algebra, "(exp (log ?x))",        "?x").when(Positive("x")), // e^(ln x) = x, x > 0
    Rule::pattern("log-exp",      Algebra, "(log (exp ?x))",        "?x"),             // ln eˣ = x
];

/// Identities that are wrong for NaN/Inf operands; enabled by `Options::fast_math`.
#[rustfmt::skip]
pub const FAST_MATH: &[Rule] = &[
    Rule::pattern("mul-zero",     FastMath, "(mul ?x 0)",           "0"),              // x·0 = 0 (not for NaN, ±Inf)
    Rule::pattern("add-zero",     FastMath, "(add ?x 0)",           "?x"),             // x+0 = x (not for x = −0)
    Rule::pattern("sub-self",     FastMath, "(sub ?x ?x)",          "0"),              // x−x = 0 (not for NaN, ±Inf)
    Rule::pattern("div-self",     FastMath, "(div ?x ?x)",          "1"),              // x/x = 1 (not for 0, NaN, ±Inf)
];
