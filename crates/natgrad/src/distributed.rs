//! `--distributed`: the group of processes a command runs in (MPI under `mpirun` when built
//! with the `mpi` feature; this process alone otherwise), and batches split over it.

use std::rc::Rc;
use std::time::Instant;

use natgrad_dist::{Communicator, Solo};

use crate::compile::Error;

/// The processes this command runs with: MPI's world when `distributed`, this process alone
/// otherwise. Asking for MPI in a build without the `mpi` feature is an error saying how to
/// build it.
pub fn world(distributed: bool) -> Result<Rc<dyn Communicator>, Error> {
    if !distributed {
        return Ok(Rc::new(Solo));
    }
    #[cfg(feature = "mpi")]
    return Ok(Rc::new(natgrad_dist::Mpi::init()?));
    #[cfg(not(feature = "mpi"))]
    Err(Error::Distributed(natgrad_dist::CommError::Library(
        "--distributed needs natgrad built with MPI: `cargo build --release -p natgrad --features mpi` \
         (Debian: apt-get install libopenmpi-dev openmpi-bin), then `mpirun -np N natgrad … --distributed`"
            .into(),
    )))
}

/// CPU threads for each process: the machine's cores shared by the processes `mpirun`
/// started on this node (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`; all cores without it).
pub fn threads_per_process() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let local: usize =
        std::env::var("OMPI_COMM_WORLD_LOCAL_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    (cores / local.max(1)).max(1)
}

/// This process's rows of the row-major batch `rows` (`width` values per row), and their
/// fraction of the batch.
pub fn shard_batch<'a, T>(
    communicator: &dyn Communicator,
    what: &str,
    rows: &'a [T],
    width: usize,
) -> Result<(&'a [T], f64), Error> {
    if communicator.size() == 1 {
        // The compiled function checks the batch itself, with its own messages.
        return Ok((rows, 1.0));
    }
    if width == 0 || !rows.len().is_multiple_of(width) {
        return Err(Error::Length {
            what: what.to_string(),
            expected: format!("a multiple of {width}"),
            got: rows.len(),
        });
    }
    let len = rows.len() / width;
    let range = natgrad_dist::shard(communicator, what, len)?;
    let share = range.len() as f64 / len as f64;
    Ok((&rows[range.start * width..range.end * width], share))
}

/// Median seconds of one sum over `world` of `len` f32 values (after a warm-up), for each
/// length: what one gradient or metric product of a model with `len` parameters adds to its
/// time when data-parallel. Every process must call it with the same arguments.
pub fn time_sums(world: &dyn Communicator, lengths: &[usize], runs: usize) -> Result<Vec<f64>, Error> {
    let mut medians = Vec::with_capacity(lengths.len());
    for &len in lengths {
        let mut values = vec![1.0f32; len];
        world.sum_f32(&mut values)?;
        let mut seconds: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                world.barrier();
                let start = Instant::now();
                world.sum_f32(&mut values).map(|()| start.elapsed().as_secs_f64())
            })
            .collect::<Result<_, _>>()?;
        seconds.sort_by(f64::total_cmp);
        medians.push(seconds[seconds.len() / 2]);
    }
    Ok(medians)
}
