//! `natgrad bench curves`: the paper's section-10 benchmark (Figure 3) on Curves
//! (regenerated): NGD, NGD-L, NCG-L, NCG-F, SGD and Hessian-free train the Curves
//! autoencoder under a wall-clock budget each; the training squared error is measured on
//! the whole training set at log-spaced iterations and the test error at the end.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use natgrad_data::{Curves, CurvesOptions, Dataset};
use natgrad_dist::{Communicator, Solo};
use natgrad_optim::{
    Conjugacy, Damping, HessianFree, Ncg, Ngd, Optimizer, Problem, SecondOrder, Sgd, Solver, StepSize,
    StopWhen, Transfer, VectorOps, train,
};

use natgrad_ir::{Model, ParamLayout};

use crate::compile::{CompileOptions, Device, MetricKind, ReconstructionError, compile_reconstruction_error};
use crate::device_problem::DeviceProblem;
use crate::plot::{Series, figure};
use crate::training::{Batching, MetricSource, ModelProblem, sparse_init};

/// The vector type of problem `P`.
type Vector<P> = <<P as Problem>::Ops as VectorOps>::Vector;

type Failure = Box<dyn std::error::Error>;

/// The methods of Figure 3 (plus Hessian-free as a reference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// NGD on minibatches, fixed learning rate 1, separate metric batch.
    Ngd,
    /// NGD on the full batch with a line search.
    NgdL,
    /// Natural conjugate gradient, COBYLA over (α, β).
    NcgL,
    /// Natural conjugate gradient, Polak–Ribière.
    NcgF,
    /// SGD, minibatch 100, learning rate 0.01.
    Sgd,
    /// Hessian-free (Martens 2010).
    Hf,
}

impl Method {
    /// Every method, in the paper's order.
    pub const ALL: [Method; 6] =
        [Method::Ngd, Method::NgdL, Method::NcgL, Method::NcgF, Method::Sgd, Method::Hf];

    /// The name used in CSVs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ngd => "ngd",
            Method::NgdL => "ngd-l",
            Method::NcgL => "ncg-l",
            Method::NcgF => "ncg-f",
            Method::Sgd => "sgd",
            Method::Hf => "hf",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The settings of one method: batches, solver, damping, step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodSettings {
    /// Gradient batch size (`None`: the whole training set).
    pub gradient_batch: Option<usize>,
    /// Metric batch size, drawn independently of the gradient batch (`None`: the whole set).
    pub metric_batch: Option<usize>,
    /// Linear solver (HF always uses CG).
    pub solver: Solver,
    /// Solver iteration limit.
    pub solver_iterations: usize,
    /// Initial Levenberg–Marquardt λ.
    pub initial_damping: f64,
    /// Warm-start each solve from 0.95× the previous solution (HF always does).
    pub warm_start: bool,
    /// Learning rate (NGD and SGD; the others search along the direction).
    pub learning_rate: f64,
}

impl MethodSettings {
    /// These settings as they run on `n` examples: a batch of `n` or more is the whole set
    /// (`None`), as the summary shows it.
    pub fn on(self, n: usize) -> MethodSettings {
        let whole = |b: Option<usize>| b.filter(|&b| b < n);
        MethodSettings {
            gradient_batch: whole(self.gradient_batch),
            metric_batch: whole(self.metric_batch),
            ..self
        }
    }

    /// The paper's settings (section 10 and appendix; Martens 2010 for HF) on `n` images.
    pub fn paper(method: Method, n: usize) -> MethodSettings {
        let second = MethodSettings {
            gradient_batch: None,
            metric_batch: None,
            solver: Solver::MinresQlp,
            solver_iterations: 250,
            initial_damping: 3.0,
            warm_start: false,
            learning_rate: 1.0,
        };
        let quarter = Some(n / 4);
        match method {
            Method::Ngd => MethodSettings { gradient_batch: quarter, metric_batch: quarter, ..second },
            Method::NgdL | Method::NcgL | Method::NcgF => second,
            Method::Sgd => MethodSettings {
                gradient_batch: Some(100),
                metric_batch: Some(100),
                learning_rate: 0.01,
                ..second
            },
            Method::Hf => MethodSettings {
                metric_batch: quarter,
                solver: Solver::Cg,
                initial_damping: 45.0,
                warm_start: true,
                ..second
            },
        }
    }

