//! natgrad's graph IR: what a model *is* before any differentiation or code generation.
//!
//! This crate owns the graph, the DSL users write models in, the canonical text form and
//! the reference interpreter. It must never depend on a code generator (Cranelift) or a
//! GPU runtime (cudarc): backends read the graphs made here, not the other way round.
//!
//! Read it top-down, one concern per module:
//!
//! | module | concern |
//! |---|---|
//! | [`dtype`], [`shape`] | element types; shapes with the symbolic batch dimension `B` |
//! | [`cost`] | FLOP estimates of a graph at a batch size |
//! | [`op`] | the one `Op` enum and its tables: arity, printer name, elementwise-ness |
//! | [`infer`] | the shape/dtype rule of every op (one exhaustive `match`) |
//! | [`graph`] | `Graph`: petgraph storage, hash-consing, provenance, verifier, DOT export |
//! | [`error`] | typed errors naming op, node name, source location and shapes |
//! | [`text`] | the text form: printer and parser (`parse(print(g)) == g`) |
//! | [`expr`] | the DSL: `Builder` and `Expr` with operator overloading |
//! | [`model`], [`nn`] | `Model` (roles: input, targets, output, loss, param layout) and layer helpers |
//! | [`tensor`], [`interp`] | host tensors and the reference interpreter (the numeric oracle) |
//! | [`random_graphs`] | random graphs of every op family, for the backends' differential tests |

#![warn(missing_docs)]

pub mod cost;
pub mod dtype;
pub mod error;
pub mod expr;
pub mod graph;
pub mod infer;
pub mod interp;
pub mod model;
pub mod nn;
pub mod op;
pub mod random_graphs;
pub mod shape;
pub mod tensor;
pub mod text;

pub use dtype::DType;
pub use error::{Error, Result, Site};
pub use expr::{Builder, Expr, broadcast_shapes};
pub use graph::{Graph, Node, NodeId, Provenance};
pub use interp::{Bindings, eval, eval_nodes};
pub use model::{Model, OutputKind, ParamLayout, ParamSlot};
pub use op::{Binary, Compare, F64Bits, Op, Reduce, Unary, Window};
pub use shape::{Dim, Shape, TensorType};
pub use tensor::{Scalar, Tensor};
