//! [`Simulator`]: a `natgrad_lower::Backend` that runs a plan the way the CUDA backend does
//! — the same PTX module, the same launch steps ([`natgrad_ptx::launch`]) — with the PTX
//! interpreted on the host and GEMMs by a reference column-major GEMM taking cuBLAS's
//! arguments (so the row-major-to-column-major mapping is checked too).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natgrad_ir::{NodeId, Scalar};
use natgrad_lower::{
    Backend, BoundInputs, CompileOptions, Error, Executable, MemoryPlan, Phase, Plan, Profile,
};
use natgrad_ptx::device_vectors::{bytes_of, bytes_of_mut};
use natgrad_ptx::launch::{BLOCK, Entry, Gemm, Step, blocks};
use natgrad_ptx::{Arch, Module as PtxModule};

use crate::exec::Module;
use crate::memory::Memory;
use crate::vectors::SimVector;

/// The simulated GPU backend (named `ptx-sim` in errors).
#[derive(Clone, Copy, Debug, Default)]
pub struct Simulator {
    /// The architecture whose PTX is run.
    pub arch: Arch,
}

/// `vector` as a simulated vector of `T`, or an error naming `what` was given instead.
fn simulated<V>(vector: Option<V>, what: &str) -> Result<V, Error> {
    vector.ok_or_else(|| {
        failed(format!("{what}: the vector is not a natgrad_ptx_sim::SimVector of this element type"))
    })
}

/// `v` (an f32) as a TF32 tensor core reads it: the top 10 of its 23 mantissa bits.
fn tf32<T: Scalar>(v: T) -> T {
    T::from_f64(f64::from(f32::from_bits((v.as_f64() as f32).to_bits() & 0xffff_e000)))
}

/// An error of the simulator.
pub(crate) fn failed(message: impl Into<String>) -> Error {
    Error::Backend { backend: "ptx-sim", message: message.into() }
}

impl<T: Scalar> Backend<T> for Simulator {
    fn name(&self) -> &'static str {
        "ptx-sim"
    }

    fn compile(&self, plan: Arc<Plan>, options: &CompileOptions) -> Result<Arc<dyn Executable<T>>, Error> {
        if plan.dtype != T::DTYPE {
            return Err(failed(format!(
                "the plan computes in {} but {} was asked for",
                plan.dtype,
                T::DTYPE
            )));
        }
        let start = Instant::now();
        let ptx = natgrad_ptx::module(&plan, self.arch);
        let module = Module::parse(&ptx.text).map_err(|e| failed(e.to_string()))?;
        for (_, name) in &ptx.kernels {
            if !module.has_entry(name) {
                return Err(failed(format!("the module has no entry {name}")));
            }
        }
        Ok(Arc::new(Program::<T> {
            plan,
            ptx,
            module,
            tf32: options.tf32 && T::DTYPE == natgrad_ir::DType::F32,
            parse: start.elapsed(),
            _marker: std::marker::PhantomData,
        }))
    }
}