    /// The default of the reduced run: the best settings of the sweep in
    /// docs/benchmarks.md for a budget of tens of seconds on 2 cores.
    pub fn tuned(method: Method, n: usize) -> MethodSettings {
        let paper = MethodSettings::paper(method, n);
        let small = MethodSettings {
            gradient_batch: Some(250),
            metric_batch: Some(250),
            solver_iterations: 20,
            ..paper
        };
        match method {
            Method::Ngd => MethodSettings { solver_iterations: 10, ..small },
            Method::NgdL | Method::NcgL => small,
            Method::NcgF => MethodSettings { gradient_batch: Some(1250), solver_iterations: 50, ..small },
            Method::Sgd => paper,
            Method::Hf => MethodSettings {
                gradient_batch: Some(1250),
                metric_batch: Some(250),
                solver_iterations: 50,
                ..paper
            },
        }
    }
}

/// Settings that replace a method's own (second-order methods only; SGD keeps its own).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Overrides {
    /// Gradient batch size (0: the whole set).
    pub gradient_batch: Option<usize>,
    /// Metric batch size (0: the whole set).
    pub metric_batch: Option<usize>,
    /// Solver (not for HF, which is CG by definition).
    pub solver: Option<Solver>,
    /// Solver iteration limit.
    pub solver_iterations: Option<usize>,
    /// Initial λ.
    pub initial_damping: Option<f64>,
    /// Warm starts.
    pub warm_start: Option<bool>,
}

impl Overrides {
    /// `settings` with these overrides applied.
    pub fn apply(&self, method: Method, settings: MethodSettings) -> MethodSettings {
        if method == Method::Sgd {
            return settings;
        }
        let size = |b: usize| (b > 0).then_some(b);
        MethodSettings {
            gradient_batch: self.gradient_batch.map_or(settings.gradient_batch, size),
            metric_batch: self.metric_batch.map_or(settings.metric_batch, size),
            solver: if method == Method::Hf { Solver::Cg } else { self.solver.unwrap_or(settings.solver) },
            solver_iterations: self.solver_iterations.unwrap_or(settings.solver_iterations),
            initial_damping: self.initial_damping.unwrap_or(settings.initial_damping),
            warm_start: self.warm_start.unwrap_or(settings.warm_start),
            learning_rate: settings.learning_rate,
        }
    }
}

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct CurvesBench {
    /// The paper's configuration (20,000 / 10,000 images, the paper's batch sizes and solver
    /// limits) instead of the reduced, tuned one.
    pub full: bool,
    /// Methods to run.
    pub methods: Vec<Method>,
    /// Wall-clock budget per method.
    pub budget: Duration,
    /// Output directory.
    pub out: PathBuf,
    /// Directory with `train.npy` and `test.npy` (N×784) to use instead of generated data.
    pub data: Option<PathBuf>,
    /// Seed for data, initialisation and batches.
    pub seed: u64,
    /// Override of the generated (train, test) sizes.
    pub sizes: Option<(usize, usize)>,
    /// Also stop each method after this many iterations.
    pub max_iterations: Option<usize>,
    /// Settings replacing each second-order method's own.
    pub overrides: Overrides,
    /// Start from these parameters (`.npy`, 842,340 values) instead of the sparse init.
    pub init: Option<PathBuf>,
    /// Write the starting parameters here (`.npy`, float32).
    pub save_init: Option<PathBuf>,
    /// Evaluate the training error every K iterations (default: log-spaced iterations).
    pub eval_every: Option<usize>,
    /// How the model's functions are compiled (device, threads).
    pub compile: CompileOptions,
    /// The processes running the benchmark together (each on its shard of every batch);
    /// process 0 prints and writes the files.
    pub communicator: Rc<dyn Communicator>,
}

