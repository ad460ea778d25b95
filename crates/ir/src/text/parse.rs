//! Parser for the text form.

use std::collections::HashMap;

use crate::{
    Binary, Compare, DType, Dim, Error, F64Bits, Graph, NodeId, Op, Provenance, Reduce, Result, Shape,
    TensorType, Unary, Window,
};

/// Parses the text form printed by [`crate::text::print`]. Declared types are checked
/// against inferred ones; errors name the line.
pub fn parse(text: &str) -> Result<Graph> {
    let mut parser = Parser { graph: Graph::new(), ids: HashMap::new() };
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        parser.line(content).map_err(|message| Error::Parse { line, message })?;
    }
    Ok(parser.graph)
}

struct Parser {
    graph: Graph,
    ids: HashMap<String, NodeId>,
}

impl Parser {
    fn line(&mut self, content: &str) -> Result<(), String> {
        if let Some(rest) = content.strip_prefix("return") {
            let outputs = rest
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| self.operand(s))
                .collect::<Result<Vec<_>, _>>()?;
            self.graph.set_outputs(outputs);
            return Ok(());
        }
        let (body, name) = match content.split_once('#') {
            Some((body, name)) => (body.trim(), Some(name.trim().to_string())),
            None => (content, None),
        };
        let (lhs, rhs) = body.split_once('=').ok_or("expected `%N : type = op …`")?;
        let (label, ty) = lhs.split_once(':').ok_or("expected `%N : type` before `=`")?;
        let label = label.trim();
        if !label.starts_with('%') || self.ids.contains_key(label) {
            return Err(format!("`{label}` must be a new `%N` label"));
        }
        let ty = parse_type(ty.trim())?;
        let (op, operands) = self.op_and_operands(rhs.trim(), &ty)?;
        let id = self
            .graph
            .add_with(op, &operands, Provenance { name, location: None })
            .map_err(|e| e.to_string())?;
        if *self.graph.ty(id) != ty {
            return Err(format!("declared type {ty} but the op infers {}", self.graph.ty(id)));
        }
        self.ids.insert(label.to_string(), id);
        Ok(())
    }

    fn operand(&self, text: &str) -> Result<NodeId, String> {
        self.ids.get(text).copied().ok_or_else(|| format!("`{text}` is not defined above"))
    }

    fn op_and_operands(&self, rhs: &str, ty: &TensorType) -> Result<(Op, Vec<NodeId>), String> {
        let head_end = rhs.find(|c: char| c.is_whitespace()).unwrap_or(rhs.len());
        let (head, rest) = (&rhs[..head_end], rhs[head_end..].trim());
        let (name, attrs) = match head.split_once('[') {
            Some((name, attrs)) => (name, Some(attrs.strip_suffix(']').ok_or("unclosed `[` in attributes")?)),
            None => (head, None),
        };
        let (dtype, shape) = (ty.dtype, ty.shape.clone());
        let op = match name {
            "input" => Op::Input { name: quoted(rest)?, dtype, shape },
            "param" => Op::Param { name: quoted(rest)?, dtype, shape },
            "const" => Op::Constant { dtype, shape, values: constant_values(rest, dtype)? },
            "batch_size" => Op::BatchSize { dtype },
            "select" => Op::Select,
            "softmax" => Op::Softmax { axis: axis_attr(attrs)? },
            "log_softmax" => Op::LogSoftmax { axis: axis_attr(attrs)? },
            "matmul" => {
                let flags: Vec<&str> = attrs.map(|a| a.split(',').collect()).unwrap_or_default();
                if flags.iter().any(|f| *f != "ta" && *f != "tb") {
                    return Err(format!(
                        "matmul attributes are `ta` and `tb`, got `{}`",
                        attrs.unwrap_or("")
                    ));
                }
                Op::MatMul { transpose_a: flags.contains(&"ta"), transpose_b: flags.contains(&"tb") }
            }
            "broadcast" => Op::Broadcast { shape },
            "reshape" => Op::Reshape { shape },
            "transpose" => Op::Transpose { perm: usize_list(attrs.unwrap_or(""))? },
            "im2col" => Op::Im2col { window: window_attr(attrs)? },
            "col2im" => {
                // The image size is the result's H and W.
                let image = match shape.0.as_slice() {
                    [_, Dim::Fixed(h), Dim::Fixed(w), _] => [*h, *w],
                    _ => return Err(format!("col2im gives a rank-4 NHWC value, not {shape}")),
                };
                Op::Col2im { window: window_attr(attrs)?, image }
            }
            "pow" => {
                let exponent = attrs.ok_or("pow needs an exponent: `pow[2.5]`")?;
                Op::Unary(Unary::Pow(F64Bits::new(parse_float(exponent)?)))
            }
            "sum" | "mean" | "max" => {
                let kind = match name {
                    "sum" => Reduce::Sum,
                    "mean" => Reduce::Mean,
                    _ => Reduce::Max,
                };
                let items: Vec<&str> = attrs.unwrap_or("").split(',').filter(|s| !s.is_empty()).collect();
                let keep_dims = items.contains(&"keepdims");
                let axes = items
                    .iter()
                    .filter(|s| **s != "keepdims")
                    .map(|s| parse_usize(s))
                    .collect::<Result<_, _>>()?;
                Op::Reduce { kind, axes, keep_dims }
            }
            other => {
                if let Some(u) = Unary::ALL.iter().find(|u| u.name() == other && !matches!(u, Unary::Pow(_)))
                {
                    Op::Unary(*u)
                } else if let Some(b) = Binary::ALL.iter().find(|b| b.name() == other) {
                    Op::Binary(*b)
                } else if let Some(c) = Compare::ALL.iter().find(|c| c.name() == other) {
                    Op::Compare(*c)
                } else {
                    return Err(format!("unknown op `{other}`"));
                }
            }
        };
        let operands = match op {
            Op::Input { .. } | Op::Param { .. } | Op::Constant { .. } => Vec::new(),
            _ => rest
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| self.operand(s))
                .collect::<Result<_, _>>()?,
        };
        Ok((op, operands))
    }
}

