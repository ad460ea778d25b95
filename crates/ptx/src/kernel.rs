//! A [`KernelSpec`] as a PTX `.entry` over the `rows × cols` space in a grid-stride loop,
//! each thread taking one element, or one 16-byte vector of elements when rows hold whole
//! vectors; inputs read by access mode, outputs stored. A kernel with column sums gives each
//! thread a tile instead — [`SUM_ROWS`] rows of one element or vector column — whose sums it
//! keeps in registers and adds with one `red.global.add` per column (the runtime zeroes the
//! sums' buffers first and applies a mean's scale after).
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

/// Rows one thread sums down a column in a kernel with column sums (one atomic add per
/// column per this many rows).
pub const SUM_ROWS: usize = 32;

/// Threads a launch of `spec` over `rows × cols` elements needs: one per element, or per
/// 16-byte vector when rows hold whole vectors (the entry then takes its vectorised loop);
/// with column sums, one per [`SUM_ROWS`]-row tile of such columns. Any count is correct
/// (the loops are grid-stride); this one wastes none.
pub fn threads(spec: &KernelSpec, rows: usize, cols: usize) -> usize {
    let width = vector_width(spec.dtype);
    let lanes = if cols.is_multiple_of(width) { width } else { 1 };
    if spec.column_sums.is_empty() { rows * cols / lanes } else { rows.div_ceil(SUM_ROWS) * (cols / lanes) }
}

/// The `.entry` named `name` computing `spec`, and the math functions it calls. When `cols`
/// is a multiple of [`vector_width`], each thread takes 16 bytes of every full-size operand
/// and bias row with one vector load and stores its outputs with one vector store (buffers
/// are whole allocations, so 256-byte aligned); otherwise one element at a time. With the
/// row width `fixed_cols` known when compiling, only the path it takes is emitted; rows as
/// long as the batch get both and choose at run time.
pub fn entry(name: &str, spec: &KernelSpec, fixed_cols: Option<usize>) -> (String, Vec<Function>) {
    let dtype = spec.dtype;
    let t = float(dtype);
    let buffers = spec.inputs.len() + spec.outputs.len() + spec.column_sums.len();
    let mut lines = Lines::default();
    let mut calls = Vec::new();
    let pointers: Vec<String> = (0..buffers).map(|k| lines.pointer(name, &format!("b{k}"))).collect();
    let (rows, cols) = (lines.param(name, "rows"), lines.param(name, "cols"));
    let width = vector_width(dtype);
    let mut kernel = Kernel { lines, calls: &mut calls, spec, pointers, rows, cols };
    match fixed_cols {
        Some(c) if c.is_multiple_of(width) => kernel.path(width, "V"),
        Some(_) => kernel.path(1, ""),
        None => {
            kernel.lines.op(format!("rem.u64 %scratch, {}, {width}", kernel.cols));
            kernel.lines.op("setp.eq.u64 %vectors, %scratch, 0");
            kernel.lines.op("@%vectors bra $VECTORS");
            kernel.path(1, "");
            kernel.lines.text.push_str("$VECTORS:\n");
            kernel.path(width, "V");
        }
    }
    let mut params: Vec<String> = (0..buffers).map(|k| format!("b{k}")).collect();
    params.extend(["rows".to_string(), "cols".to_string()]);
    let mut declarations = kernel.lines.declarations(&[("rd", "b64"), ("f", t), ("p", "pred")]);
    declarations.push_str(GRID_STRIDE_REGISTERS);
    declarations.push_str("\t.reg .pred %vectors;\n");
    for n in ["total", "first", "row", "col", "full", "by_col", "by_row"] {
        declarations.push_str(&format!("\t.reg .u64 %{n};\n"));
    }
    (entry_text(name, &params, &declarations, &kernel.lines.text), calls)
}

/// An entry being written.
struct Kernel<'a> {
    lines: Lines,
    calls: &'a mut Vec<Function>,
    spec: &'a KernelSpec,
    pointers: Vec<String>,
    rows: String,
    cols: String,
}

