//! A PTX interpreter for the subset `natgrad-ptx` emits, and [`Simulator`], a backend that
//! runs a plan's PTX module and launch steps on it: the GPU backend's kernels, launch
//! arguments and cuBLAS arguments checked on any machine, without a GPU. Results are the
//! GPU's arithmetic bit for bit (IEEE `.rn` operations, the same math routines); every
//! memory access is bounds- and alignment-checked, as `compute-sanitizer memcheck` would.
//! It is slow (one thread at a time): a conformance tool for tests, not a device.
//!
//! | module | concern |
//! |---|---|
//! | [`parse`] | PTX text to decoded functions (strict: unknown instructions are errors) |
//! | [`exec`] | running an entry over a grid (barriers, calls, state spaces) |
//! | [`memory`] | simulated device memory with checked accesses |
//! | [`backend`] | [`Simulator`]: `natgrad_lower::Backend` over the CUDA runtime's launch steps |
//! | [`vectors`] | [`SimVectors`]: the optimizers' device vectors (`natgrad_ptx::device_vectors`) on simulated memory |

#![warn(missing_docs)]

pub mod backend;
pub mod exec;
pub mod memory;
pub mod parse;
pub mod vectors;

pub use backend::Simulator;
pub use vectors::{SimVector, SimVectors, sim_vectors};
