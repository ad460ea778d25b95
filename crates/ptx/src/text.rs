//! PTX spelling shared by routines and kernels: type suffixes, constants, comparisons.

use std::fmt::Write;

use natgrad_ir::{Compare, DType};

/// The float type suffix (`f32`, `f64`).
pub(crate) fn float(dtype: DType) -> &'static str {
    dtype.name()
}

/// Size of one element in bytes.
pub(crate) fn size(dtype: DType) -> usize {
    dtype.size_bytes()
}

/// A constant as PTX spells it exactly: `0fXXXXXXXX` (f32) or `0dXXXXXXXXXXXXXXXX` (f64).
pub(crate) fn constant(dtype: DType, value: f64) -> String {
    match dtype {
        DType::F32 => format!("0f{:08X}", (value as f32).to_bits()),
        DType::F64 => format!("0d{:016X}", value.to_bits()),
    }
}

/// The `setp` comparison matching Rust's float comparison (`!=` is true with a NaN side).
pub(crate) fn compare(cmp: Compare) -> &'static str {
    match cmp {
        Compare::Lt => "lt",
        Compare::Le => "le",
        Compare::Gt => "gt",
        Compare::Ge => "ge",
        Compare::Eq => "eq",
        Compare::Ne => "neu",
    }
}

/// Lines of PTX with fresh register names per prefix.
#[derive(Default)]
pub(crate) struct Lines {
    pub(crate) text: String,
    counters: std::collections::BTreeMap<&'static str, usize>,
}

impl Lines {
    /// One instruction line (a tab, the text, a semicolon).
    pub(crate) fn op(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.text, "\t{};", line.as_ref());
    }

    /// A fresh register `%{prefix}{n}`.
    pub(crate) fn reg(&mut self, prefix: &'static str) -> String {
        let n = self.counters.entry(prefix).or_default();
        *n += 1;
        format!("%{prefix}{}", *n - 1)
    }

    /// `.reg` declarations for every register handed out, by prefix and its PTX type.
    pub(crate) fn declarations(&self, types: &[(&'static str, &str)]) -> String {
        let mut out = String::new();
        for &(prefix, ty) in types {
            if let Some(&n) = self.counters.get(prefix) {
                let _ = writeln!(out, "\t.reg .{ty} %{prefix}<{n}>;");
            }
        }
        out
    }
}

/// The grid-stride loop every kernel runs: `%index` walks `0..total` (a `.u64` register)
/// by `%stride`; [`Lines::grid_stride_end`] closes it. Declares its own registers via
/// [`GRID_STRIDE_REGISTERS`].
pub(crate) const GRID_STRIDE_REGISTERS: &str = "\t.reg .b32 %r<4>;\n\t.reg .pred %done;\n\t.reg .u64 %index;\n\t.reg .u64 %stride;\n\t.reg .u64 %scratch;\n";

impl Lines {
    /// Opens the grid-stride loop over `0..total`.
    pub(crate) fn grid_stride_begin(&mut self, total: &str) {
        self.grid_stride_begin_at(total, "$LOOP", "$DONE");
    }

    /// Opens a grid-stride loop with labels `top` and `done` (for a second loop in one entry).
    pub(crate) fn grid_stride_begin_at(&mut self, total: &str, top: &str, done: &str) {
        self.op("mov.u32 %r0, %ctaid.x");
        self.op("mov.u32 %r1, %ntid.x");
        self.op("mov.u32 %r2, %tid.x");
        self.op("mov.u32 %r3, %nctaid.x");
        self.op("mul.wide.u32 %index, %r0, %r1");
        self.op("cvt.u64.u32 %scratch, %r2");
        self.op("add.u64 %index, %index, %scratch");
        self.op("mul.wide.u32 %stride, %r3, %r1");
        self.text.push_str(&format!("{top}:\n"));
        self.op(format!("setp.ge.u64 %done, %index, {total}"));
        self.op(format!("@%done bra {done}"));
    }

    /// Closes the loop and returns.
    pub(crate) fn grid_stride_end(&mut self) {
        self.grid_stride_end_at("$LOOP", "$DONE");
    }

    /// Closes a loop opened by [`Lines::grid_stride_begin_at`] and returns.
    pub(crate) fn grid_stride_end_at(&mut self, top: &str, done: &str) {
        self.op("add.u64 %index, %index, %stride");
        self.op(format!("bra.uni {top}"));
        self.text.push_str(&format!("{done}:\n"));
        self.op("ret");
    }

    /// Loads `.u64` parameter `{entry}_{param}` into a fresh `%rd` register.
    pub(crate) fn param(&mut self, entry: &str, param: &str) -> String {
        let r = self.reg("rd");
        self.op(format!("ld.param.u64 {r}, [{entry}_{param}]"));
        r
    }

    /// Loads `.u64` parameter `{entry}_{param}` holding a float's bits (f32 in the low 32)
    /// into a fresh `%f` register of `dtype`.
    pub(crate) fn float_param(&mut self, entry: &str, param: &str, dtype: DType) -> String {
        let bits = self.param(entry, param);
        let value = self.reg("f");
        match dtype {
            DType::F32 => {
                let low = self.reg("lo");
                self.op(format!("cvt.u32.u64 {low}, {bits}"));
                self.op(format!("mov.b32 {value}, {low}"));
            }
            DType::F64 => self.op(format!("mov.b64 {value}, {bits}")),
        }
        value
    }

    /// Loads pointer parameter `{entry}_{param}` as a global address.
    pub(crate) fn pointer(&mut self, entry: &str, param: &str) -> String {
        let r = self.param(entry, param);
        self.op(format!("cvta.to.global.u64 {r}, {r}"));
        r
    }
}

/// An `.entry` from its `.u64` parameter names, register declarations and body.
pub(crate) fn entry_text(name: &str, params: &[String], declarations: &str, body: &str) -> String {
    let params: Vec<String> = params.iter().map(|p| format!("\t.param .u64 {name}_{p}")).collect();
    format!(".visible .entry {name}(\n{}\n)\n{{\n{declarations}{body}}}\n", params.join(",\n"))
}
