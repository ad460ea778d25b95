//! The optimizers' vector operations on device buffers (`natgrad_optim::VectorOps` for the
//! CUDA runtime): grid-stride entries over `n` elements of one element type, in one module
//! loaded once per device and type. Each computes what the host implementation computes, in
//! the same order and rounding (no fused multiply-adds), so a CG or MinRes-QLP iteration on
//! the device follows the host's; `ng_dot` leaves one f64 partial sum per block for the
//! host to add, and `ng_shifted_power` evaluates `x^p` as `exp(p·ln x)` with the shared f64
//! routines (within a few ulp of libm's `pow`).
//!
//! Parameters, all `.u64` (pointers are device addresses, floats their bits in `dtype`):
//!
//! | entry | parameters | computes |
//! |---|---|---|
//! | `ng_axpy` | `x, y, n, alpha` | `y ← y + α·x` |
//! | `ng_axpby` | `x, y, n, alpha, beta` | `y ← α·x + β·y` |
//! | `ng_scale` | `x, n, scale` | `x ← s·x` |
//! | `ng_fill` | `x, n, value` | `x ← value` |
//! | `ng_mul` | `a, b, out, n` | `out ← a ⊙ b` |
//! | `ng_shifted_power` | `x, out, n, shift, exponent` (both f64 bits) | `out ← (x + shift)^exponent`, in f64 |
//! | `ng_dot` | `a, b, partials, n` | `partials[block] = Σ a·b` over the block's elements, in f64 |
//!
//! `ng_dot` must be launched with [`DOT_BLOCK`] threads per block.

use natgrad_ir::DType;
use natgrad_lower::math::Function;

use crate::Arch;
use crate::kernel::call;
use crate::text::{GRID_STRIDE_REGISTERS, Lines, constant, entry_text, float, size};

/// The module's entries (what a runtime loads).
pub const ENTRIES: [&str; 7] =
    ["ng_axpy", "ng_axpby", "ng_scale", "ng_fill", "ng_mul", "ng_shifted_power", "ng_dot"];

/// Threads per block `ng_dot` is written for (its shared-memory tree has this many leaves).
pub const DOT_BLOCK: u32 = 256;

/// The vector module for `dtype` on `arch`.
pub fn module(dtype: DType, arch: Arch) -> String {
    let mut text =
        format!(".version {}\n.target {}\n.address_size 64\n\n", crate::PTX_VERSION, arch.target());
    for function in [Function::Exp, Function::Log] {
        text.push_str(&crate::func::func(function, DType::F64));
        text.push('\n');
    }
    for entry in [
        axpy(dtype),
        axpby(dtype),
        crate::host::scale("ng_scale", dtype),
        fill(dtype),
        mul(dtype),
        shifted_power(dtype),
        dot(dtype),
    ] {
        text.push_str(&entry);
        text.push('\n');
    }
    text
}

/// Register declarations of these entries.
fn declarations(lines: &Lines, dtype: DType) -> String {
    let mut d = lines.declarations(&[("rd", "b64"), ("f", float(dtype)), ("fd", "f64"), ("p", "pred")]);
    d.push_str(GRID_STRIDE_REGISTERS);
    d.push_str(&lines.declarations(&[("lo", "b32")]));
    d
}

/// The address of element `%index` of `base`.
fn element(lines: &mut Lines, base: &str, dtype: DType) -> String {
    let address = lines.reg("rd");
    lines.op(format!("mad.lo.u64 {address}, %index, {}, {base}", size(dtype)));
    address
}

/// A grid-stride entry over `n` with `pointers` then `floats` (in `dtype`) as parameters;
/// `body` emits one element's work given the pointers' element addresses and the floats.
fn elementwise(
    name: &str,
    dtype: DType,
    pointers: &[&str],
    floats: &[&str],
    body: impl Fn(&mut Lines, &[String], &[String]),
) -> String {
    let mut lines = Lines::default();
    let bases: Vec<String> = pointers.iter().map(|p| lines.pointer(name, p)).collect();
    let n = lines.param(name, "n");
    let values: Vec<String> = floats.iter().map(|f| lines.float_param(name, f, dtype)).collect();
    lines.grid_stride_begin(&n);
    let addresses: Vec<String> = bases.iter().map(|b| element(&mut lines, b, dtype)).collect();
    body(&mut lines, &addresses, &values);
    lines.grid_stride_end();
    let mut params: Vec<String> = pointers.iter().map(|p| p.to_string()).collect();
    params.push("n".to_string());
    params.extend(floats.iter().map(|f| f.to_string()));
    entry_text(name, &params, &declarations(&lines, dtype), &lines.text)
}

