//! Dense row-major host tensors, the values the interpreter reads and writes.

use std::fmt::Debug;

use crate::{Error, Result};

/// Element types graphs compute in (`f32`, `f64`): the interpreter's and every backend's
/// scalar bound. Sealed: backends rely on these two being the only ones.
pub trait Scalar: sealed::Sealed + num_traits::Float + Debug + Default + Send + Sync + 'static {
    /// The dtype of this element type.
    const DTYPE: crate::DType;
    /// Converts from f64 (rounding for f32).
    fn from_f64(value: f64) -> Self;
    /// Widens to f64 (exact).
    fn as_f64(self) -> f64;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Scalar for f32 {
    const DTYPE: crate::DType = crate::DType::F32;
    fn from_f64(value: f64) -> f32 {
        value as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    const DTYPE: crate::DType = crate::DType::F64;
    fn from_f64(value: f64) -> f64 {
        value
    }
    fn as_f64(self) -> f64 {
        self
    }
}

/// A dense tensor: concrete shape and row-major data.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Scalar> Tensor<T> {
    /// A tensor from its shape and row-major data; errors if the lengths disagree.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Result<Tensor<T>> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(Error::Binding {
                message: format!("tensor of shape {shape:?} needs {expected} values, got {}", data.len()),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Tensor<T> {
        let len = shape.iter().product();
        Tensor { shape, data: vec![T::zero(); len] }
    }

    /// A rank-0 tensor.
    pub fn scalar(value: T) -> Tensor<T> {
        Tensor { shape: Vec::new(), data: vec![value] }
    }

    /// A tensor whose elements are `f(row-major index)`.
    pub fn from_fn(shape: Vec<usize>, f: impl FnMut(usize) -> T) -> Tensor<T> {
        let len = shape.iter().product();
        Tensor { shape, data: (0..len).map(f).collect() }
    }

    /// The concrete shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Row-major data.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Mutable row-major data.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the tensor, returning its data.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Option<T> {
        (self.data.len() == 1).then(|| self.data[0])
    }

    /// The same data converted to another scalar type.
    pub fn cast<U: Scalar>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|v| U::from_f64(v.as_f64())).collect(),
        }
    }
}

/// Row-major strides of a concrete shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}
