//! natgrad's PTX emitter: the shared kernel plan (`natgrad-lower`) as PTX text for NVIDIA
//! GPUs. Plain text, so it builds and is tested everywhere (`ptxas` assembles it in CI);
//! loading and running it is the CUDA runtime's job.
//!
//! | module | concern |
//! |---|---|
//! | [`kernel`] | a `KernelSpec` as a grid-stride `.entry` (column sums by `red.global.add`) |
//! | [`func`] | a math routine of `natgrad_lower::math` as a PTX `.func` |
//! | [`host`] | the plan's other steps: softmax rows, strided gathers (transposes, broadcasts), reductions |
//! | [`launch`] | what a runtime does per plan unit, as data: launches and their arguments, zeroing, GEMMs, writes |
//! | [`patches`] | convolution patches: im2col (a gather with padding) and col2im (a sum per pixel) |
//! | [`vectors`] | the optimizers' vector operations on device buffers (axpy, dot, …), one module per element type |
//! | [`device_vectors`] | `natgrad_optim::VectorOps` over any runtime that allocates, copies and launches that module |
//!
//! GEMMs are not emitted: they go to cuBLAS. Constants and the batch size are written by
//! the runtime when it allocates a batch size's buffers.

#![warn(missing_docs)]

pub mod device_vectors;
pub mod func;
pub mod host;
pub mod kernel;
pub mod launch;
pub mod patches;
mod text;
pub mod vectors;

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
    /// `(unit index, entry name)` for every unit that runs as a kernel (all but GEMMs,
    /// constants and the batch size).
    pub kernels: Vec<(usize, String)>,
    /// The entry scaling a buffer in place ([`host::scale`]), present when a kernel has a
    /// mean among its column sums.
    pub scale: Option<String>,
}

/// The PTX version emitted: new enough for `max.NaN` and sm_90, old enough for every
/// CUDA 12 driver.
pub const PTX_VERSION: &str = "8.0";

/// Every kernel of `plan` (fused kernels and the other steps but GEMMs) in one module, with
/// the math functions they call.
pub fn module(plan: &Plan, arch: Arch) -> Module {
    let mut entries = String::new();
    let mut functions: Vec<(String, String)> = Vec::new();
    let mut kernels = Vec::new();
    for (u, unit) in plan.units.iter().enumerate() {
        let name = format!("k{u}");
        let dtype = plan.dtype;
        let (text, calls) = match &unit.work {
            Work::Kernel { spec, shape, .. } => {
                let cols = match shape.0.last() {
                    Some(natgrad_ir::Dim::Fixed(c)) => Some(*c),
                    Some(natgrad_ir::Dim::Batch) => None,
                    None => Some(1),
                };
                kernel::entry(&name, spec, cols)
            }
            Work::Softmax { log, .. } => host::softmax(&name, dtype, *log),
            Work::Transpose { .. } | Work::Broadcast { .. } => {
                let rank = plan.graph.shape(unit.outputs[0]).0.len();
                (host::gather(&name, dtype, rank), Vec::new())
            }
            Work::Reduce { x, kind, axes } => {
                let rank = plan.graph.shape(*x).0.len();
                (host::reduce(&name, dtype, *kind, rank - axes.len(), axes.len()), Vec::new())
            }
            Work::Patches { adjoint: false, .. } => (patches::im2col(&name, dtype), Vec::new()),
            Work::Patches { adjoint: true, .. } => (patches::col2im(&name, dtype), Vec::new()),
            Work::MatMul { .. } | Work::Constant { .. } | Work::BatchSize => continue,
        };
        for function in calls {
            let symbol = function.symbol(dtype);
            if !functions.iter().any(|(s, _)| *s == symbol) {
                functions.push((symbol, func::func(function, dtype)));
            }
        }
        entries.push_str(&text);
        entries.push('\n');
        kernels.push((u, name));
    }
    let means = plan.units.iter().any(|u| match &u.work {
        Work::Kernel { spec, .. } => spec.column_sums.iter().any(|s| s.mean),
        _ => false,
    });
    let scale = means.then(|| "ng_scale".to_string());
    if let Some(name) = &scale {
        entries.push_str(&host::scale(name, plan.dtype));
        entries.push('\n');
    }
    let mut text = format!(".version {PTX_VERSION}\n.target {}\n.address_size 64\n\n", arch.target());
    for (_, body) in &functions {
        text.push_str(body);
        text.push('\n');
    }
    text.push_str(&entries);
    Module { text, kernels, scale }
}
