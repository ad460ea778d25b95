//! The optimizers' vector operations ([`natgrad_optim::VectorOps`]) on device buffers, for
//! any [`Runtime`] that can allocate, copy and launch the [`crate::vectors`] module's
//! entries: which entry runs with which arguments, length checks and error keeping live
//! here once; the CUDA runtime moves bytes and launches on a GPU, the PTX simulator on the
//! host (so this code runs in tests without a GPU).
//!
//! `VectorOps` returns values, not results, so a device error (an allocation that fails, a
//! launch fault) is kept — the first one — and reported by [`DeviceVectors::check`], which
//! callers with a `Result` (a metric product, a loss) call; until then, operations on a
//! vector that could not be allocated do nothing and dots are NaN (which stops CG).

use std::sync::{Arc, Mutex};

use natgrad_ir::{DType, Scalar};
use natgrad_lower::Error;
use natgrad_optim::{OpError, Transfer, VectorOps};

use crate::launch::float_bits;
use crate::vectors::DOT_BLOCK;

/// Threads per block of the elementwise vector entries.
const BLOCK: u32 = 256;

/// Most blocks `ng_dot` runs (each leaves one f64 partial sum).
pub const DOT_BLOCKS: usize = 1024;

/// What a device offers the vector operations: buffers, copies and launches of the
/// [`crate::vectors`] module for one element type (loaded when the runtime is made).
pub trait Runtime: Send + Sync + 'static {
    /// A device allocation (freed when dropped).
    type Buffer: Send + Sync + 'static;

    /// The backend's name, for errors (`cuda`, `ptx-sim`).
    fn name(&self) -> &'static str;

    /// `bytes` zeroed bytes (at least one).
    fn alloc_zeroed(&self, bytes: usize) -> Result<Self::Buffer, Error>;

    /// The buffer's device address (the entries' pointer parameters).
    fn address(&self, buffer: &Self::Buffer) -> u64;

    /// Copies `bytes` to the start of `to`.
    fn upload(&self, bytes: &[u8], to: &mut Self::Buffer) -> Result<(), Error>;

    /// Copies the first `bytes.len()` bytes of `from` into `bytes`, once the work queued
    /// before has finished.
    fn download(&self, from: &Self::Buffer, bytes: &mut [u8]) -> Result<(), Error>;

    /// Copies the first `bytes` bytes of `from` to `to`.
    fn copy(&self, from: &Self::Buffer, to: &mut Self::Buffer, bytes: usize) -> Result<(), Error>;

    /// Launches entry `entry` of the vector module on `blocks × threads` threads.
    ///
    /// # Safety
    /// `args` must follow the entry's parameter table ([`crate::vectors`]): addresses of
    /// live buffers holding every element the launch touches, then sizes and float bits.
    unsafe fn launch(&self, entry: &str, blocks: u32, threads: u32, args: &[u64]) -> Result<(), Error>;
}

/// A vector of `T` in a runtime's memory.
pub struct DeviceVector<T, B> {
    /// `None` when the allocation failed (the error is in the [`DeviceVectors`] it came from).
    buffer: Option<B>,
    len: usize,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: Scalar, B> DeviceVector<T, B> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer (`None` if its allocation failed).
    pub fn buffer(&self) -> Option<&B> {
        self.buffer.as_ref()
    }

    /// The buffer, mutably.
    pub fn buffer_mut(&mut self) -> Option<&mut B> {
        self.buffer.as_mut()
    }

    /// The byte range of elements `offset..offset + len`, after checking that they exist and
    /// that the vector was allocated (`backend` names the runtime in the error).
    pub fn element_bytes(
        &self,
        offset: usize,
        len: usize,
        backend: &'static str,
    ) -> Result<std::ops::Range<usize>, Error> {
        let fits = offset.checked_add(len).is_some_and(|end| end <= self.len);
        if !fits || self.buffer.is_none() {
            return Err(Error::Backend {
                backend,
                message: format!(
                    "elements {offset}..{} of a device vector of {} elements{}",
                    offset.saturating_add(len),
                    self.len,
                    if self.buffer.is_none() { " whose allocation failed" } else { "" }
                ),
            });
        }
        let size = std::mem::size_of::<T>();
        Ok(offset * size..(offset + len) * size)
    }
}

struct Inner<R: Runtime> {
    runtime: R,
    /// `ng_dot`'s partial sums (one dot at a time).
    partials: Mutex<R::Buffer>,
    /// The first device error since the last [`DeviceVectors::check`].
    error: Mutex<Option<Error>>,
}

