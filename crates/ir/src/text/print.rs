//! Printer for the text form.

use std::fmt::Write;

use crate::{DType, Graph, Op, Unary};

/// The canonical text of `graph`: one line per node, then a `return` line.
pub fn print(graph: &Graph) -> String {
    let mut out = String::new();
    for id in graph.node_ids() {
        let node = graph.node(id);
        let _ = write!(out, "{id} : {} = {}", node.ty, op_text(&node.op));
        for (i, input) in node.inputs.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            let _ = write!(out, "{input}");
        }
        if let Some(name) = &node.name {
            let _ = write!(out, "  # {name}");
        }
        out.push('\n');
    }
    let outputs: Vec<String> = graph.outputs().iter().map(|o| o.to_string()).collect();
    let _ = writeln!(out, "return {}", outputs.join(", "));
    out
}

/// The op with its attributes, as written before the operands.
fn op_text(op: &Op) -> String {
    match op {
        Op::Input { name, .. } | Op::Param { name, .. } => format!("{} \"{name}\"", op.name()),
        Op::Constant { dtype, shape, values } => {
            let shown: Vec<String> = values.iter().map(|v| float_text(*dtype, v.get())).collect();
            if shape.rank() == 0 {
                format!("const {}", shown.join(""))
            } else {
                format!("const [{}]", shown.join(", "))
            }
        }
        Op::Unary(Unary::Pow(p)) => format!("pow[{}]", float_text(DType::F64, p.get())),
        Op::Softmax { axis } | Op::LogSoftmax { axis } => format!("{}[axis={axis}]", op.name()),
        Op::MatMul { transpose_a, transpose_b } => match (transpose_a, transpose_b) {
            (false, false) => "matmul".to_string(),
            (true, false) => "matmul[ta]".to_string(),
            (false, true) => "matmul[tb]".to_string(),
            (true, true) => "matmul[ta,tb]".to_string(),
        },
        Op::Transpose { perm } => format!("transpose[{}]", join(perm)),
        Op::Im2col { window } | Op::Col2im { window, .. } => format!("{}[{}]", op.name(), window.text()),
        Op::Reduce { axes, keep_dims, .. } => {
            let mut attrs = join(axes);
            if *keep_dims {
                attrs.push_str(if axes.is_empty() { "keepdims" } else { ",keepdims" });
            }
            format!("{}[{attrs}]", op.name())
        }
        Op::BatchSize { .. }
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Broadcast { .. }
        | Op::Reshape { .. } => op.name().to_string(),
    }
}

fn join(items: &[usize]) -> String {
    items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Shortest text that parses back to the same value at the dtype's precision.
fn float_text(dtype: DType, value: f64) -> String {
    match dtype {
        DType::F32 => format!("{:?}", value as f32),
        DType::F64 => format!("{value:?}"),
    }
}
