//! Compiled model functions: the Fisher product (prepare once per metric batch, apply many
//! times), loss and gradient, and the loss alone — on the device the options name.
//!
//! Every function here goes through [`compile_graph`]: the process-wide [`compile_cache`],
//! then [`Plan::build`] (simplifier and lowering, shared by every backend), then the
//! device's [`Backend`]. Compiled functions are `Send`; [`FisherProduct::fork`] shares one
//! compiled program between threads.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use natgrad_autodiff::{METRIC_INPUT, fisher_product, gradient};
use natgrad_ir::{Graph, Model, ParamLayout, Scalar};
use natgrad_lower::{Backend, CacheKey, CompileCache, Executable, Partition, Plan, Session};

pub use natgrad_lower::{CompileOptions, Device};

/// Errors of compiled functions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building the graph failed.
    #[error(transparent)]
    Ir(#[from] natgrad_ir::Error),
    /// Differentiation failed.
    #[error(transparent)]
    Autodiff(#[from] natgrad_autodiff::Error),
    /// Lowering, compiling or running failed.
    #[error(transparent)]
    Backend(#[from] natgrad_lower::Error),
    /// A vector or batch of the wrong length.
    #[error("{what}: expected {expected}, got {got} values")]
    Length {
        /// Which argument.
        what: String,
        /// The length (or multiple) expected.
        expected: String,
        /// The length given.
        got: usize,
    },
    /// `apply` before `prepare`.
    #[error("call prepare(params, metric_batch) before apply")]
    NotPrepared,
    /// Splitting a batch over processes, or communicating between them, failed.
    #[error(transparent)]
    Distributed(#[from] natgrad_dist::CommError),
}

/// Where compile time went, in total.
#[derive(Clone, Debug, Default)]
pub struct CompileReport {
    /// Building the model's derivative graph (autodiff).
    pub autodiff: Duration,
    /// Simplifier.
    pub simplify: Duration,
    /// Lowering to kernels and host steps.
    pub lower: Duration,
    /// Code generation.
    pub codegen: Duration,
    /// Fused kernels generated.
    pub kernels: usize,
}

impl CompileReport {
    fn new<T: Scalar>(autodiff: Duration, program: &dyn Executable<T>) -> CompileReport {
        let plan = program.plan();
        CompileReport {
            autodiff,
            simplify: plan.times.simplify,
            lower: plan.times.lower,
            codegen: program.codegen_time(),
            kernels: plan.kernel_count(),
        }
    }

    /// Total compile time.
    pub fn total(&self) -> Duration {
        self.autodiff + self.simplify + self.lower + self.codegen
    }
}

/// Programs kept by [`compile_graph`] unless the caller changes it.
const CACHE_CAPACITY: usize = 32;

static CACHE: LazyLock<Mutex<CompileCache>> = LazyLock::new(|| Mutex::new(CompileCache::new(CACHE_CAPACITY)));

/// The process-wide cache of compiled programs (32 by default; `set_capacity(0)` turns it
/// off, `clear()` drops every program no compiled function still holds).
pub fn compile_cache() -> &'static Mutex<CompileCache> {
    &CACHE
}

/// Work to run with a GPU's optimizer vectors ([`with_device_vectors`]): generic over the
/// vector backend, so the caller never names it.
pub trait DeviceWork<T: Scalar> {
    /// What the work returns.
    type Output;
    /// Runs with `ops`, the device's vector operations.
    fn run<O>(self, ops: O) -> Self::Output
    where
        O: natgrad_optim::Transfer<T> + Clone + 'static,
        <O as natgrad_optim::VectorOps>::Vector: std::any::Any;
}

/// Runs `work` with the optimizer vectors of GPU `device` (the CUDA backend's device
/// vectors, or the PTX simulator's). With `backend`, the only place naming a backend type.
/// The CPU has no device vectors (its problems use host vectors directly): asking for them
/// is an error.
pub fn with_device_vectors<T: Scalar, W: DeviceWork<T>>(device: Device, work: W) -> Result<W::Output, Error> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => Ok(work.run(natgrad_cuda::cuda_vectors::<T>(ordinal)?)),
        Device::Sim => Ok(work.run(natgrad_ptx_sim::sim_vectors::<T>()?)),
        _ => {
            let _ = work;
            Err(natgrad_lower::Error::Device {
                device: device.to_string(),
                why: "no device vectors here (the CPU uses host vectors; a GPU needs a build with --features cuda)"
                    .into(),
            }
            .into())
        }
    }
}

