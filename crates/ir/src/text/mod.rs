//! The canonical text form: SSA, one node per line, in topological order.
//!
//! ```text
//! %0 : f32[B,784] = input "x"
//! %1 : f32[784,400] = param "w1"
//! %2 : f32[B,400] = matmul %0, %1
//! %3 : f32[B,400] = sigmoid %2  # h1
//! return %3
//! ```
//!
//! Attributes go in brackets after the op name (`softmax[axis=1]`, `matmul[tb]`,
//! `sum[0,keepdims]`, `transpose[1,0]`, `pow[2.5]`); `input`/`param`/`const`/`broadcast`/
//! `reshape` take their shape from the line's type. The parser checks every declared type
//! against the inferred one, so `parse(print(g)) == g`.

mod parse;
mod print;

pub use parse::parse;
pub use print::print;
