//! Linear conjugate gradient for `A x = b` with `A` symmetric positive (semi-)definite, as
//! used by truncated-Newton methods: warm starts, a diagonal preconditioner, Martens'
//! relative-progress stopping rule, and a report on non-positive curvature.

use crate::vector::VectorOps;
use crate::{OpError, Operator};

/// CG options.
#[derive(Clone, Debug)]
pub struct CgOptions {
    /// Most iterations.
    pub max_iterations: usize,
    /// Stop when ‖r‖ ≤ tolerance · ‖b‖.
    pub tolerance: f64,
    /// Martens (2010): stop at iteration `i` when the quadratic `q(x) = ½xᵀAx − bᵀx` improved
    /// by less than `k · progress` relatively over the last `k = max(10, ⌈0.1 i⌉)` iterations.
    pub progress: Option<f64>,
    /// Iterations (1-based) whose iterates are kept, for CG-backtracking.
    pub save_at: Vec<usize>,
}

impl Default for CgOptions {
    fn default() -> CgOptions {
        CgOptions { max_iterations: 250, tolerance: 1e-10, progress: Some(5e-4), save_at: Vec::new() }
    }
}

/// Why CG stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgFlag {
    /// The relative residual reached the tolerance.
    Converged,
    /// Martens' relative-progress rule fired.
    Progress,
    /// The iteration limit.
    MaxIterations,
    /// `pᵀAp ≤ 0`: the matrix is not positive definite along `p`; `x` is the last iterate.
    NegativeCurvature,
}

/// CG's result.
#[derive(Clone, Debug)]
pub struct CgResult<V> {
    /// The solution estimate.
    pub x: V,
    /// Iterations run.
    pub iterations: usize,
    /// ‖b − Ax‖ / ‖b‖.
    pub relative_residual: f64,
    /// Why it stopped.
    pub flag: CgFlag,
    /// `q(xᵢ)` after each iteration.
    pub quadratic: Vec<f64>,
    /// `(iteration, xᵢ)` for the iterations in `save_at` that were reached, plus the last.
    pub saved: Vec<(usize, V)>,
}

/// Solves `A x = b` from `x0` (zero when `None`); `preconditioner` is the inverse diagonal
/// `M⁻¹` applied elementwise.
pub fn cg<O: VectorOps>(
    ops: &O,
    a: &mut Operator<'_, O::Vector>,
    b: &O::Vector,
    x0: Option<&O::Vector>,
    preconditioner: Option<&O::Vector>,
    options: &CgOptions,
) -> Result<CgResult<O::Vector>, OpError> {
    let mut x = ops.zeros_like(b);
    let mut r = ops.zeros_like(b);
    ops.copy(b, &mut r);
    if let Some(x0) = x0 {
        ops.copy(x0, &mut x);
        let mut ax = ops.zeros_like(b);
        a(&x, &mut ax)?;
        ops.axpy(-1.0, &ax, &mut r);
    }
    let b_norm = ops.norm(b).max(f64::MIN_POSITIVE);
    let precondition = |r: &O::Vector, z: &mut O::Vector| match preconditioner {
        Some(m) => ops.mul(m, r, z),
        None => ops.copy(r, z),
    };
    let mut z = ops.zeros_like(b);
    precondition(&r, &mut z);
    let mut p = ops.zeros_like(b);
    ops.copy(&z, &mut p);
    let mut rz = ops.dot(&r, &z);
    let mut ap = ops.zeros_like(b);
    let quadratic_of = |x: &O::Vector, r: &O::Vector| -0.5 * (ops.dot(x, b) + ops.dot(x, r));
    let mut quadratic = Vec::new();
    let mut saved = Vec::new();
    let mut flag = CgFlag::MaxIterations;
    let mut iterations = 0;
    if ops.norm(&r) / b_norm <= options.tolerance {
        flag = CgFlag::Converged;
    }
    while flag == CgFlag::MaxIterations && iterations < options.max_iterations {
        a(&p, &mut ap)?;
        let curvature = ops.dot(&p, &ap);
        if curvature <= 0.0 || !curvature.is_finite() {
            flag = CgFlag::NegativeCurvature;
            break;
        }
        iterations += 1;
        let alpha = rz / curvature;
        ops.axpy(alpha, &p, &mut x);
        ops.axpy(-alpha, &ap, &mut r);
        let q = quadratic_of(&x, &r);
        quadratic.push(q);
        if options.save_at.contains(&iterations) {
            let mut copy = ops.zeros_like(b);
            ops.copy(&x, &mut copy);
            saved.push((iterations, copy));
        }
        if ops.norm(&r) / b_norm <= options.tolerance {
            flag = CgFlag::Converged;
            break;
        }
        if let Some(eps) = options.progress {
            let k = 10usize.max((0.1 * iterations as f64).ceil() as usize);
            if iterations > k && q < 0.0 && (q - quadratic[iterations - 1 - k]) / q < k as f64 * eps {
                flag = CgFlag::Progress;
                break;
            }
        }
        precondition(&r, &mut z);
        let rz_next = ops.dot(&r, &z);
        let beta = rz_next / rz;
        rz = rz_next;
        ops.axpby(1.0, &z, beta, &mut p);
    }
    if saved.last().map(|(i, _)| *i) != Some(iterations) {
        let mut copy = ops.zeros_like(b);
        ops.copy(&x, &mut copy);
        saved.push((iterations, copy));
    }
    Ok(CgResult { relative_residual: ops.norm(&r) / b_norm, x, iterations, flag, quadratic, saved })
}