impl CurvesBench {
    /// The default: a quarter of the data, 40 s per method, tuned settings.
    pub fn reduced() -> CurvesBench {
        CurvesBench {
            full: false,
            methods: Method::ALL.to_vec(),
            budget: Duration::from_secs(40),
            out: PathBuf::from("target/curves"),
            data: None,
            seed: 1,
            sizes: None,
            max_iterations: None,
            overrides: Overrides::default(),
            init: None,
            save_init: None,
            eval_every: None,
            compile: CompileOptions::default(),
            communicator: Rc::new(Solo),
        }
    }

    fn sizes(&self) -> (usize, usize) {
        self.sizes.unwrap_or(if self.full { (20_000, 10_000) } else { (5_000, 2_500) })
    }

    /// The settings `method` runs with on `n` training images.
    pub fn settings(&self, method: Method, n: usize) -> MethodSettings {
        let own = if self.full { MethodSettings::paper(method, n) } else { MethodSettings::tuned(method, n) };
        self.overrides.apply(method, own)
    }
}

/// What one method achieved.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Method.
    pub method: Method,
    /// The settings it ran with.
    pub settings: MethodSettings,
    /// Squared error on the training set at the initial parameters.
    pub initial_error: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Training seconds (evaluation excluded).
    pub seconds: f64,
    /// Final squared error on the whole training set.
    pub train_error: f64,
    /// Final squared error on the test set.
    pub test_error: f64,
    /// Metric products computed.
    pub metric_products: usize,
    /// Compile time of its functions (s).
    pub compile_seconds: f64,
    /// Smallest and largest damping λ used ((∞, −∞) when no λ was used, as for SGD).
    pub damping_range: (f64, f64),
    /// Why the method stopped before its budget (a failed or non-finite step), if it did.
    pub stopped: Option<String>,
}

fn load(dir: &Path) -> Result<Curves, Failure> {
    Ok(Curves {
        train: read_examples(&dir.join("train.npy"), 784)?,
        test: read_examples(&dir.join("test.npy"), 784)?,
    })
}

/// An N×`width` `.npy` file as a data set; NaN or ±∞ anywhere is an error naming the file
/// (rejected before training starts).
pub fn read_examples(path: &Path, width: usize) -> Result<Dataset, Failure> {
    let (shape, data) = natgrad_data::npy::read(path)?;
    if shape.len() != 2 || shape[1] != width {
        return Err(format!("{}: expected an N×{width} array, got shape {shape:?}", path.display()).into());
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        let (row, column) = (i / width, i % width);
        return Err(format!("{}: value [{row}, {column}] is {} (not finite)", path.display(), data[i]).into());
    }
    Ok(Dataset { width, data: data.into_iter().map(|v| v as f32).collect() })
}

/// The starting parameters: the `.npy` file at `init` (checked: length and finite values) or
/// Martens' sparse init from `seed`.
pub fn initial_parameters(init: Option<&Path>, layout: &ParamLayout, seed: u64) -> Result<Vec<f32>, Failure> {
    let Some(path) = init else {
        return Ok(sparse_init::<f32>(layout, seed));
    };
    let (shape, values) = natgrad_data::npy::read(path)?;
    if values.len() != layout.len() {
        return Err(format!(
            "{}: the model has {} parameters, the file holds {} (shape {shape:?})",
            path.display(),
            layout.len(),
            values.len()
        )
        .into());
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!("{}: parameter {i} is {} (not finite)", path.display(), values[i]).into());
    }
    Ok(values.into_iter().map(|v| v as f32).collect())
}

