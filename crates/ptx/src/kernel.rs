//! A [`KernelSpec`] as a PTX `.entry`: one thread per element (or per 16-byte vector of
//! elements, when rows hold whole vectors) of the `rows × cols` space in a grid-stride loop; inputs read by access mode, outputs stored, column sums added
//! with `red.global.add` (the runtime zeroes their buffers first and applies a mean's
//! scale after).
//!
//! Parameters: one `.u64` pointer per buffer (inputs, outputs, column sums — the order of
//! the unit's `args`), then `rows` and `cols` as `.u64`.

use natgrad_ir::{Binary, DType};
use natgrad_lower::{Access, KExpr, KUnary, KernelSpec};

use crate::text::{GRID_STRIDE_REGISTERS, Lines, compare, constant, entry_text, float, size};
use natgrad_lower::math::Function;

/// Elements per thread in the vectorised loop: 16 bytes (`.v4.f32`, `.v2.f64`).
pub fn vector_width(dtype: DType) -> usize {
    16 / size(dtype)
}

/// Threads a launch of a kernel over `rows × cols` elements needs: one per 16-byte vector
/// when rows hold whole vectors (the entry then takes its vectorised loop), else one per
/// element. Either count is correct (the loops are grid-stride); this one wastes none.
pub fn threads(dtype: DType, rows: usize, cols: usize) -> usize {
    let width = vector_width(dtype);
    if cols.is_multiple_of(width) { rows * cols / width } else { rows * cols }
}

/// The `.entry` named `name` computing `spec`, and the math functions it calls. When `cols`
/// is a multiple of [`vector_width`], each thread takes 16 bytes of every full-size operand
/// and bias row with one vector load and stores its outputs with one vector store (buffers
/// are whole allocations, so 256-byte aligned); otherwise one element per thread.
pub fn entry(name: &str, spec: &KernelSpec) -> (String, Vec<Function>) {
    let dtype = spec.dtype;
    let t = float(dtype);
    let buffers = spec.inputs.len() + spec.outputs.len() + spec.column_sums.len();
    let mut lines = Lines::default();
    let mut calls = Vec::new();
    let pointers: Vec<String> = (0..buffers).map(|k| lines.pointer(name, &format!("b{k}"))).collect();
    let (rows, cols) = (lines.param(name, "rows"), lines.param(name, "cols"));
    let width = vector_width(dtype);
    lines.op(format!("mul.lo.u64 %total, {rows}, {cols}"));
    lines.op(format!("rem.u64 %scratch, {cols}, {width}"));
    lines.op("setp.eq.u64 %vectors, %scratch, 0");
    lines.op("@%vectors bra $VECTORS");
    lines.grid_stride_begin("%total");
    body(&mut lines, &mut calls, spec, &pointers, &cols, 1);
    lines.grid_stride_end();
    lines.text.push_str("$VECTORS:\n");
    lines.op(format!("div.u64 %total, %total, {width}"));
    lines.grid_stride_begin_at("%total", "$VLOOP", "$VDONE");
    body(&mut lines, &mut calls, spec, &pointers, &cols, width);
    lines.grid_stride_end_at("$VLOOP", "$VDONE");
    let mut params: Vec<String> = (0..buffers).map(|k| format!("b{k}")).collect();
    params.extend(["rows".to_string(), "cols".to_string()]);
    let mut declarations = lines.declarations(&[("rd", "b64"), ("f", t), ("p", "pred")]);
    declarations.push_str(GRID_STRIDE_REGISTERS);
    declarations.push_str("\t.reg .pred %vectors;\n");
    for n in ["total", "first", "row", "col", "full", "by_col", "by_row"] {
        declarations.push_str(&format!("\t.reg .u64 %{n};\n"));
    }
    (entry_text(name, &params, &declarations, &lines.text), calls)
}

