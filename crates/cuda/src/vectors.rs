//! Device vectors for the optimizers: [`natgrad_optim::VectorOps`] on GPU buffers, so a
//! whole CG or MinRes-QLP solve stays on the device and only scalars (dots, norms) come
//! back. The kernels are `natgrad_ptx::vectors`' (the host's operations in the host's
//! order); the module is loaded once per [`CudaVectors`].
//!
//! `VectorOps` returns values, not results, so a device error (an allocation that fails, a
//! launch fault) is kept — the first one — and reported by [`CudaVectors::check`], which
//! callers with a `Result` (a metric product, a loss) call; until then, operations on a
//! vector that could not be allocated do nothing and dots are NaN (which stops CG).

use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr};
use cudarc::nvrtc::Ptx;
use natgrad_ir::Scalar;
use natgrad_lower::Error;
use natgrad_optim::{OpError, Transfer, VectorOps};
use natgrad_ptx::vectors::DOT_BLOCK;

use crate::device::{open, runtime};

/// Threads per block of the elementwise vector kernels.
const BLOCK: u32 = 256;

/// Most blocks `ng_dot` runs (each leaves one f64 partial sum).
const DOT_BLOCKS: usize = 1024;

/// A vector of `T` in GPU memory.
pub struct DeviceVector<T> {
    /// `None` when the allocation failed (the error is in the [`CudaVectors`] it came from).
    bytes: Option<CudaSlice<u8>>,
    len: usize,
    _marker: std::marker::PhantomData<T>,
}

impl<T: Scalar> DeviceVector<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer (`None` if its allocation failed).
    pub(crate) fn bytes(&self) -> Option<&CudaSlice<u8>> {
        self.bytes.as_ref()
    }

    /// The buffer, mutably.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut CudaSlice<u8>> {
        self.bytes.as_mut()
    }
}

/// The loaded vector kernels.
struct Kernels {
    axpy: CudaFunction,
    axpby: CudaFunction,
    scale: CudaFunction,
    fill: CudaFunction,
    mul: CudaFunction,
    shifted_power: CudaFunction,
    dot: CudaFunction,
}

struct Inner {
    stream: Arc<CudaStream>,
    kernels: Kernels,
    /// `ng_dot`'s partial sums (one dot at a time).
    partials: Mutex<CudaSlice<f64>>,
    /// The first device error since the last [`CudaVectors::check`].
    error: Mutex<Option<Error>>,
}

/// [`VectorOps`] on GPU `ordinal` for element type `T` (a cheap handle).
pub struct CudaVectors<T> {
    inner: Arc<Inner>,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for CudaVectors<T> {
    fn clone(&self) -> Self {
        CudaVectors { inner: Arc::clone(&self.inner), _marker: std::marker::PhantomData }
    }
}

impl<T: Scalar> CudaVectors<T> {
    /// Loads the vector kernels on GPU `ordinal` (on the default stream, which the compiled
    /// programs use too, so products and vector operations stay in order).
    pub fn new(ordinal: usize) -> Result<CudaVectors<T>, Error> {
        let (context, arch) = open(ordinal)?;
        // As the programs do: one stream, so cudarc's event tracking is not needed.
        // SAFETY: called before any allocation or launch on this context object.
        unsafe { context.disable_event_tracking() };
        let stream = context.default_stream();
        let module = context
            .load_module(Ptx::from_src(natgrad_ptx::vectors::module(T::DTYPE, arch)))
            .map_err(|e| runtime("loading the vector kernels", e))?;
        let function =
            |name: &str| module.load_function(name).map_err(|e| runtime(&format!("vector kernel {name}"), e));
        let kernels = Kernels {
            axpy: function("ng_axpy")?,
            axpby: function("ng_axpby")?,
            scale: function("ng_scale")?,
            fill: function("ng_fill")?,
            mul: function("ng_mul")?,
            shifted_power: function("ng_shifted_power")?,
            dot: function("ng_dot")?,
        };
        let partials =
            stream.alloc_zeros::<f64>(DOT_BLOCKS).map_err(|e| runtime("allocating dot partials", e))?;
        let inner = Inner { stream, kernels, partials: Mutex::new(partials), error: Mutex::new(None) };
        Ok(CudaVectors { inner: Arc::new(inner), _marker: std::marker::PhantomData })
    }

