//! Levenberg–Marquardt damping driven by the reduction ratio of eq. (32): how much of the
//! decrease predicted by the quadratic model `q(δ) = gᵀδ + ½ δᵀGδ` the step achieved.

/// Damping policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Damping {
    /// A constant λ.
    Fixed(f64),
    /// Levenberg–Marquardt from an initial λ: ρ < ¼ → λ·3/2, ρ > ¾ → λ·2/3.
    LevenbergMarquardt {
        /// Initial λ.
        initial: f64,
    },
}

impl Damping {
    /// The starting λ.
    pub fn initial(self) -> f64 {
        match self {
            Damping::Fixed(l) | Damping::LevenbergMarquardt { initial: l } => l,
        }
    }

    /// The next λ after a step with reduction ratio `rho`.
    pub fn update(self, lambda: f64, rho: f64) -> f64 {
        match self {
            Damping::Fixed(l) => l,
            Damping::LevenbergMarquardt { .. } => {
                if rho.is_nan() || rho < 0.25 {
                    lambda * 1.5
                } else if rho > 0.75 {
                    lambda * (2.0 / 3.0)
                } else {
                    lambda
                }
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
