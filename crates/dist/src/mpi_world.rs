//! [`Mpi`]: the MPI world through rsmpi. A sum is a reduction to process 0 followed by a
//! broadcast of its result, not `MPI_Allreduce`: MPI does not promise identical bits on
//! every process for a floating-point all-reduce, and the optimizers need them.

use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};

use crate::{CommError, Communicator};

/// The processes started by `mpirun` (MPI_COMM_WORLD). Finalizes MPI when dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    // Dropped after `world`: finalizes MPI.
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi {{ rank: {}, size: {} }}", self.rank(), self.size())
    }
}

impl Mpi {
    /// Initializes MPI (once per process). Run without `mpirun`, the world is this process alone.
    pub fn init() -> Result<Mpi, CommError> {
        let universe = mpi::initialize()
            .ok_or_else(|| CommError::Library("MPI is already initialized in this process".into()))?;
        Ok(Mpi { world: universe.world(), _universe: universe })
    }

    fn sum<T: Equivalence + Copy + Default>(&self, values: &mut [T]) {
        if self.size() == 1 {
            return;
        }
        let root = self.world.process_at_rank(0);
        if self.world.rank() == 0 {
            let mut total = vec![T::default(); values.len()];
            root.reduce_into_root(&*values, &mut total[..], SystemOperation::sum());
            values.copy_from_slice(&total);
        } else {
            root.reduce_into(&*values, SystemOperation::sum());
        }
        root.broadcast_into(values);
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn sum_f32(&self, values: &mut [f32]) -> Result<(), CommError> {
        self.sum(values);
        Ok(())
    }
    fn sum_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        self.sum(values);
        Ok(())
    }
    fn broadcast_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        self.world.process_at_rank(0).broadcast_into(values);
        Ok(())
    }
    fn barrier(&self) {
        self.world.barrier();
    }
}
