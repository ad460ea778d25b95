//! The optimizers: natural gradient (NGD, NGD-L), natural conjugate gradient (NCG-L with
//! COBYLA over (α, β), NCG-F with Polak–Ribière), Hessian-free, and SGD.

use std::cell::RefCell;

use crate::damping::{Damping, reduction_ratio};
use crate::problem::Problem;
use crate::train::{Optimizer, OptimizerState, StepInfo};
use crate::vector::VectorOps;
use crate::{CgOptions, MinresQlpOptions, OpError, cg, minres_qlp};

type V<P> = <<P as Problem>::Ops as VectorOps>::Vector;

/// Which linear solver inverts the damped metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Conjugate gradient (Martens' stopping rule).
    Cg,
    /// MinRes-QLP.
    MinresQlp,
}

/// How the step along the direction is sized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepSize {
    /// A fixed learning rate.
    Fixed(f64),
    /// Backtracking (Armijo, c = 1e-4, halving from 1) on the gradient batch's loss.
    LineSearch,
}

/// Settings shared by the second-order methods.
#[derive(Clone, Copy, Debug)]
pub struct SecondOrder {
    /// Linear solver.
    pub solver: Solver,
    /// Its iteration limit.
    pub max_solver_iterations: usize,
    /// Damping policy.
    pub damping: Damping,
    /// Start each solve from 0.95× the previous iteration's solution, as HF does (NGD and
    /// NCG; HF always does).
    pub warm_start: bool,
}

impl Default for SecondOrder {
    fn default() -> SecondOrder {
        SecondOrder {
            solver: Solver::MinresQlp,
            max_solver_iterations: 250,
            damping: Damping::levenberg_marquardt(3.0),
            warm_start: false,
        }
    }
}

/// The result of one damped solve.
struct Solve<T> {
    x: T,
    iterations: usize,
    flag: String,
    /// CG iterates saved for backtracking (CG only).
    saved: Vec<(usize, T)>,
}

/// CG-only extras of a solve (HF): warm start, iterates to keep, preconditioner `M⁻¹`.
struct CgExtras<'a, T> {
    warm: Option<&'a T>,
    save_at: &'a [usize],
    preconditioner: Option<&'a T>,
}

impl<T> Default for CgExtras<'_, T> {
    fn default() -> Self {
        CgExtras { warm: None, save_at: &[], preconditioner: None }
    }
}

/// Solves `(G + λI) d = −g` with the prepared metric.
fn solve<P: Problem>(
    problem: &mut P,
    g: &V<P>,
    lambda: f64,
    settings: &SecondOrder,
    extras: CgExtras<'_, V<P>>,
    products: &mut usize,
) -> Result<Solve<V<P>>, OpError> {
    let ops = problem.ops().clone();
    let mut rhs = ops.zeros_like(g);
    ops.axpby(-1.0, g, 0.0, &mut rhs);
    match settings.solver {
        Solver::MinresQlp => {
            // Warm start: solve for the correction y in (G + λI) y = rhs − (G + λI) x₀.
            if let Some(x0) = extras.warm {
                let mut a_x0 = ops.zeros_like(g);
                *products += 1;
                problem.metric_product(x0, &mut a_x0)?;
                ops.axpy(lambda, x0, &mut a_x0);
                ops.axpy(-1.0, &a_x0, &mut rhs);
            }
            let options = MinresQlpOptions {
                shift: lambda,
                max_iterations: settings.max_solver_iterations,
                rtol: 1e-6,
                ..Default::default()
            };
            let mut op = |v: &V<P>, out: &mut V<P>| {
                *products += 1;
                problem.metric_product(v, out)
            };
            let mut r = minres_qlp(&ops, &mut op, &rhs, &options)?;
            if let Some(x0) = extras.warm {
                ops.axpy(1.0, x0, &mut r.x);
            }
            Ok(Solve { x: r.x, iterations: r.iterations, flag: format!("{:?}", r.flag), saved: Vec::new() })
        }
        Solver::Cg => {
            let options = CgOptions {
                max_iterations: settings.max_solver_iterations,
                tolerance: 1e-6,
                progress: Some(5e-4),
                save_at: extras.save_at.to_vec(),
            };
            let mut op = |v: &V<P>, out: &mut V<P>| {
                *products += 1;
                problem.metric_product(v, out)?;
                ops.axpy(lambda, v, out);
                Ok(())
            };
            let r = cg(&ops, &mut op, &rhs, extras.warm, extras.preconditioner, &options)?;
            Ok(Solve { x: r.x, iterations: r.iterations, flag: format!("{:?}", r.flag), saved: r.saved })
        }
    }
}

