//! The CPU backend's compiled programs (JIT'd kernels for a shared [`Plan`]) and sessions
//! (buffers from the shared [`MemoryPlan`], inputs checked by [`BoundInputs`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natgrad_ir::{Dim, NodeId, Scalar, Shape};
use natgrad_lower::{
    Backend, BoundInputs, CompileOptions, Error, Executable, KernelSpec, MemoryPlan, Phase, Plan, Profile,
    Work, as_matrix,
};

use rayon::ThreadPool;

use crate::host;
use crate::kernel::{Jit, KernelFn};

/// The CPU backend: Cranelift kernels, matrixmultiply GEMM, host loops.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl<T: Scalar> Backend<T> for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn compile(&self, plan: Arc<Plan>, options: &CompileOptions) -> Result<Arc<dyn Executable<T>>, Error> {
        Ok(Arc::new(Program::<T>::new(plan, options)?))
    }
}

/// A plan compiled for the CPU. `Send + Sync`: kernels are pure functions of the buffers a
/// session passes in, and the JIT module is never touched after linking (see [`Jit`]).
pub struct Program<T: Scalar> {
    plan: Arc<Plan>,
    kernels: Vec<KernelFn>,
    /// Scratch rows each kernel takes after its column sums (staged routines).
    scratch_rows: Vec<usize>,
    kernel_of_unit: Vec<Option<usize>>,
    pool: Arc<ThreadPool>,
    codegen: Duration,
    /// Owns the kernels' code; declared last so it is dropped after them.
    _jit: Jit,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: Scalar> Program<T> {
    /// JIT-compiles every fused kernel of `plan`.
    pub fn new(plan: Arc<Plan>, options: &CompileOptions) -> Result<Program<T>, Error> {
        if plan.dtype != T::DTYPE {
            return Err(Error::Lowering(format!(
                "the plan computes in {} but the program was asked for {}",
                plan.dtype,
                T::DTYPE
            )));
        }
        crate::slices::check_max_isa()?;
        let start = Instant::now();
        let mut jit = Jit::new(options.libm_math)?;
        let mut kernel_of_unit = Vec::new();
        let mut scratch_rows = Vec::new();
        for unit in &plan.units {
            kernel_of_unit.push(match &unit.work {
                Work::Kernel { spec, shape, .. } => {
                    let wide_rows =
                        matches!(shape.0.last(), Some(&Dim::Fixed(n)) if n >= crate::kernel::STAGED_MIN_COLS);
                    let (index, scratch) = jit.compile(spec, wide_rows)?;
                    scratch_rows.push(scratch);
                    Some(index)
                }
                _ => None,
            });
        }
        let kernels = jit.finish()?;
        Ok(Program {
            plan,
            kernels,
            scratch_rows,
            kernel_of_unit,
            pool: crate::pool::shared(options.threads)?,
            codegen: start.elapsed(),
            _jit: jit,
            _marker: std::marker::PhantomData,
        })
    }

    /// Worker threads of the pool this program's kernels and GEMMs run on.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// A session for batch size `batch`: buffers from the memory plan, constants written
    /// (a batch size whose values would not fit in addressable memory is an error).
    pub fn open_session(self: &Arc<Self>, batch: usize) -> Result<Session<T>, Error> {
        let memory = MemoryPlan::new(&self.plan, batch)?;
        let mut session = Session {
            program: Arc::clone(self),
            batch,
            buffers: memory.sizes.iter().map(|&n| zeroed(n, batch)).collect::<Result<_, _>>()?,
            peak_bytes: memory.total_elements() * std::mem::size_of::<T>(),
            buffer_of: memory.buffer_of,
            inputs: BoundInputs::new(&self.plan, batch),
            profile: None,
            scratch: vec![Vec::new(); self.kernels.len()],
            gemm_partials: Vec::new(),
        };
        for (u, unit) in self.plan.units.iter().enumerate() {
            if unit.phase == Phase::Setup {
                session.execute(u);
            }
        }
        Ok(session)
    }
}

/// `n` zeros, or an error saying how many bytes the machine would not give (a batch size
/// too large for its memory), where `vec!` would abort the process.
fn zeroed<T: Scalar>(n: usize, batch: usize) -> Result<Vec<T>, Error> {
    let out_of_memory = || Error::OutOfMemory {
        what: format!("a buffer at batch size {batch}"),
        bytes: n.saturating_mul(size_of::<T>()),
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| out_of_memory())?;
    // SAFETY: `layout` has a non-zero size.
    let pointer = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if pointer.is_null() {
        return Err(out_of_memory());
    }
    // SAFETY: the global allocator gave `pointer` for exactly `n` elements of `T` (the layout
    // the Vec will free it with); all-zero bytes are 0.0 in f32 and f64, so all `n` are
    // initialised.
    Ok(unsafe { Vec::from_raw_parts(pointer, n, n) })
}

impl<T: Scalar> Executable<T> for Program<T> {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn codegen_time(&self) -> Duration {
        self.codegen
    }

