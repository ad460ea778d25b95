//! `natgrad bench order`: the paper's section 8 (Algorithm 1, Figure 2) at reduced scale. An
//! online stream of freshly deformed Fashion-MNIST images stands in for NISTP: the first
//! chunk of the stream is split into segments; for each segment, 5 times, the segment is
//! replaced by fresh examples and an MLP is trained from scratch on the stream in order
//! (one pass, minibatches of `batch`). The variance across the 5 runs of the output
//! activations on held-out images, averaged, measures how much that segment's examples
//! decide the learnt function. SGD and NGD (metric on the gradient's minibatch, constant
//! damping) are compared.

use std::fmt::Write as _;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use natgrad_data::Dataset;
use natgrad_data::deform::deformed_sample;
use natgrad_data::idx::one_hot;
use natgrad_ir::DType;
use natgrad_ir::nn::{self, Activation};
use natgrad_optim::{Damping, Ngd, Optimizer, SecondOrder, Sgd, Solver, StepSize, StopWhen, train};

use crate::compile::{CompileOptions, MetricKind, compile_outputs};
use crate::plot::{Panel, panels};
use crate::training::{Batching, MetricSource, ModelProblem};
use crate::unlabeled_bench::{load_28x28, misclassified, scaled_uniform_init};

type Failure = Box<dyn std::error::Error>;

/// The two optimizers compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderMethod {
    /// Minibatch SGD.
    Sgd,
    /// Natural gradient, metric on the gradient's minibatch, constant damping.
    Ngd,
}

impl OrderMethod {
    /// Name in tables and legends.
    pub fn name(self) -> &'static str {
        match self {
            OrderMethod::Sgd => "sgd",
            OrderMethod::Ngd => "ngd",
        }
    }
}

/// The experiment's settings (defaults sized for a few minutes on 2 CPU cores; the paper's
/// learning rates 0.1 / 0.2 and damping 3).
#[derive(Clone, Debug)]
pub struct OrderBench {
    /// Directory with the Fashion-MNIST IDX files.
    pub data: PathBuf,
    /// Segments of the first chunk.
    pub segments: usize,
    /// Examples per segment.
    pub segment_size: usize,
    /// Examples in the second chunk (after the segments).
    pub rest: usize,
    /// Runs per segment (each with the segment freshly resampled).
    pub repeats: usize,
    /// Minibatch of both methods (the paper: 512).
    pub batch: usize,
    /// Hidden units of the MLP (the paper: 500).
    pub hidden: usize,
    /// Held-out images the outputs are compared on (the first test images).
    pub heldout: usize,
    /// SGD's learning rate (the paper: 0.1).
    pub sgd_rate: f64,
    /// NGD's learning rate (the paper: 0.2).
    pub ngd_rate: f64,
    /// NGD's constant damping (the paper: 3).
    pub damping: f64,
    /// MinRes-QLP iteration limit of NGD.
    pub solver_iterations: usize,
    /// Output directory.
    pub out: PathBuf,
    /// Seed of the stream, the resamples and the initialisation.
    pub seed: u64,
    /// How the model's functions are compiled.
    pub compile: CompileOptions,
}

impl Default for OrderBench {
    fn default() -> OrderBench {
        OrderBench {
            data: PathBuf::from(natgrad_data::idx::FASHION_MNIST_DIR),
            segments: 10,
            segment_size: 1024,
            rest: 10_240,
            repeats: 5,
            batch: 512,
            hidden: 100,
            heldout: 10_000,
            sgd_rate: 0.1,
            ngd_rate: 0.2,
            damping: 3.0,
            solver_iterations: 20,
            out: PathBuf::from("target/order"),
            seed: 1,
            compile: CompileOptions::default(),
        }
    }
}

/// One method's result.
#[derive(Clone, Debug)]
pub struct OrderSummary {
    /// The method.
    pub method: OrderMethod,
    /// Mean output variance across the runs, per resampled segment (index 0 = segment 1).
    pub variance: Vec<f64>,
    /// Mean held-out error (% misclassified) over all its runs.
    pub heldout_error: f64,
    /// Training seconds over all its runs.
    pub seconds: f64,
}

/// The stream segments for `(segment, repeat)` keys: segment `j`'s examples come from seed
/// `(seed, j, 0)` unless it is the resampled one, which gets `(seed, j, repeat + 1)`.
fn stream(
    options: &OrderBench,
    source: &Dataset,
    labels: &[u8],
    resampled: usize,
    repeat: usize,
) -> Result<(Dataset, Dataset), String> {
    let key = |segment: usize, draw: usize| {
        options.seed.wrapping_mul(1_000_003) ^ ((segment as u64) << 32) ^ draw as u64
    };
    let mut inputs = Dataset { width: source.width, data: Vec::new() };
    let mut classes = Vec::new();
    for segment in 0..=options.segments {
        let (count, draw) = match segment {
            s if s == options.segments => (options.rest, 0),
            s if s == resampled => (options.segment_size, repeat + 1),
            _ => (options.segment_size, 0),
        };
        let (images, picked) = deformed_sample(source, labels, count, key(segment, draw))?;
        inputs.data.extend(images.data);
        classes.extend(picked);
    }
    Ok((inputs, one_hot(&classes, 10)?))
}

/// Mean over images and units of the variance across runs of `outputs` (one vector per run).
fn mean_variance(outputs: &[Vec<f32>]) -> f64 {
    let runs = outputs.len() as f64;
    let len = outputs[0].len();
    (0..len)
        .map(|k| {
            let mean = outputs.iter().map(|o| f64::from(o[k])).sum::<f64>() / runs;
            outputs.iter().map(|o| (f64::from(o[k]) - mean).powi(2)).sum::<f64>() / runs
        })
        .sum::<f64>()
        / len as f64
}

