//! Compiled models as optimisation problems: batches drawn from data sets, the metric on a
//! batch of its own (section 7), data-parallel shards of every batch, and Martens' sparse
//! initialisation.
//!
//! Data-parallel: every process draws the same batch indices (same seeds) and computes on its
//! own contiguous shard of them ([`natgrad_dist::shard`]); loss, gradient and metric products
//! are weighted by the shard's fraction of the batch and summed over processes, so every
//! process sees the single-process values (up to the order of the sums).

use std::rc::Rc;

use natgrad_data::{BatchStream, Dataset};
use natgrad_dist::{Communicator, Solo};
use natgrad_ir::Scalar;
use natgrad_ir::{Model, ParamLayout};
use natgrad_optim::{HostOf, OpError, Problem};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::compile::{
    CompileOptions, Error, FisherProduct, Gradient, Loss, MetricKind, compile_gradient, compile_loss,
    compile_metric_product, compile_squared_gradients,
};

/// Where the metric batch comes from.
#[derive(Clone, Debug)]
pub enum MetricSource {
    /// The gradient batch itself.
    SameBatch,
    /// A batch of the training set drawn independently of the gradient batch.
    OtherBatch,
    /// A batch of a separate (possibly unlabeled) data set.
    Unlabeled(Dataset),
}

/// Batch sizes and metric source; `None` sizes mean the whole training set.
#[derive(Clone, Debug)]
pub struct Batching {
    /// Gradient batch size (None: full batch).
    pub gradient: Option<usize>,
    /// Metric batch size (None: the gradient batch's size).
    pub metric: Option<usize>,
    /// Where metric batches come from.
    pub source: MetricSource,
    /// Seed of the batch streams.
    pub seed: u64,
    /// The curvature matrix (Fisher by default; the empirical Fisher gives TONGA-style NGD).
    pub metric_kind: MetricKind,
    /// Gradient batches in stored order instead of shuffled (online learning).
    pub in_order: bool,
}

/// A compiled model on a data set, as seen by the optimizers.
pub struct ModelProblem<T: Scalar> {
    model: Model,
    gradient: Gradient<T>,
    loss: Loss<T>,
    fisher: FisherProduct<T>,
    inputs: Dataset,
    targets: Option<Dataset>,
    batching: Batching,
    options: CompileOptions,
    gradient_stream: Option<BatchStream>,
    metric_stream: Option<BatchStream>,
    gradient_inputs: Vec<T>,
    gradient_targets: Vec<T>,
    metric_inputs: Vec<T>,
    metric_targets: Vec<T>,
    ops: HostOf<T>,
    squares: Option<Gradient<T>>,
    communicator: Rc<dyn Communicator>,
    /// This process's fraction of the gradient batch and of the metric batch.
    gradient_share: f64,
    metric_share: f64,
    /// Metric products computed so far.
    pub metric_products: usize,
    /// Compile time of the three compiled functions, in seconds.
    pub compile_seconds: f64,
}

fn to_elements<T: Scalar>(data: &[f32]) -> Vec<T> {
    data.iter().map(|&v| T::from_f64(v as f64)).collect()
}

impl<T: Scalar> ModelProblem<T> {
    /// Compiles the model's loss, gradient and Fisher product for training on `inputs`
    /// (with `targets`, unless the model is an autoencoder).
    pub fn new(
        model: &Model,
        inputs: Dataset,
        targets: Option<Dataset>,
        batching: Batching,
    ) -> Result<ModelProblem<T>, Error> {
        ModelProblem::with_options(model, inputs, targets, batching, &CompileOptions::default())
    }

    /// [`ModelProblem::new`] compiled with `options` (device, threads, …).
    pub fn with_options(
        model: &Model,
        inputs: Dataset,
        targets: Option<Dataset>,
        batching: Batching,
        options: &CompileOptions,
    ) -> Result<ModelProblem<T>, Error> {
        ModelProblem::sharded(model, inputs, targets, batching, options, Rc::new(Solo))
    }

