//! Fusion grouping: maximal groups of elementwise ops (with the broadcasts that feed them
//! and trailing reductions) that a backend lowers as one kernel. The table `role` says what
//! each op may be inside a group; grouping never creates a cycle between groups.

use natgrad_ir::{Graph, NodeId, Op, Shape};

/// What an op can be inside a fusion group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Maps elements one to one: the body of a group.
    Elementwise,
    /// An index mapping read inside the consumer's loop.
    Broadcast,
    /// A reduction that may end a group (its operand's loop accumulates it).
    Reduction,
    /// Runs on its own (matmul, softmax, layout changes, leaves).
    Barrier,
}

/// The fusion role of each op.
pub fn role(op: &Op) -> Role {
    match op {
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => Role::Elementwise,
        Op::Broadcast { .. } => Role::Broadcast,
        Op::Reduce { .. } => Role::Reduction,
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Constant { .. }
        | Op::BatchSize { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::MatMul { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Im2col { .. }
        | Op::Col2im { .. } => Role::Barrier,
    }
}

/// One fused kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FusionGroup {
    /// Member nodes, ascending.
    pub nodes: Vec<NodeId>,
    /// Members whose values are used outside the group (or are graph outputs).
    pub outputs: Vec<NodeId>,
    /// The shape of the group's loop.
    pub shape: Shape,
}

/// Groups the graph's elementwise work. Every elementwise op, broadcast and reduction is in
/// exactly one group; groups of a single broadcast are omitted.
pub fn fusion_groups(graph: &Graph) -> Vec<FusionGroup> {
    let n = graph.len();
    let mut group_of: Vec<Option<usize>> = vec![None; n];
    let mut members: Vec<Vec<NodeId>> = Vec::new();
    let mut shapes: Vec<Shape> = Vec::new();
    let mut closed: Vec<bool> = Vec::new();
    for id in graph.node_ids() {
        let r = role(graph.op(id));
        if r == Role::Barrier {
            continue;
        }
        let loop_shape = match r {
            Role::Reduction => graph.shape(graph.inputs(id)[0]).clone(),
            _ => graph.shape(id).clone(),
        };
        let candidates: Vec<usize> = match r {
            Role::Broadcast => Vec::new(), // a broadcast joins its consumer's group, not its producer's
            _ => {
                // Broadcasts are read through their source; they never pull groups together.
                let mut c: Vec<usize> = graph
                    .inputs(id)
                    .iter()
                    .filter(|i| role(graph.op(**i)) != Role::Broadcast)
                    .filter_map(|i| group_of[i.index()])
                    // A closed group (ended by a reduction) still takes further reductions of
                    // its members: they are terminal too.
                    .filter(|&g| (!closed[g] || r == Role::Reduction) && shapes[g] == loop_shape)
                    .collect();
                c.sort_unstable();
                c.dedup();
                c
            }
        };
        let mut target: Option<usize> = None;
        for g in candidates {
            let merged: Vec<usize> = target.into_iter().chain([g]).collect();
            if !creates_cycle(graph, id, &merged, &group_of, &members) {
                if let Some(t) = target {
                    let moved = std::mem::take(&mut members[g]);
                    for m in &moved {
                        group_of[m.index()] = Some(t);
                    }
                    members[t].extend(moved);
                } else {
                    target = Some(g);
                }
            }
        }
        let g = target.unwrap_or_else(|| {
            members.push(Vec::new());
            shapes.push(loop_shape);
            closed.push(false);
            members.len() - 1
        });
        group_of[id.index()] = Some(g);
        members[g].push(id);
        if r == Role::Reduction {
            closed[g] = true;
        }
        // Broadcasts feeding this node move into its group when they have no other users.
        for &input in graph.inputs(id) {
            if r != Role::Broadcast
                && role(graph.op(input)) == Role::Broadcast
                && group_of[input.index()].is_some_and(|bg| bg != g && members[bg].len() == 1)
                && graph.users(input).len() == 1
                && !creates_cycle(graph, input, &[g], &group_of, &members)
            {
                let bg = group_of[input.index()].expect("checked");
                members[bg].clear();
                group_of[input.index()] = Some(g);
                members[g].push(input);
            }
        }
    }
    let mut groups: Vec<FusionGroup> = members
        .into_iter()
        .zip(shapes)
        .filter(|(m, _)| m.iter().any(|&id| role(graph.op(id)) != Role::Broadcast))
        .map(|(mut nodes, shape)| {
            nodes.sort_unstable();
            let outputs = nodes
                .iter()
                .copied()
                .filter(|&id| {
                    graph.outputs().contains(&id)
                        || graph.users(id).iter().any(|u| nodes.binary_search(u).is_err())
                })
                .collect();
            FusionGroup { nodes, outputs, shape }
        })
        .collect();
    groups.sort_by_key(|g| g.nodes[0]);
    groups
}

/// Whether putting `id` into the union of `groups` would make the union depend on itself
/// through work outside it. Reaching a node of another group means depending on that whole
/// group (a kernel runs as one unit), so its members' operands are followed too.
fn creates_cycle(
    graph: &Graph,
    id: NodeId,
    groups: &[usize],
    group_of: &[Option<usize>],
    members: &[Vec<NodeId>],
) -> bool {
    let inside = |n: NodeId| n == id || group_of[n.index()].is_some_and(|g| groups.contains(&g));
    let all: Vec<NodeId> = groups.iter().flat_map(|&g| members[g].iter().copied()).chain([id]).collect();
    // An ungrouped node older than every member cannot depend on a member.
    let oldest = all.iter().copied().min().unwrap_or(id);
    let mut stack: Vec<NodeId> =
        all.iter().flat_map(|&m| graph.inputs(m).iter().copied()).filter(|&i| !inside(i)).collect();
    let mut seen = vec![false; graph.len()];
    let mut expanded = vec![false; members.len()];
    while let Some(n) = stack.pop() {
        if inside(n) {
            return true;
        }
        if std::mem::replace(&mut seen[n.index()], true) {
            continue;
        }
        match group_of[n.index()] {
            Some(g) if !std::mem::replace(&mut expanded[g], true) => {
                for &m in &members[g] {
                    stack.extend(graph.inputs(m).iter().copied());
                }
            }
            Some(_) => {}
            None if n < oldest => {}
            None => stack.extend(graph.inputs(n).iter().copied()),
        }
    }
    false
}

/// The text form with one comment line per fusion group before the nodes: which nodes
/// each kernel holds and which of them leave it. Still parseable (comments are skipped).
pub fn print_with_groups(graph: &Graph, groups: &[FusionGroup]) -> String {
    let mut out = String::new();
    for (i, g) in groups.iter().enumerate() {
        let list = |ids: &[NodeId]| ids.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ");
        out.push_str(&format!("# fusion g{i} {}: {} -> {}\n", g.shape, list(&g.nodes), list(&g.outputs)));
    }
    out.push_str(&natgrad_ir::text::print(graph));
    out
}
