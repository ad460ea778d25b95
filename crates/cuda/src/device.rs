//! The driver and the device: checked before anything calls into CUDA (cudarc's
//! `CudaContext::new` panics when the driver library is missing).

use std::sync::Arc;

use cudarc::driver::CudaContext;
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