/// Optimizer and batching of a method.
pub(crate) fn setup<P: Problem>(
    method: Method,
    settings: &MethodSettings,
    seed: u64,
) -> (Box<dyn Optimizer<P>>, Batching)
where
    Vector<P>: 'static,
{
    (optimizer(method, settings), batching(method, settings, seed))
}

/// The batches a method trains on. A metric batch of `None` is the whole set, as the
/// settings and `--metric-batch 0` say (for `Batching`, `None` would mean the gradient
/// batch's size; a size beyond the set is the whole set).
fn batching(method: Method, settings: &MethodSettings, seed: u64) -> Batching {
    Batching {
        gradient: settings.gradient_batch,
        metric: Some(settings.metric_batch.unwrap_or(usize::MAX)),
        source: if method == Method::Sgd { MetricSource::SameBatch } else { MetricSource::OtherBatch },
        seed,
        metric_kind: MetricKind::Fisher,
        in_order: false,
    }
}

/// A method's optimizer, for problems of any vector type.
fn optimizer<P: Problem>(method: Method, settings: &MethodSettings) -> Box<dyn Optimizer<P>>
where
    Vector<P>: 'static,
{
    let second = SecondOrder {
        solver: settings.solver,
        max_solver_iterations: settings.solver_iterations,
        damping: Damping::levenberg_marquardt(settings.initial_damping),
        warm_start: settings.warm_start,
    };
    match method {
        Method::Ngd => Box::new(Ngd::<Vector<P>>::new(second, StepSize::Fixed(settings.learning_rate))),
        Method::NgdL => Box::new(Ngd::<Vector<P>>::new(second, StepSize::LineSearch)),
        Method::NcgL => Box::new(Ncg::<Vector<P>>::new(second, Conjugacy::Cobyla)),
        Method::NcgF => Box::new(Ncg::<Vector<P>>::new(second, Conjugacy::PolakRibiere)),
        Method::Sgd => Box::new(Sgd::<Vector<P>>::new(settings.learning_rate, 0.0)),
        Method::Hf => Box::new(HessianFree::<Vector<P>>::new(second)),
    }
}

/// Runs the benchmark; writes `curves.csv`, `figure3.png`, `figure3.svg` and `summary.md`
/// under `options.out` and returns the summaries.
pub fn run(options: &CurvesBench) -> Result<Vec<Summary>, Failure> {
    if options.eval_every == Some(0) {
        return Err("--eval-every must be at least 1".into());
    }
    let first = options.communicator.rank() == 0;
    if first {
        std::fs::create_dir_all(&options.out)?;
    }
    let data = match &options.data {
        Some(dir) => load(dir)?,
        None => {
            let (train, test) = options.sizes();
            Curves::generate(&CurvesOptions { seed: options.seed, train, test, ..CurvesOptions::default() })?
        }
    };
    let model = crate::nn::curves_autoencoder();
    let theta0 = initial_parameters(options.init.as_deref(), &model.layout, options.seed)?;
    if let Some(path) = options.save_init.as_ref().filter(|_| first) {
        natgrad_data::npy::write(path, &[theta0.len()], &theta0)?;
    }
    let mut bench = Evaluation {
        error: compile_reconstruction_error::<f32>(&model, &options.compile)?,
        train: data.train.data.clone(),
        test: data.test.data.clone(),
        csv: String::from(
            "method,iteration,seconds,train_error,test_error,loss,damping,solver_iterations,metric_products\n",
        ),
    };
    let mut summaries = Vec::new();
    let mut series = Vec::new();
    for &method in &options.methods {
        let settings = options.settings(method, data.train.len());
        let (summary, points) = run_method(options, method, &settings, &model, &data, &theta0, &mut bench)?;
        summaries.push(summary);
        series.push(Series { label: method.name().to_string(), points });
    }
    if !first {
        return Ok(summaries);
    }
    std::fs::write(options.out.join("curves.csv"), &bench.csv)?;
    let (n_train, n_test) = (data.train.len(), data.test.len());
    let source = if options.data.is_some() { "Curves (from --data)" } else { "Curves (regenerated)" };
    let title = format!("{source}, {n_train} train / {n_test} test images");
    figure(&options.out.join("figure3"), &title, &series)?;
    let table = summary_table(&title, &summaries);
    std::fs::write(options.out.join("summary.md"), &table)?;
    let mut stdout = std::io::stdout();
    let _ = write!(stdout, "{table}");
    let _ = writeln!(
        stdout,
        "\nwrote {0}/curves.csv, {0}/figure3.png, {0}/figure3.svg, {0}/summary.md",
        options.out.display()
    );
    Ok(summaries)
}

