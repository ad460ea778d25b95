//! The optimizers' device vectors on the simulator: [`SimRuntime`] gives
//! `natgrad_ptx::device_vectors` (the same operations the CUDA runtime runs) simulated
//! allocations, copies and launches of the vector module.

use std::sync::{Arc, Mutex};

use natgrad_ir::Scalar;
use natgrad_lower::Error;
use natgrad_ptx::device_vectors::{DeviceVector, DeviceVectors, Runtime};
use natgrad_ptx::{Arch, vectors};

use crate::backend::failed;
use crate::exec::Module;
use crate::memory::Memory;

/// `natgrad_optim::VectorOps` on the simulator for element type `T`.
pub type SimVectors<T> = DeviceVectors<T, SimRuntime>;

/// A vector of `T` in simulated device memory.
pub type SimVector<T> = DeviceVector<T, SimBuffer>;

/// The vector module, parsed, and the memory its vectors live in.
pub struct SimRuntime {
    module: Module,
    memory: Arc<Mutex<Memory>>,
}

/// An allocation in a [`SimRuntime`]'s memory, freed when dropped.
pub struct SimBuffer {
    memory: Arc<Mutex<Memory>>,
    address: u64,
}

impl Drop for SimBuffer {
    fn drop(&mut self) {
        self.memory.lock().unwrap_or_else(|p| p.into_inner()).free(self.address);
    }
}

impl SimBuffer {
    /// Bytes `range` of the buffer.
    pub fn read(&self, range: std::ops::Range<usize>) -> Result<Vec<u8>, Error> {
        let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = memory.read(self.address + range.start as u64, range.len(), 1).map_err(failed)?;
        Ok(bytes.to_vec())
    }

    /// Writes `bytes` at byte `offset` of the buffer.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> Result<(), Error> {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory.write(self.address + offset as u64, bytes.len(), 1).map_err(failed)?.copy_from_slice(bytes);
        Ok(())
    }
}

/// The optimizers' vector operations on the simulator for element type `T`.
pub fn sim_vectors<T: Scalar>() -> Result<SimVectors<T>, Error> {
    let module = Module::parse(&vectors::module(T::DTYPE, Arch::Sm90)).map_err(|e| failed(e.to_string()))?;
    DeviceVectors::new(SimRuntime { module, memory: Arc::default() })
}

impl Runtime for SimRuntime {
    type Buffer = SimBuffer;

    fn name(&self) -> &'static str {
        "ptx-sim"
    }

    fn alloc_zeroed(&self, bytes: usize) -> Result<SimBuffer, Error> {
        let address = self.memory.lock().unwrap_or_else(|p| p.into_inner()).allocate(bytes.max(1));
        Ok(SimBuffer { memory: Arc::clone(&self.memory), address })
    }

    fn address(&self, buffer: &SimBuffer) -> u64 {
        buffer.address
    }

    fn upload(&self, bytes: &[u8], to: &mut SimBuffer) -> Result<(), Error> {
        to.write(0, bytes)
    }

    fn download(&self, from: &SimBuffer, bytes: &mut [u8]) -> Result<(), Error> {
        bytes.copy_from_slice(&from.read(0..bytes.len())?);
        Ok(())
    }

    fn copy(&self, from: &SimBuffer, to: &mut SimBuffer, bytes: usize) -> Result<(), Error> {
        to.write(0, &from.read(0..bytes)?)
    }

    unsafe fn launch(&self, entry: &str, blocks: u32, threads: u32, args: &[u64]) -> Result<(), Error> {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        self.module.launch(&mut memory, entry, blocks, threads, args).map_err(failed)
    }
}
