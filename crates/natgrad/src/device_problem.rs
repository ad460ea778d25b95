//! A [`ModelProblem`] seen through vectors that live on the device: the optimizers' vectors
//! (θ, the gradient, every CG / MinRes-QLP vector) stay in GPU memory, and each metric
//! product copies its tangent inputs and results on the device. The loss, the gradient and
//! the metric's preparation run once per outer iteration on host slices: θ is downloaded for
//! them and the gradient uploaded.

use std::any::Any;

use natgrad_ir::Scalar;
use natgrad_optim::{OpError, Problem, Transfer};

use crate::training::ModelProblem;

/// A [`ModelProblem`] whose optimizer vectors are `O`'s (the CUDA backend's device vectors).
pub struct DeviceProblem<T: Scalar, O> {
    host: ModelProblem<T>,
    ops: O,
    theta: Vec<T>,
    grad: Vec<T>,
}

impl<T: Scalar, O: Transfer<T>> DeviceProblem<T, O> {
    /// `host` with vectors of `ops`; one process only (a data-parallel problem sums host
    /// vectors across processes).
    pub fn new(host: ModelProblem<T>, ops: O) -> Result<DeviceProblem<T, O>, OpError> {
        if host.processes() > 1 {
            return Err(
                "device-resident vectors need a single process; a distributed run keeps host vectors".into(),
            );
        }
        let len = host.model().layout.len();
        Ok(DeviceProblem { host, ops, theta: Vec::new(), grad: vec![T::zero(); len] })
    }

    /// The host problem (for its counters).
    pub fn host(&self) -> &ModelProblem<T> {
        &self.host
    }

    /// Downloads `theta` into the host copy.
    fn fetch(&mut self, theta: &O::Vector) -> Result<(), OpError> {
        self.theta = self.ops.download(theta)?;
        Ok(())
    }
}

impl<T: Scalar, O: Transfer<T> + Clone> Problem for DeviceProblem<T, O>
where
    O::Vector: Any,
{
    type Ops = O;

    fn ops(&self) -> &O {
        &self.ops
    }

    fn loss_and_gradient(&mut self, theta: &O::Vector, grad: &mut O::Vector) -> Result<f64, OpError> {
        self.fetch(theta)?;
        let loss = self.host.loss_and_gradient(&self.theta, &mut self.grad)?;
        self.ops.write(&self.grad, grad)?;
        Ok(loss)
    }

    fn loss(&mut self, theta: &O::Vector) -> Result<f64, OpError> {
        self.fetch(theta)?;
        self.host.loss(&self.theta)
    }

    fn prepare_metric(&mut self, theta: &O::Vector) -> Result<(), OpError> {
        self.fetch(theta)?;
        self.host.prepare_metric(&self.theta)
    }

    fn metric_product(&mut self, v: &O::Vector, out: &mut O::Vector) -> Result<(), OpError> {
        self.host.metric_product_on_device(v, out)
    }

    fn next_batch(&mut self) {
        self.host.next_batch();
    }

    fn decide_together(&mut self, decision: bool) -> Result<bool, OpError> {
        self.host.decide_together(decision)
    }

    fn squared_gradients(&mut self, theta: &O::Vector, out: &mut O::Vector) -> Result<bool, OpError> {
        self.fetch(theta)?;
        // The host gradient buffer (parameter-sized) holds the squares on their way up.
        let available = self.host.squared_gradients(&self.theta, &mut self.grad)?;
        if available {
            self.ops.write(&self.grad, out)?;
        }
        Ok(available)
    }
}