/// A plan's module, parsed.
struct Program<T> {
    plan: Arc<Plan>,
    ptx: PtxModule,
    module: Module,
    /// f32 GEMM operands keep 10 mantissa bits, as TF32 tensor cores read them.
    tf32: bool,
    parse: Duration,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: Scalar> Executable<T> for Program<T> {
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn codegen_time(&self) -> Duration {
        self.parse
    }

    fn session(self: Arc<Self>, batch: usize) -> Result<Box<dyn natgrad_lower::Session<T>>, Error> {
        let memory_plan = MemoryPlan::new(&self.plan, batch)?;
        let bytes = std::mem::size_of::<T>();
        let mut memory = Memory::default();
        // Poisoned, not zeroed (as the CUDA runtime's are): buffers are reused between units,
        // so nothing may count on finding zeros, and what reads a buffer before it is written
        // shows as NaN.
        let addresses: Vec<u64> =
            memory_plan.sizes.iter().map(|&n| memory.allocate_poisoned(n * bytes)).collect();
        let address = |n: NodeId| addresses[memory_plan.buffer_of[&n]];
        let steps = (0..self.plan.units.len())
            .map(|u| natgrad_ptx::launch::steps(&self.plan, u, batch, &address))
            .collect();
        let mut session = Session {
            inputs: BoundInputs::new(&self.plan, batch),
            program: self,
            batch,
            memory,
            addresses,
            steps,
            peak_bytes: memory_plan.total_elements() * bytes,
            buffer_of: memory_plan.buffer_of,
            profile: None,
        };
        let program = Arc::clone(&session.program);
        for (u, unit) in program.plan.units.iter().enumerate() {
            if unit.phase == Phase::Setup {
                session.execute(u)?;
            }
        }
        Ok(Box::new(session))
    }
}

/// One batch size's simulated device memory.
struct Session<T> {
    program: Arc<Program<T>>,
    batch: usize,
    memory: Memory,
    /// Address of each buffer of the memory plan.
    addresses: Vec<u64>,
    /// Each plan unit's launch steps (as the CUDA runtime runs them).
    steps: Arc<[Vec<Step>]>,
    buffer_of: HashMap<NodeId, usize>,
    inputs: BoundInputs,
    peak_bytes: usize,
    profile: Option<Profile>,
}

impl<T: Scalar> Session<T> {
    fn address(&self, n: NodeId) -> u64 {
        self.addresses[self.buffer_of[&n]]
    }

    fn write(&mut self, node: NodeId, values: &[T]) -> Result<(), Error> {
        self.write_at(self.address(node), values)
    }

    fn values(&self, address: u64, len: usize) -> Result<Vec<T>, Error> {
        let size = std::mem::size_of::<T>();
        let mut values = vec![T::zero(); len];
        bytes_of_mut(&mut values)
            .copy_from_slice(self.memory.read(address, len * size, size).map_err(failed)?);
        Ok(values)
    }

    fn execute(&mut self, u: usize) -> Result<(), Error> {
        let (program, steps) = (Arc::clone(&self.program), Arc::clone(&self.steps));
        for step in &steps[u] {
            match *step {
                Step::Launch { entry, total, ref args } => {
                    if total == 0 {
                        continue;
                    }
                    let name = match entry {
                        Entry::Unit(u) => program.ptx.kernels.iter().find(|(k, _)| *k == u).map(|(_, n)| n),
                        Entry::Scale => program.ptx.scale.as_ref(),
                    };
                    let name = name.ok_or_else(|| failed(format!("no entry for {entry:?}")))?;
                    program
                        .module
                        .launch(&mut self.memory, name, blocks(total), BLOCK, args)
                        .map_err(failed)?;
                }
                Step::Zero { node, elements } => {
                    let size = std::mem::size_of::<T>();
                    self.memory.write(self.address(node), elements * size, size).map_err(failed)?.fill(0);
                }
                Step::Gemm(ref gemm) => self.gemm(gemm)?,
                Step::Write { node, ref values } => {
                    let data: Vec<T> = values.iter().map(|&v| T::from_f64(v)).collect();
                    self.write(node, &data)?;
                }
            }
        }
        Ok(())
    }

    /// `cublas?gemm`'s contract, checked as cuBLAS checks it (leading dimensions), each
    /// product summed in f64 and rounded once (in TF32 mode, from operands truncated to
    /// TF32).
    fn gemm(&mut self, g: &Gemm) -> Result<(), Error> {
        let (a_rows, a_cols) = if g.transa { (g.k, g.m) } else { (g.m, g.k) };
        let (b_rows, b_cols) = if g.transb { (g.n, g.k) } else { (g.k, g.n) };
        if g.lda < a_rows.max(1) || g.ldb < b_rows.max(1) || g.ldc < g.m.max(1) || g.k == 0 {
            return Err(failed(format!("GEMM with invalid arguments (cuBLAS would refuse them): {g:?}")));
        }
        let extent = |ld: usize, rows: usize, cols: usize| ld * (cols - 1) + rows;
        let operand = |address, len| -> Result<Vec<T>, Error> {
            let values = self.values(address, len)?;
            Ok(if self.program.tf32 { values.into_iter().map(tf32).collect() } else { values })
        };
        let a = operand(self.address(g.a), extent(g.lda, a_rows, a_cols))?;
        let b = operand(self.address(g.b), extent(g.ldb, b_rows, b_cols))?;
        let mut c = vec![T::zero(); extent(g.ldc, g.m, g.n)];
        let at = |i: usize, l: usize| if g.transa { a[l + i * g.lda] } else { a[i + l * g.lda] };
        let bt = |l: usize, j: usize| if g.transb { b[j + l * g.ldb] } else { b[l + j * g.ldb] };
        for j in 0..g.n {
            for i in 0..g.m {
                let sum: f64 = (0..g.k).map(|l| at(i, l).as_f64() * bt(l, j).as_f64()).sum();
                c[i + j * g.ldc] = T::from_f64(sum);
            }
        }
        // Columns are stored one by one: the gaps between them (ldc > m) keep their values.
        for j in 0..g.n {
            let address = self.address(g.c) + (j * g.ldc * std::mem::size_of::<T>()) as u64;
            let column: Vec<T> = c[j * g.ldc..j * g.ldc + g.m].to_vec();
            self.write_at(address, &column)?;
        }
        Ok(())
    }

