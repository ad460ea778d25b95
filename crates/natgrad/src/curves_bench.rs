//! `natgrad bench curves`: the paper's section-10 benchmark (Figure 3) on Curves
//! (regenerated): NGD, NGD-L, NCG-L, NCG-F, SGD and Hessian-free train the Curves
//! autoencoder under a wall-clock budget each; the training squared error is measured on
//! the whole training set at log-spaced iterations and the test error at the end.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use natgrad_data::{Curves, CurvesOptions, Dataset};
use natgrad_optim::{
    Conjugacy, Damping, HessianFree, Ncg, Ngd, Optimizer, SecondOrder, Sgd, Solver, StepSize, StopWhen, train,
};

use crate::compile::{CompileOptions, MetricKind, compile_reconstruction_error};
use crate::plot::{Series, figure};
use crate::training::{Batching, MetricSource, ModelProblem, sparse_init};

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

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct CurvesBench {
    /// The paper's configuration (20,000 / 10,000 images, paper batch sizes and solver limits).
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
}

impl CurvesBench {
    /// The default: a quarter of the data, 25 s per method.
    pub fn reduced() -> CurvesBench {
        CurvesBench {
            full: false,
            methods: Method::ALL.to_vec(),
            budget: Duration::from_secs(25),
            out: PathBuf::from("target/curves"),
            data: None,
            seed: 1,
            sizes: None,
            max_iterations: None,
        }
    }

    fn sizes(&self) -> (usize, usize) {
        self.sizes.unwrap_or(if self.full { (20_000, 10_000) } else { (5_000, 2_500) })
    }
}

/// What one method achieved.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Method.
    pub method: Method,
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
}

fn load(dir: &Path) -> Result<Curves, Failure> {
    let read = |name: &str| -> Result<Dataset, Failure> {
        let (shape, data) = natgrad_data::npy::read(&dir.join(name))?;
        if shape.len() != 2 || shape[1] != 784 {
            return Err(format!(
                "{}: expected an N×784 array, got shape {shape:?}",
                dir.join(name).display()
            )
            .into());
        }
        Ok(Dataset { width: 784, data: data.into_iter().map(|v| v as f32).collect() })
    };
    Ok(Curves { train: read("train.npy")?, test: read("test.npy")? })
}

/// Per-method optimizer and batching, for the full or the reduced configuration.
fn setup(
    method: Method,
    full: bool,
    n: usize,
    seed: u64,
) -> (Box<dyn Optimizer<ModelProblem<f32>>>, Batching) {
    let quarter = n / 4;
    let solver_limit = if full { 250 } else { 50 };
    let second = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: solver_limit,
        damping: Damping::LevenbergMarquardt { initial: 3.0 },
    };
    // Full-batch methods compute the metric on the whole set in the paper's configuration
    // and on a quarter of it in the reduced one (as HF does with its curvature batch).
    let full_batch = Batching {
        gradient: None,
        metric: if full { None } else { Some(quarter) },
        source: MetricSource::OtherBatch,
        seed,
        metric_kind: MetricKind::Fisher,
    };
    match method {
        Method::Ngd => (
            Box::new(Ngd::new(second, StepSize::Fixed(1.0))),
            Batching {
                gradient: Some(quarter),
                metric: Some(quarter),
                source: MetricSource::OtherBatch,
                seed,
                metric_kind: MetricKind::Fisher,
            },
        ),
        Method::NgdL => (Box::new(Ngd::new(second, StepSize::LineSearch)), full_batch),
        Method::NcgL => (Box::new(Ncg::<Vec<f32>>::new(second, Conjugacy::Cobyla)), full_batch),
        Method::NcgF => (Box::new(Ncg::<Vec<f32>>::new(second, Conjugacy::PolakRibiere)), full_batch),
        Method::Sgd => (
            Box::new(Sgd::<Vec<f32>>::new(0.01, 0.0)),
            Batching {
                gradient: Some(100),
                metric: Some(100),
                source: MetricSource::SameBatch,
                seed,
                metric_kind: MetricKind::Fisher,
            },
        ),
        Method::Hf => {
            let hf = SecondOrder {
                solver: Solver::Cg,
                max_solver_iterations: solver_limit,
                damping: Damping::LevenbergMarquardt { initial: 45.0 },
            };
            (
                Box::new(HessianFree::<Vec<f32>>::new(hf)),
                Batching {
                    gradient: None,
                    metric: Some(quarter),
                    source: MetricSource::OtherBatch,
                    seed,
                    metric_kind: MetricKind::Fisher,
                },
            )
        }
    }
}

