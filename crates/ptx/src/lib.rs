//! natgrad's PTX emitter: the shared kernel plan (`natgrad-lower`) as PTX text for NVIDIA
//! GPUs. Plain text, so it builds and is tested everywhere (`ptxas` assembles it in CI);
//! loading and running it is the CUDA runtime's job.
//!
//! | module | concern |
//! |---|---|
//! | [`kernel`] | a `KernelSpec` as a grid-stride `.entry` (column sums by `red.global.add`) |
//! | [`math`] | exp, log, log1p, tanh, pow as straight-line routines, evaluated on the host for accuracy tests |
//! | [`func`] | a routine as a PTX `.func` |
//!
//! Not emitted yet: the plan's host steps (softmax rows, transposes, materialised
//! broadcasts, the reductions not fused into kernels); GEMMs go to cuBLAS.

#![warn(missing_docs)]

pub mod func;
pub mod kernel;
pub mod math;
mod text;

use natgrad_lower::{Plan, Work};

/// The GPU architecture a module targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arch {
    /// Ampere (A100).
    Sm80,
    /// Hopper (H100, H200).
    #[default]
    Sm90,
}

impl Arch {
    /// The `.target` name (`sm_80`, `sm_90`).
    pub fn target(self) -> &'static str {
        match self {
            Arch::Sm80 => "sm_80",
            Arch::Sm90 => "sm_90",
        }
    }
}

/// A PTX module and which plan unit each of its entries computes.
#[derive(Clone, Debug)]
pub struct Module {
    /// The module text.
    pub text: String,
    /// `(unit index, entry name)` for every fused kernel of the plan.
    pub kernels: Vec<(usize, String)>,
}

/// The PTX version emitted: new enough for `max.NaN` and sm_90, old enough for every
/// CUDA 12 driver.
pub const PTX_VERSION: &str = "8.0";

/// Every fused kernel of `plan` in one module, with the math functions they call.
pub fn module(plan: &Plan, arch: Arch) -> Module {
    let mut entries = String::new();
    let mut functions: Vec<(String, String)> = Vec::new();
    let mut kernels = Vec::new();
    for (u, unit) in plan.units.iter().enumerate() {
        if let Work::Kernel { spec, .. } = &unit.work {
            let name = format!("k{u}");
            let (text, calls) = kernel::entry(&name, spec);
            for function in calls {
                let symbol = function.symbol(spec.dtype);
                if !functions.iter().any(|(s, _)| *s == symbol) {
                    functions.push((symbol, func::func(function, spec.dtype)));
                }
            }
            entries.push_str(&text);
            entries.push('\n');
            kernels.push((u, name));
        }
    }
    let mut text = format!(".version {PTX_VERSION}\n.target {}\n.address_size 64\n\n", arch.target());
    for (_, body) in &functions {
        text.push_str(body);
        text.push('\n');
    }
    text.push_str(&entries);
    Module { text, kernels }
}
