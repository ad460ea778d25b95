//! Krylov subspace descent (Vinyals & Povey 2012): minimise the loss over the span of the
//! gradient's Krylov subspace under the metric, `{g, Gg, …, G^{K−1}g}`, plus the previous
//! step, with BFGS over the few coefficients. The paper's section 6 relates it to NGD.

use crate::OpError;
use crate::methods::begin_second_order_step;
use crate::problem::Problem;
use crate::train::{Optimizer, OptimizerState, StepInfo};
use crate::vector::VectorOps;

type V<P> = <<P as Problem>::Ops as VectorOps>::Vector;

/// Krylov subspace descent.
#[derive(Clone, Debug)]
pub struct Ksd<T> {
    /// Krylov directions K (the subspace also holds the previous step).
    pub krylov_dimension: usize,
    /// BFGS iterations over the coefficients per step.
    pub bfgs_iterations: usize,
    previous: Option<T>,
}

impl<T> Ksd<T> {
    /// KSD with `krylov_dimension` directions and `bfgs_iterations` BFGS steps.
    pub fn new(krylov_dimension: usize, bfgs_iterations: usize) -> Ksd<T> {
        Ksd { krylov_dimension: krylov_dimension.max(1), bfgs_iterations, previous: None }
    }
}

/// Adds `v` to the orthonormal basis unless it is (numerically) in its span.
fn push_orthonormal<O: VectorOps>(ops: &O, basis: &mut Vec<O::Vector>, mut v: O::Vector) {
    for _ in 0..2 {
        for b in basis.iter() {
            let d = ops.dot(b, &v);
            ops.axpy(-d, b, &mut v);
        }
    }
    let norm = ops.norm(&v);
    if norm > 1e-10 && norm.is_finite() {
        ops.scale(1.0 / norm, &mut v);
        basis.push(v);
    }
}

/// A function's value and gradient at a point.
pub type ValueAndGradient<'a> = dyn FnMut(&[f64]) -> Result<(f64, Vec<f64>), OpError> + 'a;

/// BFGS with Armijo backtracking on `f` (value and gradient), from `a0`; returns the best
/// point found and its value.
pub fn bfgs(f: &mut ValueAndGradient<'_>, a0: &[f64], iterations: usize) -> Result<(Vec<f64>, f64), OpError> {
    let m = a0.len();
    let mut a = a0.to_vec();
    let (mut fa, mut g) = f(&a)?;
    let mut h: Vec<Vec<f64>> =
        (0..m).map(|i| (0..m).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    for _ in 0..iterations {
        let p: Vec<f64> = (0..m).map(|i| -(0..m).map(|j| h[i][j] * g[j]).sum::<f64>()).collect();
        let slope: f64 = p.iter().zip(&g).map(|(x, y)| x * y).sum();
        if slope.is_nan() || slope >= 0.0 {
            break;
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..30 {
            let trial: Vec<f64> = a.iter().zip(&p).map(|(x, d)| x + step * d).collect();
            let (ft, gt) = f(&trial)?;
            if ft.is_finite() && ft <= fa + 1e-4 * step * slope {
                accepted = Some((trial, ft, gt));
                break;
            }
            step *= 0.5;
        }
        let Some((next, f_next, g_next)) = accepted else { break };
        let s: Vec<f64> = next.iter().zip(&a).map(|(x, y)| x - y).collect();
        let y: Vec<f64> = g_next.iter().zip(&g).map(|(x, y)| x - y).collect();
        let sy: f64 = s.iter().zip(&y).map(|(p, q)| p * q).sum();
        if sy > 1e-12 {
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..m).map(|i| (0..m).map(|j| h[i][j] * y[j]).sum()).collect();
            let yhy: f64 = y.iter().zip(&hy).map(|(p, q)| p * q).sum();
            for i in 0..m {
                for j in 0..m {
                    h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
        (a, fa, g) = (next, f_next, g_next);
    }
    Ok((a, fa))
}

impl<P: Problem> Optimizer<P> for Ksd<V<P>> {
    fn name(&self) -> &'static str {
        "ksd"
    }

    fn step(&mut self, problem: &mut P, theta: &mut V<P>) -> Result<StepInfo, OpError> {
        let (ops, g, loss) = begin_second_order_step(problem, theta)?;
        let mut products = 0;
        let mut basis: Vec<V<P>> = Vec::new();
        let mut current = ops.zeros_like(theta);
        ops.copy(&g, &mut current);
        for k in 0..self.krylov_dimension {
            let mut v = ops.zeros_like(theta);
            ops.copy(&current, &mut v);
            push_orthonormal(&ops, &mut basis, v);
            if k + 1 < self.krylov_dimension {
                let Some(last) = basis.last() else { break };
                problem.metric_product(last, &mut current)?;
                products += 1;
            }
        }
        if let Some(previous) = &self.previous {
            let mut v = ops.zeros_like(theta);
            ops.copy(previous, &mut v);
            push_orthonormal(&ops, &mut basis, v);
        }
        let mut trial = ops.zeros_like(theta);
        let mut grad = ops.zeros_like(theta);
        let mut objective = |a: &[f64]| -> Result<(f64, Vec<f64>), OpError> {
            ops.copy(theta, &mut trial);
            for (b, &c) in basis.iter().zip(a) {
                ops.axpy(c, b, &mut trial);
            }
            let value = problem.loss_and_gradient(&trial, &mut grad)?;
            Ok((value, basis.iter().map(|b| ops.dot(b, &grad)).collect()))
        };
        let (a, value) = bfgs(&mut objective, &vec![0.0; basis.len()], self.bfgs_iterations)?;
        let mut delta = ops.zeros_like(theta);
        if value < loss {
            for (b, &c) in basis.iter().zip(&a) {
                ops.axpy(c, b, &mut delta);
            }
        }
        ops.axpy(1.0, &delta, theta);
        let step_size = ops.norm(&delta);
        self.previous = Some(delta);
        Ok(StepInfo {
            loss,
            solver_iterations: basis.len(),
            solver_flag: "bfgs".into(),
            step_size,
            metric_products: products,
            ..StepInfo::default()
        })
    }

    fn state(&self, ops: &P::Ops) -> OptimizerState {
        OptimizerState { scalars: Vec::new(), vectors: self.previous.iter().map(|v| ops.to_f64(v)).collect() }
    }

    fn restore(&mut self, ops: &P::Ops, state: &OptimizerState) {
        self.previous = state.vectors.first().map(|v| ops.vector_from_f64(v));
    }
}
