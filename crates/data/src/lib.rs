//! Data for natgrad's experiments: a deterministic generator for the Curves data set
//! (regenerated after Hinton & Salakhutdinov's recipe, see `shared/curves.md`), `.npy`
//! import/export, IDX files (Fashion-MNIST), and seeded minibatch streams. Depends on nothing else of natgrad.

#![warn(missing_docs)]

pub mod batches;
pub mod curves;
pub mod deform;
pub mod idx;
pub mod npy;

pub use batches::BatchStream;
pub use curves::{Curves, CurvesOptions, OutOfMemory, Spline};
pub use idx::{FashionMnist, IdxError};

/// A data set: row-major examples of `width` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Values per example.
    pub width: usize,
    /// Row-major examples.
    pub data: Vec<f32>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.width).unwrap_or(0)
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.width..(i + 1) * self.width]
    }

    /// The first `n` examples.
    pub fn head(&self, n: usize) -> Dataset {
        Dataset { width: self.width, data: self.data[..n.min(self.len()) * self.width].to_vec() }
    }

    /// Gathers the given examples into `out` (row-major).
    pub fn gather(&self, indices: &[usize], out: &mut Vec<f32>) {
        out.clear();
        for &i in indices {
            out.extend_from_slice(self.row(i));
        }
    }
}
