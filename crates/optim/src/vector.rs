//! The vector operations solvers and optimizers need, behind a trait so the same code
//! drives host vectors and device-resident ones (the CUDA backend's). Scalars are f64
//! whatever the element type: reductions accumulate in f64.

use natgrad_ir::Scalar;

/// Vector arithmetic on some storage.
pub trait VectorOps {
    /// The vector type.
    type Vector;

    /// A zero vector of the same length as `like`.
    fn zeros_like(&self, like: &Self::Vector) -> Self::Vector;
    /// Number of elements.
    fn len(&self, x: &Self::Vector) -> usize;
    /// ⟨a, b⟩, accumulated in f64.
    fn dot(&self, a: &Self::Vector, b: &Self::Vector) -> f64;
    /// ‖a‖₂.
    fn norm(&self, a: &Self::Vector) -> f64 {
        self.dot(a, a).sqrt()
    }
    /// `y ← α x + β y`.
    fn axpby(&self, alpha: f64, x: &Self::Vector, beta: f64, y: &mut Self::Vector);
    /// `y ← y + α x`.
    fn axpy(&self, alpha: f64, x: &Self::Vector, y: &mut Self::Vector) {
        self.axpby(alpha, x, 1.0, y);
    }
    /// `x ← α x`.
    fn scale(&self, alpha: f64, x: &mut Self::Vector);
    /// `to ← from`.
    fn copy(&self, from: &Self::Vector, to: &mut Self::Vector);
    /// Every element set to `value`.
    fn fill(&self, x: &mut Self::Vector, value: f64);
    /// `out ← a ⊙ b` (elementwise product: diagonal preconditioners).
    fn mul(&self, a: &Self::Vector, b: &Self::Vector, out: &mut Self::Vector);
    /// `out ← (x + shift)^exponent` elementwise (preconditioners).
    fn shifted_power(&self, x: &Self::Vector, shift: f64, exponent: f64, out: &mut Self::Vector);
    /// The values as f64 (exact for f32 and f64), for checkpoints.
    fn to_f64(&self, x: &Self::Vector) -> Vec<f64>;
    /// A vector from f64 values (exact for values that came from `to_f64`).
    fn vector_from_f64(&self, values: &[f64]) -> Self::Vector;
}

impl<T: Scalar> VectorOps for HostOf<T> {
    type Vector = Vec<T>;

    fn zeros_like(&self, like: &Vec<T>) -> Vec<T> {
        vec![T::zero(); like.len()]
    }
    fn len(&self, x: &Vec<T>) -> usize {
        x.len()
    }
    fn dot(&self, a: &Vec<T>, b: &Vec<T>) -> f64 {
        a.iter().zip(b).map(|(x, y)| x.as_f64() * y.as_f64()).sum()
    }
    fn axpby(&self, alpha: f64, x: &Vec<T>, beta: f64, y: &mut Vec<T>) {
        let (a, b) = (T::from_f64(alpha), T::from_f64(beta));
        if beta == 1.0 {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = *y + a * x);
        } else {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = a * x + b * *y);
        }
    }
    fn scale(&self, alpha: f64, x: &mut Vec<T>) {
        let a = T::from_f64(alpha);
        x.iter_mut().for_each(|v| *v = *v * a);
    }
    fn copy(&self, from: &Vec<T>, to: &mut Vec<T>) {
        to.clone_from(from);
    }
    fn fill(&self, x: &mut Vec<T>, value: f64) {
        let v = T::from_f64(value);
        x.iter_mut().for_each(|e| *e = v);
    }
    fn mul(&self, a: &Vec<T>, b: &Vec<T>, out: &mut Vec<T>) {
        out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| *o = x * y);
    }
    fn shifted_power(&self, x: &Vec<T>, shift: f64, exponent: f64, out: &mut Vec<T>) {
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = T::from_f64((v.as_f64() + shift).powf(exponent)));
    }
    fn to_f64(&self, x: &Vec<T>) -> Vec<f64> {
        x.iter().map(|v| v.as_f64()).collect()
    }
    fn vector_from_f64(&self, values: &[f64]) -> Vec<T> {
        values.iter().map(|&v| T::from_f64(v)).collect()
    }
}

/// Moving values between the host and vectors of `T` wherever they live (a problem whose
/// loss and gradient run on host slices uses this around them).
pub trait Transfer<T: Scalar>: VectorOps {
    /// A vector holding `values`.
    fn upload(&self, values: &[T]) -> Self::Vector;
    /// `x`'s values on the host.
    fn download(&self, x: &Self::Vector) -> Result<Vec<T>, crate::OpError>;
    /// `x ← values` (same length).
    fn write(&self, values: &[T], x: &mut Self::Vector) -> Result<(), crate::OpError>;
}

impl<T: Scalar> Transfer<T> for HostOf<T> {
    fn upload(&self, values: &[T]) -> Vec<T> {
        values.to_vec()
    }
    fn download(&self, x: &Vec<T>) -> Result<Vec<T>, crate::OpError> {
        Ok(x.clone())
    }
    fn write(&self, values: &[T], x: &mut Vec<T>) -> Result<(), crate::OpError> {
        if values.len() != x.len() {
            return Err(format!("writing {} values into a vector of {}", values.len(), x.len()).into());
        }
        x.copy_from_slice(values);
        Ok(())
    }
}

/// [`VectorOps`] for `Vec<T>` on the host.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostOf<T>(std::marker::PhantomData<T>);

impl<T> HostOf<T> {
    /// The host backend for element type `T`.
    pub fn new() -> HostOf<T> {
        HostOf(std::marker::PhantomData)
    }

    /// [`HostOf::new`] in a `const` context.
    pub const fn new_const() -> HostOf<T> {
        HostOf(std::marker::PhantomData)
    }
}
