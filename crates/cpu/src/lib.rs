//! natgrad's CPU backend: compiles a shared [`natgrad_lower::Plan`] for the host. Each
//! fused kernel becomes one Cranelift function with one fixed `extern "C"` ABI, matmuls call
//! faer or matrixmultiply with transposes as strides (one block per worker), the remaining
//! host steps run as Rust loops.
//! Scheduling, memory plans and input checks come from `natgrad-lower`; this crate owns
//! only code generation, host kernels and its threads. Must not depend on a GPU runtime.
//!
//! | module | concern |
//! |---|---|
//! | [`kernel`] | the Cranelift lowering of a `KernelSpec` (f32x4 / f64x2 with scalar tails; wide rows call [`slices`] in stages) |
//! | [`math`] | the shared exp / log / log1p / tanh / pow routines as inline SIMD instructions |
//! | [`host`] | GEMM, softmax, transpose, broadcast, reductions |
//! | [`patches`] | im2col / col2im for convolutions, split over images |
//! | [`pool`] | the persistent worker pools (one per thread count) for kernels and GEMM |
//! | [`slices`] | the math routines over whole rows, rustc-compiled for AVX-512 / AVX2 / baseline |
//! | [`program`] | `Cpu` (the backend), `Program` (JIT'd plan), `Session` (buffers, run) |

pub mod host;
pub mod kernel;
pub mod math;
pub mod patches;
pub mod pool;
pub mod program;
pub mod slices;

pub use program::{Cpu, Program, Session};
