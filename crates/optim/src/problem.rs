//! What an optimizer needs from a model: loss, gradient and metric products on the current
//! batches, and a way to move to the next batches. Implemented for compiled models by the
//! facade and for dense quadratics by the tests.

use crate::OpError;
use crate::vector::VectorOps;

/// A training problem seen by the optimizers.
pub trait Problem {
    /// The vector backend (cheap to clone: a handle, not the vectors).
    type Ops: VectorOps + Clone;

    /// The vector operations.
    fn ops(&self) -> &Self::Ops;

    /// Loss on the current gradient batch at `theta`, writing the gradient.
    fn loss_and_gradient(
        &mut self,
        theta: &<Self::Ops as VectorOps>::Vector,
        grad: &mut <Self::Ops as VectorOps>::Vector,
    ) -> Result<f64, OpError>;

    /// Loss on the current gradient batch at `theta`.
    fn loss(&mut self, theta: &<Self::Ops as VectorOps>::Vector) -> Result<f64, OpError>;

    /// Makes `metric_product` use the metric at `theta` on the current metric batch.
    fn prepare_metric(&mut self, theta: &<Self::Ops as VectorOps>::Vector) -> Result<(), OpError>;

    /// `out ← G v` with the prepared metric.
    fn metric_product(
        &mut self,
        v: &<Self::Ops as VectorOps>::Vector,
        out: &mut <Self::Ops as VectorOps>::Vector,
    ) -> Result<(), OpError>;

    /// Draws the next gradient and metric batches (no-op for full-batch problems).
    fn next_batch(&mut self) {}

    /// The decision every process of a data-parallel problem takes: the first process's
    /// `decision` (a time budget runs out on each process's own clock). One process: `decision`.
    fn decide_together(&mut self, decision: bool) -> Result<bool, OpError> {
        Ok(decision)
    }

    /// Writes `(1/N) Σᵢ gᵢ ⊙ gᵢ` over the gradient batch (per-example gradients squared),
    /// for Martens' preconditioner; returns false when the problem cannot.
    fn squared_gradients(
        &mut self,
        _theta: &<Self::Ops as VectorOps>::Vector,
        _out: &mut <Self::Ops as VectorOps>::Vector,
    ) -> Result<bool, OpError> {
        Ok(false)
    }
}