/// One grid-stride iteration of `spec` over `lanes` consecutive elements of one row,
/// starting at element `%index · lanes`.
fn body(
    lines: &mut Lines,
    calls: &mut Vec<Function>,
    spec: &KernelSpec,
    pointers: &[String],
    cols: &str,
    lanes: usize,
) {
    let dtype = spec.dtype;
    let t = float(dtype);
    let bytes = size(dtype);
    let [first, row, col] = ["%first", "%row", "%col"];
    if lanes == 1 {
        lines.op(format!("mov.u64 {first}, %index"));
    } else {
        lines.op(format!("mul.lo.u64 {first}, %index, {lanes}"));
    }
    lines.op(format!("div.u64 {row}, {first}, {cols}"));
    lines.op(format!("mul.lo.u64 %scratch, {row}, {cols}"));
    lines.op(format!("sub.u64 {col}, {first}, %scratch"));
    // Byte offsets by access mode.
    let [full, by_col, by_row] = ["%full", "%by_col", "%by_row"];
    lines.op(format!("mul.lo.u64 {full}, {first}, {bytes}"));
    lines.op(format!("mul.lo.u64 {by_col}, {col}, {bytes}"));
    lines.op(format!("mul.lo.u64 {by_row}, {row}, {bytes}"));
    let address = |lines: &mut Lines, pointer: &str, access: Access| -> String {
        let a = lines.reg("rd");
        match access {
            Access::Full => lines.op(format!("add.u64 {a}, {pointer}, {full}")),
            Access::Row => lines.op(format!("add.u64 {a}, {pointer}, {by_col}")),
            Access::Col => lines.op(format!("add.u64 {a}, {pointer}, {by_row}")),
            Access::Scalar => lines.op(format!("mov.u64 {a}, {pointer}")),
        }
        a
    };
    let vector = |registers: &[String]| format!("{{{}}}", registers.join(", "));
    let suffix = if lanes == 1 { String::new() } else { format!(".v{lanes}") };
    // values[expression][lane]
    let mut values: Vec<Vec<String>> = Vec::with_capacity(spec.exprs.len());
    for expr in &spec.exprs {
        let per_lane = |lines: &mut Lines| -> Vec<String> { (0..lanes).map(|_| lines.reg("f")).collect() };
        let lane_values = match *expr {
            KExpr::Input(i) => {
                let access = spec.inputs[i];
                let a = address(lines, &pointers[i], access);
                if matches!(access, Access::Full | Access::Row) {
                    let d = per_lane(lines);
                    let target = if lanes == 1 { d[0].clone() } else { vector(&d) };
                    lines.op(format!("ld.global.nc{suffix}.{t} {target}, [{a}]"));
                    d
                } else {
                    // One value per row (or in all): every lane reads the same.
                    let d = lines.reg("f");
                    lines.op(format!("ld.global.nc.{t} {d}, [{a}]"));
                    vec![d; lanes]
                }
            }
            KExpr::Const(c) => {
                let d = lines.reg("f");
                lines.op(format!("mov.{t} {d}, {}", constant(dtype, c)));
                vec![d; lanes]
            }
            KExpr::Unary(op, x) => {
                let d = per_lane(lines);
                for (d, x) in d.iter().zip(values[x].clone()) {
                    match op {
                        KUnary::Neg => lines.op(format!("neg.{t} {d}, {x}")),
                        KUnary::Abs => lines.op(format!("abs.{t} {d}, {x}")),
                        KUnary::Square => lines.op(format!("mul.rn.{t} {d}, {x}, {x}")),
                        KUnary::Sqrt => lines.op(format!("sqrt.rn.{t} {d}, {x}")),
                        KUnary::Exp => call(lines, calls, Function::Exp, dtype, d, &x),
                        KUnary::Log => call(lines, calls, Function::Log, dtype, d, &x),
                        KUnary::Log1p => call(lines, calls, Function::Log1p, dtype, d, &x),
                        KUnary::Tanh => call(lines, calls, Function::Tanh, dtype, d, &x),
                        KUnary::Pow(p) => call(lines, calls, Function::Pow(p), dtype, d, &x),
                    }
                }
                d
            }
            KExpr::Binary(op, x, y) => {
                let d = per_lane(lines);
                for (lane, d) in d.iter().enumerate() {
                    let (x, y) = (&values[x][lane], &values[y][lane]);
                    match op {
                        Binary::Add => lines.op(format!("add.rn.{t} {d}, {x}, {y}")),
                        Binary::Sub => lines.op(format!("sub.rn.{t} {d}, {x}, {y}")),
                        Binary::Mul => lines.op(format!("mul.rn.{t} {d}, {x}, {y}")),
                        Binary::Div => lines.op(format!("div.rn.{t} {d}, {x}, {y}")),
                        Binary::Maximum => maximum(lines, dtype, d, x, y),
                    }
                }
                d
            }
            KExpr::Choose { cmp, lhs, rhs, then, otherwise } => {
                let d = per_lane(lines);
                for (lane, d) in d.iter().enumerate() {
                    let p = lines.reg("p");
                    let (l, r) = (&values[lhs][lane], &values[rhs][lane]);
                    lines.op(format!("setp.{}.{t} {p}, {l}, {r}", compare(cmp)));
                    lines.op(format!(
                        "selp.{t} {d}, {}, {}, {p}",
                        values[then][lane], values[otherwise][lane]
                    ));
                }
                d
            }
        };
        values.push(lane_values);
    }
    let first_output = spec.inputs.len();
    for (k, &e) in spec.outputs.iter().enumerate() {
        let a = address(lines, &pointers[first_output + k], Access::Full);
        let source = if lanes == 1 { values[e][0].clone() } else { vector(&values[e]) };
        lines.op(format!("st.global{suffix}.{t} [{a}], {source}"));
    }
    let first_sum = first_output + spec.outputs.len();
    for (k, sum) in spec.column_sums.iter().enumerate() {
        let a = address(lines, &pointers[first_sum + k], Access::Row);
        for (lane, value) in values[sum.expr].iter().enumerate() {
            let offset = if lane == 0 { String::new() } else { format!("+{}", lane * bytes) };
            lines.op(format!("red.global.add.{t} [{a}{offset}], {value}"));
        }
    }
}

