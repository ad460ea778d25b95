//! Programs (a plan's PTX module loaded, one cuBLAS handle) and sessions (device buffers
//! for one batch size, kernel launches phase by phase).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cudarc::cublas::{CudaBlas, sys as blas};
use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr};
use cudarc::nvrtc::Ptx;
use natgrad_ir::{DType, NodeId, Scalar};
use natgrad_lower::{
    Backend, BoundInputs, CompileOptions, Error, Executable, MemoryPlan, Phase, Plan, Profile,
};
use natgrad_ptx::device_vectors::{bytes_of, bytes_of_mut};
use natgrad_ptx::launch::{BLOCK, Entry, Gemm, Step};

use crate::device::{open, runtime};

/// The CUDA backend for GPU `ordinal`.
#[derive(Clone, Copy, Debug)]
pub struct Cuda {
    /// The device ordinal.
    pub ordinal: usize,
}

impl<T: Scalar> Backend<T> for Cuda {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn compile(&self, plan: Arc<Plan>, options: &CompileOptions) -> Result<Arc<dyn Executable<T>>, Error> {
        Ok(Arc::new(Program::<T>::new(plan, self.ordinal, options.tf32)?))
    }
}

/// A plan loaded on a GPU.
pub struct Program<T: Scalar> {
    plan: Arc<Plan>,
    stream: Arc<CudaStream>,
    /// The kernel of each unit that runs as one.
    functions: Vec<Option<CudaFunction>>,
    scale: Option<CudaFunction>,
    /// cuBLAS handles are not `Sync`; GEMMs of sessions on several threads take turns.
    blas: Mutex<CudaBlas>,
    load: Duration,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: Scalar> Program<T> {
    /// Emits the plan's PTX for the device's architecture and loads it; `tf32` lets f32
    /// GEMMs use TF32 tensor-core math.
    pub fn new(plan: Arc<Plan>, ordinal: usize, tf32: bool) -> Result<Program<T>, Error> {
        if plan.dtype != T::DTYPE {
            return Err(Error::Lowering(format!(
                "the plan computes in {} but {} was asked for",
                plan.dtype,
                T::DTYPE
            )));
        }
        let start = Instant::now();
        let (context, arch) = open(ordinal)?;
        // One stream per program: ordering is the stream's, cudarc's event tracking is not
        // needed.
        // SAFETY: called before any allocation or launch on this context by this program.
        unsafe { context.disable_event_tracking() };
        let stream = context.default_stream();
        let module = natgrad_ptx::module(&plan, arch);
        let loaded = context
            .load_module(Ptx::from_src(module.text))
            .map_err(|e| runtime("loading the PTX module", e))?;
        let mut functions = vec![None; plan.units.len()];
        for (unit, name) in &module.kernels {
            functions[*unit] = Some(loaded.load_function(name).map_err(|e| runtime(name, e))?);
        }
        let scale = module
            .scale
            .map(|name| loaded.load_function(&name).map_err(|e| runtime(&name, e)))
            .transpose()?;
        let blas = CudaBlas::new(Arc::clone(&stream)).map_err(|e| runtime("cuBLAS", e))?;
        if tf32 && T::DTYPE == DType::F32 {
            // SAFETY: a valid handle, owned by this program.
            unsafe {
                blas::cublasSetMathMode(*blas.handle(), blas::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH)
            }
            .result()
            .map_err(|e| runtime("cuBLAS TF32 mode", e))?;
        }
        Ok(Program {
            plan,
            stream,
            functions,
            scale,
            blas: Mutex::new(blas),
            load: start.elapsed(),
            _marker: std::marker::PhantomData,
        })
    }

    /// Device buffers for batch size `batch`, constants written.
    pub fn open_session(self: &Arc<Self>, batch: usize) -> Result<Session<T>, Error> {
        let memory = MemoryPlan::new(&self.plan, batch)?;
        let bytes = std::mem::size_of::<T>();
        let buffers = memory
            .sizes
            .iter()
            .map(|&n| {
                self.stream.alloc_zeros::<u8>(n * bytes).map_err(|e| runtime("allocating device memory", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pointers: Vec<u64> = buffers.iter().map(|b| b.device_ptr(&self.stream).0).collect();
        let address = |n: NodeId| pointers[memory.buffer_of[&n]];
        // What each unit launches depends on the batch size and the buffers only: worked out
        // once here, not on every run.
        let steps = (0..self.plan.units.len())
            .map(|u| natgrad_ptx::launch::steps(&self.plan, u, batch, &address))
            .collect();
        let mut session = Session {
            program: Arc::clone(self),
            batch,
            peak_bytes: memory.total_elements() * bytes,
            buffers,
            pointers,
            steps,
            buffer_of: memory.buffer_of,
            inputs: BoundInputs::new(&self.plan, batch),
            profile: None,
        };
        for (u, unit) in self.plan.units.iter().enumerate() {
            if unit.phase == Phase::Setup {
                session.execute(u)?;
            }
        }
        Ok(session)
    }
}

impl<T: Scalar> Executable<T> for Program<T> {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn codegen_time(&self) -> Duration {
        self.load
    }

    fn session(self: Arc<Self>, batch: usize) -> Result<Box<dyn natgrad_lower::Session<T>>, Error> {
        Ok(Box::new(self.open_session(batch)?))
    }
}

/// `vector` as a device vector of `T`, or an error naming `what` was given instead.
fn device_vector<V>(vector: Option<V>, what: &str) -> Result<V, Error> {
    vector.ok_or_else(|| Error::Backend {
        backend: "cuda",
        message: format!("{what}: the vector is not a natgrad_cuda::DeviceVector of this element type"),
    })
}

/// One batch size's device buffers of a [`Program`].
pub struct Session<T: Scalar> {
    program: Arc<Program<T>>,
    batch: usize,
    buffers: Vec<CudaSlice<u8>>,
    /// Device address of each buffer (the kernels' pointer parameters).
    pointers: Vec<u64>,
    /// Each plan unit's launch steps at this batch size and these buffers.
    steps: Arc<[Vec<Step>]>,
    buffer_of: HashMap<NodeId, usize>,
    inputs: BoundInputs,
    peak_bytes: usize,
    profile: Option<Profile>,
}

impl<T: Scalar> Session<T> {
    fn plan(&self) -> &Plan {
        &self.program.plan
    }

    fn pointer(&self, n: NodeId) -> u64 {
        self.pointers[self.buffer_of[&n]]
    }

    /// Launches `function` over `total` elements with `u64` parameters `args`.
    fn launch(&self, function: &CudaFunction, total: usize, args: &[u64]) -> Result<(), Error> {
        if total == 0 {
            return Ok(());
        }
        let blocks = natgrad_ptx::launch::blocks(total);
        // SAFETY: the parameters are the entry's contract (natgrad-ptx documents each kind):
        // device addresses of buffers sized by the memory plan for this batch, then sizes.
        unsafe { crate::device::launch(&self.program.stream, function, blocks, BLOCK, args) }
    }

    fn write(&mut self, node: NodeId, values: &[T]) -> Result<(), Error> {
        let b = self.buffer_of[&node];
        let bytes = bytes_of(values);
        let mut view = self.buffers[b].slice_mut(..bytes.len());
        self.program.stream.memcpy_htod(bytes, &mut view).map_err(|e| runtime("copy to the device", e))
    }

    fn execute(&mut self, u: usize) -> Result<(), Error> {
        let (program, steps) = (Arc::clone(&self.program), Arc::clone(&self.steps));
        for step in &steps[u] {
            match *step {
                Step::Launch { entry, total, ref args } => {
                    let function = match entry {
                        Entry::Unit(u) => program.functions[u].as_ref(),
                        Entry::Scale => program.scale.as_ref(),
                    };
                    let function = function.expect("the module has an entry for every launch of its plan");
                    self.launch(function, total, args)?;
                }
                Step::Zero { node, elements } => {
                    let b = self.buffer_of[&node];
                    let mut view = self.buffers[b].slice_mut(..elements * std::mem::size_of::<T>());
                    program.stream.memset_zeros(&mut view).map_err(|e| runtime("zeroing a buffer", e))?;
                }
                Step::Gemm(ref gemm) => self.gemm(gemm)?,
                Step::Write { node, ref values } => {
                    let data: Vec<T> = values.iter().map(|&v| T::from_f64(v)).collect();
                    self.write(node, &data)?;
                }
            }
        }
        Ok(())
    }

    /// A column-major GEMM step on cuBLAS.
    fn gemm(&self, g: &Gemm) -> Result<(), Error> {
        let op = |t: bool| {
            if t { blas::cublasOperation_t::CUBLAS_OP_T } else { blas::cublasOperation_t::CUBLAS_OP_N }
        };
        let int = |v: usize| i32::try_from(v).map_err(|_| runtime("GEMM extent", format!("{v} exceeds i32")));
        let (m, n, k, lda, ldb, ldc) =
            (int(g.m)?, int(g.n)?, int(g.k)?, int(g.lda)?, int(g.ldb)?, int(g.ldc)?);
        let (pa, pb, pc) = (self.pointer(g.a), self.pointer(g.b), self.pointer(g.c));
        let (ta, tb) = (op(g.transa), op(g.transb));
        let blas = self.program.blas.lock().unwrap_or_else(|p| p.into_inner());
        // cuBLAS runs in the thread's current context, which cudarc's own calls set but a
        // session forked to a new thread may not have yet when its first step is a GEMM.
        self.program.stream.context().bind_to_thread().map_err(|e| runtime("binding the context", e))?;
        let handle = *blas.handle();
        // SAFETY: the pointers are device buffers sized by the memory plan for these
        // extents; the handle's stream is the program's.
        let status = unsafe {
            match T::DTYPE {
                DType::F32 => {
                    let (alpha, beta) = (1.0f32, 0.0f32);
                    let (a, b, c) = (pa as *const f32, pb as *const f32, pc as *mut f32);
                    cudarc::cublas::result::sgemm(
                        handle, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc,
                    )
                }
                DType::F64 => {
                    let (alpha, beta) = (1.0f64, 0.0f64);
                    let (a, b, c) = (pa as *const f64, pb as *const f64, pc as *mut f64);
                    cudarc::cublas::result::dgemm(
                        handle, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc,
                    )
                }
            }
        };
        status.map_err(|e| runtime("cuBLAS GEMM", e))
    }
}

impl<T: Scalar> natgrad_lower::Session<T> for Session<T> {
    fn batch(&self) -> usize {
        self.batch
    }

    fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    fn set(&mut self, name: &str, data: &[T]) -> Result<(), Error> {
        let program = Arc::clone(&self.program);
        if let Some(node) = self.inputs.set(&program.plan, name, data.len())?
            && self.buffer_of.contains_key(&node)
        {
            self.write(node, data)?;
        }
        Ok(())
    }

    fn run(&mut self, phase: usize) -> Result<(), Error> {
        let program = Arc::clone(&self.program);
        self.inputs.ready(&program.plan, phase)?;
        for (u, unit) in program.plan.units.iter().enumerate() {
            if unit.phase == Phase::Run(phase) {
                let start = self.profile.is_some().then(Instant::now);
                self.execute(u)?;
                if start.is_some() {
                    program.stream.synchronize().map_err(|e| runtime("synchronize", e))?;
                }
                natgrad_lower::record(&mut self.profile, u, unit.work.kind(), start);
            }
        }
        // A phase returns when its work is done: timings around `run` are the GPU's, and a
        // device fault surfaces at the call that caused it.
        program.stream.synchronize().map_err(|e| runtime("synchronize", e))
    }

    fn read(&self, index: usize, out: &mut [T]) -> Result<(), Error> {
        let node = self.inputs.output(self.plan(), index, out.len())?;
        let b = self.buffer_of[&node];
        let bytes = bytes_of_mut(out);
        let view = self.buffers[b].slice(..bytes.len());
        self.program.stream.memcpy_dtoh(&view, bytes).map_err(|e| runtime("copy from the device", e))?;
        self.program.stream.synchronize().map_err(|e| runtime("synchronize", e))
    }

    fn set_from_device(
        &mut self,
        name: &str,
        vector: &dyn std::any::Any,
        offset: usize,
        len: usize,
    ) -> Result<(), Error> {
        let vector =
            device_vector(vector.downcast_ref::<crate::vectors::DeviceVector<T>>(), "set_from_device")?;
        let source = vector.element_bytes(offset, len, "cuda")?;
        let program = Arc::clone(&self.program);
        if let Some(node) = self.inputs.set(&program.plan, name, len)?
            && let Some(&b) = self.buffer_of.get(&node)
        {
            let bytes = vector.buffer().expect("checked by element_bytes").slice(source);
            let mut target = self.buffers[b].slice_mut(..bytes.len());
            program.stream.memcpy_dtod(&bytes, &mut target).map_err(|e| runtime("copy on the device", e))?;
        }
        Ok(())
    }

    fn read_to_device(
        &self,
        index: usize,
        vector: &mut dyn std::any::Any,
        offset: usize,
        len: usize,
    ) -> Result<(), Error> {
        let node = self.inputs.output(self.plan(), index, len)?;
        let vector =
            device_vector(vector.downcast_mut::<crate::vectors::DeviceVector<T>>(), "read_to_device")?;
        let target = vector.element_bytes(offset, len, "cuda")?;
        let source = self.buffers[self.buffer_of[&node]].slice(..target.len());
        let mut target = vector.buffer_mut().expect("checked by element_bytes").slice_mut(target);
        self.program.stream.memcpy_dtod(&source, &mut target).map_err(|e| runtime("copy on the device", e))
    }

    fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(Profile::new);
    }

    fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }
}