    fn session(self: Arc<Self>, batch: usize) -> Result<Box<dyn natgrad_lower::Session<T>>, Error> {
        Ok(Box::new(self.open_session(batch)?))
    }
}

/// Buffers for one batch size of a [`Program`].
pub struct Session<T: Scalar> {
    program: Arc<Program<T>>,
    batch: usize,
    buffers: Vec<Vec<T>>,
    buffer_of: HashMap<NodeId, usize>,
    inputs: BoundInputs,
    peak_bytes: usize,
    profile: Option<Profile>,
    /// Per kernel, the scratch rows of its staged routines (grown on first use).
    scratch: Vec<Vec<T>>,
    /// The other workers' partial products of weight gradients split along the batch.
    gemm_partials: Vec<T>,
}

/// Raw pointers handed to kernel threads.
struct Pointers(Vec<*mut u8>);
// SAFETY: each thread writes disjoint rows of the output buffers and only reads inputs.
unsafe impl Send for Pointers {}
unsafe impl Sync for Pointers {}

impl Pointers {
    fn as_ptr(&self) -> *const *mut u8 {
        self.0.as_ptr()
    }
}

impl<T: Scalar> Session<T> {
    /// The value of output `index` (after the phase computing it has run).
    pub fn output(&self, index: usize) -> Result<&[T], Error> {
        Ok(self.value(self.program.plan.output(index)?))
    }

    fn plan(&self) -> &Plan {
        &self.program.plan
    }

    fn dims(&self, n: NodeId) -> Vec<usize> {
        self.plan().graph.shape(n).resolve(self.batch)
    }

    /// (buffer, length) of a node's value.
    fn slot(&self, n: NodeId) -> (usize, usize) {
        (self.buffer_of[&n], self.plan().elements(n, self.batch))
    }

    /// Takes the output buffer out so inputs can be borrowed alongside it.
    fn with_output(&mut self, out: NodeId, f: impl FnOnce(&Self, &mut [T])) {
        let (b, len) = self.slot(out);
        let mut buffer = std::mem::take(&mut self.buffers[b]);
        f(self, &mut buffer[..len]);
        self.buffers[b] = buffer;
    }

    fn value(&self, n: NodeId) -> &[T] {
        let (b, len) = self.slot(n);
        &self.buffers[b][..len]
    }

    fn execute(&mut self, u: usize) {
        let program = Arc::clone(&self.program);
        let unit = &program.plan.units[u];
        let out = unit.outputs[0];
        match &unit.work {
            Work::Kernel { spec, shape, args } => {
                self.run_kernel(program.kernel_of_unit[u].expect("kernel unit"), spec, shape, args)
            }
            Work::MatMul { a, b, ta, tb } => {
                let mut partials = std::mem::take(&mut self.gemm_partials);
                self.with_output(out, |s, o| {
                    let (ad, bd) = (as_matrix(&s.dims(*a)), as_matrix(&s.dims(*b)));
                    host::matmul(
                        &program.pool,
                        s.value(*a),
                        [ad[0], ad[1]],
                        *ta,
                        s.value(*b),
                        [bd[0], bd[1]],
                        *tb,
                        o,
                        &mut partials,
                    )
                });
                self.gemm_partials = partials;
            }
            Work::Softmax { x, axis, log } => {
                self.with_output(out, |s, o| host::softmax(s.value(*x), &s.dims(*x), *axis, *log, o))
            }
            Work::Transpose { x, perm } => {
                self.with_output(out, |s, o| host::transpose(s.value(*x), &s.dims(*x), perm, o))
            }
            Work::Patches { x, window, adjoint } => self.with_output(out, |s, o| {
                let image = if *adjoint { s.dims(out) } else { s.dims(*x) };
                crate::patches::patches(
                    &program.pool,
                    s.value(*x),
                    [image[0], image[1], image[2], image[3]],
                    window,
                    *adjoint,
                    o,
                )
            }),
            Work::Broadcast { x } => {
                self.with_output(out, |s, o| host::broadcast(s.value(*x), &s.dims(*x), &s.dims(out), o))
            }
            Work::Reduce { x, kind, axes } => self.with_output(out, |s, o| {
                host::reduce(&program.pool, s.value(*x), &s.dims(*x), *kind, axes, o)
            }),
            Work::Constant { values } => self.with_output(out, |_, o| {
                for (slot, v) in o.iter_mut().zip(values.iter().cycle()) {
                    *slot = T::from_f64(*v);
                }
            }),
            Work::BatchSize => {
                let batch = T::from_f64(self.batch as f64);
                self.with_output(out, |_, o| o[0] = batch)
            }
        }
    }

