//! natgrad: natural-gradient training of deep networks with a symbolic graph compiler.
//!
//! This facade re-exports the IR and DSL ([`ir`]), the model helpers ([`nn`]), autodiff,
//! the simplifier, the backend-neutral lowering ([`lower`]) and the optimizers, and
//! compiles model functions for a [`Device`] ([`compile`]). The `natgrad` binary (see
//! `main.rs`) is the command-line front end.

pub mod bench;
pub mod checkpointed;
pub mod compile;
pub mod curves_bench;
pub mod device_problem;
pub mod distributed;
pub mod jax_compare;
pub mod models;
pub mod order_bench;
pub mod plot;
pub mod spec;
pub mod training;
pub mod unlabeled_bench;

pub use compile::{
    CompileOptions, Device, FisherProduct, Gradient, Loss, MetricKind, compile_cache, compile_fisher_product,
    compile_gradient, compile_graph, compile_loss, compile_metric_product, compile_outputs,
    compile_squared_gradients,
};

pub use natgrad_autodiff as autodiff;
pub use natgrad_data as data;
pub use natgrad_data::npy;
pub use natgrad_dist as dist;
pub use natgrad_ir as ir;
pub use natgrad_ir::Scalar;
pub use natgrad_ir::nn;
pub use natgrad_lower as lower;
pub use natgrad_optim as optim;
pub use natgrad_ptx as ptx;
pub use natgrad_rewrite as rewrite;

/// The names most programs need.
pub mod prelude {
    pub use natgrad_autodiff::{
        empirical_fisher_product, fisher_product, gauss_newton_product, grad, gradient, lop, rop,
    };
    pub use natgrad_ir::nn::{self, Activation};
    pub use natgrad_ir::{Bindings, Builder, DType, Expr, Graph, Model, OutputKind, Shape, Tensor, eval};
}