/// The compiled error function, the data it is measured on, and the CSV being written.
struct Evaluation {
    error: ReconstructionError<f32>,
    train: Vec<f32>,
    test: Vec<f32>,
    csv: String,
}

/// (iteration, training seconds, training error).
type Point = (f64, f64, f64);

/// Trains one method from `theta0` — with host vectors on the CPU, with the device's vectors
/// on a GPU (one process) — and returns its summary and its (iteration, seconds, train
/// error) points.
fn run_method(
    options: &CurvesBench,
    method: Method,
    settings: &MethodSettings,
    model: &Model,
    data: &Curves,
    theta0: &[f32],
    bench: &mut Evaluation,
) -> Result<(Summary, Vec<Point>), Failure> {
    let batching = batching(method, settings, options.seed);
    let communicator = Rc::clone(&options.communicator);
    let first = communicator.rank() == 0;
    let problem = ModelProblem::<f32>::sharded(
        model,
        data.train.clone(),
        None,
        batching,
        &options.compile,
        communicator,
    )?;
    let compile_seconds = problem.compile_seconds;
    let mut run = MethodRun { options, method, settings, theta0, bench };
    // A data-parallel run sums host vectors across processes, so it keeps them on a GPU too.
    let (trained, metric_products) = match options.compile.device {
        Device::Cuda(_) | Device::Sim if options.communicator.size() == 1 => {
            let work = OnDevice { problem, run: &mut run };
            crate::compile::with_device_vectors::<f32, _>(options.compile.device, work)??
        }
        _ => {
            let mut problem = problem;
            let trained = run.train(&mut problem)?;
            (trained, problem.metric_products)
        }
    };
    let Trained { theta, points, iterations, seconds, start_error, damping_range, stopped } = trained;
    let Evaluation { error, train: train_inputs, test: test_inputs, csv } = run.bench;
    let mut points = points;
    let train_error = error.error(&theta, train_inputs, 2500)?;
    let test_error = error.error(&theta, test_inputs, 2500)?;
    if points.last().map(|p| p.0) != Some(iterations as f64) && iterations > 0 {
        points.push((iterations as f64, seconds, train_error));
    }
    let _ = writeln!(csv, "{},{iterations},{seconds:.4},{train_error},{test_error},,,,", method.name());
    if first {
        eprintln!(
            "{:>6}: {iterations} iterations in {seconds:.1} s, train error {train_error:.3}, test error {test_error:.3}",
            method.name()
        );
    }
    let summary = Summary {
        method,
        settings: settings.on(data.train.len()),
        initial_error: start_error,
        iterations,
        seconds,
        train_error,
        test_error,
        metric_products,
        compile_seconds,
        damping_range,
        stopped,
    };
    Ok((summary, points))
}

/// One method's training run: its settings, starting point and the evaluation it reports to.
struct MethodRun<'a> {
    options: &'a CurvesBench,
    method: Method,
    settings: &'a MethodSettings,
    theta0: &'a [f32],
    bench: &'a mut Evaluation,
}