/// The backend of `device`: the one place that names a backend type.
fn backend<T: Scalar>(device: Device) -> Result<Box<dyn Backend<T>>, Error> {
    match device {
        Device::Cpu => Ok(Box::new(natgrad_cpu::Cpu)),
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => Ok(Box::new(natgrad_cuda::Cuda { ordinal })),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(natgrad_lower::Error::Device {
            device: device.to_string(),
            why: "this build has no CUDA backend (build with --features cuda)".into(),
        }
        .into()),
        Device::Sim => Ok(Box::new(natgrad_ptx_sim::Simulator::default())),
    }
}

/// Compiles `graph` (its outputs are the program's outputs) for `options.device`, through
/// the [`compile_cache`]: the same graph, partition and options compile once per process.
pub fn compile_graph<T: Scalar>(
    graph: &Graph,
    partition: &Partition,
    options: &CompileOptions,
) -> Result<Arc<dyn Executable<T>>, Error> {
    let key = CacheKey::new(graph, T::DTYPE, partition, options);
    let cache = || CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(hit) = cache().get::<Arc<dyn Executable<T>>>(&key) {
        return Ok(hit);
    }
    let plan = Arc::new(Plan::build(graph, partition, T::DTYPE, options.simplify)?);
    let program = backend::<T>(options.device)?.compile(plan, options)?;
    // Another thread may have compiled the same graph meanwhile: the first one cached wins,
    // so every caller shares one program.
    let mut cache = cache();
    if let Some(first) = cache.get::<Arc<dyn Executable<T>>>(&key) {
        return Ok(first);
    }
    cache.insert(key, Arc::clone(&program));
    Ok(program)
}

/// Sessions per batch size, created on first use.
struct Sessions<T: Scalar> {
    program: Arc<dyn Executable<T>>,
    by_batch: HashMap<usize, Box<dyn Session<T>>>,
    profiling: bool,
}

impl<T: Scalar> Sessions<T> {
    fn new(program: Arc<dyn Executable<T>>) -> Sessions<T> {
        Sessions { program, by_batch: HashMap::new(), profiling: false }
    }

    fn get(&mut self, batch: usize) -> Result<&mut dyn Session<T>, Error> {
        if !self.by_batch.contains_key(&batch) {
            let mut session = Arc::clone(&self.program).session(batch)?;
            session.set_profiling(self.profiling);
            self.by_batch.insert(batch, session);
        }
        Ok(self.by_batch.get_mut(&batch).expect("inserted").as_mut())
    }

    /// Turns per-unit timing on (from zero) or off for every batch size, present and future.
    fn set_profiling(&mut self, on: bool) {
        self.profiling = on;
        self.by_batch.values_mut().for_each(|s| s.set_profiling(on));
    }

    /// Calls and time per unit at batch size `batch` since profiling was turned on.
    fn profile(&self, batch: usize) -> Option<natgrad_lower::Profile> {
        self.by_batch.get(&batch)?.profile().cloned()
    }

    /// Output 0 as a scalar.
    fn scalar(session: &dyn Session<T>) -> Result<f64, Error> {
        let mut value = [T::zero()];
        session.read(0, &mut value)?;
        Ok(value[0].as_f64())
    }
}