    /// The first device error since the last call, if any (and forgets it).
    pub fn check(&self) -> Result<(), Error> {
        match self.inner.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Keeps `result`'s error if it is the first.
    fn keep<R>(&self, result: Result<R, Error>) -> Option<R> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.inner.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error);
                None
            }
        }
    }

    /// A vector of `len` zeros.
    pub fn zeros(&self, len: usize) -> DeviceVector<T> {
        // At least one element: CUDA refuses empty allocations.
        let bytes = self.inner.stream.alloc_zeros::<u8>(len.max(1) * std::mem::size_of::<T>());
        let bytes = self.keep(bytes.map_err(|e| runtime("allocating a device vector", e)));
        DeviceVector { bytes, len, _marker: std::marker::PhantomData }
    }

    /// A device copy of `values`.
    pub fn upload(&self, values: &[T]) -> DeviceVector<T> {
        let mut vector = self.zeros(values.len());
        if let Some(bytes) = vector.bytes.as_mut() {
            let copied = self.inner.stream.memcpy_htod(crate::program::bytes_of(values), bytes);
            self.keep(copied.map_err(|e| runtime("copy to the device", e)));
        }
        vector
    }

    /// The values of `vector`, copied to the host.
    pub fn download(&self, vector: &DeviceVector<T>) -> Result<Vec<T>, Error> {
        let mut values = vec![T::zero(); vector.len];
        if let Some(bytes) = &vector.bytes {
            let stream = &self.inner.stream;
            let target = crate::program::bytes_of_mut(&mut values);
            stream
                .memcpy_dtoh(&bytes.slice(..target.len()), target)
                .map_err(|e| runtime("copy from the device", e))?;
            stream.synchronize().map_err(|e| runtime("synchronize", e))?;
        }
        self.check()?;
        Ok(values)
    }

    /// The device address of `vector`'s buffer (`None` if its allocation failed).
    fn address(&self, vector: &DeviceVector<T>) -> Option<u64> {
        vector.bytes.as_ref().map(|b| b.device_ptr(&self.inner.stream).0)
    }

    /// Whether the operands have one length; if not, keeps the error (the operation is then
    /// skipped: the optimizers only combine vectors of the problem's length).
    fn same_lengths(&self, what: &str, lengths: &[usize]) -> bool {
        let same = lengths.windows(2).all(|w| w[0] == w[1]);
        if !same {
            let message = format!("{what} of device vectors of lengths {lengths:?}");
            self.keep::<()>(Err(Error::Backend { backend: "cuda", message }));
        }
        same
    }

    /// Launches `function` over `len` elements with `pointers` (every one allocated) then
    /// `rest`.
    fn elementwise(&self, function: &CudaFunction, len: usize, pointers: &[Option<u64>], rest: &[u64]) {
        let Some(mut args) = pointers.iter().copied().collect::<Option<Vec<u64>>>() else { return };
        if len == 0 {
            return;
        }
        args.push(len as u64);
        args.extend_from_slice(rest);
        let blocks = len.div_ceil(BLOCK as usize).min(1 << 20) as u32;
        // SAFETY: every pointer is a live device vector of `len` elements of `T` (the callers
        // checked that the operands have one length), and the parameters follow the entry's
        // table in natgrad_ptx::vectors.
        let launched = unsafe { crate::device::launch(&self.inner.stream, function, blocks, BLOCK, &args) };
        self.keep(launched);
    }
}

/// The bits of `value` as `T`, as the kernels read float parameters.
fn bits<T: Scalar>(value: f64) -> u64 {
    match T::DTYPE {
        natgrad_ir::DType::F32 => u64::from((value as f32).to_bits()),
        natgrad_ir::DType::F64 => value.to_bits(),
    }
}

impl<T: Scalar> VectorOps for CudaVectors<T> {
    type Vector = DeviceVector<T>;

    fn zeros_like(&self, like: &DeviceVector<T>) -> DeviceVector<T> {
        self.zeros(like.len)
    }

    fn len(&self, x: &DeviceVector<T>) -> usize {
        x.len
    }