/// What a training run left.
struct Trained {
    /// The final parameters, on the host.
    theta: Vec<f32>,
    points: Vec<Point>,
    iterations: usize,
    /// Training seconds, evaluation excluded.
    seconds: f64,
    start_error: f64,
    damping_range: (f64, f64),
    stopped: Option<String>,
}

/// Training on a GPU with its device vectors ([`crate::compile::with_device_vectors`]).
struct OnDevice<'r, 'a> {
    problem: ModelProblem<f32>,
    run: &'r mut MethodRun<'a>,
}

impl crate::compile::DeviceWork<f32> for OnDevice<'_, '_> {
    type Output = Result<(Trained, usize), Failure>;

    fn run<O>(self, ops: O) -> Self::Output
    where
        O: Transfer<f32> + Clone + 'static,
        <O as VectorOps>::Vector: std::any::Any,
    {
        let mut problem = DeviceProblem::new(self.problem, ops).map_err(|e| e.to_string())?;
        let trained = self.run.train(&mut problem)?;
        Ok((trained, problem.host().metric_products))
    }
}

impl MethodRun<'_> {
    /// Trains `problem` from `theta0` within the budget, evaluating the training error along
    /// the way (on the host: parameters are downloaded for it).
    fn train<P: Problem>(&mut self, problem: &mut P) -> Result<Trained, Failure>
    where
        P::Ops: Transfer<f32>,
        Vector<P>: 'static,
    {
        let (options, method) = (self.options, self.method);
        let mut optimizer = optimizer::<P>(method, self.settings);
        let first = options.communicator.rank() == 0;
        let ops = problem.ops().clone();
        let mut theta = ops.upload(self.theta0);
        let bar = match first {
            true => ProgressBar::new(options.budget.as_millis() as u64),
            false => ProgressBar::hidden(),
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>6} [{bar:30}] {elapsed:>4} {msg}")
                .map_err(|e| e.to_string())?
                .progress_chars("=> "),
        );
        bar.set_prefix(method.name());
        let Evaluation { error, train: train_inputs, csv, .. } = &mut *self.bench;
        let start_error = error.error(self.theta0, train_inputs, 2500)?;
        let _ = writeln!(csv, "{},0,0,{start_error},,,,,", method.name());
        let mut points = vec![];
        let mut next_eval = 1usize;
        let mut eval_seconds = 0.0;
        let mut last_error = start_error;
        let mut failure: Option<String> = None;
        let mut damping_range = (f64::INFINITY, f64::NEG_INFINITY);
        let mut last_seconds = 0.0;
        let records = train(
            problem,
            optimizer.as_mut(),
            &mut theta,
            &StopWhen {
                time: Some(options.budget),
                max_iterations: options.max_iterations,
                ..StopWhen::default()
            },
            |record, theta| {
                // Training time so far: the evaluations before this record excluded (this
                // record's own evaluation runs after its clock was read).
                let seconds = record.seconds - eval_seconds;
                last_seconds = seconds;
                let s = &record.step;
                if method != Method::Sgd {
                    damping_range = (damping_range.0.min(s.damping), damping_range.1.max(s.damping));
                }
                if record.iteration >= next_eval {
                    let start = Instant::now();
                    match ops.download(theta).map(|theta| error.error(&theta, train_inputs, 2500)) {
                        Ok(Ok(e)) => last_error = e,
                        Ok(Err(e)) => failure = Some(e.to_string()),
                        Err(e) => failure = Some(e.to_string()),
                    }
                    eval_seconds += start.elapsed().as_secs_f64();
                    next_eval = match options.eval_every {
                        Some(k) => next_eval + k,
                        None => (next_eval + 1).max((next_eval as f64 * 1.3).ceil() as usize),
                    };
                    points.push((record.iteration as f64, seconds, last_error));
                    let _ = writeln!(
                        csv,
                        "{},{},{seconds:.4},{last_error},,{},{},{},{}",
                        method.name(),
                        record.iteration,
                        s.loss,
                        s.damping,
                        s.solver_iterations,
                        s.metric_products
                    );
                }
                bar.set_position((record.seconds * 1e3) as u64);
                bar.set_message(format!("iteration {:>5}  train error {last_error:.3}", record.iteration));
            },
        );
        bar.finish_and_clear();
        if let Some(f) = failure {
            return Err(f.into());
        }
        // A failed or non-finite step ends this method with its last good parameters (restored
        // by `train`); the benchmark reports it and goes on with the next method.
        let (iterations, stopped) = match records {
            Ok(records) => (records.len(), None),
            Err(e) => {
                if first {
                    eprintln!(
                        "{:>6}: {e}; its results are those of iteration {}",
                        method.name(),
                        e.iteration() - 1
                    );
                }
                (e.iteration() - 1, Some(e.to_string()))
            }
        };
        let theta = ops.download(&theta).map_err(|e| e.to_string())?;
        Ok(Trained { theta, points, iterations, seconds: last_seconds, start_error, damping_range, stopped })
    }
}