/// The batch size of `data` holding rows of `width` values.
fn batch_of(what: &str, data_len: usize, width: usize) -> Result<usize, Error> {
    if width == 0 || data_len == 0 || !data_len.is_multiple_of(width) {
        return Err(Error::Length {
            what: what.to_string(),
            expected: format!("a positive multiple of {width}"),
            got: data_len,
        });
    }
    Ok(data_len / width)
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<(), Error> {
    if expected != got {
        return Err(Error::Length { what: what.to_string(), expected: expected.to_string(), got });
    }
    Ok(())
}

fn set_params<T: Scalar>(
    session: &mut dyn Session<T>,
    layout: &ParamLayout,
    prefix: &str,
    theta: &[T],
) -> Result<(), Error> {
    for slot in layout.slots() {
        session.set(&format!("{prefix}{}", slot.name), &theta[slot.offset..slot.offset + slot.len()])?;
    }
    Ok(())
}

/// Values per example of `model`'s input (its last dimension).
pub fn input_width(model: &Model) -> usize {
    model.graph.shape(model.input).0.last().map_or(1, |d| d.resolve(1))
}

/// The compiled Fisher-vector product `v ↦ G v (+ λ v)` of a model (paper eq. 7, 8, 30).
pub struct FisherProduct<T: Scalar> {
    sessions: Sessions<T>,
    layout: ParamLayout,
    input_width: usize,
    /// Input names of the tangent `v` per parameter (`v.w1`, …), made once for `apply`.
    vector_names: Vec<String>,
    prepared: Option<usize>,
    /// Compile-time breakdown.
    pub report: CompileReport,
}

/// Which curvature matrix a metric product multiplies by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricKind {
    /// The Fisher information (eq. 7, 8, 30) — needs no targets.
    #[default]
    Fisher,
    /// The extended Gauss-Newton matrix of the loss as written (eq. 10).
    GaussNewton,
    /// TONGA's empirical Fisher, the uncentred covariance of per-example gradients (eq. 9) —
    /// needs targets for the metric batch unless the model is an autoencoder.
    EmpiricalFisher,
}

/// Compiles the model's Fisher product once: autodiff, simplify, lower, JIT.
pub fn compile_fisher_product<T: Scalar>(
    model: &Model,
    options: &CompileOptions,
) -> Result<FisherProduct<T>, Error> {
    compile_metric_product(model, MetricKind::Fisher, options)
}

/// Compiles a metric product of the chosen kind (same interface as the Fisher product).
pub fn compile_metric_product<T: Scalar>(
    model: &Model,
    kind: MetricKind,
    options: &CompileOptions,
) -> Result<FisherProduct<T>, Error> {
    let start = Instant::now();
    let product = match kind {
        MetricKind::Fisher => fisher_product(model)?,
        MetricKind::GaussNewton => natgrad_autodiff::gauss_newton_product(model)?,
        MetricKind::EmpiricalFisher => natgrad_autodiff::empirical_fisher_product(model)?,
    };
    let autodiff = start.elapsed();
    let program = compile_graph(&product.graph, &Partition::new(product.phases()), options)?;
    Ok(FisherProduct {
        report: CompileReport::new(autodiff, program.as_ref()),
        sessions: Sessions::new(program),
        layout: model.layout.clone(),
        input_width: input_width(model),
        vector_names: product.vector_names(),
        prepared: None,
    })
}

impl<T: Scalar> FisherProduct<T> {
    /// Runs the forward pass on the metric batch (row-major `[B, n_in]`) and caches the
    /// activations; `B` is taken from the batch's length.
    pub fn prepare(&mut self, params: &[T], metric_batch: &[T]) -> Result<(), Error> {
        self.prepare_with_targets(params, metric_batch, None)
    }

    /// [`FisherProduct::prepare`] for metrics that need the metric batch's targets (the
    /// empirical Fisher and Gauss-Newton of non-autoencoders).
    pub fn prepare_with_targets(
        &mut self,
        params: &[T],
        metric_batch: &[T],
        targets: Option<&[T]>,
    ) -> Result<(), Error> {
        check_len("params", self.layout.len(), params.len())?;
        let batch = batch_of("metric batch", metric_batch.len(), self.input_width)?;
        let session = self.sessions.get(batch)?;
        set_params(session, &self.layout, "", params)?;
        session.set(METRIC_INPUT, metric_batch)?;
        if let Some(targets) = targets {
            session.set(natgrad_autodiff::METRIC_TARGETS, targets)?;
        }
        session.run(0)?;
        self.prepared = Some(batch);
        Ok(())
    }

    /// `gv = G v` for the prepared parameters and metric batch: one tangent pass and one
    /// backward pass, no forward pass.
    pub fn apply(&mut self, v: &[T], gv: &mut [T]) -> Result<(), Error> {
        self.apply_damped(v, 0.0, gv)
    }