/// Runs the benchmark; writes `curves.csv`, `figure3.png`, `figure3.svg` and `summary.md`
/// under `options.out` and returns the summaries.
pub fn run(options: &CurvesBench) -> Result<Vec<Summary>, Failure> {
    std::fs::create_dir_all(&options.out)?;
    let data = match &options.data {
        Some(dir) => load(dir)?,
        None => {
            let (train, test) = options.sizes();
            Curves::generate(&CurvesOptions { seed: options.seed, train, test, ..CurvesOptions::default() })
        }
    };
    let model = crate::nn::curves_autoencoder();
    let train_inputs = data.train.data.clone();
    let test_inputs = data.test.data.clone();
    let mut error = compile_reconstruction_error::<f32>(&model, &CompileOptions::default())?;
    let mut csv = String::from(
        "method,iteration,seconds,train_error,test_error,loss,damping,solver_iterations,metric_products\n",
    );
    let mut summaries = Vec::new();
    let mut series = Vec::new();
    for &method in &options.methods {
        let (mut optimizer, batching) = setup(method, options.full, data.train.len(), options.seed);
        let mut problem = ModelProblem::<f32>::new(&model, data.train.clone(), None, batching)?;
        let mut theta = sparse_init::<f32>(&model.layout, options.seed);
        let bar = ProgressBar::new(options.budget.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>6} [{bar:30}] {elapsed:>4} {msg}")
                .map_err(|e| e.to_string())?
                .progress_chars("=> "),
        );
        bar.set_prefix(method.name());
        let start_error = error.error(&theta, &train_inputs, 2500)?;
        let _ = writeln!(csv, "{},0,0,{start_error},,,,,", method.name());
        let mut points = vec![];
        let mut next_eval = 1usize;
        let mut eval_seconds = 0.0;
        let mut last_error = start_error;
        let mut failure: Option<String> = None;
        let records = train(
            &mut problem,
            optimizer.as_mut(),
            &mut theta,
            &StopWhen {
                time: Some(options.budget),
                max_iterations: options.max_iterations,
                ..StopWhen::default()
            },
            |record, theta| {
                let seconds = record.seconds - eval_seconds;
                if record.iteration >= next_eval {
                    let start = Instant::now();
                    match error.error(theta, &train_inputs, 2500) {
                        Ok(e) => last_error = e,
                        Err(e) => failure = Some(e.to_string()),
                    }
                    eval_seconds += start.elapsed().as_secs_f64();
                    next_eval = (next_eval + 1).max((next_eval as f64 * 1.3).ceil() as usize);
                    points.push((record.iteration as f64, seconds, last_error));
                    let s = &record.step;
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
        let records = records?;
        let iterations = records.len();
        let seconds = records.last().map_or(0.0, |r| r.seconds) - eval_seconds;
        let train_error = error.error(&theta, &train_inputs, 2500)?;
        let test_error = error.error(&theta, &test_inputs, 2500)?;
        if points.last().map(|p| p.0) != Some(iterations as f64) && iterations > 0 {
            points.push((iterations as f64, seconds, train_error));
        }
        let _ = writeln!(csv, "{},{iterations},{seconds:.4},{train_error},{test_error},,,,", method.name());
        eprintln!(
            "{:>6}: {iterations} iterations in {seconds:.1} s, train error {train_error:.3}, test error {test_error:.3}",
            method.name()
        );
        summaries.push(Summary {
            method,
            initial_error: start_error,
            iterations,
            seconds,
            train_error,
            test_error,
            metric_products: problem.metric_products,
            compile_seconds: problem.compile_seconds,
        });
        series.push(Series { label: method.name().to_string(), points });
    }
    std::fs::write(options.out.join("curves.csv"), &csv)?;
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

/// The markdown summary table.
pub fn summary_table(title: &str, summaries: &[Summary]) -> String {
    let mut out = format!(
        "## {title}\n\n| method | train error | test error | seconds | iterations | metric products | compile s |\n|---|---|---|---|---|---|---|\n"
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.1} | {} | {} | {:.3} |",
            s.method.name(),
            s.train_error,
            s.test_error,
            s.seconds,
            s.iterations,
            s.metric_products,
            s.compile_seconds
        );
    }
    out
}
