//! Cost estimates: floating-point operations of a graph at a given batch size.

use crate::{Graph, Op};

/// Estimated FLOPs to evaluate every node of `graph` once at batch size `batch`:
/// `2mkn` per matmul, one per element for elementwise ops and reductions, five per element
/// for softmax, one per patch value for col2im; layout ops (im2col included) and leaves are
/// free.
pub fn flops(graph: &Graph, batch: usize) -> f64 {
    graph
        .node_ids()
        .map(|id| {
            let out = graph.shape(id).num_elements(batch) as f64;
            let input = |i: usize| graph.shape(graph.inputs(id)[i]).num_elements(batch) as f64;
            match graph.op(id) {
                Op::MatMul { transpose_a, .. } => {
                    let a = graph.shape(graph.inputs(id)[0]).resolve(batch);
                    // A transposed first operand contracts its leading dimensions.
                    let k = if *transpose_a { a[..a.len() - 1].iter().product() } else { a[a.len() - 1] };
                    2.0 * out * k as f64
                }
                Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => out,
                Op::Reduce { .. } => input(0),
                Op::Softmax { .. } | Op::LogSoftmax { .. } => 5.0 * out,
                Op::Input { .. }
                | Op::Param { .. }
                | Op::Constant { .. }
                | Op::BatchSize { .. }
                | Op::Broadcast { .. }
                | Op::Reshape { .. }
                | Op::Transpose { .. }
                | Op::Im2col { .. } => 0.0,
                // Every patch value is added to its pixel.
                Op::Col2im { .. } => input(0),
            }
        })
        .sum()
}