/// The start of every second-order iteration: next batches, loss and gradient on the
/// gradient batch, metric prepared at θ.
pub(crate) fn begin_second_order_step<P: Problem>(
    problem: &mut P,
    theta: &V<P>,
) -> Result<(P::Ops, V<P>, f64), OpError> {
    problem.next_batch();
    let ops = problem.ops().clone();
    let mut g = ops.zeros_like(theta);
    let loss = problem.loss_and_gradient(theta, &mut g)?;
    problem.prepare_metric(theta)?;
    Ok((ops, g, loss))
}

/// `θ + α d` into `out`.
fn moved<O: VectorOps>(ops: &O, theta: &O::Vector, alpha: f64, d: &O::Vector, out: &mut O::Vector) {
    ops.copy(theta, out);
    ops.axpy(alpha, d, out);
}

/// An Armijo backtracking schedule: accept `L(θ + αd) ≤ L₀ + c·α·gᵀd`, else α ← shrink·α.
#[derive(Clone, Copy, Debug)]
struct Armijo {
    c: f64,
    shrink: f64,
    tries: usize,
}

/// The line search of NGD-L and NCG-F.
const HALVING: Armijo = Armijo { c: 1e-4, shrink: 0.5, tries: 30 };
/// Martens' line search for HF.
const MARTENS: Armijo = Armijo { c: 1e-2, shrink: 0.8, tries: 60 };

/// Backtracking from α = 1. Returns (α, loss at θ + αd); α = 0 when no decrease was found.
fn backtrack<P: Problem>(
    problem: &mut P,
    theta: &V<P>,
    d: &V<P>,
    loss0: f64,
    slope: f64,
    schedule: Armijo,
) -> Result<(f64, f64), OpError> {
    let Armijo { c, shrink, tries } = schedule;
    let ops = problem.ops().clone();
    let mut trial = ops.zeros_like(theta);
    let mut alpha = 1.0;
    for _ in 0..tries {
        moved(&ops, theta, alpha, d, &mut trial);
        let loss = problem.loss(&trial)?;
        if loss.is_finite() && loss <= loss0 + c * alpha * slope {
            return Ok((alpha, loss));
        }
        alpha *= shrink;
    }
    Ok((0.0, loss0))
}

/// Updates λ from the step `delta` taken: one more metric product for `δᵀGδ`.
fn update_damping<P: Problem>(
    problem: &mut P,
    damping: Damping,
    lambda: f64,
    g: &V<P>,
    delta: &V<P>,
    (loss_before, loss_after): (f64, f64),
    products: &mut usize,
) -> Result<f64, OpError> {
    if let Damping::Fixed(l) = damping {
        return Ok(l);
    }
    let ops = problem.ops().clone();
    let mut gd = ops.zeros_like(g);
    problem.metric_product(delta, &mut gd)?;
    *products += 1;
    let rho = reduction_ratio(loss_before, loss_after, ops.dot(g, delta), ops.dot(delta, &gd));
    Ok(damping.update(lambda, rho))
}

/// 0.95× the previous solution, the warm start of the next solve (Martens 2010).
fn warm_start<O: VectorOps>(ops: &O, previous: Option<&O::Vector>) -> Option<O::Vector> {
    previous.map(|p| {
        let mut w = ops.zeros_like(p);
        ops.axpby(0.95, p, 0.0, &mut w);
        w
    })
}

/// Natural gradient descent (Algorithm 2): `θ ← θ + α (G + λI)⁻¹(−g)`. With a fixed
/// learning rate, a step that raises the gradient batch's loss (ρ < 0) is rejected: θ stays,
/// λ grows.
#[derive(Clone, Debug)]
pub struct Ngd<T> {
    /// Solver and damping.
    pub settings: SecondOrder,
    /// Fixed learning rate (NGD) or line search (NGD-L).
    pub step: StepSize,
    lambda: f64,
    previous: Option<T>,
}

impl<T> Ngd<T> {
    /// NGD with the given settings.
    pub fn new(settings: SecondOrder, step: StepSize) -> Ngd<T> {
        Ngd { lambda: settings.damping.initial(), settings, step, previous: None }
    }

