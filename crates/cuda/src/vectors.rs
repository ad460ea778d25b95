//! Device vectors for the optimizers on a GPU: [`CudaRuntime`] gives
//! `natgrad_ptx::device_vectors` (which holds the operations' logic, shared with the PTX
//! simulator) CUDA allocations, copies and launches of the vector module, so a whole CG or
//! MinRes-QLP solve stays on the device and only scalars (dots, norms) come back.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr};
use cudarc::nvrtc::Ptx;
use natgrad_ir::Scalar;
use natgrad_lower::Error;
use natgrad_ptx::device_vectors::{DeviceVectors, Runtime};

use crate::device::{open, runtime};

/// `natgrad_optim::VectorOps` on a GPU for element type `T` (a cheap handle).
pub type CudaVectors<T> = DeviceVectors<T, CudaRuntime>;

/// A vector of `T` in GPU memory.
pub type DeviceVector<T> = natgrad_ptx::device_vectors::DeviceVector<T, CudaSlice<u8>>;

/// The vector module loaded on one GPU, on the default stream (which the compiled programs
/// use too, so products and vector operations stay in order).
pub struct CudaRuntime {
    stream: Arc<CudaStream>,
    functions: HashMap<&'static str, CudaFunction>,
}

/// The optimizers' vector operations on GPU `ordinal` for element type `T`.
pub fn cuda_vectors<T: Scalar>(ordinal: usize) -> Result<CudaVectors<T>, Error> {
    let (context, arch) = open(ordinal)?;
    // As the programs do: one stream, so cudarc's event tracking is not needed.
    // SAFETY: called before any allocation or launch on this context object.
    unsafe { context.disable_event_tracking() };
    let stream = context.default_stream();
    let module = context
        .load_module(Ptx::from_src(natgrad_ptx::vectors::module(T::DTYPE, arch)))
        .map_err(|e| runtime("loading the vector kernels", e))?;
    let mut functions = HashMap::new();
    for name in natgrad_ptx::vectors::ENTRIES {
        let function =
            module.load_function(name).map_err(|e| runtime(&format!("vector kernel {name}"), e))?;
        functions.insert(name, function);
    }
    DeviceVectors::new(CudaRuntime { stream, functions })
}

impl Runtime for CudaRuntime {
    type Buffer = CudaSlice<u8>;

    fn name(&self) -> &'static str {
        "cuda"
    }

    fn alloc_zeroed(&self, bytes: usize) -> Result<CudaSlice<u8>, Error> {
        self.stream.alloc_zeros::<u8>(bytes.max(1)).map_err(|e| runtime("allocating a device vector", e))
    }

    fn address(&self, buffer: &CudaSlice<u8>) -> u64 {
        buffer.device_ptr(&self.stream).0
    }

    fn upload(&self, bytes: &[u8], to: &mut CudaSlice<u8>) -> Result<(), Error> {
        let mut view = to.slice_mut(..bytes.len());
        self.stream.memcpy_htod(bytes, &mut view).map_err(|e| runtime("copy to the device", e))
    }

    fn download(&self, from: &CudaSlice<u8>, bytes: &mut [u8]) -> Result<(), Error> {
        self.stream
            .memcpy_dtoh(&from.slice(..bytes.len()), bytes)
            .map_err(|e| runtime("copy from the device", e))?;
        self.stream.synchronize().map_err(|e| runtime("synchronize", e))
    }

    fn copy(&self, from: &CudaSlice<u8>, to: &mut CudaSlice<u8>, bytes: usize) -> Result<(), Error> {
        let mut target = to.slice_mut(..bytes);
        self.stream
            .memcpy_dtod(&from.slice(..bytes), &mut target)
            .map_err(|e| runtime("copy on the device", e))
    }

    unsafe fn launch(&self, entry: &str, blocks: u32, threads: u32, args: &[u64]) -> Result<(), Error> {
        let function =
            self.functions.get(entry).ok_or_else(|| runtime("vector kernel", format!("no entry {entry}")))?;
        // SAFETY: as the caller promised.
        unsafe { crate::device::launch(&self.stream, function, blocks, threads, args) }
    }
}