/// `y ← y + α·x` (the host's `beta == 1` order).
fn axpy(dtype: DType) -> String {
    let t = float(dtype);
    elementwise("ng_axpy", dtype, &["x", "y"], &["alpha"], |lines, at, v| {
        let (x, y, product) = (lines.reg("f"), lines.reg("f"), lines.reg("f"));
        lines.op(format!("ld.global.{t} {x}, [{}]", at[0]));
        lines.op(format!("ld.global.{t} {y}, [{}]", at[1]));
        lines.op(format!("mul.rn.{t} {product}, {}, {x}", v[0]));
        lines.op(format!("add.rn.{t} {y}, {y}, {product}"));
        lines.op(format!("st.global.{t} [{}], {y}", at[1]));
    })
}

/// `y ← α·x + β·y`.
fn axpby(dtype: DType) -> String {
    let t = float(dtype);
    elementwise("ng_axpby", dtype, &["x", "y"], &["alpha", "beta"], |lines, at, v| {
        let (x, y, ax, by) = (lines.reg("f"), lines.reg("f"), lines.reg("f"), lines.reg("f"));
        lines.op(format!("ld.global.{t} {x}, [{}]", at[0]));
        lines.op(format!("ld.global.{t} {y}, [{}]", at[1]));
        lines.op(format!("mul.rn.{t} {ax}, {}, {x}", v[0]));
        lines.op(format!("mul.rn.{t} {by}, {}, {y}", v[1]));
        lines.op(format!("add.rn.{t} {y}, {ax}, {by}"));
        lines.op(format!("st.global.{t} [{}], {y}", at[1]));
    })
}

/// `x ← value`.
fn fill(dtype: DType) -> String {
    let t = float(dtype);
    elementwise("ng_fill", dtype, &["x"], &["value"], |lines, at, v| {
        lines.op(format!("st.global.{t} [{}], {}", at[0], v[0]));
    })
}

/// `out ← a ⊙ b`.
fn mul(dtype: DType) -> String {
    let t = float(dtype);
    elementwise("ng_mul", dtype, &["a", "b", "out"], &[], |lines, at, _| {
        let (a, b) = (lines.reg("f"), lines.reg("f"));
        lines.op(format!("ld.global.{t} {a}, [{}]", at[0]));
        lines.op(format!("ld.global.{t} {b}, [{}]", at[1]));
        lines.op(format!("mul.rn.{t} {a}, {a}, {b}"));
        lines.op(format!("st.global.{t} [{}], {a}", at[2]));
    })
}

/// Widens a `dtype` register to a fresh f64 one (exact).
fn widen(lines: &mut Lines, dtype: DType, value: &str) -> String {
    let wide = lines.reg("fd");
    match dtype {
        DType::F32 => lines.op(format!("cvt.f64.f32 {wide}, {value}")),
        DType::F64 => lines.op(format!("mov.f64 {wide}, {value}")),
    }
    wide
}

/// `out ← (x + shift)^exponent` in f64, rounded to `dtype` at the end; `x^0 = 1` for every
/// `x` (as `powf`), `0^p` is 0 or ∞ and negative bases give NaN through `ln`.
fn shifted_power(dtype: DType) -> String {
    let name = "ng_shifted_power";
    let t = float(dtype);
    let mut lines = Lines::default();
    let mut calls = Vec::new();
    let (x, out) = (lines.pointer(name, "x"), lines.pointer(name, "out"));
    let n = lines.param(name, "n");
    let (shift, exponent) = (lines.param(name, "shift"), lines.param(name, "exponent"));
    let (shift_f, exponent_f) = (lines.reg("fd"), lines.reg("fd"));
    lines.op(format!("mov.b64 {shift_f}, {shift}"));
    lines.op(format!("mov.b64 {exponent_f}, {exponent}"));
    lines.grid_stride_begin(&n);
    let (from, to) = (element(&mut lines, &x, dtype), element(&mut lines, &out, dtype));
    let value = lines.reg("f");
    lines.op(format!("ld.global.{t} {value}, [{from}]"));
    let base = widen(&mut lines, dtype, &value);
    let (logarithm, scaled, power) = (lines.reg("fd"), lines.reg("fd"), lines.reg("fd"));
    lines.op(format!("add.rn.f64 {base}, {base}, {shift_f}"));
    call(&mut lines, &mut calls, Function::Log, DType::F64, &logarithm, &base);
    lines.op(format!("mul.rn.f64 {scaled}, {exponent_f}, {logarithm}"));
    call(&mut lines, &mut calls, Function::Exp, DType::F64, &power, &scaled);
    let zero_exponent = lines.reg("p");
    lines.op(format!("setp.eq.f64 {zero_exponent}, {exponent_f}, {}", constant(DType::F64, 0.0)));
    lines.op(format!("selp.f64 {power}, {}, {power}, {zero_exponent}", constant(DType::F64, 1.0)));
    let result = lines.reg("f");
    match dtype {
        DType::F32 => lines.op(format!("cvt.rn.f32.f64 {result}, {power}")),
        DType::F64 => lines.op(format!("mov.f64 {result}, {power}")),
    }
    lines.op(format!("st.global.{t} [{to}], {result}"));
    lines.grid_stride_end();
    let params = ["x", "out", "n", "shift", "exponent"].map(String::from);
    entry_text(name, &params, &declarations(&lines, dtype), &lines.text)
}

