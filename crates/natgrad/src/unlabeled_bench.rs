//! `natgrad bench unlabeled`: the paper's section 7 (Figure 1) on Fashion-MNIST. A small
//! labeled training set, the rest of the training images as an unlabeled pool (labels never
//! read), and a convolutional network trained by NGD (fixed learning rate, Levenberg–
//! Marquardt damping, MinRes-QLP) three times from the same start, differing only in where
//! the metric's batch comes from: the gradient's own minibatch, another labeled minibatch,
//! or unlabeled images. Training cost over the whole labeled set and test error are
//! recorded against updates.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use natgrad_data::idx::one_hot;
use natgrad_data::{Dataset, FashionMnist};
use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{DType, Model, ParamLayout, Window};
use natgrad_optim::{Damping, Ngd, SecondOrder, Solver, StepSize, StopWhen, train};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::compile::{CompileOptions, MetricKind, compile_loss, compile_outputs};
use crate::plot::{Panel, panels};
use crate::training::{Batching, MetricSource, ModelProblem};

type Failure = Box<dyn std::error::Error>;

/// Where the metric's batch comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricBatch {
    /// The gradient's own minibatch.
    Same,
    /// Another minibatch of the labeled set.
    Labeled,
    /// A minibatch of the unlabeled pool.
    Unlabeled,
}

impl MetricBatch {
    /// The three runs of Figure 1.
    pub const ALL: [MetricBatch; 3] = [MetricBatch::Same, MetricBatch::Labeled, MetricBatch::Unlabeled];

    /// Name in tables and legends.
    pub fn name(self) -> &'static str {
        match self {
            MetricBatch::Same => "same batch",
            MetricBatch::Labeled => "other labeled",
            MetricBatch::Unlabeled => "unlabeled",
        }
    }
}

/// The experiment's settings (defaults: the paper's optimizer settings, a model and data
/// sized for 2 CPU cores).
#[derive(Clone, Debug)]
pub struct UnlabeledBench {
    /// Directory with the Fashion-MNIST IDX files.
    pub data: PathBuf,
    /// Labeled training images (the first ones); the rest of the training set is the pool.
    pub labeled: usize,
    /// Test images used (the first ones; `None`: all 10,000).
    pub test: Option<usize>,
    /// Updates per run.
    pub updates: usize,
    /// Evaluate every this many updates.
    pub eval_every: usize,
    /// Gradient minibatch (the paper: 256).
    pub gradient_batch: usize,
    /// Metric minibatch when it is not the gradient's (the paper: 384).
    pub metric_batch: usize,
    /// Fixed learning rate (the paper: 0.2).
    pub learning_rate: f64,
    /// Initial Levenberg–Marquardt λ (the paper: 5).
    pub damping: f64,
    /// MinRes-QLP iteration limit (the paper: 50).
    pub solver_iterations: usize,
    /// Convolution filters.
    pub filters: usize,
    /// The convolution's window.
    pub window: Window,
    /// Dense hidden units.
    pub hidden: usize,
    /// Output directory.
    pub out: PathBuf,
    /// Seed of the initialisation and the batch streams.
    pub seed: u64,
    /// Runs to make (default: all three).
    pub runs: Vec<MetricBatch>,
    /// How the model's functions are compiled.
    pub compile: CompileOptions,
}

impl Default for UnlabeledBench {
    fn default() -> UnlabeledBench {
        UnlabeledBench {
            data: PathBuf::from(natgrad_data::idx::FASHION_MNIST_DIR),
            labeled: 2_000,
            test: None,
            updates: 100,
            eval_every: 5,
            gradient_batch: 256,
            metric_batch: 384,
            learning_rate: 0.2,
            damping: 5.0,
            solver_iterations: 50,
            filters: 16,
            window: Window { kernel: [5, 5], stride: [2, 2], padding: [0, 0] },
            hidden: 128,
            out: PathBuf::from("target/unlabeled"),
            seed: 1,
            runs: MetricBatch::ALL.to_vec(),
            compile: CompileOptions::default(),
        }
    }
}

/// One evaluation: (update, training cost over the labeled set, test error in %).
pub type Evaluation = (usize, f64, f64);

/// What one run achieved.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Where its metric batches came from.
    pub metric: MetricBatch,
    /// Updates made.
    pub updates: usize,
    /// Training seconds (evaluations excluded).
    pub seconds: f64,
    /// Its evaluations, the start (update 0) first.
    pub evaluations: Vec<Evaluation>,
}

impl RunSummary {
    /// The last evaluation.
    pub fn last(&self) -> Evaluation {
        *self.evaluations.last().expect("the start is always evaluated")
    }
}