/// Runs the experiment; writes `order.csv`, `figure2.png`, `figure2.svg` and `summary.md`
/// under `options.out`.
pub fn run(options: &OrderBench) -> Result<Vec<OrderSummary>, Failure> {
    if options.segments == 0 || options.repeats < 2 || options.segment_size == 0 || options.batch == 0 {
        return Err("order needs ≥ 1 segment of ≥ 1 example, ≥ 2 repeats and a batch of ≥ 1".into());
    }
    let data = load_28x28(&options.data)?;
    let heldout = options.heldout.min(data.test.len());
    let heldout_images = &data.test.data[..heldout * data.test.width];
    let heldout_labels = &data.test_labels[..heldout];
    std::fs::create_dir_all(&options.out)?;
    let model = nn::mlp(&[784, options.hidden, 10], &[Activation::Sigmoid, Activation::Softmax], DType::F32)?;
    let theta0 = scaled_uniform_init(&model.layout, options.seed);
    let mut outputs = compile_outputs::<f32>(&model, &options.compile)?;
    let total = options.segments * options.segment_size + options.rest;
    let updates = total / options.batch;
    let bar = ProgressBar::new((2 * options.segments * options.repeats) as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} runs {elapsed:>4} {msg}")?
            .progress_chars("=> "),
    );
    let mut summaries = Vec::new();
    for method in [OrderMethod::Sgd, OrderMethod::Ngd] {
        bar.set_prefix(method.name());
        let (mut variance, mut errors, mut seconds) = (Vec::new(), Vec::new(), 0.0);
        for segment in 0..options.segments {
            let mut runs = Vec::new();
            for repeat in 0..options.repeats {
                let (inputs, targets) = stream(options, &data.train, &data.train_labels, segment, repeat)?;
                let batching = Batching {
                    gradient: Some(options.batch),
                    metric: None,
                    source: MetricSource::SameBatch,
                    seed: options.seed,
                    metric_kind: MetricKind::Fisher,
                    in_order: true,
                };
                let mut problem = ModelProblem::<f32>::with_options(
                    &model,
                    inputs,
                    Some(targets),
                    batching,
                    &options.compile,
                )?;
                let mut optimizer: Box<dyn Optimizer<ModelProblem<f32>>> = match method {
                    OrderMethod::Sgd => Box::new(Sgd::<Vec<f32>>::new(options.sgd_rate, 0.0)),
                    OrderMethod::Ngd => Box::new(Ngd::<Vec<f32>>::new(
                        SecondOrder {
                            solver: Solver::MinresQlp,
                            max_solver_iterations: options.solver_iterations,
                            damping: Damping::Fixed(options.damping),
                            warm_start: false,
                        },
                        StepSize::Fixed(options.ngd_rate),
                    )),
                };
                let mut theta = theta0.clone();
                let stop = StopWhen { max_iterations: Some(updates), ..StopWhen::default() };
                let records = train(&mut problem, optimizer.as_mut(), &mut theta, &stop, |_, _| {})?;
                seconds += records.last().map_or(0.0, |r| r.seconds);
                let y = outputs.outputs(&theta, heldout_images, 1000)?;
                errors.push(misclassified(&y, heldout_labels));
                runs.push(y);
                bar.inc(1);
            }
            variance.push(mean_variance(&runs));
            bar.set_message(format!("segment {} variance {:.2e}", segment + 1, variance[segment]));
        }
        let heldout_error = errors.iter().sum::<f64>() / errors.len() as f64;
        summaries.push(OrderSummary { method, variance, heldout_error, seconds });
    }
    bar.finish_and_clear();
    write_outputs(options, updates, &summaries)?;
    Ok(summaries)
}

fn write_outputs(options: &OrderBench, updates: usize, summaries: &[OrderSummary]) -> Result<(), Failure> {
    let mut csv = String::from("method,segment,mean_variance\n");
    for s in summaries {
        for (i, v) in s.variance.iter().enumerate() {
            let _ = writeln!(csv, "{},{},{v}", s.method.name(), i + 1);
        }
    }
    std::fs::write(options.out.join("order.csv"), csv)?;
    let title = format!(
        "Deformed Fashion-MNIST stream: {} segments of {}, then {}; {} runs per segment, {} updates each",
        options.segments, options.segment_size, options.rest, options.repeats, updates
    );
    let panel = Panel {
        x_label: "resampled segment".into(),
        y_label: "mean variance of the outputs".into(),
        log_x: false,
        log_y: true,
        lines: summaries
            .iter()
            .map(|s| {
                (
                    s.method.name().to_string(),
                    s.variance.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)).collect(),
                )
            })
            .collect(),
    };
    panels(&options.out.join("figure2"), &title, &[panel])?;
    let mut table = format!(
        "## {title}\n\n| method | mean variance (all segments) | segment 1 | segment {} | held-out error % | training seconds |\n|---|---|---|---|---|---|\n",
        options.segments
    );
    for s in summaries {
        let all = s.variance.iter().sum::<f64>() / s.variance.len() as f64;
        let (first, last) = (s.variance[0], s.variance[s.variance.len() - 1]);
        let _ = writeln!(
            table,
            "| {} | {all:.3e} | {first:.3e} | {last:.3e} | {:.2} | {:.1} |",
            s.method.name(),
            s.heldout_error,
            s.seconds
        );
    }
    std::fs::write(options.out.join("summary.md"), &table)?;
    print!("{table}");
    println!(
        "\nwrote {0}/order.csv, {0}/figure2.png, {0}/figure2.svg, {0}/summary.md",
        options.out.display()
    );
    Ok(())
}
