//! The `natgrad` command-line tool.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use natgrad::autodiff;
use natgrad::checkpointed::{TrainRun, train_checkpointed, write_parameters};
use natgrad::curves_bench::{CurvesBench, Method, MethodSettings, Overrides};
use natgrad::data::{Curves, CurvesOptions};
use natgrad::models::model_from_spec;
use natgrad::optim::Solver;
use natgrad::order_bench::OrderBench;
use natgrad::prelude::DType;
use natgrad::rewrite;
use natgrad::unlabeled_bench::{MetricBatch, UnlabeledBench};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "natgrad", version, about = "Natural-gradient training with a symbolic graph compiler")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the IR of a built-in model (text form, or Graphviz DOT with --dot).
    Ir {
        /// `curves` or `mlp:SIZES:ACTIVATIONS`, e.g. `mlp:784,100,10:sigmoid,softmax`.
        #[arg(long, default_value = "curves")]
        model: String,
        /// Element type of the model.
        #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
        dtype: DTypeArg,
        /// Print a derived graph instead of the model itself.
        #[arg(long, value_enum)]
        product: Option<ProductArg>,
        /// Run the simplifier first (the text form then lists the fusion groups).
        #[arg(long)]
        optimized: bool,
        /// Print node counts, matmuls, FLOPs and simplify time before/after instead of the IR.
        #[arg(long)]
        stats: bool,
        /// Print Graphviz DOT instead of the text form.
        #[arg(long)]
        dot: bool,
        /// Print the compiled code instead: `ptx` prints the PTX module of the graph's fused
        /// kernels (the GPU backend's code, after simplifying and lowering).
        #[arg(long, value_enum)]
        emit: Option<EmitArg>,
        /// GPU architecture for `--emit ptx`.
        #[arg(long, value_enum, default_value_t = ArchArg::Sm90)]
        arch: ArchArg,
    },
    /// Train an autoencoder with one method, checkpointed: a killed run started again with
    /// the same command resumes from its checkpoint.
    Train {
        /// `curves` or `autoencoder:ENCODER_SIZES` (e.g. `autoencoder:784,32,8`).
        #[arg(long, default_value = "curves")]
        model: String,
        /// ngd, ngd-l, ncg-l, ncg-f, sgd or hf (settings as in `bench curves`' default run).
        #[arg(long, default_value = "ngd")]
        method: String,
        /// Stop after N iterations in all (counting those before a resume).
        #[arg(long)]
        iterations: Option<usize>,
        /// Stop after this many seconds of training (counted from each start).
        #[arg(long)]
        budget: Option<f64>,
        /// Training examples: an N×784 `train.npy` in this directory (default: generated Curves).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Generated Curves images to train on (without --data).
        #[arg(long, default_value_t = 5_000)]
        train_size: usize,
        /// Start from these parameters (.npy) instead of the sparse init.
        #[arg(long)]
        init: Option<PathBuf>,
        #[command(flatten)]
        overrides: OverrideArgs,
        /// Checkpoint file: resumed from when it exists, written every --checkpoint-every
        /// iterations and at the end (atomically).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Iterations between checkpoints.
        #[arg(long, default_value_t = 10)]
        checkpoint_every: usize,
        /// Where to write the trained parameters (.npy, float32; written atomically).
        #[arg(long)]
        out: PathBuf,
        /// Seed for data, initialisation and batches.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where compiled code runs: `cpu`, `cuda[:N]` in a build with the cuda feature, or `sim`
        /// (the GPU code on the PTX simulator: slow, for checking without a GPU).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
        /// Run as one of the processes started by `mpirun -np N` (a build with the mpi feature):
        /// each process trains on its shard of every batch; process 0 writes the checkpoints and --out.
        #[arg(long)]
        distributed: bool,
    },
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Fisher-vector product G·v of an MLP from .npy files (G averaged over the inputs).
    Fvp {
        /// spec.json describing the MLP.
        #[arg(long)]
        model: PathBuf,
        /// Flat parameters θ (per layer: weight [fan_in, fan_out] row-major, then bias).
        #[arg(long)]
        params: PathBuf,
        /// Metric batch [B, n_in].
        #[arg(long)]
        inputs: PathBuf,
        /// The vector v (same length as θ).
        #[arg(long)]
        vector: PathBuf,
        /// Where to write G·v.
        #[arg(long)]
        out: PathBuf,
        /// Element type of the computation.
        #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
        dtype: DTypeArg,
        /// Where compiled code runs: `cpu`, `cuda[:N]` in a build with the cuda feature, or `sim`
        /// (the GPU code on the PTX simulator: slow, for checking without a GPU).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
        /// Run as one of the processes started by `mpirun -np N` (a build with the mpi feature):
        /// each process takes its rows of the inputs (uneven when they do not divide); process 0 writes --out.
        #[arg(long)]
        distributed: bool,
    },
    /// Loss (printed) and gradient of an MLP from .npy files.
    Grad {
        /// spec.json describing the MLP.
        #[arg(long)]
        model: PathBuf,
        /// Flat parameters θ.
        #[arg(long)]
        params: PathBuf,
        /// Inputs [B, n_in].
        #[arg(long)]
        inputs: PathBuf,
        /// Targets [B, n_out] (one-hot for softmax).
        #[arg(long)]
        targets: PathBuf,
        /// Where to write the gradient.
        #[arg(long)]
        out: PathBuf,
        /// Element type of the computation.
        #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
        dtype: DTypeArg,
        /// Where compiled code runs: `cpu`, `cuda[:N]` in a build with the cuda feature, or `sim`
        /// (the GPU code on the PTX simulator: slow, for checking without a GPU).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Generate Curves (regenerated) and write DIR/train.npy and DIR/test.npy (N×784, float32),
    /// the files `bench curves --data DIR` reads.
    Curves {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Training images.
        #[arg(long, default_value_t = 20_000)]
        train: usize,
        /// Test images.
        #[arg(long, default_value_t = 10_000)]
        test: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time of one sum over the processes (`mpirun -np N natgrad bench sums --distributed`)
    /// of vectors of given lengths (f32): the communication a data-parallel gradient or
    /// metric product adds.
    Sums {
        /// Vector lengths, comma separated (842340: the Curves autoencoder's parameters).
        #[arg(long, value_delimiter = ',', default_value = "1000,100000,842340,8423400")]
        lengths: Vec<usize>,
        /// Timed runs per length (median reported).
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Run as one of the processes started by `mpirun` (a build with the mpi feature).
        #[arg(long)]
        distributed: bool,
        /// `cpu` (MPI) or `cuda[:N]` (NCCL, a build with the nccl feature).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
    },
    /// The two routes for exp/log/log1p in kernels (libm calls per lane vs the shared routines: inline, or on slices in wide rows) side by side.
    Exp {
        /// Batch size.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        /// Timed runs (after one warm-up).
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// The Curves benchmark of the paper's section 10 (Figure 3): NGD, NGD-L, NCG-L, NCG-F,
    /// SGD and Hessian-free on the Curves autoencoder, each under a wall-clock budget.
    Curves {
        /// The paper's configuration: all 20,000 / 10,000 images and the paper's batch sizes,
        /// solver limits and damping (default: a quarter of the data and settings tuned for a
        /// short run, see docs/benchmarks.md).
        #[arg(long, visible_alias = "paper")]
        full: bool,
        /// Methods, comma separated (ngd, ngd-l, ncg-l, ncg-f, sgd, hf).
        #[arg(long, value_delimiter = ',', default_value = "ngd,ngd-l,ncg-l,ncg-f,sgd,hf")]
        methods: Vec<String>,
        /// Seconds of training per method.
        #[arg(long, default_value_t = 40.0)]
        budget: f64,
        /// Also stop each method after N iterations, whatever the budget.
        #[arg(long)]
        iterations: Option<usize>,
        /// Evaluate the training error every K iterations (default: log-spaced iterations).
        #[arg(long)]
        eval_every: Option<usize>,
        /// Start from these parameters (.npy, 842,340 values) instead of the sparse init.
        #[arg(long)]
        init: Option<PathBuf>,
        /// Write the starting parameters to this .npy file (float32).
        #[arg(long)]
        save_init: Option<PathBuf>,
        #[command(flatten)]
        overrides: OverrideArgs,
        /// Output directory (CSV, PNG, SVG, summary table).
        #[arg(long, default_value = "target/curves")]
        out: PathBuf,
        /// Directory with train.npy and test.npy (N×784) to use instead of generated data.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seed for data, initialisation and batches.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where compiled code runs: `cpu`, `cuda[:N]` in a build with the cuda feature, or `sim`
        /// (the GPU code on the PTX simulator: slow, for checking without a GPU).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
        /// Run as one of the processes started by `mpirun -np N` (a build with the mpi feature):
        /// each process computes on its shard of every batch; process 0 prints and writes the files.
        #[arg(long)]
        distributed: bool,
    },
    /// The paper's section 7 (Figure 1) on Fashion-MNIST: NGD on a small labeled set with the
    /// metric from the gradient's batch, another labeled batch, or unlabeled images.
    Unlabeled {
        /// Directory with the Fashion-MNIST IDX files (Debian: `dataset-fashion-mnist`).
        #[arg(long, default_value = natgrad::data::idx::FASHION_MNIST_DIR)]
        data: PathBuf,
        /// Labeled training images (the first ones); the rest are the unlabeled pool.
        #[arg(long, default_value_t = 2_000)]
        labeled: usize,
        /// Test images to evaluate on (default: all 10,000).
        #[arg(long)]
        test: Option<usize>,
        /// Updates per run (default 100; 1,000 with --full).
        #[arg(long)]
        updates: Option<usize>,
        /// Evaluate every K updates.
        #[arg(long, default_value_t = 5)]
        eval_every: usize,
        /// Runs, comma separated: same, labeled, unlabeled.
        #[arg(long, value_delimiter = ',', default_value = "same,labeled,unlabeled")]
        runs: Vec<String>,
        /// A larger run: 1,000 updates (unless --updates says otherwise), 32 filters, 256
        /// hidden units.
        #[arg(long)]
        full: bool,
        /// Output directory (CSV, PNG, SVG, summary table).
        #[arg(long, default_value = "target/unlabeled")]
        out: PathBuf,
        /// Seed for the initialisation and the batches.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where compiled code runs: `cpu`, `cuda[:N]` in a build with the cuda feature, or `sim`
        /// (the GPU code on the PTX simulator: slow, for checking without a GPU).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
    },
    /// The paper's section 8 (Figure 2) on a stream of deformed Fashion-MNIST images: how much
    /// each segment of the stream decides the learnt function, for SGD and NGD.
    Order {
        /// Directory with the Fashion-MNIST IDX files (Debian: `dataset-fashion-mnist`).
        #[arg(long, default_value = natgrad::data::idx::FASHION_MNIST_DIR)]
        data: PathBuf,
        /// Segments of the first chunk of the stream.
        #[arg(long, default_value_t = 10)]
        segments: usize,
        /// Examples per segment.
        #[arg(long, default_value_t = 1024)]
        segment_size: usize,
        /// Examples in the stream after the segments.
        #[arg(long, default_value_t = 10_240)]
        rest: usize,
        /// Runs per segment.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Hidden units of the MLP.
        #[arg(long, default_value_t = 100)]
        hidden: usize,
        /// The paper's model size (500 hidden units) and a 4× longer stream.
        #[arg(long)]
        full: bool,
        /// Output directory (CSV, PNG, SVG, summary table).
        #[arg(long, default_value = "target/order")]
        out: PathBuf,
        /// Seed of the stream, the resamples and the initialisation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where compiled code runs: `cpu`, `cuda[:N]` in a build with the cuda feature, or `sim`
        /// (the GPU code on the PTX simulator: slow, for checking without a GPU).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
    },
    /// Forward, loss+gradient, Fisher prepare and apply: median times, GFLOP/s, GEMM peak.
    Fvp {
        /// `curves` or `mlp:SIZES:ACTIVATIONS`.
        #[arg(long, default_value = "curves")]
        model: String,
        /// Batch sizes, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
        batch: Vec<usize>,
        /// Timed runs per measurement (after one warm-up run).
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Element type.
        #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
        dtype: DTypeArg,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// GPU only: f32 GEMMs in TF32 on the tensor cores (JAX's and PyTorch's default).
        #[arg(long)]
        tf32: bool,
        /// Where compiled code runs: `cpu`, `cuda[:N]` in a build with the cuda feature, or `sim`
        /// (the GPU code on the PTX simulator: slow, for checking without a GPU).
        #[arg(long, default_value = "cpu")]
        device: natgrad::Device,
        /// Then time the same Curves operations in JAX (python3 with `jax` installed; exact
        /// f32 matmuls) and print natgrad / JAX ratios.
        #[arg(long)]
        compare_jax: bool,
        /// With --compare-jax: rounds of natgrad then JAX, alternating; the ratio reported is
        /// the median of the rounds' ratios.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Also list the N slowest units (fused kernels, GEMMs, …) of forward, gradient and
        /// apply per batch size: time per run, share, GFLOP/s, GB/s and the graph nodes each
        /// one reads and writes.
        #[arg(long, value_name = "N", default_value_t = 0)]
        units: usize,
    },
}

/// Settings that replace each second-order method's own in `bench curves`.
#[derive(clap::Args)]
struct OverrideArgs {
    /// Gradient batch size of the second-order methods (0: the whole training set).
    #[arg(long)]
    batch: Option<usize>,
    /// Metric batch size, drawn independently of the gradient batch (0: the whole set).
    #[arg(long)]
    metric_batch: Option<usize>,
    /// Linear solver of NGD / NCG (HF is always CG).
    #[arg(long, value_enum)]
    solver: Option<SolverArg>,
    /// Solver iteration limit.
    #[arg(long)]
    solver_iterations: Option<usize>,
    /// Initial Levenberg–Marquardt damping λ.
    #[arg(long)]
    damping: Option<f64>,
    /// Warm-start each solve from 0.95× the previous solution (`true` / `false`).
    #[arg(long)]
    warm_start: Option<bool>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SolverArg {
    Cg,
    MinresQlp,
}

impl OverrideArgs {
    fn into_overrides(self) -> Result<Overrides, String> {
        if let Some(d) = self.damping.filter(|d| !(d.is_finite() && *d > 0.0)) {
            return Err(format!("--damping must be a positive number, got {d}"));
        }
        Ok(Overrides {
            gradient_batch: self.batch,
            metric_batch: self.metric_batch,
            solver: self.solver.map(|s| match s {
                SolverArg::Cg => Solver::Cg,
                SolverArg::MinresQlp => Solver::MinresQlp,
            }),
            solver_iterations: self.solver_iterations,
            initial_damping: self.damping,
            warm_start: self.warm_start,
        })
    }
}

/// Which derived graph `natgrad ir` prints.
#[derive(Clone, Copy, ValueEnum)]
enum ProductArg {
    /// Loss and gradient on the gradient batch.
    Gradient,
    /// Fisher-vector product on the metric batch (eq. 7, 8, 30).
    Fisher,
    /// Extended Gauss-Newton product (eq. 10).
    GaussNewton,
    /// Empirical Fisher (TONGA, eq. 9).
    EmpiricalFisher,
}

/// What `natgrad ir --emit` prints.
#[derive(Clone, Copy, ValueEnum)]
enum EmitArg {
    /// The PTX module of the fused kernels.
    Ptx,
}

/// GPU architectures `--emit ptx` targets.
#[derive(Clone, Copy, ValueEnum)]
enum ArchArg {
    /// Ampere (A100).
    #[value(name = "sm_80")]
    Sm80,
    /// Hopper (H100, H200).
    #[value(name = "sm_90")]
    Sm90,
}

#[derive(Clone, Copy, ValueEnum)]
enum DTypeArg {
    F32,
    F64,
}

impl From<DTypeArg> for DType {
    fn from(d: DTypeArg) -> DType {
        match d {
            DTypeArg::F32 => DType::F32,
            DTypeArg::F64 => DType::F64,
        }
    }
}

fn main() -> ExitCode {
    init_tracing();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error>;

/// `natgrad train`: runs with a progress bar, writes the parameters (the last good ones when
/// a step failed, and then reports the failure).
fn train_command(run: &TrainRun, out: &Path) -> Result<(), Failure> {
    let first = run.communicator.rank() == 0;
    let bar = match run.iterations {
        _ if !first => ProgressBar::hidden(),
        Some(n) => ProgressBar::new(n as u64),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} {elapsed:>4} {msg}")?
            .progress_chars("=> "),
    );
    bar.set_prefix(run.method.name());
    let trained = train_checkpointed(run, |iteration, loss| {
        bar.set_position(iteration as u64);
        bar.set_message(format!("loss {loss:.4}"));
    })?;
    bar.finish_and_clear();
    if !first {
        return match trained.failure {
            Some(failure) => Err(failure.into()),
            None => Ok(()),
        };
    }
    write_parameters(out, &trained.theta)?;
    let resumed = trained.resumed_from.map(|k| format!(" (resumed at iteration {k})")).unwrap_or_default();
    let loss = trained.loss.map(|l| format!(", last batch loss {l:.6}")).unwrap_or_default();
    eprintln!(
        "{}: {} iterations{resumed}{loss}; wrote {}",
        run.method.name(),
        trained.iterations,
        out.display()
    );
    match trained.failure {
        Some(failure) => Err(format!(
            "{failure}; {} holds the parameters of iteration {}",
            out.display(),
            trained.iterations
        )
        .into()),
        None => Ok(()),
    }
}

/// The values of a `.npy` file as `T`; NaN or ±∞ anywhere is an error naming the file.
fn read_as<T: natgrad::ir::Scalar>(path: &Path) -> Result<Vec<T>, Failure> {
    let values = natgrad::npy::read(path)?.1;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(
            format!("{}: value {i} is {}; natgrad needs finite numbers", path.display(), values[i]).into()
        );
    }
    Ok(values.into_iter().map(T::from_f64).collect())
}

/// The files of `natgrad fvp`.
struct FvpFiles {
    model: PathBuf,
    params: PathBuf,
    inputs: PathBuf,
    vector: PathBuf,
    out: PathBuf,
}

/// `natgrad fvp`: G·v over the inputs, or over this process's rows of them summed over `world`.
fn fvp<T>(
    files: &FvpFiles,
    dtype: DType,
    options: &natgrad::CompileOptions,
    world: &dyn natgrad::dist::Communicator,
) -> Result<(), Failure>
where
    T: natgrad::Scalar + npyz::AutoSerialize + npyz::Serialize,
{
    let model = natgrad::spec::load(&files.model, dtype)?;
    let mut product = natgrad::compile_fisher_product::<T>(&model, options)?;
    let inputs = read_as::<T>(&files.inputs)?;
    let width = natgrad::compile::input_width(&model);
    let (rows, share) = natgrad::distributed::shard_batch(world, "metric batch", &inputs, width)?;
    product.prepare(&read_as::<T>(&files.params)?, rows)?;
    let v = read_as::<T>(&files.vector)?;
    let mut gv = vec![T::zero(); model.layout.len()];
    product.apply(&v, &mut gv)?;
    natgrad::dist::weighted_sum(world, share, &mut gv)?;
    if world.rank() == 0 {
        natgrad::npy::write(&files.out, &[gv.len()], &gv)?;
    }
    Ok(())
}

fn grad<T>(
    model: &Path,
    params: &Path,
    inputs: &Path,
    targets: &Path,
    out: &Path,
    dtype: DType,
    options: &natgrad::CompileOptions,
) -> Result<f64, Failure>
where
    T: natgrad::Scalar + npyz::AutoSerialize + npyz::Serialize,
{
    let model = natgrad::spec::load(model, dtype)?;
    let mut gradient = natgrad::compile_gradient::<T>(&model, options)?;
    let mut g = vec![T::zero(); model.layout.len()];
    let targets = read_as::<T>(targets)?;
    let loss =
        gradient.loss_and_gradient(&read_as::<T>(params)?, &read_as::<T>(inputs)?, Some(&targets), &mut g)?;
    natgrad::npy::write(out, &[g.len()], &g)?;
    Ok(loss)
}

/// Node counts, matmuls, FLOPs at batch 1000 and simplify time, before and after.
fn ir_stats(graph: &natgrad::ir::Graph) -> Result<String, Box<dyn std::error::Error>> {
    let simplified = rewrite::simplify(graph, &rewrite::Options::default())?;
    let row = |label: &str, g: &natgrad::ir::Graph| {
        format!(
            "{label:<10} {:>7} {:>8} {:>14.3e}\n",
            g.len(),
            rewrite::matmul_count(g),
            natgrad::ir::cost::flops(g, 1000)
        )
    };
    let mut out = format!("{:<10} {:>7} {:>8} {:>14}\n", "", "nodes", "matmuls", "FLOPs (B=1000)");
    out += &row("naive", graph);
    out += &row("optimized", &simplified.graph);
    out += &format!(
        "simplify: {:.2} ms, {} iterations, {} fusion groups\nrule hits: {}\n",
        simplified.stats.elapsed.as_secs_f64() * 1e3,
        simplified.stats.iterations,
        simplified.fusion.len(),
        simplified.stats.hits.iter().map(|(r, n)| format!("{r}×{n}")).collect::<Vec<_>>().join(", ")
    );
    if let Some(budget) = &simplified.stats.budget {
        out += &format!("budget: {budget}\n");
    }
    Ok(out)
}

/// The default compile options on `device`.
/// Compile options for `device`; processes started together by `mpirun` on one node share
/// its cores.
fn compile_options(device: natgrad::Device) -> natgrad::CompileOptions {
    let threads = natgrad::distributed::threads_per_process();
    natgrad::CompileOptions { device, threads, ..natgrad::CompileOptions::default() }
}

fn init_tracing() {
    if std::env::var_os("NATGRAD_DEBUG").is_some_and(|v| v != "0") {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_writer(std::io::stderr)
            .without_time()
            .try_init();
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Bench(BenchCommand::Sums { lengths, runs, distributed, device }) => {
            let device = natgrad::distributed::local_device(distributed, device);
            let world = natgrad::distributed::world(distributed, device)?;
            let medians = natgrad::distributed::time_sums(world.as_ref(), &lengths, runs)?;
            if world.rank() == 0 {
                println!("| values (f32) | MB | processes | median sum | MB/s (vector bytes / time) |");
                println!("|---:|---:|---:|---:|---:|");
                for (len, seconds) in lengths.iter().zip(medians) {
                    let megabytes = *len as f64 * 4.0 / 1e6;
                    println!(
                        "| {len} | {megabytes:.2} | {} | {:.1} µs | {:.0} |",
                        world.size(),
                        seconds * 1e6,
                        megabytes / seconds
                    );
                }
            }
        }
        Command::Bench(BenchCommand::Exp { batch, runs }) => {
            print!("{}", natgrad::bench::exp_routes(batch.max(1), runs.max(1))?)
        }
        Command::Data(DataCommand::Curves { out, train, test, seed }) => {
            let options = natgrad::data::CurvesOptions { seed, train, test, ..Default::default() };
            let curves = natgrad::data::Curves::generate(&options)?;
            std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
            natgrad::npy::write(&out.join("train.npy"), &[curves.train.len(), 784], &curves.train.data)?;
            natgrad::npy::write(&out.join("test.npy"), &[curves.test.len(), 784], &curves.test.data)?;
            println!("wrote {0}/train.npy ({train}×784) and {0}/test.npy ({test}×784)", out.display());
        }
        Command::Bench(BenchCommand::Curves {
            full,
            methods,
            budget,
            iterations,
            eval_every,
            init,
            save_init,
            overrides,
            out,
            data,
            seed,
            device,
            distributed,
        }) => {
            let device = natgrad::distributed::local_device(distributed, device);
            let methods = methods
                .iter()
                .map(|m| {
                    Method::from_name(m.trim())
                        .ok_or_else(|| format!("unknown method `{m}` (ngd, ngd-l, ncg-l, ncg-f, sgd, hf)"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if budget.is_nan() || budget <= 0.0 {
                return Err(format!("--budget must be a positive number of seconds, got {budget}").into());
            }
            let options = CurvesBench {
                full,
                methods,
                budget: Duration::from_secs_f64(budget),
                out,
                data,
                seed,
                max_iterations: iterations,
                eval_every,
                init,
                save_init,
                overrides: overrides.into_overrides()?,
                compile: compile_options(device),
                communicator: natgrad::distributed::world(distributed, device)?,
                ..CurvesBench::reduced()
            };
            natgrad::curves_bench::run(&options)?;
        }
        Command::Train {
            model,
            method,
            iterations,
            budget,
            data,
            train_size,
            init,
            overrides,
            checkpoint,
            checkpoint_every,
            out,
            seed,
            device,
            distributed,
        } => {
            let device = natgrad::distributed::local_device(distributed, device);
            let method = Method::from_name(method.trim())
                .ok_or_else(|| format!("unknown method `{method}` (ngd, ngd-l, ncg-l, ncg-f, sgd, hf)"))?;
            if iterations.is_none() && budget.is_none() {
                return Err("give --iterations N or --budget SECONDS (or both)".into());
            }
            if let Some(b) = budget.filter(|b| b.is_nan() || *b <= 0.0) {
                return Err(format!("--budget must be a positive number of seconds, got {b}").into());
            }
            let model = model_from_spec(&model, DType::F32)?;
            let data = match &data {
                Some(dir) => natgrad::curves_bench::read_examples(&dir.join("train.npy"), 784)?,
                None => {
                    let options =
                        CurvesOptions { seed, train: train_size, test: 0, ..CurvesOptions::default() };
                    Curves::generate(&options)?.train
                }
            };
            let run = TrainRun {
                settings: overrides
                    .into_overrides()?
                    .apply(method, MethodSettings::tuned(method, data.len())),
                init: natgrad::curves_bench::initial_parameters(init.as_deref(), &model.layout, seed)?,
                model,
                method,
                data,
                iterations,
                budget: budget.map(Duration::from_secs_f64),
                checkpoint,
                checkpoint_every,
                seed,
                compile: compile_options(device),
                communicator: natgrad::distributed::world(distributed, device)?,
            };
            train_command(&run, &out)?;
        }
        Command::Bench(BenchCommand::Unlabeled {
            data,
            labeled,
            test,
            updates,
            eval_every,
            runs,
            full,
            out,
            seed,
            device,
        }) => {
            let runs = runs
                .iter()
                .map(|r| match r.trim() {
                    "same" => Ok(MetricBatch::Same),
                    "labeled" => Ok(MetricBatch::Labeled),
                    "unlabeled" => Ok(MetricBatch::Unlabeled),
                    other => Err(format!("unknown run `{other}` (same, labeled, unlabeled)")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let defaults = UnlabeledBench::default();
            let (filters, hidden) = if full { (32, 256) } else { (defaults.filters, defaults.hidden) };
            let options = UnlabeledBench {
                data,
                labeled,
                test,
                updates: updates.unwrap_or(if full { 1000 } else { 100 }),
                eval_every,
                runs,
                filters,
                hidden,
                out,
                seed,
                compile: compile_options(device),
                ..defaults
            };
            natgrad::unlabeled_bench::run(&options)?;
        }
        Command::Bench(BenchCommand::Order {
            data,
            segments,
            segment_size,
            rest,
            repeats,
            hidden,
            full,
            out,
            seed,
            device,
        }) => {
            let scale = if full { 4 } else { 1 };
            let options = OrderBench {
                data,
                segments,
                segment_size: segment_size * scale,
                rest: rest * scale,
                repeats,
                hidden: if full { 500 } else { hidden },
                out,
                seed,
                compile: compile_options(device),
                ..OrderBench::default()
            };
            natgrad::order_bench::run(&options)?;
        }
        Command::Fvp { model, params, inputs, vector, out, dtype, device, distributed } => {
            let device = natgrad::distributed::local_device(distributed, device);
            let options = compile_options(device);
            let files = FvpFiles { model, params, inputs, vector, out };
            let world = natgrad::distributed::world(distributed, device)?;
            match dtype {
                DTypeArg::F32 => fvp::<f32>(&files, DType::F32, &options, world.as_ref())?,
                DTypeArg::F64 => fvp::<f64>(&files, DType::F64, &options, world.as_ref())?,
            }
        }
        Command::Grad { model, params, inputs, targets, out, dtype, device } => {
            let options = compile_options(device);
            let loss = match dtype {
                DTypeArg::F32 => grad::<f32>(&model, &params, &inputs, &targets, &out, DType::F32, &options)?,
                DTypeArg::F64 => grad::<f64>(&model, &params, &inputs, &targets, &out, DType::F64, &options)?,
            };
            println!("loss {loss}");
        }
        Command::Bench(BenchCommand::Fvp {
            model,
            batch,
            runs,
            dtype,
            json,
            device,
            tf32,
            compare_jax,
            rounds,
            units,
        }) => {
            if let Some(b) = batch.iter().find(|&&b| b == 0) {
                return Err(format!("--batch sizes must be at least 1, got {b}").into());
            }
            if compare_jax && (model != "curves" || !matches!(dtype, DTypeArg::F32)) {
                return Err(format!(
                    "--compare-jax times the f32 Curves autoencoder only (got --model {model} --dtype {})",
                    DType::from(dtype)
                )
                .into());
            }
            let options = natgrad::CompileOptions { tf32, ..compile_options(device) };
            let runs = runs.max(1);
            let build = |d: DType| {
                model_from_spec(&model, d).map_err(|e| natgrad::compile::Error::Length {
                    what: e.to_string(),
                    expected: String::new(),
                    got: 0,
                })
            };
            let report = match dtype {
                DTypeArg::F32 => natgrad::bench::run::<f32>(build, &batch, runs, units, &options)?,
                DTypeArg::F64 => natgrad::bench::run::<f64>(build, &batch, runs, units, &options)?,
            };
            print!("{}", report.table());
            if let Some(path) = json {
                std::fs::write(&path, report.json())?;
                eprintln!("wrote {}", path.display());
            }
            if compare_jax {
                let again = || {
                    natgrad::bench::run::<f32>(build, &batch, runs, 0, &options).map_err(|e| e.to_string())
                };
                print!("{}", natgrad::jax_compare::compare(&report, again, &batch, runs, rounds)?);
            }
        }
        Command::Ir { model, dtype, product, optimized, stats, dot, emit, arch } => {
            let model = model_from_spec(&model, dtype.into())?;
            let product_of =
                |p: autodiff::Product| (p.graph.clone(), natgrad::lower::Partition::new(p.phases()));
            let single = natgrad::lower::Partition::single;
            let (graph, partition) = match product {
                None => (model.graph, single()),
                Some(ProductArg::Gradient) => (autodiff::gradient(&model)?.graph, single()),
                Some(ProductArg::Fisher) => product_of(autodiff::fisher_product(&model)?),
                Some(ProductArg::GaussNewton) => product_of(autodiff::gauss_newton_product(&model)?),
                Some(ProductArg::EmpiricalFisher) => product_of(autodiff::empirical_fisher_product(&model)?),
            };
            if let Some(EmitArg::Ptx) = emit {
                let plan = natgrad::lower::Plan::build(&graph, &partition, dtype.into(), true)?;
                let arch = match arch {
                    ArchArg::Sm80 => natgrad::ptx::Arch::Sm80,
                    ArchArg::Sm90 => natgrad::ptx::Arch::Sm90,
                };
                print!("{}", natgrad::ptx::module(&plan, arch).text);
                return Ok(());
            }
            if stats {
                print!("{}", ir_stats(&graph)?);
                return Ok(());
            }
            let (graph, groups) = if optimized {
                let simplified = rewrite::simplify(&graph, &rewrite::Options::default())?;
                (simplified.graph, simplified.fusion)
            } else {
                (graph, Vec::new())
            };
            if dot {
                print!("{}", graph.to_dot());
            } else {
                print!("{}", rewrite::print_with_groups(&graph, &groups));
            }
        }
    }
    Ok(())
}