/// [`VectorOps`] on runtime `R`'s buffers for element type `T` (a cheap handle).
pub struct DeviceVectors<T, R: Runtime> {
    inner: Arc<Inner<R>>,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T, R: Runtime> Clone for DeviceVectors<T, R> {
    fn clone(&self) -> Self {
        DeviceVectors { inner: Arc::clone(&self.inner), _marker: std::marker::PhantomData }
    }
}

/// The bytes of a slice of f32 or f64.
pub fn bytes_of<T: Scalar>(values: &[T]) -> &[u8] {
    // SAFETY: `Scalar` is sealed to f32 and f64, plain data without padding.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

/// The bytes of a mutable slice of f32 or f64.
pub fn bytes_of_mut<T: Scalar>(values: &mut [T]) -> &mut [u8] {
    // SAFETY: as above; every bit pattern is a valid f32 / f64.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), std::mem::size_of_val(values)) }
}

impl<T: Scalar, R: Runtime> DeviceVectors<T, R> {
    /// Vector operations on `runtime`, which has loaded `crate::vectors::module(T::DTYPE, …)`.
    pub fn new(runtime: R) -> Result<DeviceVectors<T, R>, Error> {
        let partials = runtime.alloc_zeroed(DOT_BLOCKS * 8)?;
        let inner = Inner { runtime, partials: Mutex::new(partials), error: Mutex::new(None) };
        Ok(DeviceVectors { inner: Arc::new(inner), _marker: std::marker::PhantomData })
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.inner.runtime
    }

    /// The first device error since the last call, if any (and forgets it).
    pub fn check(&self) -> Result<(), Error> {
        match self.inner.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Keeps `result`'s error if it is the first.
    fn keep<V>(&self, result: Result<V, Error>) -> Option<V> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.inner.error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error);
                None
            }
        }
    }

    /// A vector of `len` zeros.
    pub fn zeros(&self, len: usize) -> DeviceVector<T, R::Buffer> {
        // At least one element: CUDA refuses empty allocations.
        let buffer = self.keep(self.inner.runtime.alloc_zeroed(len.max(1) * std::mem::size_of::<T>()));
        DeviceVector { buffer, len, _marker: std::marker::PhantomData }
    }

    /// A device copy of `values`.
    pub fn upload(&self, values: &[T]) -> DeviceVector<T, R::Buffer> {
        let mut vector = self.zeros(values.len());
        if let Some(buffer) = vector.buffer.as_mut() {
            self.keep(self.inner.runtime.upload(bytes_of(values), buffer));
        }
        vector
    }

    /// The values of `vector`, copied to the host.
    pub fn download(&self, vector: &DeviceVector<T, R::Buffer>) -> Result<Vec<T>, Error> {
        let mut values = vec![T::zero(); vector.len];
        if let Some(buffer) = &vector.buffer {
            self.inner.runtime.download(buffer, bytes_of_mut(&mut values))?;
        }
        self.check()?;
        Ok(values)
    }

    /// `vector`'s device address (`None` if its allocation failed).
    fn address(&self, vector: &DeviceVector<T, R::Buffer>) -> Option<u64> {
        vector.buffer.as_ref().map(|b| self.inner.runtime.address(b))
    }

    /// Whether the operands have one length; if not, keeps the error (the operation is then
    /// skipped: the optimizers only combine vectors of the problem's length).
    fn same_lengths(&self, what: &str, lengths: &[usize]) -> bool {
        let same = lengths.windows(2).all(|w| w[0] == w[1]);
        if !same {
            let message = format!("{what} of device vectors of lengths {lengths:?}");
            self.keep::<()>(Err(Error::Backend { backend: self.inner.runtime.name(), message }));
        }
        same
    }

    /// Launches `entry` over `len` elements with `pointers` (every one allocated) then `rest`.
    fn elementwise(&self, entry: &str, len: usize, pointers: &[Option<u64>], rest: &[u64]) {
        let Some(mut args) = pointers.iter().copied().collect::<Option<Vec<u64>>>() else { return };
        if len == 0 {
            return;
        }
        args.push(len as u64);
        args.extend_from_slice(rest);
        let blocks = len.div_ceil(BLOCK as usize).min(1 << 20) as u32;
        // SAFETY: every pointer is a live device vector of `len` elements of `T` (the callers
        // checked that the operands have one length), and the parameters follow the entry's
        // table in crate::vectors.
        let launched = unsafe { self.inner.runtime.launch(entry, blocks, BLOCK, &args) };
        self.keep(launched);
    }
}

fn bits<T: Scalar>(value: f64) -> u64 {
    float_bits(T::DTYPE, value)
}

impl<T: Scalar, R: Runtime> VectorOps for DeviceVectors<T, R> {
    type Vector = DeviceVector<T, R::Buffer>;

    fn zeros_like(&self, like: &Self::Vector) -> Self::Vector {
        self.zeros(like.len)
    }

    fn len(&self, x: &Self::Vector) -> usize {
        x.len
    }

