//! The liveness-based memory plan of a [`Plan`] at one batch size: which buffer holds
//! which value, and how large each buffer is. Backends allocate `sizes` and index by
//! `buffer_of`; the plan depends only on the graph, the units and the batch size.

use std::collections::HashMap;

use natgrad_ir::{NodeId, Op};

use crate::Error;
use crate::plan::{Phase, Plan};

/// Buffers and the value each node's buffer index.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// Elements of each buffer.
    pub sizes: Vec<usize>,
    /// The buffer of every stored node (aliases included).
    pub buffer_of: HashMap<NodeId, usize>,
}

impl MemoryPlan {
    /// Greedy plan: a value's buffer returns to the pool after its last reader in the same
    /// phase; values read in a later phase, leaves, outputs and set-up values keep theirs.
    /// A batch size at which some value, or all buffers together, would take more bytes than
    /// can be addressed is an error naming the value; past this check, element counts at
    /// `batch` cannot overflow.
    pub fn new(plan: &Plan, batch: usize) -> Result<MemoryPlan, Error> {
        let g = &plan.graph;
        let element_bytes = plan.dtype.size_bytes();
        let addressable =
            |elements: usize| elements.checked_mul(element_bytes).is_some_and(|b| b <= isize::MAX as usize);
        let too_large = |node: String, ty: String| Error::BatchTooLarge { batch, node, ty };
        for id in g.node_ids() {
            if !g.shape(id).checked_num_elements(batch).is_some_and(addressable) {
                return Err(too_large(g.site(id).to_string(), g.ty(id).to_string()));
            }
        }
        let units = &plan.units;
        let owner = |n: NodeId| plan.storage.get(&n).copied().unwrap_or(n);
        let mut last_read: HashMap<NodeId, usize> = HashMap::new();
        let mut pinned: Vec<NodeId> = g.outputs().iter().map(|&o| owner(o)).collect();
        let mut phase_of: HashMap<NodeId, Phase> = HashMap::new();
        for (u, unit) in units.iter().enumerate() {
            for &o in &unit.outputs {
                phase_of.insert(o, unit.phase);
            }
            for &r in &unit.reads {
                let r = owner(r);
                last_read.insert(r, u);
                if phase_of.get(&r).is_some_and(|&p| p != unit.phase) {
                    pinned.push(r);
                }
            }
        }
        let mut sizes: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut buffer_of: HashMap<NodeId, usize> = HashMap::new();
        let elements = |n: NodeId| g.shape(n).num_elements(batch).max(1);
        // Leaves (inputs and params) get their own buffers.
        for id in g.node_ids() {
            if matches!(g.op(id), Op::Input { .. } | Op::Param { .. }) && plan.storage.contains_key(&id) {
                buffer_of.insert(id, sizes.len());
                sizes.push(elements(id));
            }
        }
        for (u, unit) in units.iter().enumerate() {
            let setup = unit.phase == Phase::Setup;
            for &o in &unit.outputs {
                let need = elements(o);
                let fit = free
                    .iter()
                    .enumerate()
                    .filter(|&(_, &b)| sizes[b] >= need)
                    .min_by_key(|&(_, &b)| sizes[b])
                    .map(|(i, _)| i);
                let buffer = match (fit, setup || pinned.contains(&o)) {
                    (Some(i), false) => free.swap_remove(i),
                    _ => {
                        sizes.push(need);
                        sizes.len() - 1
                    }
                };
                buffer_of.insert(o, buffer);
            }
            // Release what this unit read last (unless pinned or set-up values).
            for &r in &unit.reads {
                let r = owner(r);
                if last_read.get(&r) == Some(&u)
                    && !pinned.contains(&r)
                    && phase_of.get(&r).is_some_and(|&p| p != Phase::Setup)
                    && let Some(&b) = buffer_of.get(&r)
                    && !free.contains(&b)
                {
                    free.push(b);
                }
            }
            // Outputs nobody reads are released at once.
            for &o in &unit.outputs {
                if !last_read.contains_key(&o) && !pinned.contains(&o) && !setup {
                    free.push(buffer_of[&o]);
                }
            }
        }
        for (&n, &o) in &plan.storage {
            if let Some(&b) = buffer_of.get(&o) {
                buffer_of.insert(n, b);
            }
        }
        let total = sizes.iter().try_fold(0usize, |t, &n| t.checked_add(n));
        if !total.is_some_and(addressable) {
            return Err(too_large("all buffers together".into(), format!("{} buffers", sizes.len())));
        }
        Ok(MemoryPlan { sizes, buffer_of })
    }

    /// Total elements over all buffers.
    pub fn total_elements(&self) -> usize {
        self.sizes.iter().sum()
    }
}
