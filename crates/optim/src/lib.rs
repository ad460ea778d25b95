//! natgrad's optimizer layer: linear solvers that invert the metric — CG with Martens'
//! stopping rule and MinRes-QLP — and the optimizers built on them (NGD, NCG, Hessian-free,
//! KSD, SGD), written against [`VectorOps`] and a matrix-free operator,
//! so the same code drives host vectors today and device vectors later. Solver scalars are
//! f64 even when vectors are f32. Must not depend on a code generator or GPU runtime.

#![warn(missing_docs)]

pub mod cg;
pub mod checkpoint;
pub mod damping;
pub mod ksd;
pub mod methods;
pub mod minres_qlp;
pub mod problem;
pub mod train;
pub mod vector;

pub use cg::{CgFlag, CgOptions, CgResult, cg};
pub use checkpoint::Checkpoint;
pub use damping::{Damping, LM_CEILING, LM_FLOOR, reduction_ratio};
pub use ksd::{Ksd, bfgs};
pub use methods::{Conjugacy, HessianFree, Ncg, Ngd, SecondOrder, Sgd, Solver, StepSize};
pub use minres_qlp::{MinresFlag, MinresQlpOptions, MinresResult, minres_qlp, minres_qlp_preconditioned};
pub use problem::Problem;
pub use train::{Optimizer, OptimizerState, Record, StepInfo, StopWhen, TrainError, train};
pub use vector::{HostOf, Transfer, VectorOps};

/// An error from the operator (e.g. a compiled metric product).
pub type OpError = Box<dyn std::error::Error + Send + Sync>;

/// A matrix-free symmetric operator: `out ← A · x`.
pub type Operator<'a, V> = dyn FnMut(&V, &mut V) -> Result<(), OpError> + 'a;
