//! Levenberg–Marquardt damping driven by the reduction ratio of eq. (32): how much of the
//! decrease predicted by the quadratic model `q(δ) = gᵀδ + ½ δᵀGδ` the step achieved.

/// The default floor of Levenberg–Marquardt damping: below it, `(G + λI)⁻¹` follows the
/// smallest (noisiest) eigenvalues of a minibatch metric and one step can blow up.
pub const LM_FLOOR: f64 = 1e-4;
/// The default ceiling: above it, the step is a tiny multiple of the gradient and the
/// method has stalled rather than been made safe.
pub const LM_CEILING: f64 = 1e6;

/// Damping policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Damping {
    /// A constant λ.
    Fixed(f64),
    /// Levenberg–Marquardt from an initial λ: ρ < ¼ → λ·3/2, ρ > ¾ → λ·2/3, kept in
    /// `[min, max]`.
    LevenbergMarquardt {
        /// Initial λ.
        initial: f64,
        /// Floor of λ.
        min: f64,
        /// Ceiling of λ.
        max: f64,
    },
}

impl Damping {
    /// Levenberg–Marquardt from `initial`, bounded by [`LM_FLOOR`] and [`LM_CEILING`].
    pub fn levenberg_marquardt(initial: f64) -> Damping {
        Damping::LevenbergMarquardt { initial, min: LM_FLOOR, max: LM_CEILING }
    }

    /// The starting λ (inside the bounds).
    pub fn initial(self) -> f64 {
        match self {
            Damping::Fixed(l) => l,
            Damping::LevenbergMarquardt { initial, min, max } => initial.clamp(min, max),
        }
    }

    /// The bounds λ stays in (a fixed λ is its own bounds).
    pub fn bounds(self) -> (f64, f64) {
        match self {
            Damping::Fixed(l) => (l, l),
            Damping::LevenbergMarquardt { min, max, .. } => (min, max),
        }
    }

    /// The next λ after a step with reduction ratio `rho`.
    pub fn update(self, lambda: f64, rho: f64) -> f64 {
        match self {
            Damping::Fixed(l) => l,
            Damping::LevenbergMarquardt { min, max, .. } => {
                let next = if rho.is_nan() || rho < 0.25 {
                    lambda * 1.5
                } else if rho > 0.75 {
                    lambda * (2.0 / 3.0)
                } else {
                    lambda
                };
                next.clamp(min, max)
            }
        }
    }
}

/// ρ = (L(θ+δ) − L(θ)) / (q(δ) − q(0)) with `q(δ) = gᵀδ + ½ δᵀGδ` (undamped); NaN-safe:
/// a non-finite or non-negative prediction gives ρ = −∞ (treated as a bad step).
pub fn reduction_ratio(loss_before: f64, loss_after: f64, g_dot_step: f64, step_g_step: f64) -> f64 {
    let predicted = g_dot_step + 0.5 * step_g_step;
    if predicted.is_nan() || predicted >= 0.0 || !loss_after.is_finite() {
        return f64::NEG_INFINITY;
    }
    (loss_after - loss_before) / predicted
}
