//! The training loop shared by every optimizer: iterations, a record per iteration,
//! stopping by iterations / time / target loss, and NaN / Inf detection (a failed or
//! non-finite step restores the parameters of the last good iteration).

use std::time::{Duration, Instant};

use crate::OpError;
use crate::problem::Problem;
use crate::vector::VectorOps;

/// What one iteration of an optimizer reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepInfo {
    /// Loss on the iteration's gradient batch before the step.
    pub loss: f64,
    /// Linear-solver iterations (0 for first-order methods).
    pub solver_iterations: usize,
    /// Why the solver stopped.
    pub solver_flag: String,
    /// Damping λ used.
    pub damping: f64,
    /// Step size taken (learning rate, line-search α, …).
    pub step_size: f64,
    /// Metric products computed.
    pub metric_products: usize,
}

/// One row of the training record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Iteration (from 1).
    pub iteration: usize,
    /// Seconds since training started.
    pub seconds: f64,
    /// The optimizer's report.
    pub step: StepInfo,
}

/// One optimizer iteration.
pub trait Optimizer<P: Problem> {
    /// Short name (`ngd`, `sgd`, …).
    fn name(&self) -> &'static str;
    /// Updates `theta` in place by one iteration.
    fn step(
        &mut self,
        problem: &mut P,
        theta: &mut <P::Ops as VectorOps>::Vector,
    ) -> Result<StepInfo, OpError>;
    /// The optimizer's state (scalars such as λ, vectors such as the previous direction),
    /// for checkpoints. Stateless optimizers keep the default.
    fn state(&self, _ops: &P::Ops) -> OptimizerState {
        OptimizerState::default()
    }
    /// Restores a state saved by [`Optimizer::state`].
    fn restore(&mut self, _ops: &P::Ops, _state: &OptimizerState) {}
}

/// An optimizer's state as plain numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    /// Scalars (damping λ, …).
    pub scalars: Vec<f64>,
    /// Vectors (previous direction, velocity, …).
    pub vectors: Vec<Vec<f64>>,
}

/// When to stop.
#[derive(Clone, Debug, Default)]
pub struct StopWhen {
    /// Most iterations.
    pub max_iterations: Option<usize>,
    /// Wall-clock budget.
    pub time: Option<Duration>,
    /// Stop once an iteration's loss is at most this.
    pub target_loss: Option<f64>,
}

/// Training failures.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss or the parameters became NaN or infinite; the parameters were restored to
    /// those of the previous iteration.
    #[error(
        "iteration {iteration}: {what} is not finite ({value}); stopped, the parameters are restored to those before this iteration"
    )]
    NonFinite {
        /// Iteration.
        iteration: usize,
        /// `loss` or `parameters`.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// The problem or solver failed; the parameters were restored to those of the previous
    /// iteration.
    #[error("iteration {iteration}: {source} (the parameters are restored to those before this iteration)")]
    Step {
        /// Iteration.
        iteration: usize,
        /// The failure.
        source: OpError,
    },
}

impl TrainError {
    /// The iteration that failed (the parameters are those after the one before it).
    pub fn iteration(&self) -> usize {
        match self {
            TrainError::NonFinite { iteration, .. } | TrainError::Step { iteration, .. } => *iteration,
        }
    }
}

/// Runs `optimizer` from `theta` until `stop`; `on_record` sees every record as it is made
/// (progress bars, evaluation at chosen iterations). Returns the records.
///
/// When a step fails or leaves the loss or the parameters NaN or infinite, `theta` is
/// restored to its value before that step (the last good parameters) and the error says so:
/// a run never ends with garbage parameters.
pub fn train<P: Problem, O: Optimizer<P> + ?Sized>(
    problem: &mut P,
    optimizer: &mut O,
    theta: &mut <P::Ops as VectorOps>::Vector,
    stop: &StopWhen,
    mut on_record: impl FnMut(&Record, &<P::Ops as VectorOps>::Vector),
) -> Result<Vec<Record>, TrainError> {
    let start = Instant::now();
    let mut records = Vec::new();
    let ops = problem.ops().clone();
    let mut last_good = ops.zeros_like(theta);
    ops.copy(theta, &mut last_good);
    for iteration in 1.. {
        if stop.max_iterations.is_some_and(|m| iteration > m) {
            break;
        }
        if let Some(budget) = stop.time {
            match problem.decide_together(start.elapsed() >= budget) {
                Ok(true) => break,
                Ok(false) => {}
                Err(source) => return Err(TrainError::Step { iteration, source }),
            }
        }
        let step = match checked_step(problem, optimizer, theta, iteration) {
            Ok(step) => step,
            Err(error) => {
                ops.copy(&last_good, theta);
                return Err(error);
            }
        };
        ops.copy(theta, &mut last_good);
        let reached = stop.target_loss.is_some_and(|t| step.loss <= t);
        let record = Record { iteration, seconds: start.elapsed().as_secs_f64(), step };
        on_record(&record, theta);
        records.push(record);
        if reached {
            break;
        }
    }
    Ok(records)
}

/// One optimizer step, failing when it errs or leaves the loss or `theta` non-finite.
fn checked_step<P: Problem, O: Optimizer<P> + ?Sized>(
    problem: &mut P,
    optimizer: &mut O,
    theta: &mut <P::Ops as VectorOps>::Vector,
    iteration: usize,
) -> Result<StepInfo, TrainError> {
    let step = optimizer.step(problem, theta).map_err(|source| TrainError::Step { iteration, source })?;
    if !step.loss.is_finite() {
        return Err(TrainError::NonFinite { iteration, what: "loss", value: step.loss });
    }
    let norm = problem.ops().norm(theta);
    if !norm.is_finite() {
        return Err(TrainError::NonFinite { iteration, what: "parameters", value: norm });
    }
    Ok(step)
}