    /// The current damping λ.
    pub fn damping(&self) -> f64 {
        self.lambda
    }
}

impl<P: Problem> Optimizer<P> for Ngd<V<P>> {
    fn name(&self) -> &'static str {
        if self.step == StepSize::LineSearch { "ngd-l" } else { "ngd" }
    }

    fn state(&self, ops: &P::Ops) -> OptimizerState {
        OptimizerState {
            scalars: vec![self.lambda],
            vectors: self.previous.iter().map(|v| ops.to_f64(v)).collect(),
        }
    }

    fn restore(&mut self, ops: &P::Ops, state: &OptimizerState) {
        self.lambda = state.scalars[0];
        self.previous = state.vectors.first().map(|v| ops.vector_from_f64(v));
    }

    fn step(&mut self, problem: &mut P, theta: &mut V<P>) -> Result<StepInfo, OpError> {
        let (ops, g, loss) = begin_second_order_step(problem, theta)?;
        let mut products = 0;
        let lambda = self.lambda;
        let warm = warm_start(&ops, self.previous.as_ref().filter(|_| self.settings.warm_start));
        let extras = CgExtras { warm: warm.as_ref(), ..CgExtras::default() };
        let s = solve(problem, &g, lambda, &self.settings, extras, &mut products)?;
        let (alpha, after) = match self.step {
            StepSize::Fixed(lr) => {
                let mut trial = ops.zeros_like(theta);
                moved(&ops, theta, lr, &s.x, &mut trial);
                (lr, problem.loss(&trial)?)
            }
            StepSize::LineSearch => backtrack(problem, theta, &s.x, loss, ops.dot(&g, &s.x), HALVING)?,
        };
        let mut delta = ops.zeros_like(theta);
        ops.axpby(alpha, &s.x, 0.0, &mut delta);
        self.lambda =
            update_damping(problem, self.settings.damping, lambda, &g, &delta, (loss, after), &mut products)?;
        // A fixed-rate step that raised the loss (ρ < 0) is rejected; the line search has
        // already shrunk its step (α = 0 when nothing decreased).
        let alpha = if after.is_finite() && after <= loss { alpha } else { 0.0 };
        if alpha == 0.0 {
            ops.fill(&mut delta, 0.0);
        }
        ops.axpy(1.0, &delta, theta);
        self.previous = Some(s.x);
        Ok(StepInfo {
            loss,
            solver_iterations: s.iterations,
            solver_flag: s.flag,
            damping: lambda,
            step_size: alpha,
            metric_products: products,
        })
    }
}

/// Stochastic gradient descent with optional momentum.
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    /// Learning rate.
    pub learning_rate: f64,
    /// Momentum μ (0: plain SGD).
    pub momentum: f64,
    velocity: Option<T>,
}

impl<T> Sgd<T> {
    /// SGD with learning rate and momentum.
    pub fn new(learning_rate: f64, momentum: f64) -> Sgd<T> {
        Sgd { learning_rate, momentum, velocity: None }
    }
}

impl<P: Problem> Optimizer<P> for Sgd<V<P>> {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn state(&self, ops: &P::Ops) -> OptimizerState {
        OptimizerState { scalars: Vec::new(), vectors: self.velocity.iter().map(|v| ops.to_f64(v)).collect() }
    }

    fn restore(&mut self, ops: &P::Ops, state: &OptimizerState) {
        self.velocity = state.vectors.first().map(|v| ops.vector_from_f64(v));
    }

    fn step(&mut self, problem: &mut P, theta: &mut V<P>) -> Result<StepInfo, OpError> {
        problem.next_batch();
        let ops = problem.ops().clone();
        let mut g = ops.zeros_like(theta);
        let loss = problem.loss_and_gradient(theta, &mut g)?;
        if self.momentum == 0.0 {
            ops.axpy(-self.learning_rate, &g, theta);
        } else {
            let velocity = self.velocity.get_or_insert_with(|| ops.zeros_like(theta));
            ops.axpby(-self.learning_rate, &g, self.momentum, velocity);
            ops.axpy(1.0, velocity, theta);
        }
        Ok(StepInfo { loss, step_size: self.learning_rate, ..StepInfo::default() })
    }
}

/// Bits of mantissa COBYLA sees of each loss: ~1e-10 relative, far below its 1e-6 stopping
/// tolerance.
const COBYLA_MANTISSA_BITS: u32 = 34;

