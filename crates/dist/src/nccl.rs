//! [`Nccl`]: natgrad's [`Communicator`] over NCCL, one process per GPU. NCCL's all-reduce
//! computes each element once and distributes it (ring: reduce-scatter then all-gather;
//! tree: reduce then broadcast), so every rank holds the same bits, as the optimizers need.
//!
//! The training problems keep their vectors on the host for now, so each sum copies to the
//! device and back; with device-resident vectors the copies go away.

use std::ffi::c_char;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream, DeviceRepr, ValidAsZeroBits};
use cudarc::nccl::{Comm, Id, NcclType, ReduceOp};

use crate::{CommError, Communicator};

/// A communicator id: made by rank 0 ([`Nccl::unique_id`]) and handed to every rank (e.g.
/// broadcast over MPI) before [`Nccl::rank`].
pub type UniqueId = [c_char; 128];

/// One rank of an NCCL communicator, on one GPU.
pub struct Nccl {
    comm: Comm,
    stream: Arc<CudaStream>,
}

impl std::fmt::Debug for Nccl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nccl {{ rank: {}, size: {} }}", self.comm.rank(), self.comm.world_size())
    }
}

fn library(what: &str, error: impl std::fmt::Debug) -> CommError {
    CommError::Library(format!("NCCL {what}: {error:?}"))
}

/// Whether the NCCL library can be loaded on this machine.
pub fn nccl_present() -> bool {
    // SAFETY: only tries to open the library; calls nothing in it.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

/// The context of GPU `ordinal`, checked first (cudarc's `CudaContext::new` panics without a
/// driver).
fn open(ordinal: usize) -> Result<Arc<CudaContext>, CommError> {
    // SAFETY: only tries to open the driver library; calls nothing in it.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(CommError::Library("no CUDA driver (libcuda) on this machine".into()));
    }
    let count = CudaContext::device_count().map_err(|e| library("device count", e))?;
    if ordinal >= count.max(0) as usize {
        return Err(CommError::Library(format!("cuda:{ordinal}: this machine has {count} CUDA device(s)")));
    }
    CudaContext::new(ordinal).map_err(|e| library("context", e))
}

fn check_library() -> Result<(), CommError> {
    match nccl_present() {
        true => Ok(()),
        false => Err(CommError::Library("no NCCL library (libnccl) on this machine".into())),
    }
}

impl Nccl {
    /// A new communicator id (on rank 0).
    pub fn unique_id() -> Result<UniqueId, CommError> {
        check_library()?;
        Ok(*Id::new().map_err(|e| library("id", e))?.internal())
    }

    /// Rank `rank` of `size` on GPU `ordinal`, joining the communicator `id`.
    pub fn rank(ordinal: usize, rank: usize, size: usize, id: UniqueId) -> Result<Nccl, CommError> {
        let context = open(ordinal)?;
        check_library()?;
        let stream = context.default_stream();
        let comm = Comm::from_rank(Arc::clone(&stream), rank, size, Id::uninit(id))
            .map_err(|e| library("init", e))?;
        Ok(Nccl { comm, stream })
    }

    /// A communicator of one process on GPU `ordinal`.
    pub fn single(ordinal: usize) -> Result<Nccl, CommError> {
        Nccl::rank(ordinal, 0, 1, Nccl::unique_id()?)
    }

    fn reduce<T: NcclType + DeviceRepr + ValidAsZeroBits>(
        &self,
        values: &mut [T],
        op: impl FnOnce(&Comm, &mut cudarc::driver::CudaSlice<T>) -> Result<(), CommError>,
    ) -> Result<(), CommError> {
        if values.is_empty() {
            return Ok(());
        }
        let mut buffer = self.stream.clone_htod(&*values).map_err(|e| library("copy to the device", e))?;
        op(&self.comm, &mut buffer)?;
        self.stream.memcpy_dtoh(&buffer, values).map_err(|e| library("copy from the device", e))?;
        self.stream.synchronize().map_err(|e| library("synchronize", e))
    }

    fn sum<T: NcclType + DeviceRepr + ValidAsZeroBits>(&self, values: &mut [T]) -> Result<(), CommError> {
        self.reduce(values, |comm, buffer| {
            comm.all_reduce_in_place(buffer, &ReduceOp::Sum).map(drop).map_err(|e| library("all-reduce", e))
        })
    }
}

impl Communicator for Nccl {
    fn rank(&self) -> usize {
        self.comm.rank()
    }
    fn size(&self) -> usize {
        self.comm.world_size()
    }
    fn sum_f32(&self, values: &mut [f32]) -> Result<(), CommError> {
        self.sum(values)
    }
    fn sum_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        self.sum(values)
    }
    fn broadcast_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        self.reduce(values, |comm, buffer| {
            comm.broadcast_in_place(buffer, 0).map(drop).map_err(|e| library("broadcast", e))
        })
    }
    fn barrier(&self) {
        // A one-value sum returns on a rank only once every rank has contributed.
        let _ = self.sum(&mut [0.0f32]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_or_nccl_a_communicator_is_an_error_not_a_panic() {
        // SAFETY: only tries to open the driver library.
        if unsafe { cudarc::driver::sys::is_culib_present() } && nccl_present() {
            println!("skipped: this machine has CUDA and NCCL (the GPU check runs the NCCL path)");
            return;
        }
        let error = Nccl::single(0).unwrap_err().to_string();
        assert!(error.contains("CUDA driver") || error.contains("NCCL"), "{error}");
    }
}
