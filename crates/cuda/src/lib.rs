//! natgrad's CUDA backend: a shared [`natgrad_lower::Plan`] run on an NVIDIA GPU. Kernels
//! are the PTX of `natgrad-ptx` (loaded by the driver's JIT once per program), GEMMs go to
//! cuBLAS with transposes as operation flags, buffers are device allocations sized by the
//! shared memory plan. Everything CUDA is loaded at run time (`cudarc`'s dynamic loading):
//! the crate builds on machines without CUDA, and compiling for a GPU there is a typed
//! error, never a panic.
//!
//! | module | concern |
//! |---|---|
//! | [`device`] | finding the driver and the GPU; errors |
//! | [`program`] | `Cuda` (the backend), `Program` (loaded module, cuBLAS handle), `Session` (device buffers, launches) |
//! | [`vectors`] | `CudaRuntime`: allocations, copies and launches for `natgrad_ptx::device_vectors` (`CudaVectors`) |

pub mod device;
pub mod program;
pub mod vectors;

pub use program::{Cuda, Program, Session};
pub use vectors::{CudaRuntime, CudaVectors, DeviceVector, cuda_vectors};