/// `loss` rounded to [`COBYLA_MANTISSA_BITS`] bits of mantissa (to nearest). COBYLA decides by
/// comparing loss values, so last-bit differences from another summation order (thread count,
/// data-parallel ranks) would otherwise send its search elsewhere inside its tolerance and the
/// following iterations would amplify that; rounded, those differences vanish except in the
/// rare case that they straddle a rounding boundary.
fn to_cobyla_resolution(loss: f64) -> f64 {
    if !loss.is_finite() {
        return loss;
    }
    let dropped = f64::MANTISSA_DIGITS - 1 - COBYLA_MANTISSA_BITS;
    let half = 1u64 << (dropped - 1);
    f64::from_bits((loss.to_bits() + half) & !((1u64 << dropped) - 1))
}

/// How NCG combines the new natural direction with the previous direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conjugacy {
    /// NCG-L: minimise `L(θ + α ñ + β d_prev)` over (α, β) with COBYLA (eq. 21–22).
    Cobyla,
    /// NCG-F: Polak–Ribière with `G⁻¹` as preconditioner, then a line search.
    PolakRibiere,
}

/// Natural conjugate gradient (section 9).
#[derive(Clone, Debug)]
pub struct Ncg<T> {
    /// Solver and damping.
    pub settings: SecondOrder,
    /// How directions are combined.
    pub conjugacy: Conjugacy,
    /// COBYLA's evaluation budget per iteration.
    pub max_evaluations: usize,
    lambda: f64,
    previous: Option<(T, T, T)>, // (direction d, gradient g, natural gradient z = G⁻¹g)
    last_beta: f64,
}

impl<T> Ncg<T> {
    /// NCG with the given settings.
    pub fn new(settings: SecondOrder, conjugacy: Conjugacy) -> Ncg<T> {
        Ncg {
            lambda: settings.damping.initial(),
            settings,
            conjugacy,
            max_evaluations: 30,
            previous: None,
            last_beta: 0.0,
        }
    }

    /// The previous direction, if any.
    pub fn direction(&self) -> Option<&T> {
        self.previous.as_ref().map(|(d, _, _)| d)
    }

    /// β/α of the last iteration (the weight of the previous direction).
    pub fn last_beta(&self) -> f64 {
        self.last_beta
    }
}