    /// Σ aᵢbᵢ in f64: one partial sum per block on the device, added here in block order.
    fn dot(&self, a: &DeviceVector<T>, b: &DeviceVector<T>) -> f64 {
        if !self.same_lengths("dot", &[a.len, b.len]) {
            return f64::NAN;
        }
        let (Some(pa), Some(pb)) = (self.address(a), self.address(b)) else { return f64::NAN };
        if a.len == 0 {
            return 0.0;
        }
        let inner = &self.inner;
        let blocks = a.len.div_ceil(DOT_BLOCK as usize).min(DOT_BLOCKS);
        let partials = inner.partials.lock().unwrap_or_else(|p| p.into_inner());
        let address = partials.device_ptr(&inner.stream).0;
        // SAFETY: `a` and `b` hold `len` elements of `T`, `partials` DOT_BLOCKS f64; the
        // block size is the one ng_dot is written for.
        let launched = unsafe {
            crate::device::launch(
                &inner.stream,
                &inner.kernels.dot,
                blocks as u32,
                DOT_BLOCK,
                &[pa, pb, address, a.len as u64],
            )
        };
        let mut sums = vec![0.0f64; blocks];
        let copied = launched.and_then(|()| {
            inner.stream.memcpy_dtoh(&partials.slice(..blocks), &mut sums).map_err(|e| runtime("dot", e))?;
            inner.stream.synchronize().map_err(|e| runtime("synchronize", e))
        });
        match self.keep(copied) {
            Some(()) => sums.iter().sum(),
            None => f64::NAN,
        }
    }

    fn axpby(&self, alpha: f64, x: &DeviceVector<T>, beta: f64, y: &mut DeviceVector<T>) {
        if !self.same_lengths("axpby", &[x.len, y.len]) {
            return;
        }
        let pointers = [self.address(x), self.address(y)];
        if beta == 1.0 {
            self.elementwise(&self.inner.kernels.axpy, x.len, &pointers, &[bits::<T>(alpha)]);
        } else {
            self.elementwise(
                &self.inner.kernels.axpby,
                x.len,
                &pointers,
                &[bits::<T>(alpha), bits::<T>(beta)],
            );
        }
    }

    fn scale(&self, alpha: f64, x: &mut DeviceVector<T>) {
        self.elementwise(&self.inner.kernels.scale, x.len, &[self.address(x)], &[bits::<T>(alpha)]);
    }

    fn copy(&self, from: &DeviceVector<T>, to: &mut DeviceVector<T>) {
        if !self.same_lengths("copy", &[from.len, to.len]) {
            return;
        }
        if let (Some(source), Some(target)) = (from.bytes.as_ref(), to.bytes.as_mut()) {
            let copied = self.inner.stream.memcpy_dtod(source, target);
            self.keep(copied.map_err(|e| runtime("copy on the device", e)));
        }
    }

    fn fill(&self, x: &mut DeviceVector<T>, value: f64) {
        self.elementwise(&self.inner.kernels.fill, x.len, &[self.address(x)], &[bits::<T>(value)]);
    }

    fn mul(&self, a: &DeviceVector<T>, b: &DeviceVector<T>, out: &mut DeviceVector<T>) {
        if !self.same_lengths("mul", &[a.len, b.len, out.len]) {
            return;
        }
        let pointers = [self.address(a), self.address(b), self.address(out)];
        self.elementwise(&self.inner.kernels.mul, a.len, &pointers, &[]);
    }

    fn shifted_power(&self, x: &DeviceVector<T>, shift: f64, exponent: f64, out: &mut DeviceVector<T>) {
        if !self.same_lengths("shifted_power", &[x.len, out.len]) {
            return;
        }
        let pointers = [self.address(x), self.address(out)];
        let floats = [shift.to_bits(), exponent.to_bits()];
        self.elementwise(&self.inner.kernels.shifted_power, x.len, &pointers, &floats);
    }

    fn to_f64(&self, x: &DeviceVector<T>) -> Vec<f64> {
        match self.download(x) {
            Ok(values) => values.iter().map(|v| v.as_f64()).collect(),
            Err(error) => {
                self.keep::<()>(Err(error));
                vec![f64::NAN; x.len]
            }
        }
    }

    fn vector_from_f64(&self, values: &[f64]) -> DeviceVector<T> {
        let values: Vec<T> = values.iter().map(|&v| T::from_f64(v)).collect();
        self.upload(&values)
    }
}

impl<T: Scalar> Transfer<T> for CudaVectors<T> {
    fn upload(&self, values: &[T]) -> DeviceVector<T> {
        CudaVectors::upload(self, values)
    }

    fn download(&self, x: &DeviceVector<T>) -> Result<Vec<T>, OpError> {
        Ok(CudaVectors::download(self, x)?)
    }

    fn write(&self, values: &[T], x: &mut DeviceVector<T>) -> Result<(), OpError> {
        if values.len() != x.len {
            return Err(format!("writing {} values into a device vector of {}", values.len(), x.len).into());
        }
        if let Some(bytes) = x.bytes.as_mut() {
            let target = crate::program::bytes_of(values);
            let mut view = bytes.slice_mut(..target.len());
            self.inner.stream.memcpy_htod(target, &mut view).map_err(|e| runtime("copy to the device", e))?;
        }
        Ok(self.check()?)
    }
}