/// Per block, the f64 sum of `a[i]·b[i]` (each product of the widened values, as the host)
/// over the block's grid-stride elements, reduced by a shared-memory tree into
/// `partials[block]`.
fn dot(dtype: DType) -> String {
    let name = "ng_dot";
    let t = float(dtype);
    let mut lines = Lines::default();
    let (a, b, partials) =
        (lines.pointer(name, "a"), lines.pointer(name, "b"), lines.pointer(name, "partials"));
    let n = lines.param(name, "n");
    let sum = lines.reg("fd");
    lines.op(format!("mov.f64 {sum}, {}", constant(DType::F64, 0.0)));
    lines.grid_stride_begin(&n);
    let (at_a, at_b) = (element(&mut lines, &a, dtype), element(&mut lines, &b, dtype));
    let (x, y) = (lines.reg("f"), lines.reg("f"));
    lines.op(format!("ld.global.{t} {x}, [{at_a}]"));
    lines.op(format!("ld.global.{t} {y}, [{at_b}]"));
    let (wx, wy) = (widen(&mut lines, dtype, &x), widen(&mut lines, dtype, &y));
    lines.op(format!("mul.rn.f64 {wx}, {wx}, {wy}"));
    lines.op(format!("add.rn.f64 {sum}, {sum}, {wx}"));
    // The loop's end without its `ret`: the block reduction follows.
    lines.op("add.u64 %index, %index, %stride");
    lines.op("bra.uni $LOOP");
    lines.text.push_str("$DONE:\n");
    let (slot, own) = (lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("mov.u64 {slot}, {name}_shared"));
    lines.op("cvt.u64.u32 %scratch, %r2");
    lines.op(format!("mad.lo.u64 {own}, %scratch, 8, {slot}"));
    lines.op(format!("st.shared.f64 [{own}], {sum}"));
    lines.op("bar.sync 0");
    let mut half = DOT_BLOCK / 2;
    while half > 0 {
        let (skip, other, value) = (lines.reg("p"), lines.reg("fd"), lines.reg("fd"));
        lines.op(format!("setp.ge.u32 {skip}, %r2, {half}"));
        lines.op(format!("@{skip} bra $TREE{half}"));
        lines.op(format!("ld.shared.f64 {value}, [{own}]"));
        lines.op(format!("ld.shared.f64 {other}, [{own}+{}]", 8 * half));
        lines.op(format!("add.rn.f64 {value}, {value}, {other}"));
        lines.op(format!("st.shared.f64 [{own}], {value}"));
        lines.text.push_str(&format!("$TREE{half}:\n"));
        lines.op("bar.sync 0");
        half /= 2;
    }
    let (not_first, total, target) = (lines.reg("p"), lines.reg("fd"), lines.reg("rd"));
    lines.op(format!("setp.ne.u32 {not_first}, %r2, 0"));
    lines.op(format!("@{not_first} bra $END"));
    lines.op(format!("ld.shared.f64 {total}, [{slot}]"));
    lines.op("cvt.u64.u32 %scratch, %r0");
    lines.op(format!("mad.lo.u64 {target}, %scratch, 8, {partials}"));
    lines.op(format!("st.global.f64 [{target}], {total}"));
    lines.text.push_str("$END:\n");
    lines.op("ret");
    let shared = format!("\t.shared .align 8 .f64 {name}_shared[{DOT_BLOCK}];\n");
    let params = ["a", "b", "partials", "n"].map(String::from);
    entry_text(name, &params, &(shared + &declarations(&lines, dtype)), &lines.text)
}