/// The model: flat 28×28 images, one sigmoid convolution, one sigmoid dense layer, 10
/// sigmoid outputs with per-unit cross-entropy (as the paper's TFD model); `section7` on
/// the command line is the default one.
pub fn model(options: &UnlabeledBench, dtype: DType) -> natgrad_ir::Result<Model> {
    let sigmoid = [Activation::Sigmoid; 3];
    nn::convnet([28, 28, 1], options.window, options.filters, &[options.hidden, 10], &sigmoid, dtype)
}

/// Uniform weights in ±√(3 / fan-in) (variance 1 / fan-in), zero biases.
pub fn scaled_uniform_init(layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut theta = vec![0.0f32; layout.len()];
    for slot in layout.slots().iter().filter(|s| s.shape.len() >= 2) {
        let fan_in: usize = slot.shape[..slot.shape.len() - 1].iter().product();
        let limit = (3.0 / fan_in as f64).sqrt();
        for value in &mut theta[slot.offset..slot.offset + slot.len()] {
            *value = rng.random_range(-limit..limit) as f32;
        }
    }
    theta
}

/// The labeled set, its one-hot targets, the unlabeled pool, the test images and labels.
struct Split {
    labeled: Dataset,
    targets: Dataset,
    pool: Dataset,
    test: Dataset,
    test_labels: Vec<u8>,
}

fn split(options: &UnlabeledBench) -> Result<Split, Failure> {
    let data = load_28x28(&options.data)?;
    let n = data.train.len();
    if options.labeled == 0 || options.labeled >= n {
        return Err(format!(
            "--labeled must be between 1 and {} (the training images), got {}",
            n - 1,
            options.labeled
        )
        .into());
    }
    let rows = |d: &Dataset, from: usize, to: usize| Dataset {
        width: d.width,
        data: d.data[from * d.width..to * d.width].to_vec(),
    };
    let test = options.test.unwrap_or(data.test.len()).min(data.test.len());
    Ok(Split {
        labeled: rows(&data.train, 0, options.labeled),
        targets: one_hot(&data.train_labels[..options.labeled], 10)?,
        pool: rows(&data.train, options.labeled, n),
        test: rows(&data.test, 0, test),
        test_labels: data.test_labels[..test].to_vec(),
    })
}

/// Fashion-MNIST (or another set of 28×28 images in its files) from `dir`.
pub(crate) fn load_28x28(dir: &Path) -> Result<FashionMnist, Failure> {
    let data = FashionMnist::load(dir)?;
    if data.train.width != 784 || data.test.width != 784 {
        return Err(format!("{}: expected 28×28 images", dir.display()).into());
    }
    Ok(data)
}

/// Percent of `outputs` (10 per example) whose largest unit is not the label.
pub(crate) fn misclassified(outputs: &[f32], labels: &[u8]) -> f64 {
    let wrong = outputs
        .chunks(10)
        .zip(labels)
        .filter(|(y, label)| {
            let best = y.iter().enumerate().fold(0, |best, (i, v)| if *v > y[best] { i } else { best });
            best != usize::from(**label)
        })
        .count();
    100.0 * wrong as f64 / labels.len().max(1) as f64
}

