//! The plan's host steps as PTX `.entry`s: softmax rows, strided gathers (transposes and
//! materialised broadcasts) and the reductions not fused into kernels. GEMMs go to cuBLAS.
//! Shapes are resolved at run time, so every size and stride is a `.u64` parameter; the
//! parameter order of each kind is its contract with the runtime:
//!
//! * softmax: `x, out, outer, n, inner` — the axis has `n` entries; thread per (outer, inner);
//! * gather (rank r): `x, out, total`, then per output axis `dim, out_stride, source_stride`
//!   (source stride 0 on broadcast axes);
//! * reduce (k kept, m reduced axes): `x, out, total, count, chunk`, per kept axis `dim,
//!   out_stride, source_stride`, per reduced axis `dim, index_stride, source_stride`, then
//!   `scale` (the bits of the float to multiply by: 1, or 1/count for a mean). Thread
//!   `c · total + o` reduces elements `c · chunk ..` of output `o`; with one chunk it stores
//!   the result, with several it adds its scaled part with `red.global.add` (sums and means
//!   only; the runtime zeroes the output first).

use natgrad_ir::{DType, Reduce};

use crate::kernel::call;
use crate::text::{GRID_STRIDE_REGISTERS, Lines, constant, entry_text, float, size};
use natgrad_lower::math::Function;

/// Registers holding `Σᵢ ((index / strideᵢ) % dimᵢ) · sourceᵢ` over `axes` parameters.
fn strided_offset(lines: &mut Lines, name: &str, index: &str, axes: &[String]) -> String {
    let offset = lines.reg("rd");
    lines.op(format!("mov.u64 {offset}, 0"));
    for axis in axes {
        let dim = lines.param(name, &format!("{axis}_dim"));
        let stride = lines.param(name, &format!("{axis}_stride"));
        let source = lines.param(name, &format!("{axis}_source"));
        let position = lines.reg("rd");
        lines.op(format!("div.u64 {position}, {index}, {stride}"));
        lines.op(format!("rem.u64 {position}, {position}, {dim}"));
        lines.op(format!("mad.lo.u64 {offset}, {position}, {source}, {offset}"));
    }
    offset
}

