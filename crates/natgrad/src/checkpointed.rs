//! `natgrad train`: one optimizer on an autoencoder, checkpointed every K iterations. A
//! killed run started again with the same command resumes from its checkpoint and, when it
//! stops by iteration count, ends with the parameters an uninterrupted run would have, bit
//! for bit (a time budget counts from each start). Data-parallel runs (one process per shard)
//! resume the same way: process 0 writes the checkpoints, every process reads them.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use natgrad_data::Dataset;
use natgrad_dist::Communicator;
use natgrad_ir::{Dim, Model};
use natgrad_optim::{Checkpoint, Optimizer, Problem, StopWhen, TrainError, train};

use crate::compile::CompileOptions;
use crate::curves_bench::{Method, MethodSettings, setup};
use crate::training::ModelProblem;

type Failure = Box<dyn std::error::Error>;

/// What to train, for how long, and where to keep checkpoints.
#[derive(Clone, Debug)]
pub struct TrainRun {
    /// The model; an autoencoder (its targets are its inputs).
    pub model: Model,
    /// The optimizer.
    pub method: Method,
    /// Its batches, solver and damping.
    pub settings: MethodSettings,
    /// Training examples, one row per example.
    pub data: Dataset,
    /// Starting parameters (unless a checkpoint exists).
    pub init: Vec<f32>,
    /// Stop after this many iterations in all, counting those before a resume.
    pub iterations: Option<usize>,
    /// Stop after this much training time in this process.
    pub budget: Option<Duration>,
    /// Checkpoint file: resumed from when it exists, written every `checkpoint_every`
    /// iterations and at the end.
    pub checkpoint: Option<PathBuf>,
    /// Iterations between checkpoints (at least 1).
    pub checkpoint_every: usize,
    /// Seed of the batch streams.
    pub seed: u64,
    /// How the model's functions are compiled.
    pub compile: CompileOptions,
    /// The processes training together (each on its shard of every batch).
    pub communicator: Rc<dyn Communicator>,
}

/// The end of a run.
#[derive(Debug)]
pub struct Trained {
    /// The parameters: the last good ones when the run failed.
    pub theta: Vec<f32>,
    /// Iterations done in all.
    pub iterations: usize,
    /// The iteration the run resumed at, when it started from a checkpoint.
    pub resumed_from: Option<usize>,
    /// Loss on the last iteration's gradient batch (before its step).
    pub loss: Option<f64>,
    /// Why training stopped early (non-finite or failed step; `theta` is restored).
    pub failure: Option<TrainError>,
}

/// Checks that `model` is an autoencoder whose input width is `data`'s, and that `data` is not empty.
fn check_data(model: &Model, data: &Dataset) -> Result<(), Failure> {
    if !model.is_autoencoder() {
        return Err(
            "`train` fits autoencoders (targets = inputs): use `curves` or `autoencoder:SIZES`".into()
        );
    }
    let width = match model.graph.shape(model.input).dims().last() {
        Some(Dim::Fixed(n)) => *n,
        _ => return Err("the model's input has no fixed width".into()),
    };
    if data.width != width {
        return Err(format!("the model takes {width} values per example, the data has {}", data.width).into());
    }
    if data.is_empty() {
        return Err("the training set is empty".into());
    }
    Ok(())
}

/// Trains `run.method` from `run.init`, or from `run.checkpoint` when that file exists;
/// `on_iteration(iteration, loss)` sees every iteration (progress bars).
pub fn train_checkpointed(
    run: &TrainRun,
    mut on_iteration: impl FnMut(usize, f64),
) -> Result<Trained, Failure> {
    check_data(&run.model, &run.data)?;
    if run.checkpoint_every == 0 {
        return Err("--checkpoint-every must be at least 1".into());
    }
    let (mut optimizer, batching) = setup(run.method, &run.settings, run.seed);
    let mut problem = ModelProblem::<f32>::sharded(
        &run.model,
        run.data.clone(),
        None,
        batching,
        &run.compile,
        Rc::clone(&run.communicator),
    )?;
    let writes_files = run.communicator.rank() == 0;
    let mut theta = run.init.clone();
    let mut done = 0;
    let mut resumed_from = None;
    if let Some(path) = run.checkpoint.as_deref().filter(|p| p.exists()) {
        let checkpoint = Checkpoint::read(path)?;
        done = checkpoint
            .resume(&mut problem, optimizer.as_mut(), &mut theta)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        resumed_from = Some(done);
    }
    let start = Instant::now();
    let mut written = resumed_from;
    let mut loss = None;
    loop {
        let left = run.iterations.map_or(usize::MAX, |n| n.saturating_sub(done));
        let time_left = run.budget.map(|b| b.saturating_sub(start.elapsed()));
        let out_of_time =
            problem.decide_together(time_left == Some(Duration::ZERO)).map_err(|e| e.to_string())?;
        if left == 0 || out_of_time {
            break;
        }
        let to_checkpoint = match run.checkpoint {
            Some(_) => run.checkpoint_every - done % run.checkpoint_every,
            None => usize::MAX,
        };
        let stop =
            StopWhen { max_iterations: Some(left.min(to_checkpoint)), time: time_left, target_loss: None };
        let records = train(&mut problem, optimizer.as_mut(), &mut theta, &stop, |record, _| {
            loss = Some(record.step.loss);
            on_iteration(done + record.iteration, record.step.loss);
        });
        let records = match records {
            Ok(records) => records,
            Err(failure) => {
                let iterations = done + failure.iteration() - 1;
                return Ok(Trained { theta, iterations, resumed_from, loss, failure: Some(failure) });
            }
        };
        if records.is_empty() {
            break;
        }
        done += records.len();
        if let Some(path) = run.checkpoint.as_deref().filter(|_| done % run.checkpoint_every == 0) {
            if writes_files {
                write_checkpoint(path, &problem, optimizer.as_ref(), &theta, done)?;
            }
            written = Some(done);
        }
    }
    if let Some(path) = run.checkpoint.as_deref().filter(|_| written != Some(done) && writes_files) {
        write_checkpoint(path, &problem, optimizer.as_ref(), &theta, done)?;
    }
    Ok(Trained { theta, iterations: done, resumed_from, loss, failure: None })
}

/// Writes the state after `done` iterations to `path` (atomically).
fn write_checkpoint(
    path: &Path,
    problem: &ModelProblem<f32>,
    optimizer: &dyn Optimizer<ModelProblem<f32>>,
    theta: &Vec<f32>,
    done: usize,
) -> Result<(), Failure> {
    Checkpoint::capture::<ModelProblem<f32>, _>(problem.ops(), optimizer, theta, done)
        .write(path)
        .map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Writes `theta` as a float32 `.npy` atomically: a temporary file renamed into place, so a
/// killed process leaves either the old file or the new one.
pub fn write_parameters(path: &Path, theta: &[f32]) -> Result<(), Failure> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    natgrad_data::npy::write(&temporary, &[theta.len()], theta)?;
    std::fs::File::open(&temporary).and_then(|f| f.sync_all())?;
    std::fs::rename(&temporary, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}
