//! The contract between the shared driver and a backend.
//!
//! A backend turns a [`Plan`] into an [`Executable`] (its generated code) and makes a
//! [`Session`] per batch size (buffers sized by the [`MemoryPlan`](crate::MemoryPlan),
//! inputs checked by [`BoundInputs`](crate::BoundInputs)). Everything above the backends
//! holds `dyn Executable` / `dyn Session` and chooses a backend by [`Device`] only.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use natgrad_ir::Scalar;

use crate::Error;
use crate::plan::Plan;
use crate::profile::Profile;

/// Where compiled code runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The host CPU (Cranelift kernels, host GEMM).
    #[default]
    Cpu,
    /// An NVIDIA GPU by ordinal (needs a build with the `cuda` feature).
    Cuda(usize),
    /// The GPU backend's PTX, launch steps and device vectors run by the PTX simulator on
    /// the host (`natgrad-ptx-sim`): the GPU code path checked without a GPU. Slow (one
    /// simulated thread at a time), for tests and debugging, not for training.
    Sim,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
            Device::Sim => f.write_str("sim"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    /// `cpu`, `cuda` (ordinal 0), `cuda:N` or `sim`.
    fn from_str(s: &str) -> Result<Device, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "sim" => Ok(Device::Sim),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device '{s}': expected cpu, cuda, cuda:N or sim")),
        }
    }
}

/// Options for compiling a graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CompileOptions {
    /// Where the code runs (default: the CPU).
    pub device: Device,
    /// Run the simplifier before lowering (default true).
    pub simplify: bool,
    /// Worker threads of the CPU backend, for fused kernels and GEMM (default: every
    /// logical core).
    pub threads: usize,
    /// CPU only: exp, log, log1p, tanh and pow by calls to the platform libm, one per SIMD
    /// lane — bit for bit the reference interpreter's results — instead of the inline
    /// routines of [`crate::math`] that the GPU backend shares (≤ 2 ulp from libm except
    /// pow; see docs/benchmarks.md). Default false: the inline routines are several times
    /// faster (`natgrad bench exp`).
    pub libm_math: bool,
    /// GPU only: let cuBLAS round f32 GEMM operands to TF32 on the tensor cores (about 10
    /// mantissa bits; JAX's and PyTorch's default on Ampere and Hopper). Default false:
    /// exact f32 products.
    pub tf32: bool,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        CompileOptions { device: Device::Cpu, simplify: true, threads, libm_math: false, tf32: false }
    }
}

/// A code generator and runtime for one kind of device.
pub trait Backend<T: Scalar>: Send + Sync {
    /// A short name for errors and reports (`cpu`, `cuda`).
    fn name(&self) -> &'static str;

    /// Generates code for every unit of `plan`.
    fn compile(&self, plan: Arc<Plan>, options: &CompileOptions) -> Result<Arc<dyn Executable<T>>, Error>;
}

/// A compiled plan. Shared between threads: every session owns its buffers, the generated
/// code is read-only once compiled.
pub trait Executable<T: Scalar>: Send + Sync {
    /// The plan this was compiled from.
    fn plan(&self) -> &Plan;

    /// Time spent generating code.
    fn codegen_time(&self) -> Duration;

    /// Buffers for batch size `batch` (set-up units run at once).
    fn session(self: Arc<Self>, batch: usize) -> Result<Box<dyn Session<T>>, Error>;
}

/// One batch size's buffers of an [`Executable`]: set inputs, run phases, read outputs.
pub trait Session<T: Scalar>: Send {
    /// The batch size this session was planned for.
    fn batch(&self) -> usize;

    /// Total bytes of the planned buffers.
    fn peak_bytes(&self) -> usize;

    /// Copies `data` into the input or param `name`, after checking its length.
    fn set(&mut self, name: &str, data: &[T]) -> Result<(), Error>;

    /// Runs phase `phase`; every input of phases up to it must have been set.
    fn run(&mut self, phase: usize) -> Result<(), Error>;

    /// Copies output `index` (after the phase computing it has run) into `out`, whose
    /// length must be the output's.
    fn read(&self, index: usize, out: &mut [T]) -> Result<(), Error>;

    /// Copies elements `offset..offset + len` of `vector` — a vector in this backend's device
    /// memory (for the CUDA backend, its `DeviceVector<T>` on the same GPU) —
    /// into input `name`, after checking `len` as [`Session::set`] does. A backend without
    /// device vectors, a vector of another type or a range outside it is an error.
    fn set_from_device(
        &mut self,
        name: &str,
        vector: &dyn std::any::Any,
        offset: usize,
        len: usize,
    ) -> Result<(), Error> {
        let _ = (name, vector, offset, len);
        Err(Error::Backend { backend: "this", message: "no device vectors: use Session::set".into() })
    }

    /// Copies output `index` into elements `offset..offset + len` of `vector` (a device
    /// vector as for [`Session::set_from_device`]); `len` must be the output's length.
    fn read_to_device(
        &self,
        index: usize,
        vector: &mut dyn std::any::Any,
        offset: usize,
        len: usize,
    ) -> Result<(), Error> {
        let _ = (index, vector, offset, len);
        Err(Error::Backend { backend: "this", message: "no device vectors: use Session::read".into() })
    }

    /// Starts (from zero) or stops timing every unit that runs.
    fn set_profiling(&mut self, on: bool);

    /// Calls and time per unit since profiling started.
    fn profile(&self) -> Option<&Profile>;
}