    /// `gv = (G + λ I) v`.
    pub fn apply_damped(&mut self, v: &[T], damping: f64, gv: &mut [T]) -> Result<(), Error> {
        check_len("v", self.layout.len(), v.len())?;
        check_len("gv", self.layout.len(), gv.len())?;
        let batch = self.prepared.ok_or(Error::NotPrepared)?;
        let session = self.sessions.get(batch)?;
        for (slot, name) in self.layout.slots().iter().zip(&self.vector_names) {
            session.set(name, &v[slot.offset..slot.offset + slot.len()])?;
        }
        session.run(1)?;
        for (i, slot) in self.layout.slots().iter().enumerate() {
            session.read(i, &mut gv[slot.offset..slot.offset + slot.len()])?;
        }
        if damping != 0.0 {
            let lambda = T::from_f64(damping);
            gv.iter_mut().zip(v).for_each(|(g, &vi)| *g = *g + lambda * vi);
        }
        Ok(())
    }

    /// `gv = G v` with `v` and `gv` in the device's memory (vectors of the backend's own
    /// type, e.g. the CUDA backend's device vectors of this product's length): the tangent
    /// inputs and the results are copied on the device, nothing goes through the host. The
    /// CPU backend has no device vectors (an error: use [`FisherProduct::apply`]).
    pub fn apply_on_device(
        &mut self,
        v: &dyn std::any::Any,
        gv: &mut dyn std::any::Any,
    ) -> Result<(), Error> {
        let batch = self.prepared.ok_or(Error::NotPrepared)?;
        let session = self.sessions.get(batch)?;
        for (slot, name) in self.layout.slots().iter().zip(&self.vector_names) {
            session.set_from_device(name, v, slot.offset, slot.len())?;
        }
        session.run(1)?;
        for (i, slot) in self.layout.slots().iter().enumerate() {
            session.read_to_device(i, gv, slot.offset, slot.len())?;
        }
        Ok(())
    }

    /// A product sharing this one's compiled program, with its own buffers (not prepared):
    /// one per worker thread.
    pub fn fork(&self) -> FisherProduct<T> {
        FisherProduct {
            sessions: Sessions::new(Arc::clone(&self.sessions.program)),
            layout: self.layout.clone(),
            input_width: self.input_width,
            vector_names: self.vector_names.clone(),
            prepared: None,
            report: self.report.clone(),
        }
    }

    /// Bytes of the memory plan for the prepared batch size.
    pub fn peak_bytes(&mut self) -> Option<usize> {
        let batch = self.prepared?;
        self.sessions.get(batch).ok().map(|s| s.peak_bytes())
    }

    /// The optimized graph that was compiled.
    pub fn graph(&self) -> &Graph {
        &self.sessions.program.plan().graph
    }

    /// The plan that was compiled: its units are the ones [`FisherProduct::profile`] times.
    pub fn plan(&self) -> &natgrad_lower::Plan {
        self.sessions.program.plan()
    }

    /// Calls and time per unit (summed by kind with `Profile::by_kind`) spent in `apply`
    /// calls since the last `prepare`, when profiling is on (see
    /// [`FisherProduct::set_profiling`]).
    pub fn profile(&mut self) -> Option<natgrad_lower::Profile> {
        self.sessions.profile(self.prepared?)
    }

    /// Turns per-unit timing on (from zero) or off.
    pub fn set_profiling(&mut self, on: bool) {
        self.sessions.set_profiling(on);
    }
}

/// The compiled loss and gradient of a model on a batch.
pub struct Gradient<T: Scalar> {
    sessions: Sessions<T>,
    model: Model,
    input_width: usize,
    /// Compile-time breakdown.
    pub report: CompileReport,
}

/// Compiles the model's loss and gradient.
pub fn compile_gradient<T: Scalar>(model: &Model, options: &CompileOptions) -> Result<Gradient<T>, Error> {
    compile_gradient_like(model, options, |m| Ok(gradient(m)?.graph))
}

/// Compiles a graph with the gradient's inputs and `[loss, per-param…]` outputs.
fn compile_gradient_like<T: Scalar>(
    model: &Model,
    options: &CompileOptions,
    build: impl FnOnce(&Model) -> Result<Graph, Error>,
) -> Result<Gradient<T>, Error> {
    let start = Instant::now();
    let graph = build(model)?;
    let autodiff = start.elapsed();
    let program = compile_graph(&graph, &Partition::single(), options)?;
    Ok(Gradient {
        report: CompileReport::new(autodiff, program.as_ref()),
        sessions: Sessions::new(program),
        model: model.clone(),
        input_width: input_width(model),
    })
}