fn parse_type(text: &str) -> Result<TensorType, String> {
    let open = text.find('[').ok_or_else(|| format!("type `{text}` needs a shape, e.g. f32[B,10]"))?;
    let dtype =
        DType::from_name(&text[..open]).ok_or_else(|| format!("unknown dtype `{}`", &text[..open]))?;
    let dims = text[open + 1..].strip_suffix(']').ok_or_else(|| format!("unclosed shape in `{text}`"))?;
    let dims = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| if d == "B" { Ok(Dim::Batch) } else { parse_usize(d).map(Dim::Fixed) })
        .collect::<Result<_, _>>()?;
    Ok(TensorType { dtype, shape: Shape(dims) })
}

fn quoted(text: &str) -> Result<String, String> {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .map(str::to_string)
        .ok_or_else(|| format!("expected a quoted name, got `{text}`"))
}

fn constant_values(text: &str, dtype: DType) -> Result<Vec<F64Bits>, String> {
    let list = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_float(s).map(|v| F64Bits::new(dtype.round(v))))
        .collect()
}

fn axis_attr(attrs: Option<&str>) -> Result<usize, String> {
    let value = attrs.and_then(|a| a.strip_prefix("axis=")).ok_or("expected `[axis=N]`")?;
    parse_usize(value)
}

fn usize_list(text: &str) -> Result<Vec<usize>, String> {
    text.split(',').filter(|s| !s.is_empty()).map(parse_usize).collect()
}

fn parse_usize(text: &str) -> Result<usize, String> {
    text.trim().parse().map_err(|_| format!("expected a non-negative integer, got `{text}`"))
}

fn parse_float(text: &str) -> Result<f64, String> {
    text.trim().parse().map_err(|_| format!("expected a number, got `{text}`"))
}

/// `KHxKW,stride=SHxSW,pad=PHxPW` (stride and pad default to 1x1 and 0x0).
fn window_attr(attrs: Option<&str>) -> Result<Window, String> {
    let text = attrs.ok_or("a window is needed: `[3x3,stride=1x1,pad=0x0]`")?;
    let pair = |s: &str| -> Result<[usize; 2], String> {
        let (a, b) = s.split_once('x').ok_or_else(|| format!("`{s}` is not `AxB`"))?;
        Ok([parse_usize(a)?, parse_usize(b)?])
    };
    let mut items = text.split(',');
    let kernel = pair(items.next().unwrap_or(""))?;
    let mut window = Window { kernel, stride: [1, 1], padding: [0, 0] };
    for item in items {
        match item.split_once('=') {
            Some(("stride", v)) => window.stride = pair(v)?,
            Some(("pad", v)) => window.padding = pair(v)?,
            _ => return Err(format!("unknown window attribute `{item}` (stride=AxB, pad=AxB)")),
        }
    }
    Ok(window)
}
