//! A [`KernelSpec`] as a PTX `.entry`: one thread per element of the `rows × cols` space
//! in a grid-stride loop; inputs read by access mode, outputs stored, column sums added
//! with `red.global.add` (the runtime zeroes their buffers first and applies a mean's
//! scale after).
//!
//! Parameters: one `.u64` pointer per buffer (inputs, outputs, column sums — the order of
//! the unit's `args`), then `rows` and `cols` as `.u64`.

use natgrad_ir::{Binary, DType};
use natgrad_lower::{Access, KExpr, KUnary, KernelSpec};

use crate::text::{GRID_STRIDE_REGISTERS, Lines, compare, constant, entry_text, float, size};
use natgrad_lower::math::Function;

/// The `.entry` named `name` computing `spec`, and the math functions it calls.
pub fn entry(name: &str, spec: &KernelSpec) -> (String, Vec<Function>) {
    let dtype = spec.dtype;
    let t = float(dtype);
    let buffers = spec.inputs.len() + spec.outputs.len() + spec.column_sums.len();
    let mut lines = Lines::default();
    let mut calls = Vec::new();
    let pointers: Vec<String> = (0..buffers).map(|k| lines.pointer(name, &format!("b{k}"))).collect();
    let (rows, cols) = (lines.param(name, "rows"), lines.param(name, "cols"));
    let [total, row, col] = ["%total", "%row", "%col"];
    lines.op(format!("mul.lo.u64 {total}, {rows}, {cols}"));
    lines.grid_stride_begin(total);
    lines.op(format!("div.u64 {row}, %index, {cols}"));
    lines.op(format!("mul.lo.u64 %scratch, {row}, {cols}"));
    lines.op(format!("sub.u64 {col}, %index, %scratch"));
    // Byte offsets by access mode.
    let bytes = size(dtype);
    let [full, by_col, by_row] = ["%full", "%by_col", "%by_row"];
    lines.op(format!("mul.lo.u64 {full}, %index, {bytes}"));
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
    let mut values: Vec<String> = Vec::with_capacity(spec.exprs.len());
    for expr in &spec.exprs {
        let d = lines.reg("f");
        match *expr {
            KExpr::Input(i) => {
                let a = address(&mut lines, &pointers[i], spec.inputs[i]);
                lines.op(format!("ld.global.nc.{t} {d}, [{a}]"));
            }
            KExpr::Const(c) => lines.op(format!("mov.{t} {d}, {}", constant(dtype, c))),
            KExpr::Unary(op, x) => {
                let x = &values[x];
                match op {
                    KUnary::Neg => lines.op(format!("neg.{t} {d}, {x}")),
                    KUnary::Abs => lines.op(format!("abs.{t} {d}, {x}")),
                    KUnary::Square => lines.op(format!("mul.rn.{t} {d}, {x}, {x}")),
                    KUnary::Sqrt => lines.op(format!("sqrt.rn.{t} {d}, {x}")),
                    KUnary::Exp => call(&mut lines, &mut calls, Function::Exp, dtype, &d, x),
                    KUnary::Log => call(&mut lines, &mut calls, Function::Log, dtype, &d, x),
                    KUnary::Log1p => call(&mut lines, &mut calls, Function::Log1p, dtype, &d, x),
                    KUnary::Tanh => call(&mut lines, &mut calls, Function::Tanh, dtype, &d, x),
                    KUnary::Pow(p) => call(&mut lines, &mut calls, Function::Pow(p), dtype, &d, x),
                }
            }
            KExpr::Binary(op, x, y) => {
                let (x, y) = (&values[x], &values[y]);
                match op {
                    Binary::Add => lines.op(format!("add.rn.{t} {d}, {x}, {y}")),
                    Binary::Sub => lines.op(format!("sub.rn.{t} {d}, {x}, {y}")),
                    Binary::Mul => lines.op(format!("mul.rn.{t} {d}, {x}, {y}")),
                    Binary::Div => lines.op(format!("div.rn.{t} {d}, {x}, {y}")),
                    Binary::Maximum => maximum(&mut lines, dtype, &d, x, y),
                }
            }
            KExpr::Choose { cmp, lhs, rhs, then, otherwise } => {
                let p = lines.reg("p");
                lines.op(format!("setp.{}.{t} {p}, {}, {}", compare(cmp), values[lhs], values[rhs]));
                lines.op(format!("selp.{t} {d}, {}, {}, {p}", values[then], values[otherwise]));
            }
        }
        values.push(d);
    }
    let first_output = spec.inputs.len();
    for (k, &e) in spec.outputs.iter().enumerate() {
        let a = address(&mut lines, &pointers[first_output + k], Access::Full);
        lines.op(format!("st.global.{t} [{a}], {}", values[e]));
    }
    let first_sum = first_output + spec.outputs.len();
    for (k, sum) in spec.column_sums.iter().enumerate() {
        let a = address(&mut lines, &pointers[first_sum + k], Access::Row);
        lines.op(format!("red.global.add.{t} [{a}], {}", values[sum.expr]));
    }
    lines.grid_stride_end();
    let mut params: Vec<String> = (0..buffers).map(|k| format!("b{k}")).collect();
    params.extend(["rows".to_string(), "cols".to_string()]);
    let mut declarations = lines.declarations(&[("rd", "b64"), ("f", t), ("p", "pred")]);
    declarations.push_str(GRID_STRIDE_REGISTERS);
    for n in ["total", "row", "col", "full", "by_col", "by_row"] {
        declarations.push_str(&format!("\t.reg .u64 %{n};\n"));
    }
    (entry_text(name, &params, &declarations, &lines.text), calls)
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
