//! `Model`: a network graph together with its roles — input, targets, pre-activation,
//! output, loss — and the flat parameter layout.

use crate::{Bindings, Error, Graph, NodeId, Op, Result, Scalar, Tensor};

/// The output non-linearity and the loss that matches it (paper eq. 7, 8, 30).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OutputKind {
    /// `y = r`, loss `½ β² Σ (y − t)²` (Gaussian with precision β²).
    Linear {
        /// Scale of the squared error; the Fisher is `β² JᵀJ`.
        beta: f64,
    },
    /// `y = σ(r)`, cross-entropy loss `Σ softplus(r) − t·r` (targets in [0, 1]).
    Sigmoid,
    /// `y = softmax(r)`, negative log-likelihood `−Σ t · log_softmax(r)` (one-hot targets).
    Softmax,
}

/// One parameter in the flat vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSlot {
    /// Name the param is bound by.
    pub name: String,
    /// Concrete shape.
    pub shape: Vec<usize>,
    /// Offset of its first element in the flat vector.
    pub offset: usize,
}

impl ParamSlot {
    /// Number of elements (`usize::MAX` when the shape has more than can be addressed:
    /// the graph builder rejects such a param).
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Number of elements, or `None` when more than can be addressed.
    pub fn checked_len(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// Whether the parameter has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The order of parameters in the flat vector θ: layer by layer, the weight
/// `[fan_in, fan_out]` row-major, then the bias.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamLayout {
    slots: Vec<ParamSlot>,
}

impl ParamLayout {
    /// Appends a parameter at the end of the flat vector.
    pub fn push(&mut self, name: &str, shape: Vec<usize>) {
        let offset = self.len();
        self.slots.push(ParamSlot { name: name.to_string(), shape, offset });
    }

    /// The slots in flat order.
    pub fn slots(&self) -> &[ParamSlot] {
        &self.slots
    }

    /// Total number of scalars (`usize::MAX` when more than can be addressed; see
    /// [`ParamLayout::checked_len`]).
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Total number of scalars, or `None` when the parameters together have more than can
    /// be addressed.
    pub fn checked_len(&self) -> Option<usize> {
        self.slots.iter().try_fold(0usize, |total, s| total.checked_add(s.checked_len()?))
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of the parameter called `name`.
    pub fn slot(&self, name: &str) -> Option<&ParamSlot> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// Binds every parameter to its part of the flat vector `theta`.
    pub fn bind<T: Scalar>(&self, theta: &[T], bindings: &mut Bindings<T>) -> Result<()> {
        if theta.len() != self.len() {
            return Err(Error::Binding {
                message: format!(
                    "flat parameter vector has {} values, the model needs {}",
                    theta.len(),
                    self.len()
                ),
            });
        }
        for slot in &self.slots {
            let part = theta[slot.offset..slot.offset + slot.len()].to_vec();
            bindings.set(slot.name.clone(), Tensor::new(slot.shape.clone(), part)?);
        }
        Ok(())
    }
}

/// A network with its training roles.
#[derive(Clone, Debug)]
pub struct Model {
    /// The graph; its single output is `loss`.
    pub graph: Graph,
    /// The data input `x`, shape `[B, n_in]`.
    pub input: NodeId,
    /// The targets `t`, shape `[B, n_out]` (the input itself for an autoencoder).
    pub targets: NodeId,
    /// The output pre-activation `r`.
    pub preactivation: NodeId,
    /// The output `y`.
    pub output: NodeId,
    /// The loss: summed over output units, averaged over examples.
    pub loss: NodeId,
    /// The loss of each example, shape `[B]` (`loss` is its mean).
    pub per_example_loss: NodeId,
    /// Output non-linearity and matching loss.
    pub kind: OutputKind,
    /// The parameter order of the flat vector θ.
    pub layout: ParamLayout,
}

impl Model {
    /// The param nodes in flat-vector order.
    pub fn param_nodes(&self) -> Vec<NodeId> {
        self.layout.slots().iter().filter_map(|s| self.graph.leaf(&s.name)).collect()
    }

    /// The name of the data input.
    pub fn input_name(&self) -> &str {
        leaf_name(&self.graph, self.input)
    }

    /// The name of the targets input.
    pub fn targets_name(&self) -> &str {
        leaf_name(&self.graph, self.targets)
    }

    /// Whether the targets are the input itself (an autoencoder).
    pub fn is_autoencoder(&self) -> bool {
        self.targets == self.input
    }
}

fn leaf_name(graph: &Graph, id: NodeId) -> &str {
    match graph.op(id) {
        Op::Input { name, .. } | Op::Param { name, .. } => name,
        _ => "",
    }
}
