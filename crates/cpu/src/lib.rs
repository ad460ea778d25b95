//! natgrad's CPU backend. Reads optimized graphs (and their fusion groups) and compiles
//! them: each fusion group becomes one Cranelift function with one fixed `extern "C"` ABI,
//! matmuls call matrixmultiply with transposes as strides, the remaining ops run as Rust
//! loops. Must not depend on a GPU runtime.
//!
//! | module | concern |
//! |---|---|
//! | [`lower`] | graph + fusion groups → kernels and host steps, in phases, scheduled |
//! | [`kernel`] | `KernelSpec` and its Cranelift lowering (f32x4 / f64x2 with scalar tails) |
//! | [`host`] | GEMM, softmax, transpose, broadcast, reductions |
//! | [`program`] | `Program` (compile), `Session` (memory plan per batch, validated inputs, run) |

pub mod host;
pub mod kernel;
pub mod lower;
pub mod program;

pub use host::Element;
pub use program::{CompileOptions, CompileTimes, Program, Session};

use natgrad_ir::DType;

/// Errors of the CPU backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The graph or the simplifier failed.
    #[error(transparent)]
    Ir(#[from] natgrad_ir::Error),
    /// Cranelift rejected a kernel (a bug; please report with the IR).
    #[error("codegen: {0}")]
    Codegen(String),
    /// The graph cannot be lowered.
    #[error("lowering: {0}")]
    Lowering(String),
    /// A node of another dtype than the program's.
    #[error("{node} has dtype {got}, but the program computes in {expected}")]
    DType {
        /// The node.
        node: String,
        /// The program's dtype.
        expected: DType,
        /// The node's.
        got: DType,
    },
    /// A name that is no input or param of the program.
    #[error("the program has no input or param named '{name}'")]
    UnknownInput {
        /// The name given.
        name: String,
    },
    /// A buffer of the wrong length.
    #[error("input '{name}' expects {ty} = {expected} values at batch size {batch}, got {got}")]
    Length {
        /// Input name.
        name: String,
        /// Its type.
        ty: String,
        /// The session's batch size.
        batch: usize,
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// An input needed by the phase being run was never set.
    #[error("input '{name}' was not set before running")]
    Unbound {
        /// Input name.
        name: String,
    },
}