/// Compiles `(1/N) Σᵢ gᵢ ⊙ gᵢ` (the diagonal of the empirical Fisher, Martens' HF
/// preconditioner): the same interface as the gradient, with the squares in place of it.
pub fn compile_squared_gradients<T: Scalar>(
    model: &Model,
    options: &CompileOptions,
) -> Result<Gradient<T>, Error> {
    compile_gradient_like(model, options, |m| Ok(natgrad_autodiff::squared_gradients(m)?.graph))
}

fn bind_batch<T: Scalar>(
    sessions: &mut Sessions<T>,
    model: &Model,
    width: usize,
    params: &[T],
    inputs: &[T],
    targets: Option<&[T]>,
) -> Result<usize, Error> {
    check_len("params", model.layout.len(), params.len())?;
    let batch = batch_of("inputs", inputs.len(), width)?;
    let session = sessions.get(batch)?;
    set_params(session, &model.layout, "", params)?;
    session.set(model.input_name(), inputs)?;
    if !model.is_autoencoder() {
        let targets = targets.ok_or_else(|| Error::Length {
            what: format!("targets '{}'", model.targets_name()),
            expected: "a targets batch".into(),
            got: 0,
        })?;
        session.set(model.targets_name(), targets)?;
    }
    session.run(0)?;
    Ok(batch)
}

impl<T: Scalar> Gradient<T> {
    /// Writes ∂L/∂θ into `grad` and returns the loss (targets are ignored for autoencoders).
    pub fn loss_and_gradient(
        &mut self,
        params: &[T],
        inputs: &[T],
        targets: Option<&[T]>,
        grad: &mut [T],
    ) -> Result<f64, Error> {
        check_len("grad", self.model.layout.len(), grad.len())?;
        let batch = bind_batch(&mut self.sessions, &self.model, self.input_width, params, inputs, targets)?;
        let session = self.sessions.get(batch)?;
        for (i, slot) in self.model.layout.slots().iter().enumerate() {
            session.read(i + 1, &mut grad[slot.offset..slot.offset + slot.len()])?;
        }
        Sessions::scalar(session)
    }

    /// Calls and time per unit at batch size `batch` since profiling was turned on.
    pub fn profile(&self, batch: usize) -> Option<natgrad_lower::Profile> {
        self.sessions.profile(batch)
    }

    /// The plan that was compiled: its units are the ones the profile times.
    pub fn plan(&self) -> &natgrad_lower::Plan {
        self.sessions.program.plan()
    }

    /// Turns per-unit timing on (from zero) or off.
    pub fn set_profiling(&mut self, on: bool) {
        self.sessions.set_profiling(on);
    }
}

/// The compiled loss of a model.
pub struct Loss<T: Scalar> {
    sessions: Sessions<T>,
    model: Model,
    input_width: usize,
}

/// Compiles the model's loss.
pub fn compile_loss<T: Scalar>(model: &Model, options: &CompileOptions) -> Result<Loss<T>, Error> {
    let program = compile_graph(&model.graph, &Partition::single(), options)?;
    Ok(Loss { sessions: Sessions::new(program), model: model.clone(), input_width: input_width(model) })
}

impl<T: Scalar> Loss<T> {
    /// The loss on a batch.
    pub fn loss(&mut self, params: &[T], inputs: &[T], targets: Option<&[T]>) -> Result<f64, Error> {
        let batch = bind_batch(&mut self.sessions, &self.model, self.input_width, params, inputs, targets)?;
        Sessions::scalar(self.sessions.get(batch)?)
    }

    /// Calls and time per unit at batch size `batch` since profiling was turned on.
    pub fn profile(&self, batch: usize) -> Option<natgrad_lower::Profile> {
        self.sessions.profile(batch)
    }

    /// The plan that was compiled: its units are the ones the profile times.
    pub fn plan(&self) -> &natgrad_lower::Plan {
        self.sessions.program.plan()
    }

    /// Turns per-unit timing on (from zero) or off.
    pub fn set_profiling(&mut self, on: bool) {
        self.sessions.set_profiling(on);
    }
}