impl Kernel<'_> {
    /// One grid-stride loop with `lanes` elements per step (labels prefixed by `tag`),
    /// ending in `ret`.
    fn path(&mut self, lanes: usize, tag: &str) {
        let (rows, cols) = (self.rows.clone(), self.cols.clone());
        let (top, done) = (format!("${tag}LOOP"), format!("${tag}DONE"));
        if self.spec.column_sums.is_empty() {
            self.lines.op(format!("mul.lo.u64 %total, {rows}, {cols}"));
            if lanes > 1 {
                self.lines.op(format!("div.u64 %total, %total, {lanes}"));
            }
            self.lines.grid_stride_begin_at("%total", &top, &done);
            if lanes == 1 {
                self.lines.op("mov.u64 %first, %index");
            } else {
                self.lines.op(format!("mul.lo.u64 %first, %index, {lanes}"));
            }
            self.lines.op(format!("div.u64 %row, %first, {cols}"));
            self.lines.op(format!("mul.lo.u64 %scratch, %row, {cols}"));
            self.lines.op("sub.u64 %col, %first, %scratch");
            self.body(lanes);
            self.lines.grid_stride_end_at(&top, &done);
            return;
        }
        // Tiles of SUM_ROWS rows × `lanes` columns: %index = tile row · vector columns + vector column.
        let t = float(self.spec.dtype);
        let (vector_cols, tile, end) = (self.lines.reg("rd"), self.lines.reg("rd"), self.lines.reg("rd"));
        if lanes == 1 {
            self.lines.op(format!("mov.u64 {vector_cols}, {cols}"));
        } else {
            self.lines.op(format!("div.u64 {vector_cols}, {cols}, {lanes}"));
        }
        self.lines.op(format!("add.u64 %total, {rows}, {}", SUM_ROWS - 1));
        self.lines.op(format!("div.u64 %total, %total, {SUM_ROWS}"));
        self.lines.op(format!("mul.lo.u64 %total, %total, {vector_cols}"));
        self.lines.grid_stride_begin_at("%total", &top, &done);
        self.lines.op(format!("div.u64 {tile}, %index, {vector_cols}"));
        self.lines.op(format!("mul.lo.u64 %scratch, {tile}, {vector_cols}"));
        self.lines.op("sub.u64 %col, %index, %scratch");
        if lanes > 1 {
            self.lines.op(format!("mul.lo.u64 %col, %col, {lanes}"));
        }
        self.lines.op(format!("mul.lo.u64 %row, {tile}, {SUM_ROWS}"));
        self.lines.op(format!("add.u64 {end}, %row, {SUM_ROWS}"));
        self.lines.op(format!("min.u64 {end}, {end}, {rows}"));
        let sums: Vec<Vec<String>> = self
            .spec
            .column_sums
            .iter()
            .map(|_| {
                (0..lanes)
                    .map(|_| {
                        let r = self.lines.reg("f");
                        self.lines.op(format!("mov.{t} {r}, {}", constant(self.spec.dtype, 0.0)));
                        r
                    })
                    .collect()
            })
            .collect();
        let (rows_top, rows_done) = (format!("${tag}ROWS"), format!("${tag}ROWS_DONE"));
        let more = self.lines.reg("p");
        self.lines.text.push_str(&format!("{rows_top}:\n"));
        self.lines.op(format!("setp.lt.u64 {more}, %row, {end}"));
        self.lines.op(format!("@!{more} bra {rows_done}"));
        self.lines.op(format!("mad.lo.u64 %first, %row, {cols}, %col"));
        let values = self.body(lanes);
        for (sum, value) in sums.iter().zip(&values) {
            for (acc, v) in sum.iter().zip(value) {
                self.lines.op(format!("add.rn.{t} {acc}, {acc}, {v}"));
            }
        }
        self.lines.op("add.u64 %row, %row, 1");
        self.lines.op(format!("bra.uni {rows_top}"));
        self.lines.text.push_str(&format!("{rows_done}:\n"));
        let bytes = size(self.spec.dtype);
        self.lines.op(format!("mul.lo.u64 %by_col, %col, {bytes}"));
        let first_sum = self.spec.inputs.len() + self.spec.outputs.len();
        for (k, sum) in sums.iter().enumerate() {
            let a = self.lines.reg("rd");
            self.lines.op(format!("add.u64 {a}, {}, %by_col", self.pointers[first_sum + k]));
            for (lane, acc) in sum.iter().enumerate() {
                let offset = if lane == 0 { String::new() } else { format!("+{}", lane * bytes) };
                self.lines.op(format!("red.global.add.{t} [{a}{offset}], {acc}"));
            }
        }
        self.lines.grid_stride_end_at(&top, &done);
    }

    /// `lanes` consecutive elements of row `%row` from element `%first` (column `%col`):
    /// inputs loaded, expressions computed, outputs stored; returns each column sum's
    /// per-lane values.
    fn body(&mut self, lanes: usize) -> Vec<Vec<String>> {
        let Kernel { lines, calls, spec, pointers, .. } = self;
        let dtype = spec.dtype;
        let t = float(dtype);
        let bytes = size(dtype);
        let [full, by_col, by_row] = ["%full", "%by_col", "%by_row"];
        lines.op(format!("mul.lo.u64 {full}, %first, {bytes}"));
        lines.op(format!("mul.lo.u64 {by_col}, %col, {bytes}"));
        lines.op(format!("mul.lo.u64 {by_row}, %row, {bytes}"));
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
            let per_lane =
                |lines: &mut Lines| -> Vec<String> { (0..lanes).map(|_| lines.reg("f")).collect() };
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
        spec.column_sums.iter().map(|sum| values[sum.expr].clone()).collect()
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
