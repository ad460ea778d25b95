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