    /// Σ aᵢbᵢ in f64: one partial sum per block on the device, added here in block order.
    fn dot(&self, a: &Self::Vector, b: &Self::Vector) -> f64 {
        if !self.same_lengths("dot", &[a.len, b.len]) {
            return f64::NAN;
        }
        let (Some(pa), Some(pb)) = (self.address(a), self.address(b)) else { return f64::NAN };
        if a.len == 0 {
            return 0.0;
        }
        let runtime = &self.inner.runtime;
        let blocks = a.len.div_ceil(DOT_BLOCK as usize).min(DOT_BLOCKS);
        let partials = self.inner.partials.lock().unwrap_or_else(|p| p.into_inner());
        let args = [pa, pb, runtime.address(&partials), a.len as u64];
        // SAFETY: `a` and `b` hold `len` elements of `T`, `partials` DOT_BLOCKS f64; the
        // block size is the one ng_dot is written for.
        let launched = unsafe { runtime.launch("ng_dot", blocks as u32, DOT_BLOCK, &args) };
        let mut sums = vec![0.0f64; blocks];
        let copied = launched.and_then(|()| runtime.download(&partials, bytes_of_mut(&mut sums)));
        match self.keep(copied) {
            Some(()) => sums.iter().sum(),
            None => f64::NAN,
        }
    }

    fn axpby(&self, alpha: f64, x: &Self::Vector, beta: f64, y: &mut Self::Vector) {
        if !self.same_lengths("axpby", &[x.len, y.len]) {
            return;
        }
        let pointers = [self.address(x), self.address(y)];
        if beta == 1.0 {
            self.elementwise("ng_axpy", x.len, &pointers, &[bits::<T>(alpha)]);
        } else {
            self.elementwise("ng_axpby", x.len, &pointers, &[bits::<T>(alpha), bits::<T>(beta)]);
        }
    }

    fn scale(&self, alpha: f64, x: &mut Self::Vector) {
        self.elementwise("ng_scale", x.len, &[self.address(x)], &[bits::<T>(alpha)]);
    }

    fn copy(&self, from: &Self::Vector, to: &mut Self::Vector) {
        if !self.same_lengths("copy", &[from.len, to.len]) {
            return;
        }
        if let (Some(source), Some(target)) = (from.buffer.as_ref(), to.buffer.as_mut()) {
            self.keep(self.inner.runtime.copy(source, target, from.len * std::mem::size_of::<T>()));
        }
    }

    fn fill(&self, x: &mut Self::Vector, value: f64) {
        self.elementwise("ng_fill", x.len, &[self.address(x)], &[bits::<T>(value)]);
    }

    fn mul(&self, a: &Self::Vector, b: &Self::Vector, out: &mut Self::Vector) {
        if !self.same_lengths("mul", &[a.len, b.len, out.len]) {
            return;
        }
        let pointers = [self.address(a), self.address(b), self.address(out)];
        self.elementwise("ng_mul", a.len, &pointers, &[]);
    }

    fn shifted_power(&self, x: &Self::Vector, shift: f64, exponent: f64, out: &mut Self::Vector) {
        if !self.same_lengths("shifted_power", &[x.len, out.len]) {
            return;
        }
        let pointers = [self.address(x), self.address(out)];
        let floats = [float_bits(DType::F64, shift), float_bits(DType::F64, exponent)];
        self.elementwise("ng_shifted_power", x.len, &pointers, &floats);
    }

    fn to_f64(&self, x: &Self::Vector) -> Vec<f64> {
        match self.download(x) {
            Ok(values) => values.iter().map(|v| v.as_f64()).collect(),
            Err(error) => {
                self.keep::<()>(Err(error));
                vec![f64::NAN; x.len]
            }
        }
    }

    fn vector_from_f64(&self, values: &[f64]) -> Self::Vector {
        let values: Vec<T> = values.iter().map(|&v| T::from_f64(v)).collect();
        self.upload(&values)
    }
}

impl<T: Scalar, R: Runtime> Transfer<T> for DeviceVectors<T, R> {
    fn upload(&self, values: &[T]) -> Self::Vector {
        DeviceVectors::upload(self, values)
    }

    fn download(&self, x: &Self::Vector) -> Result<Vec<T>, OpError> {
        Ok(DeviceVectors::download(self, x)?)
    }

    fn write(&self, values: &[T], x: &mut Self::Vector) -> Result<(), OpError> {
        if values.len() != x.len {
            return Err(format!("writing {} values into a device vector of {}", values.len(), x.len).into());
        }
        if let Some(buffer) = x.buffer.as_mut() {
            self.inner.runtime.upload(bytes_of(values), buffer)?;
        }
        Ok(self.check()?)
    }
}