/// Batch size as text (`all` for the whole set).
fn batch_text(b: Option<usize>) -> String {
    b.map_or_else(|| "all".to_string(), |b| b.to_string())
}

/// One line of settings, for the summary table.
fn settings_text(method: Method, s: &MethodSettings) -> String {
    if method == Method::Sgd {
        return format!("batch {}, lr {}", batch_text(s.gradient_batch), s.learning_rate);
    }
    let solver = match s.solver {
        Solver::Cg => "CG",
        Solver::MinresQlp => "MinRes-QLP",
    };
    format!(
        "batch {} / metric {}, {solver} ≤ {}, λ₀ {}{}",
        batch_text(s.gradient_batch),
        batch_text(s.metric_batch),
        s.solver_iterations,
        s.initial_damping,
        if s.warm_start { ", warm" } else { "" }
    )
}

/// The markdown summary table.
pub fn summary_table(title: &str, summaries: &[Summary]) -> String {
    let mut out = format!(
        "## {title}\n\n| method | train error | test error | seconds | iterations | metric products | λ range | settings |\n|---|---|---|---|---|---|---|---|\n"
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "| {}{} | {:.3} | {:.3} | {:.1} | {} | {} | {} | {} |",
            s.method.name(),
            if s.stopped.is_some() { " (stopped early)" } else { "" },
            s.train_error,
            s.test_error,
            s.seconds,
            s.iterations,
            s.metric_products,
            if s.damping_range.0.is_finite() {
                format!("{:.2e}–{:.2e}", s.damping_range.0, s.damping_range.1)
            } else {
                "—".to_string()
            },
            settings_text(s.method, &s.settings)
        );
    }
    for s in summaries {
        if let Some(why) = &s.stopped {
            let _ = writeln!(out, "\n{} stopped early: {why}", s.method.name());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--metric-batch 0` (settings `None`) is the whole set, not the gradient batch's size
    /// (what `Batching::metric = None` means), and the summary shows batches as they ran.
    #[test]
    fn a_metric_batch_of_none_is_the_whole_set() {
        let n = 5000;
        let settings = Overrides { metric_batch: Some(0), ..Overrides::default() }
            .apply(Method::NcgF, MethodSettings::tuned(Method::NcgF, n));
        assert_eq!((settings.gradient_batch, settings.metric_batch), (Some(1250), None));
        let metric = batching(Method::NcgF, &settings, 1).metric;
        assert!(
            metric.is_some_and(|m| m >= n),
            "metric batch {metric:?}: training would use the gradient batch's 1250"
        );
        let large = MethodSettings { gradient_batch: Some(n), metric_batch: Some(n - 1), ..settings };
        let shown = large.on(n);
        assert_eq!((shown.gradient_batch, shown.metric_batch), (None, Some(n - 1)));
        assert!(settings_text(Method::NcgF, &shown).starts_with("batch all / metric 4999,"));
    }
}
