//! natgrad's backend-neutral lowering: everything between the simplified graph and a code
//! generator, written once for every backend.
//!
//! | module | concern |
//! |---|---|
//! | [`plan`] | `Plan::build`: simplify, then graph + fusion groups → units (fused kernels, host steps) in [`Phase`]s, scheduled |
//! | [`kernel`] | `KernelSpec`: a fused elementwise kernel as data, in backend primitives |
//! | [`legalize`] | IR elementwise ops → kernel primitives in their stable forms, once for every backend |
//! | [`math`] | exp, log, log1p, tanh, pow as straight-line routines both backends emit, evaluated on the host for accuracy tests |
//! | [`memory`] | `MemoryPlan`: liveness-based buffers for one batch size |
//! | [`inputs`] | `BoundInputs`: input length checks and which inputs a phase still lacks |
//! | [`profile`] | `Profile`: calls and time per unit; `Plan::unit_cost`: each unit's FLOPs and bytes |
//! | [`backend`] | `Device`, `CompileOptions`, and the `Backend` / `Executable` / `Session` traits |
//! | [`cache`] | `CompileCache`: compiled programs by IR hash, bounded |
//!
//! Must not depend on a code generator or a device runtime.

#![warn(missing_docs)]

pub mod backend;
pub mod cache;
mod error;
pub mod inputs;
pub mod kernel;
pub mod legalize;
pub mod math;
pub mod memory;
pub mod plan;
pub mod profile;

pub use backend::{Backend, CompileOptions, Device, Executable, Session};
pub use cache::{CacheKey, CompileCache};
pub use error::Error;
pub use inputs::BoundInputs;
pub use kernel::{Access, ColumnSum, KExpr, KUnary, KernelSpec};
pub use memory::MemoryPlan;
pub use plan::{Partition, Phase, Plan, PlanTimes, Unit, Work, as_matrix};
pub use profile::{Profile, UnitCost, UnitTime, record};
