//! Input checks shared by every backend: a value set for an input must have the length its
//! type has at the session's batch size, and a phase runs only once every input it reads
//! has been set.

use std::collections::BTreeMap;

use natgrad_ir::{NodeId, Op};

use crate::Error;
use crate::plan::Plan;

/// Which inputs and params of a plan have been set in one session.
#[derive(Clone, Debug)]
pub struct BoundInputs {
    batch: usize,
    /// Every leaf the optimized graph still reads, and whether it was set.
    bound: BTreeMap<String, bool>,
}

impl BoundInputs {
    /// Nothing set yet, for a session at `batch`.
    pub fn new(plan: &Plan, batch: usize) -> BoundInputs {
        let g = &plan.graph;
        let bound = g
            .input_nodes()
            .iter()
            .chain(&g.param_nodes())
            .filter_map(|&id| match g.op(id) {
                Op::Input { name, .. } | Op::Param { name, .. } => Some((name.clone(), false)),
                _ => None,
            })
            .collect();
        BoundInputs { batch, bound }
    }

    /// Checks `len` values for input `name` and records it as set. Returns the node whose
    /// buffer takes the values, or `None` when the optimized graph no longer reads it (the
    /// values are checked and otherwise ignored).
    pub fn set(&mut self, plan: &Plan, name: &str, len: usize) -> Result<Option<NodeId>, Error> {
        let ty = plan.leaves.get(name).ok_or_else(|| Error::UnknownInput { name: name.to_string() })?;
        let expected = ty.shape.num_elements(self.batch);
        if len != expected {
            return Err(Error::Length {
                name: name.to_string(),
                ty: ty.to_string(),
                batch: self.batch,
                expected,
                got: len,
            });
        }
        if let Some(set) = self.bound.get_mut(name) {
            *set = true;
        }
        Ok(plan.graph.leaf(name))
    }

    /// Errors unless `phase` exists and every input of phases up to it has been set.
    pub fn ready(&self, plan: &Plan, phase: usize) -> Result<(), Error> {
        if phase >= plan.phases() {
            return Err(Error::OutOfRange { what: "phase", index: phase, count: plan.phases() });
        }
        match self
            .bound
            .iter()
            .find(|(name, set)| !**set && plan.input_phase.get(*name).is_some_and(|&p| p <= phase))
        {
            Some((name, _)) => Err(Error::Unbound { name: name.clone() }),
            None => Ok(()),
        }
    }

    /// The node of output `index`, after checking that `len` values are what it holds at
    /// this session's batch size.
    pub fn output(&self, plan: &Plan, index: usize, len: usize) -> Result<NodeId, Error> {
        let node = plan.output(index)?;
        let expected = plan.elements(node, self.batch);
        if len != expected {
            return Err(Error::OutputLength {
                index,
                ty: plan.graph.ty(node).to_string(),
                batch: self.batch,
                expected,
                got: len,
            });
        }
        Ok(node)
    }
}
