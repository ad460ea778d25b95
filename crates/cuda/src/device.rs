//! The driver and the device: checked before anything calls into CUDA (cudarc's
//! `CudaContext::new` panics when the driver library is missing).

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use natgrad_lower::Error;
use natgrad_ptx::Arch;

/// Whether the CUDA driver library can be loaded on this machine.
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the driver library; calls nothing in it.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// An error of the CUDA runtime (a bug or a device fault; the message is the driver's).
pub(crate) fn runtime(what: &str, error: impl std::fmt::Debug) -> Error {
    Error::Backend { backend: "cuda", message: format!("{what}: {error:?}") }
}

/// The context of GPU `ordinal` and the architecture to emit for it.
pub fn open(ordinal: usize) -> Result<(Arc<CudaContext>, Arch), Error> {
    let device = format!("cuda:{ordinal}");
    if !driver_present() {
        return Err(Error::Device { device, why: "no CUDA driver (libcuda) on this machine".into() });
    }
    let count = CudaContext::device_count()
        .map_err(|e| Error::Device { device: device.clone(), why: format!("{e:?}") })?;
    if ordinal >= count.max(0) as usize {
        return Err(Error::Device { device, why: format!("this machine has {count} CUDA device(s)") });
    }
    let context = CudaContext::new(ordinal)
        .map_err(|e| Error::Device { device: device.clone(), why: format!("{e:?}") })?;
    let (major, minor) = context.compute_capability().map_err(|e| runtime("compute capability", e))?;
    let arch = match major {
        9.. => Arch::Sm90,
        8 => Arch::Sm80,
        _ => {
            return Err(Error::Device {
                device,
                why: format!("compute capability {major}.{minor}; sm_80 or newer is needed"),
            });
        }
    };
    Ok((context, arch))
}

/// Launches `function` on `stream` with `blocks` blocks of `threads` threads and `u64`
/// parameters `args`.
///
/// # Safety
/// `args` must be the entry's parameter contract (natgrad-ptx documents each): device
/// addresses of buffers holding every element the launch touches, then sizes and bits.
pub(crate) unsafe fn launch(
    stream: &Arc<CudaStream>,
    function: &CudaFunction,
    blocks: u32,
    threads: u32,
    args: &[u64],
) -> Result<(), Error> {
    let config = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
    let mut builder = stream.launch_builder(function);
    for arg in args {
        builder.arg(arg);
    }
    // SAFETY: as the caller promised.
    unsafe { builder.launch(config) }.map_err(|e| runtime("kernel launch", e))?;
    Ok(())
}
