//! Communicators for data-parallel training: every process holds a shard of each batch,
//! and one sum over processes of a parameter-sized vector joins the shards' gradients and
//! metric products. [`Solo`] is the single process (the default, no cost); `Mpi` (feature
//! `mpi`) runs over the system's MPI library, `nccl::Nccl` (feature `nccl`) over NCCL.
//!
//! Sums leave identical bits on every process (the optimizers' line searches and COBYLA
//! then see identical numbers and every process takes identical steps).

use std::any::Any;
use std::fmt::Debug;
use std::ops::Range;

use natgrad_ir::{DType, Scalar};

#[cfg(feature = "mpi")]
mod mpi_world;
#[cfg(feature = "mpi")]
pub use mpi_world::Mpi;
#[cfg(feature = "nccl")]
pub mod nccl;

/// Communication failures.
#[derive(Debug, thiserror::Error)]
pub enum CommError {
    /// A batch with fewer examples than processes: some process would get none.
    #[error(
        "a {what} of {len} examples cannot be split over {processes} processes (each needs at least one)"
    )]
    TooSmall {
        /// Which batch.
        what: String,
        /// Its examples.
        len: usize,
        /// Processes.
        processes: usize,
    },
    /// The communication library failed or is unavailable.
    #[error("{0}")]
    Library(String),
}

/// What the training problems need from a group of processes.
pub trait Communicator: Debug {
    /// This process's index, `0..size()`.
    fn rank(&self) -> usize;
    /// Processes in the group.
    fn size(&self) -> usize;
    /// Replaces `values` on every process by their sum over processes (identical bits everywhere).
    fn sum_f32(&self, values: &mut [f32]) -> Result<(), CommError>;
    /// Replaces `values` on every process by their sum over processes (identical bits everywhere).
    fn sum_f64(&self, values: &mut [f64]) -> Result<(), CommError>;
    /// Replaces `values` on every process by process 0's.
    fn broadcast_f64(&self, values: &mut [f64]) -> Result<(), CommError>;
    /// Returns once every process has called it.
    fn barrier(&self);
}

/// Sums `values` over the processes of `communicator`, for either element type.
#[expect(clippy::ptr_arg, reason = "a Vec, not a slice, is what downcasts to Vec<f32> / Vec<f64>")]
pub fn sum<T: Scalar>(communicator: &dyn Communicator, values: &mut Vec<T>) -> Result<(), CommError> {
    let any = values as &mut dyn Any;
    match T::DTYPE {
        DType::F32 => communicator.sum_f32(any.downcast_mut::<Vec<f32>>().expect("T is f32")),
        DType::F64 => communicator.sum_f64(any.downcast_mut::<Vec<f64>>().expect("T is f64")),
    }
}

/// Weights this process's `values` by `share` (its fraction of the batch) and sums them over
/// processes: the batch mean from the shards' means, exact for uneven shards. One process:
/// `values` as they are.
pub fn weighted_sum<T: Scalar>(
    communicator: &dyn Communicator,
    share: f64,
    values: &mut Vec<T>,
) -> Result<(), CommError> {
    if communicator.size() == 1 {
        return Ok(());
    }
    let weight = T::from_f64(share);
    values.iter_mut().for_each(|v| *v = *v * weight);
    sum(communicator, values)
}

/// Process 0's value of `flag` on every process (a decision all must take together, such as
/// stopping when a time budget runs out).
pub fn agree(communicator: &dyn Communicator, flag: bool) -> Result<bool, CommError> {
    if communicator.size() == 1 {
        return Ok(flag);
    }
    let mut value = [f64::from(u8::from(flag))];
    communicator.broadcast_f64(&mut value)?;
    Ok(value[0] != 0.0)
}

/// The rows `0..len` of a batch this process holds: contiguous shards in rank order, the
/// first `len % size` one row longer, so that the shards together are the whole batch.
pub fn shard(communicator: &dyn Communicator, what: &str, len: usize) -> Result<Range<usize>, CommError> {
    let (rank, size) = (communicator.rank(), communicator.size());
    if len < size {
        return Err(CommError::TooSmall { what: what.to_string(), len, processes: size });
    }
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    Ok(start..start + base + usize::from(rank < extra))
}

/// One process: sums and broadcasts leave values as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Communicator for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _values: &mut [f32]) -> Result<(), CommError> {
        Ok(())
    }
    fn sum_f64(&self, _values: &mut [f64]) -> Result<(), CommError> {
        Ok(())
    }
    fn broadcast_f64(&self, _values: &mut [f64]) -> Result<(), CommError> {
        Ok(())
    }
    fn barrier(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member of a group of `size` processes that communicates with no one (for `shard`).
    #[derive(Debug)]
    struct Member {
        rank: usize,
        size: usize,
    }

    impl Communicator for Member {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.size
        }
        fn sum_f32(&self, _: &mut [f32]) -> Result<(), CommError> {
            unreachable!("shard does not communicate")
        }
        fn sum_f64(&self, _: &mut [f64]) -> Result<(), CommError> {
            unreachable!("shard does not communicate")
        }
        fn broadcast_f64(&self, _: &mut [f64]) -> Result<(), CommError> {
            unreachable!("shard does not communicate")
        }
        fn barrier(&self) {}
    }

    #[test]
    fn shards_cover_the_batch_in_order_and_differ_by_at_most_one_row() {
        for size in 1..7 {
            for len in size..40 {
                let shards: Vec<Range<usize>> =
                    (0..size).map(|rank| shard(&Member { rank, size }, "batch", len).unwrap()).collect();
                assert_eq!(shards[0].start, 0);
                assert_eq!(shards[size - 1].end, len);
                for pair in shards.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                    assert!(pair[0].len() == pair[1].len() || pair[0].len() == pair[1].len() + 1);
                }
            }
        }
    }

    #[test]
    fn a_batch_smaller_than_the_group_is_an_error_naming_it() {
        let error = shard(&Member { rank: 0, size: 4 }, "metric batch", 3).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a metric batch of 3 examples cannot be split over 4 processes (each needs at least one)"
        );
    }

    #[test]
    fn solo_sums_and_agreement_leave_values_alone() {
        let mut values = vec![1.5f32, -2.0];
        sum(&Solo, &mut values).unwrap();
        assert_eq!(values, [1.5, -2.0]);
        let mut values = vec![3.25f64];
        sum(&Solo, &mut values).unwrap();
        assert_eq!(values, [3.25]);
        assert!(agree(&Solo, true).unwrap());
        assert!(!agree(&Solo, false).unwrap());
    }
}