/// Runs the experiment; writes `unlabeled.csv`, `figure1.png`, `figure1.svg` and
/// `summary.md` under `options.out`.
pub fn run(options: &UnlabeledBench) -> Result<Vec<RunSummary>, Failure> {
    if options.eval_every == 0 || options.updates == 0 {
        return Err("--updates and --eval-every must be at least 1".into());
    }
    let data = split(options)?;
    std::fs::create_dir_all(&options.out)?;
    let model = model(options, DType::F32)?;
    let theta0 = scaled_uniform_init(&model.layout, options.seed);
    let mut cost = compile_loss::<f32>(&model, &options.compile)?;
    let mut outputs = compile_outputs::<f32>(&model, &options.compile)?;
    let mut evaluate = |theta: &[f32]| -> Result<(f64, f64), Failure> {
        let train = cost.loss(theta, &data.labeled.data, Some(&data.targets.data))?;
        let test = misclassified(&outputs.outputs(theta, &data.test.data, 1000)?, &data.test_labels);
        Ok((train, test))
    };
    let mut summaries = Vec::new();
    for &metric in &options.runs {
        let (source, metric_size) = match metric {
            MetricBatch::Same => (MetricSource::SameBatch, None),
            MetricBatch::Labeled => (MetricSource::OtherBatch, Some(options.metric_batch)),
            MetricBatch::Unlabeled => {
                (MetricSource::Unlabeled(data.pool.clone()), Some(options.metric_batch))
            }
        };
        let batching = Batching {
            gradient: Some(options.gradient_batch),
            metric: metric_size,
            source,
            seed: options.seed,
            metric_kind: MetricKind::Fisher,
            in_order: false,
        };
        let mut problem = ModelProblem::<f32>::with_options(
            &model,
            data.labeled.clone(),
            Some(data.targets.clone()),
            batching,
            &options.compile,
        )?;
        let second = SecondOrder {
            solver: Solver::MinresQlp,
            max_solver_iterations: options.solver_iterations,
            damping: Damping::levenberg_marquardt(options.damping),
            warm_start: false,
        };
        let mut ngd = Ngd::<Vec<f32>>::new(second, StepSize::Fixed(options.learning_rate));
        let mut theta = theta0.clone();
        let (train0, test0) = evaluate(&theta)?;
        let mut evaluations = vec![(0, train0, test0)];
        let bar = ProgressBar::new(options.updates as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed:>4} {msg}")?
                .progress_chars("=> "),
        );
        bar.set_prefix(metric.name());
        let (mut eval_seconds, mut seconds) = (0.0, 0.0);
        let mut failure = None;
        let stop = StopWhen { max_iterations: Some(options.updates), ..StopWhen::default() };
        let records = train(&mut problem, &mut ngd, &mut theta, &stop, |record, theta| {
            // Training time so far: the evaluations before this record excluded (this
            // record's own evaluation runs after its clock was read).
            seconds = record.seconds - eval_seconds;
            bar.set_position(record.iteration as u64);
            if record.iteration % options.eval_every == 0 || record.iteration == options.updates {
                let start = Instant::now();
                match evaluate(theta) {
                    Ok((train, test)) => {
                        evaluations.push((record.iteration, train, test));
                        bar.set_message(format!("train cost {train:.4}  test error {test:.2}%"));
                    }
                    Err(e) => failure = Some(e.to_string()),
                }
                eval_seconds += start.elapsed().as_secs_f64();
            }
        });
        bar.finish_and_clear();
        if let Some(f) = failure {
            return Err(f.into());
        }
        let records = records?;
        let summary = RunSummary { metric, updates: records.len(), seconds, evaluations };
        let (_, train, test) = summary.last();
        eprintln!(
            "{:>14}: {} updates in {seconds:.1} s, train cost {train:.4}, test error {test:.2}%",
            metric.name(),
            summary.updates
        );
        summaries.push(summary);
    }
    write_outputs(options, &data, &summaries)?;
    Ok(summaries)
}

fn write_outputs(options: &UnlabeledBench, data: &Split, summaries: &[RunSummary]) -> Result<(), Failure> {
    let mut csv = String::from("metric_batch,update,train_cost,test_error_percent\n");
    for s in summaries {
        for (update, train, test) in &s.evaluations {
            let _ = writeln!(csv, "{},{update},{train},{test}", s.metric.name());
        }
    }
    std::fs::write(options.out.join("unlabeled.csv"), csv)?;
    let title = format!(
        "Fashion-MNIST: {} labeled, {} unlabeled, {} test images; NGD, metric batch from…",
        data.labeled.len(),
        data.pool.len(),
        data.test.len()
    );
    let lines = |pick: fn(&Evaluation) -> f64| {
        summaries
            .iter()
            .map(|s| {
                (s.metric.name().to_string(), s.evaluations.iter().map(|e| (e.0 as f64, pick(e))).collect())
            })
            .collect()
    };
    let figure = [
        Panel {
            x_label: "updates".into(),
            y_label: "training cost (labeled set)".into(),
            log_x: false,
            log_y: true,
            lines: lines(|e| e.1),
        },
        Panel {
            x_label: "updates".into(),
            y_label: "test error (% misclassified)".into(),
            log_x: false,
            log_y: false,
            lines: lines(|e| e.2),
        },
    ];
    panels(&options.out.join("figure1"), &title, &figure)?;
    let mut table = format!(
        "## {title}\n\n| metric batch | updates | seconds | train cost | test error % | best test error % |\n|---|---|---|---|---|---|\n"
    );
    for s in summaries {
        let (_, train, test) = s.last();
        let best = s.evaluations.iter().map(|e| e.2).fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            table,
            "| {} | {} | {:.1} | {train:.4} | {test:.2} | {best:.2} |",
            s.metric.name(),
            s.updates,
            s.seconds
        );
    }
    std::fs::write(options.out.join("summary.md"), &table)?;
    print!("{table}");
    println!(
        "\nwrote {0}/unlabeled.csv, {0}/figure1.png, {0}/figure1.svg, {0}/summary.md",
        options.out.display()
    );
    Ok(())
}