/// The autoencoder reconstruction error `Σᵤ (yᵤ − xᵤ)²`, averaged over examples (no ½, not
/// divided by the units: the error the Curves papers report).
pub struct ReconstructionError<T: Scalar> {
    sessions: Sessions<T>,
    layout: ParamLayout,
    input: String,
    width: usize,
}

/// Compiles the reconstruction error of an autoencoder.
pub fn compile_reconstruction_error<T: Scalar>(
    model: &Model,
    options: &CompileOptions,
) -> Result<ReconstructionError<T>, Error> {
    use natgrad_ir::{Binary, Op, Provenance, Reduce, Unary};
    let (mut graph, map) = model.graph.extract(&[model.output], |op| op.clone())?;
    let (x, y) = (
        map[model.input.index()].expect("input feeds the output"),
        map[model.output.index()].expect("extracted"),
    );
    let none = Provenance::default;
    let diff = graph.add_with(Op::Binary(Binary::Sub), &[y, x], none())?;
    let square = graph.add_with(Op::Unary(Unary::Square), &[diff], none())?;
    let per_example = graph.add_with(
        Op::Reduce { kind: Reduce::Sum, axes: vec![1], keep_dims: false },
        &[square],
        none(),
    )?;
    let mean = graph.add_with(
        Op::Reduce { kind: Reduce::Mean, axes: vec![0], keep_dims: false },
        &[per_example],
        none(),
    )?;
    graph.set_outputs(vec![mean]);
    let program = compile_graph(&graph, &Partition::single(), options)?;
    Ok(ReconstructionError {
        sessions: Sessions::new(program),
        layout: model.layout.clone(),
        input: model.input_name().to_string(),
        width: input_width(model),
    })
}

impl<T: Scalar> ReconstructionError<T> {
    /// The error over all of `inputs`, evaluated in chunks of at most `chunk` examples.
    pub fn error(&mut self, params: &[T], inputs: &[T], chunk: usize) -> Result<f64, Error> {
        let total = batch_of("inputs", inputs.len(), self.width)?;
        let mut sum = 0.0;
        for rows in inputs.chunks(chunk.max(1) * self.width) {
            let batch = rows.len() / self.width;
            let session = self.sessions.get(batch)?;
            set_params(session, &self.layout, "", params)?;
            session.set(&self.input, rows)?;
            session.run(0)?;
            sum += Sessions::scalar(session)? * batch as f64;
        }
        Ok(sum / total as f64)
    }
}

/// The compiled network output `y` (the predictions) of a model.
pub struct Outputs<T: Scalar> {
    sessions: Sessions<T>,
    layout: ParamLayout,
    input: String,
    width: usize,
    units: usize,
}

/// Compiles the output `y` of `model` as a function of its input and parameters.
pub fn compile_outputs<T: Scalar>(model: &Model, options: &CompileOptions) -> Result<Outputs<T>, Error> {
    let (mut graph, map) = model.graph.extract(&[model.output], |op| op.clone())?;
    graph.set_outputs(vec![map[model.output.index()].expect("extracted")]);
    let program = compile_graph(&graph, &Partition::single(), options)?;
    Ok(Outputs {
        sessions: Sessions::new(program),
        layout: model.layout.clone(),
        input: model.input_name().to_string(),
        width: input_width(model),
        units: model.graph.shape(model.output).0.last().map_or(1, |d| d.resolve(1)),
    })
}

impl<T: Scalar> Outputs<T> {
    /// Output units per example.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The outputs for all of `inputs` (row-major, `units` per example), computed in chunks
    /// of at most `chunk` examples.
    pub fn outputs(&mut self, params: &[T], inputs: &[T], chunk: usize) -> Result<Vec<T>, Error> {
        let total = batch_of("inputs", inputs.len(), self.width)?;
        let mut out = vec![T::zero(); total * self.units];
        for (rows, dest) in
            inputs.chunks(chunk.max(1) * self.width).zip(out.chunks_mut(chunk.max(1) * self.units))
        {
            let session = self.sessions.get(rows.len() / self.width)?;
            set_params(session, &self.layout, "", params)?;
            session.set(&self.input, rows)?;
            session.run(0)?;
            session.read(0, dest)?;
        }
        Ok(out)
    }
}