impl<P: Problem> Optimizer<P> for Ncg<V<P>> {
    fn name(&self) -> &'static str {
        match self.conjugacy {
            Conjugacy::Cobyla => "ncg-l",
            Conjugacy::PolakRibiere => "ncg-f",
        }
    }

    fn state(&self, ops: &P::Ops) -> OptimizerState {
        let vectors = match &self.previous {
            Some((d, g, z)) => vec![ops.to_f64(d), ops.to_f64(g), ops.to_f64(z)],
            None => Vec::new(),
        };
        OptimizerState { scalars: vec![self.lambda, self.last_beta], vectors }
    }

    fn restore(&mut self, ops: &P::Ops, state: &OptimizerState) {
        (self.lambda, self.last_beta) = (state.scalars[0], state.scalars[1]);
        self.previous = match state.vectors.as_slice() {
            [d, g, z] => Some((ops.vector_from_f64(d), ops.vector_from_f64(g), ops.vector_from_f64(z))),
            _ => None,
        };
    }

    fn step(&mut self, problem: &mut P, theta: &mut V<P>) -> Result<StepInfo, OpError> {
        let (ops, g, loss) = begin_second_order_step(problem, theta)?;
        let mut products = 0;
        let lambda = self.lambda;
        // The previous natural direction is −z_prev.
        let previous_natural =
            self.previous.as_ref().filter(|_| self.settings.warm_start).map(|(_, _, z)| {
                let mut n = ops.zeros_like(z);
                ops.axpby(-1.0, z, 0.0, &mut n);
                n
            });
        let warm = warm_start(&ops, previous_natural.as_ref());
        let extras = CgExtras { warm: warm.as_ref(), ..CgExtras::default() };
        let s = solve(problem, &g, lambda, &self.settings, extras, &mut products)?;
        let natural = s.x; // ñ = −(G + λI)⁻¹ g, a descent direction
        let (delta, direction, alpha, loss_after) = match (self.conjugacy, &self.previous) {
            (Conjugacy::Cobyla, Some((d_prev, _, _))) => {
                let cell = RefCell::new((&mut *problem, ops.zeros_like(theta)));
                let objective = |x: &[f64], _: &mut ()| {
                    let mut guard = cell.borrow_mut();
                    let (problem, trial) = &mut *guard;
                    ops.copy(theta, trial);
                    ops.axpy(x[0], &natural, trial);
                    ops.axpy(x[1], d_prev, trial);
                    problem.loss(trial).map_or(f64::INFINITY, to_cobyla_resolution)
                };
                let no_constraints: [fn(&[f64], &mut ()) -> f64; 0] = [];
                let bounds = [(0.0, 4.0), (-4.0, 4.0)];
                let stop = cobyla::StopTols { ftol_rel: 1e-6, ..Default::default() };
                let found = cobyla::minimize(
                    objective,
                    &[1.0, 0.0],
                    &bounds,
                    &no_constraints,
                    (),
                    self.max_evaluations,
                    cobyla::RhoBeg::All(0.5),
                    Some(stop),
                );
                let (a, b, f) = match found {
                    Ok((_, x, f)) | Err((_, x, f)) => (x[0], x[1], f),
                };
                drop(cell);
                let (a, b, f) = if f.is_finite() && f < loss { (a, b, f) } else { (0.0, 0.0, loss) };
                let mut delta = ops.zeros_like(theta);
                ops.axpby(a, &natural, 0.0, &mut delta);
                ops.axpy(b, d_prev, &mut delta);
                let mut direction = ops.zeros_like(theta);
                ops.copy(&natural, &mut direction);
                let ratio = if a > 1e-12 { b / a } else { 0.0 };
                ops.axpy(ratio, d_prev, &mut direction);
                self.last_beta = ratio;
                (delta, direction, a, f)
            }
            (Conjugacy::PolakRibiere, Some((d_prev, g_prev, z_prev))) => {
                // z = G⁻¹g = −ñ; β = gᵀ(z − z_prev) / g_prevᵀz_prev, clipped at 0.
                let (num, den) = (-ops.dot(&g, &natural) - ops.dot(&g, z_prev), ops.dot(g_prev, z_prev));
                let beta = if den > 0.0 { (num / den).max(0.0) } else { 0.0 };
                let mut direction = ops.zeros_like(theta);
                ops.copy(&natural, &mut direction);
                ops.axpy(beta, d_prev, &mut direction);
                if ops.dot(&g, &direction) >= 0.0 {
                    ops.copy(&natural, &mut direction); // restart on a non-descent direction
                }
                self.last_beta = beta;
                let (a, f) = backtrack(problem, theta, &direction, loss, ops.dot(&g, &direction), HALVING)?;
                let mut delta = ops.zeros_like(theta);
                ops.axpby(a, &direction, 0.0, &mut delta);
                (delta, direction, a, f)
            }
            (_, None) => {
                let (a, f) = backtrack(problem, theta, &natural, loss, ops.dot(&g, &natural), HALVING)?;
                let mut delta = ops.zeros_like(theta);
                ops.axpby(a, &natural, 0.0, &mut delta);
                let mut direction = ops.zeros_like(theta);
                ops.copy(&natural, &mut direction);
                (delta, direction, a, f)
            }
        };
        self.lambda = update_damping(
            problem,
            self.settings.damping,
            lambda,
            &g,
            &delta,
            (loss, loss_after),
            &mut products,
        )?;
        ops.axpy(1.0, &delta, theta);
        let mut z = ops.zeros_like(theta);
        ops.axpby(-1.0, &natural, 0.0, &mut z);
        self.previous = Some((direction, g, z));
        Ok(StepInfo {
            loss,
            solver_iterations: s.iterations,
            solver_flag: s.flag,
            damping: lambda,
            step_size: alpha,
            metric_products: products,
        })
    }
}

/// Hessian-free optimisation (Martens 2010) on the Gauss-Newton metric: CG warm-started
/// at 0.95× the previous solution, CG-backtracking over iterates saved at ⌈5·1.3ʲ⌉, an
/// Armijo line search (c = 1e-2, shrink 0.8) and Levenberg–Marquardt damping.
#[derive(Clone, Debug)]
pub struct HessianFree<T> {
    /// CG limit and damping (the solver is always CG).
    pub settings: SecondOrder,
    lambda: f64,
    previous: Option<T>,
}