/// `d = function(x)` through the routine's `.func`.
pub(crate) fn call(
    lines: &mut Lines,
    calls: &mut Vec<Function>,
    function: Function,
    dtype: DType,
    d: &str,
    x: &str,
) {
    let t = float(dtype);
    let symbol = function.symbol(dtype);
    if !calls.contains(&function) {
        calls.push(function);
    }
    lines.text.push_str("\t{\n");
    lines.op(format!("\t.param .{t} arg"));
    lines.op(format!("\t.param .{t} result"));
    lines.op(format!("\tst.param.{t} [arg], {x}"));
    lines.op(format!("\tcall.uni (result), {symbol}, (arg)"));
    lines.op(format!("\tld.param.{t} {d}, [result]"));
    lines.text.push_str("\t}\n");
}

/// NaN-propagating maximum: `max.NaN` for f32; for f64 (no `.NaN` form) the sum, which is
/// NaN exactly when a side is, replaces the maximum when a side is NaN.
pub(crate) fn maximum(lines: &mut Lines, dtype: DType, d: &str, x: &str, y: &str) {
    match dtype {
        DType::F32 => lines.op(format!("max.NaN.f32 {d}, {x}, {y}")),
        DType::F64 => {
            let (p, sum) = (lines.reg("p"), lines.reg("f"));
            lines.op(format!("max.f64 {d}, {x}, {y}"));
            lines.op(format!("setp.nan.f64 {p}, {x}, {y}"));
            lines.op(format!("add.rn.f64 {sum}, {x}, {y}"));
            lines.op(format!("selp.f64 {d}, {sum}, {d}, {p}"));
        }
    }
}