    /// [`ModelProblem::with_options`] as one process of `communicator`'s group: each batch is
    /// split over the processes, which must all make this call with the same arguments.
    pub fn sharded(
        model: &Model,
        inputs: Dataset,
        targets: Option<Dataset>,
        batching: Batching,
        options: &CompileOptions,
        communicator: Rc<dyn Communicator>,
    ) -> Result<ModelProblem<T>, Error> {
        let start = std::time::Instant::now();
        let options = options.clone();
        let gradient = compile_gradient::<T>(model, &options)?;
        let loss = compile_loss::<T>(model, &options)?;
        let fisher = compile_metric_product::<T>(model, batching.metric_kind, &options)?;
        let n = inputs.len();
        let gradient_stream = batching.gradient.filter(|&b| b < n).map(|b| match batching.in_order {
            true => BatchStream::in_order(n, b),
            false => BatchStream::new(n, b, batching.seed),
        });
        let metric_len = match &batching.source {
            MetricSource::Unlabeled(d) => d.len(),
            _ => n,
        };
        let metric_size = batching.metric.or(batching.gradient).unwrap_or(metric_len).min(metric_len);
        let metric_stream = match batching.source {
            MetricSource::SameBatch => None,
            _ => (metric_size < metric_len)
                .then(|| BatchStream::new(metric_len, metric_size, batching.seed ^ 0x5EED)),
        };
        let gradient_size = gradient_stream.as_ref().map_or(n, BatchStream::batch);
        natgrad_dist::shard(communicator.as_ref(), "gradient batch", gradient_size)?;
        natgrad_dist::shard(communicator.as_ref(), "metric batch", metric_size)?;
        // Until the first `next_batch`, the gradient batch is the whole training set.
        let (first_inputs, gradient_share) = shard_rows(communicator.as_ref(), &inputs, None);
        let first_targets = targets.as_ref().map(|t| shard_rows(communicator.as_ref(), t, None).0);
        let mut problem = ModelProblem {
            model: model.clone(),
            gradient,
            loss,
            fisher,
            gradient_inputs: to_elements(&first_inputs),
            gradient_targets: first_targets.as_deref().map(to_elements).unwrap_or_default(),
            metric_inputs: Vec::new(),
            metric_targets: Vec::new(),
            inputs,
            targets,
            batching,
            options,
            gradient_stream,
            metric_stream,
            ops: HostOf::new(),
            squares: None,
            gradient_share,
            metric_share: 1.0,
            communicator,
            metric_products: 0,
            compile_seconds: start.elapsed().as_secs_f64(),
        };
        problem.fill_metric_batch();
        Ok(problem)
    }

    fn fill_metric_batch(&mut self) {
        // A fixed metric batch (the whole set, or the gradient batch of a full-batch run) is
        // converted once, not every iteration.
        let fixed = match self.batching.source {
            MetricSource::SameBatch => self.gradient_stream.is_none(),
            _ => self.metric_stream.is_none(),
        };
        if fixed && !self.metric_inputs.is_empty() {
            return;
        }
        let (source, targets) = match &self.batching.source {
            MetricSource::SameBatch => {
                self.metric_inputs.clone_from(&self.gradient_inputs);
                self.metric_targets.clone_from(&self.gradient_targets);
                self.metric_share = self.gradient_share;
                return;
            }
            MetricSource::OtherBatch => (&self.inputs, self.targets.as_ref()),
            MetricSource::Unlabeled(d) => (d, None),
        };
        let indices: Option<Vec<usize>> = self.metric_stream.as_mut().map(|s| s.next_indices().to_vec());
        let (inputs, share) = shard_rows(self.communicator.as_ref(), source, indices.as_deref());
        self.metric_inputs = to_elements(&inputs);
        self.metric_share = share;
        if let Some(targets) = targets {
            self.metric_targets =
                to_elements(&shard_rows(self.communicator.as_ref(), targets, indices.as_deref()).0);
        }
    }

    /// Weights this process's `values` (and `loss`) by `share` and sums them over processes.
    fn sum_shards(&self, share: f64, values: &mut Vec<T>, loss: f64) -> Result<f64, OpError> {
        natgrad_dist::weighted_sum(self.communicator.as_ref(), share, values)?;
        self.sum_loss(loss, share)
    }

    /// `loss` weighted by `share` and summed over processes.
    fn sum_loss(&self, loss: f64, share: f64) -> Result<f64, OpError> {
        let mut loss = vec![loss];
        natgrad_dist::weighted_sum(self.communicator.as_ref(), share, &mut loss)?;
        Ok(loss[0])
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Processes in this problem's group.
    pub(crate) fn processes(&self) -> usize {
        self.communicator.size()
    }

    /// [`Problem::metric_product`] on vectors in the device's memory (one process only:
    /// [`crate::device_problem::DeviceProblem`] checks).
    pub(crate) fn metric_product_on_device(
        &mut self,
        v: &dyn std::any::Any,
        out: &mut dyn std::any::Any,
    ) -> Result<(), OpError> {
        self.metric_products += 1;
        self.fisher.apply_on_device(v, out).map_err(boxed)
    }
}

fn boxed(e: Error) -> OpError {
    Box::new(e)
}

impl<T: Scalar> Problem for ModelProblem<T> {
    type Ops = HostOf<T>;

    fn ops(&self) -> &HostOf<T> {
        &self.ops
    }

