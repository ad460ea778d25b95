//! `--distributed`: the group of processes a command runs in (MPI under `mpirun` when built
//! with the `mpi` feature; this process alone otherwise), and batches split over it.

use std::rc::Rc;
use std::time::Instant;

use natgrad_dist::{Communicator, Solo};

use crate::compile::{Device, Error};

/// The processes this command runs with: this process alone unless `distributed`; MPI's
/// world for CPU runs (feature `mpi`); NCCL for `cuda` runs (feature `nccl`: over MPI's
/// world when built with `mpi` too, else a world of one GPU). Asking for what this build
/// lacks is an error saying how to build it.
pub fn world(distributed: bool, device: Device) -> Result<Rc<dyn Communicator>, Error> {
    match (distributed, device) {
        (false, _) => Ok(Rc::new(Solo)),
        (true, Device::Cpu) => mpi_world(),
        (true, Device::Cuda(ordinal)) => nccl_world(ordinal),
        (true, Device::Sim) => Err(Error::Distributed(natgrad_dist::CommError::Library(
            "--distributed runs on --device cpu or cuda, not on the simulator".into(),
        ))),
    }
}

#[cfg(feature = "mpi")]
fn mpi_world() -> Result<Rc<dyn Communicator>, Error> {
    Ok(Rc::new(natgrad_dist::Mpi::init()?))
}

#[cfg(not(feature = "mpi"))]
fn mpi_world() -> Result<Rc<dyn Communicator>, Error> {
    Err(missing(
        "--distributed needs natgrad built with MPI: `cargo build --release -p natgrad --features mpi` \
         (Debian: apt-get install libopenmpi-dev openmpi-bin libclang-dev), then `mpirun -np N natgrad … --distributed`",
    ))
}

/// NCCL on GPU `ordinal`; under MPI, rank 0's NCCL id reaches the others through MPI.
#[cfg(feature = "nccl")]
fn nccl_world(ordinal: usize) -> Result<Rc<dyn Communicator>, Error> {
    use natgrad_dist::nccl::Nccl;
    #[cfg(feature = "mpi")]
    {
        let mpi = natgrad_dist::Mpi::init()?;
        let (rank, size) = (mpi.rank(), mpi.size());
        let mut id = [0.0f64; 128];
        if rank == 0 {
            id.iter_mut().zip(Nccl::unique_id()?).for_each(|(v, c)| *v = f64::from(c));
        }
        mpi.broadcast_f64(&mut id)?;
        let id: natgrad_dist::nccl::UniqueId = std::array::from_fn(|i| id[i] as std::ffi::c_char);
        Ok(Rc::new(Nccl::rank(ordinal, rank, size, id)?))
    }
    #[cfg(not(feature = "mpi"))]
    Ok(Rc::new(Nccl::single(ordinal)?))
}

#[cfg(not(feature = "nccl"))]
fn nccl_world(_ordinal: usize) -> Result<Rc<dyn Communicator>, Error> {
    Err(missing(
        "--distributed with --device cuda needs natgrad built with NCCL: `--features nccl` (and `mpi` for more than one GPU)",
    ))
}

#[cfg(not(all(feature = "mpi", feature = "nccl")))]
fn missing(what: &str) -> Error {
    Error::Distributed(natgrad_dist::CommError::Library(what.into()))
}

/// The GPU of this process: with `distributed` under `mpirun`, `cuda:N` means GPU
/// `N + local rank` (one GPU per process on a multi-GPU node, Open MPI's
/// `OMPI_COMM_WORLD_LOCAL_RANK`); otherwise `device` itself.
pub fn local_device(distributed: bool, device: Device) -> Device {
    let local_rank = std::env::var("OMPI_COMM_WORLD_LOCAL_RANK").ok().and_then(|v| v.parse::<usize>().ok());
    match (distributed, device, local_rank) {
        (true, Device::Cuda(ordinal), Some(rank)) => Device::Cuda(ordinal + rank),
        _ => device,
    }
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
        let mut values = crate::bench::filled(len, |_| 1.0f32, || format!("a vector of {len} f32 values"))?;
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
