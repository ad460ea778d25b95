//! Compiled models as optimisation problems: batches drawn from data sets, the metric on a
//! batch of its own (section 7), and Martens' sparse initialisation.

use natgrad_data::{BatchStream, Dataset};
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
        let mut problem = ModelProblem {
            model: model.clone(),
            gradient,
            loss,
            fisher,
            gradient_inputs: to_elements(&inputs.data),
            gradient_targets: targets.as_ref().map(|t| to_elements(&t.data)).unwrap_or_default(),
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
                return;
            }
            MetricSource::OtherBatch => (&self.inputs, self.targets.as_ref()),
            MetricSource::Unlabeled(d) => (d, None),
        };
        let mut rows = Vec::new();
        let indices: Option<Vec<usize>> = self.metric_stream.as_mut().map(|s| s.next_indices().to_vec());
        match &indices {
            Some(indices) => source.gather(indices, &mut rows),
            None => rows.clone_from(&source.data),
        }
        self.metric_inputs = to_elements(&rows);
        if let Some(targets) = targets {
            match &indices {
                Some(indices) => targets.gather(indices, &mut rows),
                None => rows.clone_from(&targets.data),
            }
            self.metric_targets = to_elements(&rows);
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
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
        self.gradient.loss_and_gradient(theta, &self.gradient_inputs, targets, grad).map_err(boxed)
    }

    fn loss(&mut self, theta: &Vec<T>) -> Result<f64, OpError> {
        let targets = (!self.model.is_autoencoder()).then_some(self.gradient_targets.as_slice());
        self.loss.loss(theta, &self.gradient_inputs, targets).map_err(boxed)
    }

    fn prepare_metric(&mut self, theta: &Vec<T>) -> Result<(), OpError> {
        let needs_targets = self.batching.metric_kind != MetricKind::Fisher && !self.model.is_autoencoder();
        let targets = needs_targets.then_some(self.metric_targets.as_slice());
        self.fisher.prepare_with_targets(theta, &self.metric_inputs, targets).map_err(boxed)
    }

    fn metric_product(&mut self, v: &Vec<T>, out: &mut Vec<T>) -> Result<(), OpError> {
        self.metric_products += 1;
        self.fisher.apply(v, out).map_err(boxed)
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
        Ok(true)
    }

    fn next_batch(&mut self) {
        if let Some(stream) = &mut self.gradient_stream {
            let indices = stream.next_indices().to_vec();
            let mut rows = Vec::new();
            self.inputs.gather(&indices, &mut rows);
            self.gradient_inputs = to_elements(&rows);
            if let Some(targets) = &self.targets {
                targets.gather(&indices, &mut rows);
                self.gradient_targets = to_elements(&rows);
            }
        }
        self.fill_metric_batch();
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
