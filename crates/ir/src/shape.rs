//! Shapes with an optional symbolic batch dimension `B`.

use std::fmt;

/// One dimension: a fixed size or the symbolic batch size `B`, bound at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// The batch dimension, written `B`; every `B` in a graph has the same size.
    Batch,
    /// A size known when the graph is built.
    Fixed(usize),
}

impl Dim {
    /// The concrete size, given the batch size.
    pub fn resolve(self, batch: usize) -> usize {
        match self {
            Dim::Batch => batch,
            Dim::Fixed(n) => n,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Batch => f.write_str("B"),
            Dim::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Dim {
        Dim::Fixed(n)
    }
}

/// A tensor shape, outermost dimension first (row-major layout).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// The shape of a scalar, `[]`.
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    /// A shape with fixed dimensions only.
    pub fn fixed(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&n| Dim::Fixed(n)).collect())
    }

    /// A shape whose first dimension is the batch `B`, followed by `rest`.
    pub fn batched(rest: &[usize]) -> Shape {
        let mut dims = vec![Dim::Batch];
        dims.extend(rest.iter().map(|&n| Dim::Fixed(n)));
        Shape(dims)
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dimensions.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// Whether any dimension is the batch dimension.
    pub fn has_batch(&self) -> bool {
        self.0.contains(&Dim::Batch)
    }

    /// Number of `B` dimensions and product of the fixed ones: two shapes with equal
    /// signatures hold the same number of elements for every batch size.
    pub fn size_signature(&self) -> (usize, usize) {
        let batch = self.0.iter().filter(|d| **d == Dim::Batch).count();
        let fixed = self
            .0
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Batch => 1,
            })
            .product();
        (batch, fixed)
    }

    /// The product of the fixed dimensions, or `None` if it overflows `usize`.
    pub fn fixed_elements(&self) -> Option<usize> {
        self.0.iter().try_fold(1usize, |n, d| match d {
            Dim::Fixed(k) => n.checked_mul(*k),
            Dim::Batch => Some(n),
        })
    }

    /// Concrete dimensions for a batch size.
    pub fn resolve(&self, batch: usize) -> Vec<usize> {
        self.0.iter().map(|d| d.resolve(batch)).collect()
    }

    /// Number of elements for a batch size.
    pub fn num_elements(&self, batch: usize) -> usize {
        self.0.iter().map(|d| d.resolve(batch)).product()
    }

    /// Number of elements for a batch size, or `None` when more than a `usize` holds.
    pub fn checked_num_elements(&self, batch: usize) -> Option<usize> {
        self.0.iter().try_fold(1usize, |n, d| n.checked_mul(d.resolve(batch)))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// A dtype and shape together, printed as `f32[B,400]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub dtype: crate::DType,
    /// Shape.
    pub shape: Shape,
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}