    fn write_at(&mut self, address: u64, values: &[T]) -> Result<(), Error> {
        let size = std::mem::size_of::<T>();
        let target = self.memory.write(address, std::mem::size_of_val(values), size).map_err(failed)?;
        target.copy_from_slice(bytes_of(values));
        Ok(())
    }
}

impl<T: Scalar> natgrad_lower::Session<T> for Session<T> {
    fn batch(&self) -> usize {
        self.batch
    }

    fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    fn set(&mut self, name: &str, data: &[T]) -> Result<(), Error> {
        let program = Arc::clone(&self.program);
        if let Some(node) = self.inputs.set(&program.plan, name, data.len())?
            && self.buffer_of.contains_key(&node)
        {
            self.write(node, data)?;
        }
        Ok(())
    }

    fn run(&mut self, phase: usize) -> Result<(), Error> {
        let program = Arc::clone(&self.program);
        self.inputs.ready(&program.plan, phase)?;
        for (u, unit) in program.plan.units.iter().enumerate() {
            if unit.phase == Phase::Run(phase) {
                let start = self.profile.is_some().then(Instant::now);
                self.execute(u)?;
                natgrad_lower::record(&mut self.profile, u, unit.work.kind(), start);
            }
        }
        Ok(())
    }

    fn read(&self, index: usize, out: &mut [T]) -> Result<(), Error> {
        let node = self.inputs.output(&self.program.plan, index, out.len())?;
        out.copy_from_slice(&self.values(self.address(node), out.len())?);
        Ok(())
    }

    fn set_from_device(
        &mut self,
        name: &str,
        vector: &dyn std::any::Any,
        offset: usize,
        len: usize,
    ) -> Result<(), Error> {
        let vector = simulated(vector.downcast_ref::<SimVector<T>>(), "set_from_device")?;
        let source = vector.element_bytes(offset, len, "ptx-sim")?;
        let program = Arc::clone(&self.program);
        if let Some(node) = self.inputs.set(&program.plan, name, len)?
            && self.buffer_of.contains_key(&node)
        {
            let bytes = vector.buffer().expect("checked by element_bytes").read(source)?;
            let size = std::mem::size_of::<T>();
            self.memory.write(self.address(node), bytes.len(), size).map_err(failed)?.copy_from_slice(&bytes);
        }
        Ok(())
    }

    fn read_to_device(
        &self,
        index: usize,
        vector: &mut dyn std::any::Any,
        offset: usize,
        len: usize,
    ) -> Result<(), Error> {
        let node = self.inputs.output(&self.program.plan, index, len)?;
        let vector = simulated(vector.downcast_mut::<SimVector<T>>(), "read_to_device")?;
        let target = vector.element_bytes(offset, len, "ptx-sim")?;
        let size = std::mem::size_of::<T>();
        let bytes = self.memory.read(self.address(node), target.len(), size).map_err(failed)?;
        vector.buffer().expect("checked by element_bytes").write(target.start, bytes)
    }

    fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(Profile::new);
    }

    fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }
}
