//! MINRES-QLP (Choi, Paige & Saunders 2011) for symmetric, possibly singular or
//! indefinite systems `(A + λI) x = b`: Lanczos tridiagonalisation, a QR factorisation of
//! the tridiagonal by Givens reflections, and an LQ factorisation of `R` from the first
//! iteration, which gives the minimum-norm (least-squares) solution when `A` is singular.
//! The recurrences follow the paper's Algorithm 1 (QLP from the first iteration).

use crate::vector::VectorOps;
use crate::{OpError, Operator};

/// MinRes-QLP options.
#[derive(Clone, Debug)]
pub struct MinresQlpOptions {
    /// The shift λ (damping): solve `(A + λI) x = b`.
    pub shift: f64,
    /// Most iterations (0: `4n`).
    pub max_iterations: usize,
    /// Stop when ‖r‖ ≤ rtol · ‖b‖.
    pub rtol: f64,
    /// Least-squares stop: ‖(A+λI) r‖ ≤ artol · ‖A‖ · ‖r‖.
    pub artol: f64,
    /// Stop when the estimated ‖x‖ exceeds this.
    pub max_x_norm: f64,
    /// Stop when the condition estimate exceeds this.
    pub max_cond: f64,
}

impl Default for MinresQlpOptions {
    fn default() -> MinresQlpOptions {
        MinresQlpOptions {
            shift: 0.0,
            max_iterations: 0,
            rtol: 1e-10,
            artol: 1e-10,
            max_x_norm: 1e100,
            max_cond: 1e15,
        }
    }
}

/// Why MinRes-QLP stopped (the flags of the reference implementation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinresFlag {
    /// `b = 0`: x = 0 is the solution.
    ZeroRhs,
    /// A compatible system was solved to `rtol`.
    Solved,
    /// A least-squares solution was found (`artol`): the system is incompatible.
    LeastSquares,
    /// The Lanczos process broke down with a residual left: the system is singular and
    /// incompatible; x is the minimum-norm least-squares solution of the Krylov space.
    Singular,
    /// ‖x‖ exceeded `max_x_norm`.
    XNormLimit,
    /// The condition estimate exceeded `max_cond`.
    CondLimit,
    /// The iteration limit.
    MaxIterations,
}

/// MinRes-QLP's result.
#[derive(Clone, Debug)]
pub struct MinresResult<V> {
    /// The solution estimate.
    pub x: V,
    /// Iterations run.
    pub iterations: usize,
    /// Estimated ‖b − (A+λI)x‖ / ‖b‖.
    pub relative_residual: f64,
    /// Estimated ‖(A+λI) r‖.
    pub ar_norm: f64,
    /// Estimated ‖A + λI‖ (Frobenius of the tridiagonal).
    pub a_norm: f64,
    /// Estimated condition number.
    pub cond: f64,
    /// Why it stopped.
    pub flag: MinresFlag,
}

/// A reflection `[c s; s −c]` with `[c s; s −c]·[a; b] = [r; 0]`, `r ≥ 0`.
fn reflection(a: f64, b: f64) -> (f64, f64, f64) {
    if b == 0.0 {
        let c = if a == 0.0 { 1.0 } else { a.signum() };
        (c, 0.0, a.abs())
    } else if a == 0.0 {
        (0.0, b.signum(), b.abs())
    } else if b.abs() > a.abs() {
        let t = a / b;
        let s = b.signum() / (1.0 + t * t).sqrt();
        let c = s * t;
        (c, s, b / s)
    } else {
        let t = b / a;
        let c = a.signum() / (1.0 + t * t).sqrt();
        let s = c * t;
        (c, s, a / c)
    }
}

/// Solves `(A + λI) x = b` (minimum-norm least squares when singular).
pub fn minres_qlp<O: VectorOps>(
    ops: &O,
    a: &mut Operator<'_, O::Vector>,
    b: &O::Vector,
    options: &MinresQlpOptions,
) -> Result<MinresResult<O::Vector>, OpError> {
    minres_qlp_preconditioned(ops, a, b, None, options)
}

