//! natgrad's PTX emitter: the shared kernel plan (`natgrad-lower`) as PTX text for NVIDIA
//! GPUs. Plain text, so it builds and is tested everywhere; loading and running the PTX is
//! the CUDA runtime's job.
//!
//! | module | concern |
//! |---|---|
//! | [`math`] | exp, log, log1p, tanh, pow as straight-line routines: PTX `.func`s, evaluated on the host for accuracy tests |

#![warn(missing_docs)]

pub mod math;