impl<T> HessianFree<T> {
    /// HF with Martens' defaults: damping from 45, CG ≤ 250 iterations.
    pub fn new(settings: SecondOrder) -> HessianFree<T> {
        HessianFree {
            lambda: settings.damping.initial(),
            settings: SecondOrder { solver: Solver::Cg, ..settings },
            previous: None,
        }
    }
}

impl<P: Problem> Optimizer<P> for HessianFree<V<P>> {
    fn name(&self) -> &'static str {
        "hf"
    }

    fn state(&self, ops: &P::Ops) -> OptimizerState {
        OptimizerState {
            scalars: vec![self.lambda],
            vectors: self.previous.iter().map(|v| ops.to_f64(v)).collect(),
        }
    }

    fn restore(&mut self, ops: &P::Ops, state: &OptimizerState) {
        self.lambda = state.scalars[0];
        self.previous = state.vectors.first().map(|v| ops.vector_from_f64(v));
    }

    fn step(&mut self, problem: &mut P, theta: &mut V<P>) -> Result<StepInfo, OpError> {
        let (ops, g, loss) = begin_second_order_step(problem, theta)?;
        let mut products = 0;
        let lambda = self.lambda;
        let warm = warm_start(&ops, self.previous.as_ref());
        let save_at: Vec<usize> = (0..40).map(|j| (5.0 * 1.3f64.powi(j)).ceil() as usize).collect();
        // Martens' preconditioner M⁻¹ = (diag(Σ gᵢ²)/N + λ)^(−¾), when the problem provides it.
        let mut squares = ops.zeros_like(theta);
        let preconditioner = if problem.squared_gradients(theta, &mut squares)? {
            let mut inverse = ops.zeros_like(theta);
            ops.shifted_power(&squares, lambda, -0.75, &mut inverse);
            Some(inverse)
        } else {
            None
        };
        let extras =
            CgExtras { warm: warm.as_ref(), save_at: &save_at, preconditioner: preconditioner.as_ref() };
        let s = solve(problem, &g, lambda, &self.settings, extras, &mut products)?;
        // CG-backtracking: walk back from the last saved iterate while the loss improves.
        let mut best = s.saved.len().saturating_sub(1);
        let mut trial = ops.zeros_like(theta);
        moved(&ops, theta, 1.0, &s.saved[best].1, &mut trial);
        let mut best_loss = problem.loss(&trial)?;
        while best > 0 {
            moved(&ops, theta, 1.0, &s.saved[best - 1].1, &mut trial);
            let l = problem.loss(&trial)?;
            if l < best_loss {
                best -= 1;
                best_loss = l;
            } else {
                break;
            }
        }
        let chosen = &s.saved[best].1;
        let alpha = if best_loss <= loss + 1e-2 * ops.dot(&g, chosen) {
            1.0
        } else {
            backtrack(problem, theta, chosen, loss, ops.dot(&g, chosen), MARTENS)?.0
        };
        let mut delta = ops.zeros_like(theta);
        ops.axpby(alpha, chosen, 0.0, &mut delta);
        // ρ from the undamped quadratic at the chosen CG iterate.
        self.lambda = update_damping(
            problem,
            self.settings.damping,
            lambda,
            &g,
            chosen,
            (loss, best_loss),
            &mut products,
        )?;
        ops.axpy(1.0, &delta, theta);
        let mut keep = ops.zeros_like(theta);
        ops.copy(&s.x, &mut keep);
        self.previous = Some(keep);
        Ok(StepInfo {
            loss,
            solver_iterations: s.iterations,
            solver_flag: s.flag,
            damping: lambda,
            step_size: alpha,
            metric_products: products,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::to_cobyla_resolution;

    #[test]
    fn cobyla_sees_losses_to_ten_digits_and_last_bit_differences_vanish() {
        for loss in [654.305_581_234_567_8, 1.0, 0.125, 3.7e-5, -42.5, 1.999_999_999_999_9] {
            let rounded = to_cobyla_resolution(loss);
            assert!((rounded - loss).abs() <= 2f64.powi(-34) * loss.abs(), "{loss} → {rounded}");
            let neighbour = f64::from_bits(loss.to_bits() + 3);
            assert_eq!(to_cobyla_resolution(neighbour), rounded, "{loss}: a last-bit change survived");
        }
        assert_eq!(to_cobyla_resolution(f64::INFINITY), f64::INFINITY);
        assert!(to_cobyla_resolution(f64::NAN).is_nan());
        assert_eq!(to_cobyla_resolution(0.0), 0.0);
    }
}