    fn loss_and_gradient(&mut self, theta: &Vec<T>, grad: &mut Vec<T>) -> Result<f64, OpError> {
        let targets = (!self.model.is_autoencoder()).then_some(self.gradient_targets.as_slice());
        let loss =
            self.gradient.loss_and_gradient(theta, &self.gradient_inputs, targets, grad).map_err(boxed)?;
        self.sum_shards(self.gradient_share, grad, loss)
    }

    fn loss(&mut self, theta: &Vec<T>) -> Result<f64, OpError> {
        let targets = (!self.model.is_autoencoder()).then_some(self.gradient_targets.as_slice());
        let loss = self.loss.loss(theta, &self.gradient_inputs, targets).map_err(boxed)?;
        self.sum_loss(loss, self.gradient_share)
    }

    fn prepare_metric(&mut self, theta: &Vec<T>) -> Result<(), OpError> {
        let needs_targets = self.batching.metric_kind != MetricKind::Fisher && !self.model.is_autoencoder();
        let targets = needs_targets.then_some(self.metric_targets.as_slice());
        self.fisher.prepare_with_targets(theta, &self.metric_inputs, targets).map_err(boxed)
    }

    fn metric_product(&mut self, v: &Vec<T>, out: &mut Vec<T>) -> Result<(), OpError> {
        self.metric_products += 1;
        self.fisher.apply(v, out).map_err(boxed)?;
        Ok(natgrad_dist::weighted_sum(self.communicator.as_ref(), self.metric_share, out)?)
    }

    fn squared_gradients(&mut self, theta: &Vec<T>, out: &mut Vec<T>) -> Result<bool, OpError> {
        if self.squares.is_none() {
            match compile_squared_gradients::<T>(&self.model, &self.options) {
                Ok(compiled) => self.squares = Some(compiled),
                // Not a dense network: the squares are not available, so no preconditioner.
                Err(Error::Autodiff(natgrad_autodiff::Error::Arguments { .. })) => return Ok(false),
                Err(e) => return Err(boxed(e)),
            }
        }
        let targets = (!self.model.is_autoencoder()).then_some(self.gradient_targets.as_slice());
        let squares = self.squares.as_mut().expect("compiled above");
        squares.loss_and_gradient(theta, &self.gradient_inputs, targets, out).map_err(boxed)?;
        natgrad_dist::weighted_sum(self.communicator.as_ref(), self.gradient_share, out)?;
        Ok(true)
    }

    fn next_batch(&mut self) {
        if let Some(stream) = &mut self.gradient_stream {
            let indices = stream.next_indices().to_vec();
            let communicator = self.communicator.as_ref();
            let (inputs, share) = shard_rows(communicator, &self.inputs, Some(&indices));
            self.gradient_inputs = to_elements(&inputs);
            self.gradient_share = share;
            if let Some(targets) = &self.targets {
                self.gradient_targets = to_elements(&shard_rows(communicator, targets, Some(&indices)).0);
            }
        }
        self.fill_metric_batch();
    }

    fn decide_together(&mut self, decision: bool) -> Result<bool, OpError> {
        Ok(natgrad_dist::agree(self.communicator.as_ref(), decision)?)
    }
}

/// This process's shard of the batch `indices` of `set` (all of `set` when `None`), and its
/// fraction of the batch. Batch sizes were checked against the group size when the problem
/// was made.
fn shard_rows(communicator: &dyn Communicator, set: &Dataset, indices: Option<&[usize]>) -> (Vec<f32>, f64) {
    let len = indices.map_or(set.len(), <[usize]>::len);
    let range = natgrad_dist::shard(communicator, "batch", len)
        .expect("batch sizes checked in ModelProblem::sharded");
    let share = range.len() as f64 / len as f64;
    match indices {
        Some(indices) => {
            let mut out = Vec::new();
            set.gather(&indices[range], &mut out);
            (out, share)
        }
        None => (set.data[range.start * set.width..range.end * set.width].to_vec(), share),
    }
}

/// Martens' sparse initialisation: for each receiving unit, 15 incoming weights with
/// source indices drawn with replacement, values N(0, 1); every other weight and all
/// biases 0. Weights are the rank-2 slots of the layout.
pub fn sparse_init<T: Scalar>(layout: &ParamLayout, seed: u64) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut theta = vec![T::zero(); layout.len()];
    for slot in layout.slots().iter().filter(|s| s.shape.len() == 2) {
        let (fan_in, fan_out) = (slot.shape[0], slot.shape[1]);
        for unit in 0..fan_out {
            for _ in 0..15.min(fan_in) {
                let source = rng.random_range(0..fan_in);
                // Box–Muller: a standard normal from two uniforms.
                let (u1, u2): (f64, f64) =
                    (rng.random_range(f64::MIN_POSITIVE..1.0), rng.random_range(0.0..1.0));
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                theta[slot.offset + source * fan_out + unit] = T::from_f64(z);
            }
        }
    }
    theta
}