fn axis_params(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

fn expand(axes: &[String]) -> Vec<String> {
    axes.iter().flat_map(|a| [format!("{a}_dim"), format!("{a}_stride"), format!("{a}_source")]).collect()
}

fn declarations(lines: &Lines, dtype: DType) -> String {
    let mut d = lines.declarations(&[("rd", "b64"), ("f", float(dtype)), ("p", "pred")]);
    d.push_str(GRID_STRIDE_REGISTERS);
    d.push_str(&lines.declarations(&[("lo", "b32")]));
    d
}

/// `out[i] = x[source(i)]` for an output of rank `rank`: transposes and broadcasts.
pub fn gather(name: &str, dtype: DType, rank: usize) -> String {
    let t = float(dtype);
    let mut lines = Lines::default();
    let (x, out) = (lines.pointer(name, "x"), lines.pointer(name, "out"));
    let total = lines.param(name, "total");
    let axes = axis_params("a", rank);
    lines.grid_stride_begin(&total);
    let offset = strided_offset(&mut lines, name, "%index", &axes);
    let (source, target, value) = (lines.reg("rd"), lines.reg("rd"), lines.reg("f"));
    lines.op(format!("mad.lo.u64 {source}, {offset}, {}, {x}", size(dtype)));
    lines.op(format!("ld.global.nc.{t} {value}, [{source}]"));
    lines.op(format!("mad.lo.u64 {target}, %index, {}, {out}", size(dtype)));
    lines.op(format!("st.global.{t} [{target}], {value}"));
    lines.grid_stride_end();
    let mut params = vec!["x".to_string(), "out".to_string(), "total".to_string()];
    params.extend(expand(&axes));
    entry_text(name, &params, &declarations(&lines, dtype), &lines.text)
}

/// One thread per output element and chunk of `chunk` reduced elements (see the module
/// docs): few outputs over many elements are reduced by many threads.
pub fn reduce(name: &str, dtype: DType, kind: Reduce, kept: usize, reduced: usize) -> String {
    let t = float(dtype);
    let mut lines = Lines::default();
    let (x, out) = (lines.pointer(name, "x"), lines.pointer(name, "out"));
    let (total, count, chunk) =
        (lines.param(name, "total"), lines.param(name, "count"), lines.param(name, "chunk"));
    let scale = lines.float_param(name, "scale", dtype);
    let (kept_axes, reduced_axes) = (axis_params("k", kept), axis_params("m", reduced));
    // Work items: outputs × chunks; one chunk means a plain store.
    let (items, chunks, single) = (lines.reg("rd"), lines.reg("rd"), lines.reg("p"));
    lines.op(format!("add.u64 {chunks}, {count}, {chunk}"));
    lines.op(format!("sub.u64 {chunks}, {chunks}, 1"));
    lines.op(format!("div.u64 {chunks}, {chunks}, {chunk}"));
    lines.op(format!("max.u64 {chunks}, {chunks}, 1"));
    lines.op(format!("setp.eq.u64 {single}, {chunks}, 1"));
    lines.op(format!("mul.lo.u64 {items}, {total}, {chunks}"));
    lines.grid_stride_begin(&items);
    let (output, part) = (lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("div.u64 {part}, %index, {total}"));
    lines.op(format!("mul.lo.u64 %scratch, {part}, {total}"));
    lines.op(format!("sub.u64 {output}, %index, %scratch"));
    let base = strided_offset(&mut lines, name, &output, &kept_axes);
    let accumulator = lines.reg("f");
    let init = if kind == Reduce::Max { f64::NEG_INFINITY } else { 0.0 };
    lines.op(format!("mov.{t} {accumulator}, {}", constant(dtype, init)));
    let (k, end) = (lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("mul.lo.u64 {k}, {part}, {chunk}"));
    lines.op(format!("add.u64 {end}, {k}, {chunk}"));
    lines.op(format!("min.u64 {end}, {end}, {count}"));
    lines.text.push_str("$INNER:\n");
    let more = lines.reg("p");
    lines.op(format!("setp.lt.u64 {more}, {k}, {end}"));
    lines.op(format!("@!{more} bra $STORE"));
    let inner = strided_offset(&mut lines, name, &k, &reduced_axes);
    let (source, value) = (lines.reg("rd"), lines.reg("f"));
    lines.op(format!("add.u64 {source}, {base}, {inner}"));
    lines.op(format!("mad.lo.u64 {source}, {source}, {}, {x}", size(dtype)));
    lines.op(format!("ld.global.nc.{t} {value}, [{source}]"));
    match kind {
        Reduce::Sum | Reduce::Mean => lines.op(format!("add.rn.{t} {accumulator}, {accumulator}, {value}")),
        Reduce::Max => crate::kernel::maximum(&mut lines, dtype, &accumulator, &accumulator, &value),
    }
    lines.op(format!("add.u64 {k}, {k}, 1"));
    lines.op("bra.uni $INNER");
    lines.text.push_str("$STORE:\n");
    lines.op(format!("mul.rn.{t} {accumulator}, {accumulator}, {scale}"));
    let target = lines.reg("rd");
    lines.op(format!("mad.lo.u64 {target}, {output}, {}, {out}", size(dtype)));
    lines.op(format!("@{single} st.global.{t} [{target}], {accumulator}"));
    lines.op(format!("@!{single} red.global.add.{t} [{target}], {accumulator}"));
    lines.grid_stride_end();
    let mut params: Vec<String> = ["x", "out", "total", "count", "chunk"].map(String::from).to_vec();
    params.extend(expand(&kept_axes));
    params.extend(expand(&reduced_axes));
    params.push("scale".to_string());
    entry_text(name, &params, &declarations(&lines, dtype), &lines.text)
}

/// Softmax (or log-softmax) along an axis of `n` entries with `inner` elements after it:
/// one thread per (outer, inner) pair, maximum subtracted first (NaN ignored by the
/// maximum, as the interpreter's `max` does).
pub fn softmax(name: &str, dtype: DType, log: bool) -> (String, Vec<Function>) {
    let t = float(dtype);
    let bytes = size(dtype);
    let mut lines = Lines::default();
    let mut calls = Vec::new();
    let (x, out) = (lines.pointer(name, "x"), lines.pointer(name, "out"));
    let (outer, n, inner) = (lines.param(name, "outer"), lines.param(name, "n"), lines.param(name, "inner"));
    let total = lines.reg("rd");
    lines.op(format!("mul.lo.u64 {total}, {outer}, {inner}"));
    lines.grid_stride_begin(&total);
    // First element of this row: (o·n)·inner + i, with o = index / inner, i = index % inner.
    let (o, i, first, step) = (lines.reg("rd"), lines.reg("rd"), lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("div.u64 {o}, %index, {inner}"));
    lines.op(format!("rem.u64 {i}, %index, {inner}"));
    lines.op(format!("mul.lo.u64 {first}, {o}, {n}"));
    lines.op(format!("mad.lo.u64 {first}, {first}, {inner}, {i}"));
    lines.op(format!("mul.lo.u64 {first}, {first}, {bytes}"));
    lines.op(format!("mul.lo.u64 {step}, {inner}, {bytes}"));
    let (max, sum, log_sum) = (lines.reg("f"), lines.reg("f"), lines.reg("f"));
    lines.op(format!("mov.{t} {max}, {}", constant(dtype, f64::NEG_INFINITY)));
    lines.op(format!("mov.{t} {sum}, {}", constant(dtype, 0.0)));
    // Three passes over the row: maximum, sum of exponentials, outputs.
    for pass in ["MAX", "SUM", "OUT"] {
        let (j, offset, more) = (lines.reg("rd"), lines.reg("rd"), lines.reg("p"));
        lines.op(format!("mov.u64 {j}, 0"));
        lines.op(format!("mov.u64 {offset}, {first}"));
        if pass == "OUT" && log {
            call(&mut lines, &mut calls, Function::Log, dtype, &log_sum, &sum);
        }
        lines.text.push_str(&format!("${pass}:\n"));
        lines.op(format!("setp.lt.u64 {more}, {j}, {n}"));
        lines.op(format!("@!{more} bra ${pass}_END"));
        let (address, value) = (lines.reg("rd"), lines.reg("f"));
        lines.op(format!("add.u64 {address}, {x}, {offset}"));
        lines.op(format!("ld.global.nc.{t} {value}, [{address}]"));
        match pass {
            "MAX" => lines.op(format!("max.{t} {max}, {max}, {value}")),
            "SUM" => {
                let (shifted, e) = (lines.reg("f"), lines.reg("f"));
                lines.op(format!("sub.rn.{t} {shifted}, {value}, {max}"));
                call(&mut lines, &mut calls, Function::Exp, dtype, &e, &shifted);
                lines.op(format!("add.rn.{t} {sum}, {sum}, {e}"));
            }
            _ => {
                // log: (x − max) − ln Σ; softmax: exp(x − max) / Σ (the interpreter's order).
                let (shifted, result) = (lines.reg("f"), lines.reg("f"));
                lines.op(format!("sub.rn.{t} {shifted}, {value}, {max}"));
                if log {
                    lines.op(format!("sub.rn.{t} {result}, {shifted}, {log_sum}"));
                } else {
                    let e = lines.reg("f");
                    call(&mut lines, &mut calls, Function::Exp, dtype, &e, &shifted);
                    lines.op(format!("div.rn.{t} {result}, {e}, {sum}"));
                }
                let target = lines.reg("rd");
                lines.op(format!("add.u64 {target}, {out}, {offset}"));
                lines.op(format!("st.global.{t} [{target}], {result}"));
            }
        }
        lines.op(format!("add.u64 {j}, {j}, 1"));
        lines.op(format!("add.u64 {offset}, {offset}, {step}"));
        lines.op(format!("bra.uni ${pass}"));
        lines.text.push_str(&format!("${pass}_END:\n"));
    }
    lines.grid_stride_end();
    let params: Vec<String> = ["x", "out", "outer", "n", "inner"].map(String::from).to_vec();
    (entry_text(name, &params, &declarations(&lines, dtype), &lines.text), calls)
}

/// `x[i] ← x[i] · scale` for `i < n` (`scale` as float bits): a mean's division after a
/// fused column sum.
pub fn scale(name: &str, dtype: DType) -> String {
    let t = float(dtype);
    let mut lines = Lines::default();
    let x = lines.pointer(name, "x");
    let n = lines.param(name, "n");
    let factor = lines.float_param(name, "scale", dtype);
    lines.grid_stride_begin(&n);
    let (address, value) = (lines.reg("rd"), lines.reg("f"));
    lines.op(format!("mad.lo.u64 {address}, %index, {}, {x}", size(dtype)));
    lines.op(format!("ld.global.{t} {value}, [{address}]"));
    lines.op(format!("mul.rn.{t} {value}, {value}, {factor}"));
    lines.op(format!("st.global.{t} [{address}], {value}"));
    lines.grid_stride_end();
    entry_text(
        name,
        &["x".to_string(), "n".to_string(), "scale".to_string()],
        &declarations(&lines, dtype),
        &lines.text,
    )
}