    fn run_kernel(&mut self, kernel: usize, spec: &KernelSpec, shape: &Shape, args: &[NodeId]) {
        let dims = shape.resolve(self.batch);
        let cols = dims.last().copied().unwrap_or(1);
        let total: usize = dims.iter().product();
        let rows = total.checked_div(cols).unwrap_or(0);
        let f = self.program.kernels[kernel];
        let threads = if total < 1 << 15 { 1 } else { self.program.threads().min(rows.max(1)) };
        let chunk = rows.div_ceil(threads).max(1);
        let blocks: Vec<(usize, usize)> =
            (0..rows).step_by(chunk).map(|s| (s, (s + chunk).min(rows))).collect();
        // Column sums accumulate per block (one `cols`-long row per block and sum), then add up.
        let sums = spec.column_sums.len();
        let mut partials = vec![T::zero(); blocks.len() * sums * cols];
        // Staged routines work on one `cols`-long scratch row each, per block.
        let scratch_rows = self.program.scratch_rows[kernel];
        let scratch = &mut self.scratch[kernel];
        if scratch.len() < blocks.len() * scratch_rows * cols {
            scratch.resize(blocks.len() * scratch_rows * cols, T::zero());
        }
        let stored = args.len() - sums;
        let fixed: Vec<*mut u8> =
            args[..stored].iter().map(|a| self.buffers[self.buffer_of[a]].as_mut_ptr() as *mut u8).collect();
        let pointers: Vec<Pointers> = (0..blocks.len())
            .map(|blk| {
                let own = (0..sums).map(|k| partials[(blk * sums + k) * cols..].as_mut_ptr() as *mut u8);
                let rows = (0..scratch_rows)
                    .map(|k| scratch[(blk * scratch_rows + k) * cols..].as_mut_ptr() as *mut u8);
                Pointers(fixed.iter().copied().chain(own).chain(rows).collect())
            })
            .collect();
        let call = |blk: usize| {
            let (start, end) = blocks[blk];
            // SAFETY: every buffer holds at least `rows × cols` elements for Full access
            // (and `cols` / `rows` / 1 for Row / Col / Scalar), as sized by the memory plan
            // for this batch; each block writes its own rows of the outputs and its own
            // `cols`-long rows of `partials` and `scratch`.
            unsafe { f(pointers[blk].as_ptr(), start, end, cols) }
        };
        crate::pool::for_each_block(&self.program.pool, blocks.len(), call);
        for (k, sum) in spec.column_sums.iter().enumerate() {
            let scale = if sum.mean { T::one() / T::from_f64(rows as f64) } else { T::one() };
            let out = args[stored + k];
            self.with_output(out, |_, o| {
                for (c, slot) in o.iter_mut().enumerate() {
                    let total = (0..blocks.len())
                        .fold(T::zero(), |acc, blk| acc + partials[(blk * sums + k) * cols + c]);
                    *slot = total * scale;
                }
            });
        }
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
        if let Some(b) =
            self.inputs.set(&program.plan, name, data.len())?.and_then(|id| self.buffer_of.get(&id))
        {
            self.buffers[*b][..data.len()].copy_from_slice(data);
        }
        Ok(())
    }

    fn run(&mut self, phase: usize) -> Result<(), Error> {
        let program = Arc::clone(&self.program);
        self.inputs.ready(&program.plan, phase)?;
        // The whole run executes on a worker: one hand-off per run instead of one per
        // parallel step, and the calling worker takes part in every step's blocks.
        program.pool.install(|| {
            for (u, unit) in program.plan.units.iter().enumerate() {
                if unit.phase == Phase::Run(phase) {
                    let start = self.profile.is_some().then(Instant::now);
                    self.execute(u);
                    natgrad_lower::record(&mut self.profile, u, unit.work.kind(), start);
                }
            }
        });
        Ok(())
    }

    fn read(&self, index: usize, out: &mut [T]) -> Result<(), Error> {
        let node = self.inputs.output(self.plan(), index, out.len())?;
        out.copy_from_slice(self.value(node));
        Ok(())
    }

    fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(Profile::new);
    }

    fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }
}