/// [`minres_qlp`] with a symmetric positive definite diagonal preconditioner `M ≈ (A+λI)⁻¹`
/// (its diagonal, applied elementwise); residuals are then measured in the `M` norm.
pub fn minres_qlp_preconditioned<O: VectorOps>(
    ops: &O,
    a: &mut Operator<'_, O::Vector>,
    b: &O::Vector,
    preconditioner: Option<&O::Vector>,
    options: &MinresQlpOptions,
) -> Result<MinresResult<O::Vector>, OpError> {
    let apply_m = |x: &O::Vector, out: &mut O::Vector| match preconditioner {
        Some(m) => ops.mul(m, x, out),
        None => ops.copy(x, out),
    };
    let n = ops.len(b);
    let max_iterations = if options.max_iterations == 0 { 4 * n.max(1) } else { options.max_iterations };
    let mut x = ops.zeros_like(b);
    // Preconditioned Lanczos keeps both vₖ (= M·uₖ) and uₖ; β = √⟨v, u⟩.
    let mut first = ops.zeros_like(b);
    apply_m(b, &mut first);
    let beta1 = ops.dot(b, &first).max(0.0).sqrt();
    let result = |x, iterations, rnorm: f64, ar_norm, a_norm, cond, flag| MinresResult {
        x,
        iterations,
        relative_residual: if beta1 > 0.0 { rnorm / beta1 } else { 0.0 },
        ar_norm,
        a_norm,
        cond,
        flag,
    };
    if beta1 == 0.0 {
        return Ok(result(x, 0, 0.0, 0.0, 0.0, 0.0, MinresFlag::ZeroRhs));
    }
    // Lanczos vectors: v_prev, v (current), p (work).
    let mut v = ops.zeros_like(b);
    ops.axpby(1.0 / beta1, &first, 0.0, &mut v);
    let mut u = ops.zeros_like(b);
    ops.axpby(1.0 / beta1, b, 0.0, &mut u);
    let mut u_prev = ops.zeros_like(b);
    let mut p = ops.zeros_like(b);
    let mut v_next = ops.zeros_like(b);
    // Directions of Wₖ = Vₖ Pₖᵀ: w_prev (ẘₖ₋₁ / wₖ₋₁), w (w̄ₖ).
    let mut w_prev = ops.zeros_like(b);
    let mut w = ops.zeros_like(b);
    let mut scratch = ops.zeros_like(b);

    let mut beta = beta1; // βₖ
    let mut zeta_bar = beta1; // ζ̄ₖ
    let (mut c_prev2, mut s_prev2, mut c_prev, mut s_prev) = (1.0, 0.0, 1.0, 0.0);
    let (mut gamma_bar_prev, mut gamma_prev) = (0.0, 0.0);
    let (mut mu_bar_prev, mut mu_bis_prev, mut mu_bis_prev2) = (0.0, 0.0, 0.0);
    let (mut psi_bar_prev, mut psi_bar_prev2) = (0.0, 0.0);
    let (mut tau, mut tau_prev) = (0.0, 0.0);
    let mut xi_prev = 0.0;
    let mut a_norm2 = 0.0;
    let (mut mu_min, mut mu_max) = (f64::INFINITY, 0.0f64);
    let (mut rnorm, mut ar_norm, mut a_norm, mut cond) = (beta1, 0.0, 0.0, 1.0);
    let breakdown_tol = f64::EPSILON.powf(0.75);
    let mut flag = MinresFlag::MaxIterations;
    let mut iterations = 0;
    let mut x_norm_estimate;
    while iterations < max_iterations {
        iterations += 1;
        let k = iterations;
        // Lanczos: β_{k+1} u_{k+1} = (A + λI) v_k − α_k u_k − β_k u_{k−1}, v_{k+1} = M u_{k+1}
        a(&v, &mut p)?;
        if options.shift != 0.0 {
            ops.axpy(options.shift, &v, &mut p);
        }
        if k >= 2 {
            ops.axpy(-beta, &u_prev, &mut p);
        }
        let alpha = ops.dot(&v, &p);
        ops.axpy(-alpha, &u, &mut p);
        apply_m(&p, &mut v_next);
        let beta_next = ops.dot(&v_next, &p).max(0.0).sqrt();
        if beta_next > breakdown_tol {
            ops.scale(1.0 / beta_next, &mut p);
            ops.scale(1.0 / beta_next, &mut v_next);
        }
        a_norm2 += alpha * alpha + beta * beta + beta_next * beta_next;

        // QR of the tridiagonal: apply the two previous reflections to column k.
        let mut epsilon_prev2 = 0.0;
        if k >= 3 {
            epsilon_prev2 = s_prev2 * beta;
            gamma_bar_prev = -c_prev2 * beta;
        }
        let lambda_bar;
        if k >= 2 {
            if k == 2 {
                gamma_bar_prev = beta;
            }
            gamma_prev = c_prev * gamma_bar_prev + s_prev * alpha;
            lambda_bar = s_prev * gamma_bar_prev - c_prev * alpha;
        } else {
            lambda_bar = alpha;
        }
        let (c, s, lambda) = reflection(lambda_bar, beta_next);
        let zeta = c * zeta_bar;
        let zeta_bar_next = s * zeta_bar;

        // LQ of R: reflections from the right, producing μ, ψ, ρ.
        let mut mu_prev2 = 0.0;
        let (mut cp, mut sp, mut cd, mut sd) = (1.0, 0.0, 1.0, 0.0);
        let (mut psi_prev2, mut rho_prev2) = (0.0, 0.0);
        let mu_bar;
        if k == 1 {
            mu_bar = lambda;
        } else if k == 2 {
            let (c2, s2, mb) = reflection(mu_bar_prev, gamma_prev);
            (cp, sp, mu_bis_prev) = (c2, s2, mb);
            psi_bar_prev = sp * lambda;
            mu_bar = -cp * lambda;
        } else {
            let (c3, s3, m2) = reflection(mu_bis_prev2, epsilon_prev2);
            (cp, sp, mu_prev2) = (c3, s3, m2);
            psi_prev2 = cp * psi_bar_prev2 + sp * gamma_prev;
            let theta = sp * psi_bar_prev2 - cp * gamma_prev;
            rho_prev2 = sp * lambda;
            let eta = -cp * lambda;
            let (c4, s4, mb) = reflection(mu_bar_prev, theta);
            (cd, sd, mu_bis_prev) = (c4, s4, mb);
            psi_bar_prev = sd * eta;
            mu_bar = -cd * eta;
        }

        // Forward substitution L t = z for the last three components.
        let xi;
        let mut tau_prev2 = 0.0;
        if k == 1 {
            tau = zeta / mu_bar;
            xi = zeta;
        } else if k == 2 {
            tau_prev = tau * mu_bar_prev / mu_bis_prev;
            xi = zeta;
            tau = (xi - psi_bar_prev * tau_prev) / mu_bar;
        } else {
            tau_prev2 = tau_prev * mu_bis_prev2 / mu_prev2;
            tau_prev = (xi_prev - psi_prev2 * tau_prev2) / mu_bis_prev;
            xi = zeta - rho_prev2 * tau_prev2;
            tau = (xi - psi_bar_prev * tau_prev) / mu_bar;
        }

        // Update the directions and fold the finished one into x.
        if k == 1 {
            ops.copy(&v, &mut w);
        } else if k == 2 {
            // ẘ₁ = cp·w̄₁ + sp·v₂ ; w̄₂ = sp·w̄₁ − cp·v₂
            ops.copy(&w, &mut w_prev);
            ops.axpby(sp, &v, cp, &mut w_prev);
            ops.axpby(-cp, &v, sp, &mut w);
        } else {
            // w_{k−2} = cp·ẘ_{k−2} + sp·v_k is final: x += τ_{k−2} w_{k−2}
            ops.axpy(cp * tau_prev2, &w_prev, &mut x);
            ops.axpy(sp * tau_prev2, &v, &mut x);
            // aux = sp·ẘ_{k−2} − cp·v_k
            ops.axpby(-cp, &v, sp, &mut w_prev);
            // ẘ_{k−1} = cd·w̄_{k−1} + sd·aux ; w̄_k = sd·w̄_{k−1} − cd·aux
            ops.copy(&w, &mut scratch);
            ops.axpby(sd, &w_prev, cd, &mut w); // w ← cd·w̄ + sd·aux  (this is ẘ_{k−1})
            ops.axpby(sd, &scratch, -cd, &mut w_prev); // w_prev ← sd·w̄ − cd·aux (this is w̄_k)
            std::mem::swap(&mut w, &mut w_prev);
        }

        // Shift the Lanczos vectors.
        std::mem::swap(&mut u_prev, &mut u);
        std::mem::swap(&mut u, &mut p);
        std::mem::swap(&mut v, &mut v_next);

        // Estimates.
        rnorm = zeta_bar_next.abs();
        ar_norm = zeta_bar.abs() * (lambda_bar * lambda_bar + (c_prev * beta_next).powi(2)).sqrt();
        a_norm = a_norm2.sqrt();
        for m in [mu_bar.abs(), mu_bis_prev, mu_prev2].into_iter().take(k.min(3)) {
            if m > 0.0 {
                mu_min = mu_min.min(m);
            }
            mu_max = mu_max.max(m);
        }
        cond = if mu_min.is_finite() && mu_min > 0.0 { mu_max / mu_min } else { f64::INFINITY };
        x_norm_estimate = ops.norm(&x) + tau_prev.abs() + tau.abs();

        // Roll the recurrences.
        if k >= 2 {
            s_prev2 = s_prev;
            c_prev2 = c_prev;
            xi_prev = xi;
            mu_bis_prev2 = mu_bis_prev;
            psi_bar_prev2 = psi_bar_prev;
        }
        s_prev = s;
        c_prev = c;
        mu_bar_prev = mu_bar;
        zeta_bar = zeta_bar_next;
        beta = beta_next;

        let solved = rnorm <= options.rtol * beta1;
        // Incompatible: the normal-equation residual vanished along a direction whose last
        // diagonal entry of L is (numerically) zero.
        let least_squares = !solved
            && ar_norm <= options.artol * a_norm * rnorm.max(f64::MIN_POSITIVE)
            && mu_bar.abs() <= options.artol * a_norm;
        if solved {
            flag = MinresFlag::Solved;
        } else if least_squares {
            flag = MinresFlag::LeastSquares;
        } else if beta_next <= breakdown_tol {
            flag = MinresFlag::Singular;
        } else if x_norm_estimate > options.max_x_norm {
            flag = MinresFlag::XNormLimit;
        } else if cond > options.max_cond {
            flag = MinresFlag::CondLimit;
        } else {
            continue;
        }
        break;
    }
    // The last two directions: x += τ_{k−1} w_{k−1} (+ τ_k w̄_k unless incompatible).
    if iterations >= 2 {
        ops.axpy(tau_prev, &w_prev, &mut x);
    }
    if !matches!(flag, MinresFlag::LeastSquares | MinresFlag::Singular) {
        ops.axpy(tau, &w, &mut x);
    }
    Ok(result(x, iterations, rnorm, ar_norm, a_norm, cond, flag))
}
