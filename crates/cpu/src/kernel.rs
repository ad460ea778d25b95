//! Fused elementwise kernels: the Cranelift lowering of the shared [`KernelSpec`].
//!
//! Every kernel has one `extern "C"` ABI:
//! `fn(buffers: *const *mut T, row_start: usize, row_end: usize, cols: usize)`, looping over
//! rows `row_start..row_end` of a `rows × cols` iteration space (`cols` is the last
//! dimension of the group's shape). `buffers` holds the input pointers, then the outputs,
//! then one `cols`-long accumulator per column sum (added to, row by row).
//! Inner loops run on 128-bit vectors (f32x4 / f64x2, the width Cranelift's x64 backend
//! has) with a scalar tail; exp / log / log1p / tanh / pow are the shared routines of
//! `natgrad_lower::math` inlined (see [`crate::math`]), or, with
//! `CompileOptions::libm_math`, calls to the platform libm per lane (the functions the
//! reference interpreter uses).
//!
//! Kernels with wide rows (a fixed last dimension of at least [`STAGED_MIN_COLS`]) compute
//! exp / log / log1p / tanh in stages instead: a loop over the row stores each routine's
//! argument into a scratch row, one call of the rustc-compiled slice routine
//! ([`crate::slices`], AVX-512 or AVX2 where the CPU has them) turns it into the result in
//! place, and later loops load it. Stage `s` computes the arguments of the routines that
//! depend on `s − 1` others; the last loop computes the outputs. Cheap values used by several
//! stages are recomputed from the inputs (still in cache). Scratch rows follow the column
//! sums in `buffers`, one `cols`-long row per staged routine.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, FuncRef, InstBuilder, MemFlagsData, Type, UserFuncName, Value, types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use natgrad_ir::{Binary, Compare, DType};
use natgrad_lower::math::Function;
use natgrad_lower::{Access, Error, KExpr, KUnary, KernelSpec};

/// A code-generation failure (a bug; please report with the IR).
fn codegen(message: String) -> Error {
    Error::Backend { backend: "cpu", message }
}

/// The kernel ABI.
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, usize, usize, usize);

/// The Cranelift JIT: one module holding every kernel of a program. Its code memory is
/// freed on drop, so kernel pointers must not outlive it.
pub struct Jit {
    /// `None` only while dropping.
    module: Option<JITModule>,
    declared: Vec<FuncId>,
    libm_math: bool,
    /// Whether kernels get a vector loop (see [`vector_loops_are_safe`]).
    vectors: bool,
}

macro_rules! libm_wrappers {
    ($($name:ident: $ty:ty => $f:expr;)*) => {
        $(extern "C" fn $name(x: $ty) -> $ty { $f(x) })*
    };
}

libm_wrappers! {
    ng_exp_f32: f32 => f32::exp; ng_exp_f64: f64 => f64::exp;
    ng_log_f32: f32 => f32::ln; ng_log_f64: f64 => f64::ln;
    ng_log1p_f32: f32 => f32::ln_1p; ng_log1p_f64: f64 => f64::ln_1p;
    ng_tanh_f32: f32 => f32::tanh; ng_tanh_f64: f64 => f64::tanh;
}

extern "C" fn ng_pow_f32(x: f32, p: f32) -> f32 {
    x.powf(p)
}

extern "C" fn ng_pow_f64(x: f64, p: f64) -> f64 {
    x.powf(p)
}

/// The libm functions kernels may call: (symbol, arity, f32 pointer, f64 pointer).
const LIBM: [(&str, usize, *const u8, *const u8); 5] = [
    ("exp", 1, ng_exp_f32 as *const u8, ng_exp_f64 as *const u8),
    ("log", 1, ng_log_f32 as *const u8, ng_log_f64 as *const u8),
    ("log1p", 1, ng_log1p_f32 as *const u8, ng_log1p_f64 as *const u8),
    ("tanh", 1, ng_tanh_f32 as *const u8, ng_tanh_f64 as *const u8),
    ("pow", 2, ng_pow_f32 as *const u8, ng_pow_f64 as *const u8),
];

impl Jit {
    /// A JIT for the host CPU. With `libm_math`, kernels call the platform libm (one call
    /// per lane) for exp, log, log1p, tanh and pow instead of inlining the shared routines.
    pub fn new(libm_math: bool) -> Result<Jit, Error> {
        let mut flags = settings::builder();
        flags.set("use_colocated_libcalls", "false").map_err(|e| codegen(e.to_string()))?;
        flags.set("is_pic", "false").map_err(|e| codegen(e.to_string()))?;
        flags.set("opt_level", "speed").map_err(|e| codegen(e.to_string()))?;
        let isa = cranelift_native::builder()
            .map_err(|e| codegen(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| codegen(e.to_string()))?;
        let vectors = vector_loops_are_safe(&*isa);
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        for (name, _, f32_fn, f64_fn) in LIBM {
            builder.symbol(format!("ng_{name}_f32"), f32_fn);
            builder.symbol(format!("ng_{name}_f64"), f64_fn);
        }
        for (function, _) in STAGED {
            for dtype in [DType::F32, DType::F64] {
                if let Some(f) = crate::slices::routine(function, dtype) {
                    builder.symbol(slice_symbol(function, dtype), f as *const u8);
                }
            }
        }
        Ok(Jit { module: Some(JITModule::new(builder)), declared: Vec::new(), libm_math, vectors })
    }

    /// Compiles `spec`; returns its index for [`Jit::finish`] and the number of scratch rows
    /// its callers pass after the column sums. `wide_rows` (the last dimension is fixed and at
    /// least [`STAGED_MIN_COLS`]) computes its routines in stages on slices.
    pub fn compile(&mut self, spec: &KernelSpec, wide_rows: bool) -> Result<(usize, usize), Error> {
        let err = |e: cranelift_module::ModuleError| codegen(format!("{e:?}"));
        let module = self.module.as_mut().expect("module lives until drop");
        let ptr = module.target_config().pointer_type();
        let mut ctx = module.make_context();
        for _ in 0..4 {
            ctx.func.signature.params.push(AbiParam::new(ptr));
        }
        let index = self.declared.len();
        let id = module
            .declare_function(&format!("kernel{index}"), Linkage::Local, &ctx.func.signature)
            .map_err(err)?;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut fctx = FunctionBuilderContext::new();
        let scratch_rows;
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let libm = declare_libm(module, &mut b, spec.dtype)?;
            let mut lowering = Lowering::new(spec, ptr, libm);
            lowering.libm_math = self.libm_math;
            lowering.vectors = self.vectors;
            if wide_rows && !self.libm_math {
                lowering.staging = Staging::of(spec);
                lowering.slices = declare_slices(module, &mut b, spec.dtype, ptr)?;
            }
            scratch_rows = lowering.staging.as_ref().map_or(0, |s| s.routines.len());
            lowering.emit(&mut b);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        module.define_function(id, &mut ctx).map_err(|e| codegen(format!("kernel{index}: {e:?}")))?;
        module.clear_context(&mut ctx);
        self.declared.push(id);
        Ok((index, scratch_rows))
    }

    /// Links every compiled kernel and returns their entry points, in compile order.
    pub fn finish(&mut self) -> Result<Vec<KernelFn>, Error> {
        let module = self.module.as_mut().expect("module lives until drop");
        module.finalize_definitions().map_err(|e| codegen(format!("{e:?}")))?;
        Ok(self
            .declared
            .iter()
            .map(|&id| {
                let code = module.get_finalized_function(id);
                // SAFETY: the function was defined with the four pointer-sized parameters of
                // `KernelFn` and returns nothing.
                unsafe { std::mem::transmute::<*const u8, KernelFn>(code) }
            })
            .collect())
    }
}

/// Whether vector loops are safe on `isa`. On x86-64 without AVX, Cranelift 0.135 folds
/// an element-aligned vector load into an SSE instruction that needs 16-byte alignment
/// (`cmppd` with a memory operand: a fault on such CPUs, e.g. a VM's generic `qemu64`
/// model); kernels there run their scalar loop over whole rows instead.
fn vector_loops_are_safe(isa: &dyn cranelift_codegen::isa::TargetIsa) -> bool {
    if isa.name() != "x64" {
        return true;
    }
    isa.isa_flags().iter().any(|flag| flag.name == "has_avx" && flag.as_bool() == Some(true))
}

impl Drop for Jit {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the kernel pointers live in the `Program` that owns this `Jit`, and are
            // dropped with it; no kernel runs while its program is being dropped (sessions hold
            // the program alive through an `Arc`).
            unsafe { module.free_memory() };
        }
    }
}

// SAFETY: a `JITModule` is not `Send` because of interior `RefCell`s used while defining and
// linking functions. After `finish`, a `Jit` is never used again except to free its memory
// on drop (which needs exclusive ownership), and the finalized code pages are immutable, so
// moving it to or sharing it between threads cannot race.
unsafe impl Send for Jit {}
// SAFETY: as above; `&Jit` exposes no methods that touch the module.
unsafe impl Sync for Jit {}

fn declare_libm(
    module: &mut JITModule,
    b: &mut FunctionBuilder,
    dtype: DType,
) -> Result<Vec<(&'static str, FuncRef)>, Error> {
    let ty = scalar_type(dtype);
    LIBM.iter()
        .map(|&(name, arity, _, _)| {
            let mut sig = module.make_signature();
            for _ in 0..arity {
                sig.params.push(AbiParam::new(ty));
            }
            sig.returns.push(AbiParam::new(ty));
            let id = module
                .declare_function(&format!("ng_{name}_{}", dtype.name()), Linkage::Import, &sig)
                .map_err(|e| codegen(format!("{e:?}")))?;
            Ok((name, module.declare_func_in_func(id, b.func)))
        })
        .collect()
}

/// Rows at least this wide compute their routines in stages on slices: below, the calls'
/// overhead outweighs the wider vectors.
pub const STAGED_MIN_COLS: usize = 32;

/// The routines computed on slices in wide rows, by kernel op.
const STAGED: [(Function, KUnary); 4] = [
    (Function::Exp, KUnary::Exp),
    (Function::Log, KUnary::Log),
    (Function::Log1p, KUnary::Log1p),
    (Function::Tanh, KUnary::Tanh),
];

fn slice_symbol(function: Function, dtype: DType) -> String {
    format!("{}_slice", function.symbol(dtype))
}

fn declare_slices(
    module: &mut JITModule,
    b: &mut FunctionBuilder,
    dtype: DType,
    ptr: Type,
) -> Result<Vec<(KUnary, FuncRef)>, Error> {
    STAGED
        .iter()
        .map(|&(function, op)| {
            let mut sig = module.make_signature();
            sig.params.push(AbiParam::new(ptr));
            sig.params.push(AbiParam::new(ptr));
            let id = module
                .declare_function(&slice_symbol(function, dtype), Linkage::Import, &sig)
                .map_err(|e| codegen(format!("{e:?}")))?;
            Ok((op, module.declare_func_in_func(id, b.func)))
        })
        .collect()
}

/// Which expressions of a kernel are routines computed on slices, and in which stage.
struct Staging {
    /// The staged routines' expression indices; routine `k` uses scratch row `k`.
    routines: Vec<usize>,
    /// Per expression: the number of staged routines on its longest path from the inputs
    /// (a staged routine counts itself).
    level: Vec<usize>,
}

impl Staging {
    /// `None` when the kernel has no routine to stage.
    fn of(spec: &KernelSpec) -> Option<Staging> {
        let staged = |e: &KExpr| matches!(e, KExpr::Unary(op, _) if STAGED.iter().any(|(_, s)| s == op));
        let mut level = Vec::with_capacity(spec.exprs.len());
        let mut routines = Vec::new();
        for (i, expr) in spec.exprs.iter().enumerate() {
            let operands = expr_operands(expr);
            let below = operands.iter().map(|&o| level[o]).max().unwrap_or(0);
            if staged(expr) {
                routines.push(i);
                level.push(below + 1);
            } else {
                level.push(below);
            }
        }
        (!routines.is_empty()).then_some(Staging { routines, level })
    }

    fn stages(&self) -> usize {
        self.routines.iter().map(|&r| self.level[r]).max().unwrap_or(0)
    }

    /// The scratch row of expression `e`, if it is a staged routine.
    fn row(&self, e: usize) -> Option<usize> {
        self.routines.iter().position(|&r| r == e)
    }
}

/// The expressions an expression reads.
fn expr_operands(expr: &KExpr) -> Vec<usize> {
    match *expr {
        KExpr::Input(_) | KExpr::Const(_) => Vec::new(),
        KExpr::Unary(_, x) => vec![x],
        KExpr::Binary(_, x, y) => vec![x, y],
        KExpr::Choose { lhs, rhs, then, otherwise, .. } => vec![lhs, rhs, then, otherwise],
    }
}

/// What one loop over a row computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Everything, routines inline (kernels without staging).
    Whole,
    /// Stage `s`: the arguments of the staged routines of level `s`, into their scratch rows.
    Stage(usize),
    /// The outputs and column sums, every staged routine read from its scratch row.
    Last,
}

fn scalar_type(dtype: DType) -> Type {
    match dtype {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
    }
}

/// Emits the loop nest of one kernel.
struct Lowering<'s> {
    spec: &'s KernelSpec,
    ptr: Type,
    scalar: Type,
    vector: Type,
    lanes: i64,
    size: i64,
    libm: Vec<(&'static str, FuncRef)>,
    libm_math: bool,
    /// Whether the vector loop is emitted (otherwise the scalar loop covers whole rows).
    vectors: bool,
    staging: Option<Staging>,
    slices: Vec<(KUnary, FuncRef)>,
}

/// Per-row base addresses and the loop counters a body needs.
struct Row {
    bases: Vec<Value>,
    row: Value,
}

impl<'s> Lowering<'s> {
    fn new(spec: &'s KernelSpec, ptr: Type, libm: Vec<(&'static str, FuncRef)>) -> Lowering<'s> {
        let (scalar, vector, lanes, size) = match spec.dtype {
            DType::F32 => (types::F32, types::F32X4, 4, 4),
            DType::F64 => (types::F64, types::F64X2, 2, 8),
        };
        Lowering {
            spec,
            ptr,
            scalar,
            vector,
            lanes,
            size,
            libm,
            libm_math: false,
            vectors: true,
            staging: None,
            slices: Vec::new(),
        }
    }

    fn emit(&self, b: &mut FunctionBuilder) {
        let flags = MemFlagsData::trusted();
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let (buffers, row_start, row_end, cols) = (params[0], params[1], params[2], params[3]);
        let scratch_rows = self.staging.as_ref().map_or(0, |s| s.routines.len());
        let count =
            self.spec.inputs.len() + self.spec.outputs.len() + self.spec.column_sums.len() + scratch_rows;
        let pointers: Vec<Value> = (0..count)
            .map(|i| b.ins().load(self.ptr, flags, buffers, (i as i32) * self.ptr.bytes() as i32))
            .collect();
        let lanes = b.ins().iconst(self.ptr, self.lanes);
        let rem = b.ins().urem(cols, lanes);
        let vec_cols = b.ins().isub(cols, rem);

        let row_head = b.create_block();
        let row_body = b.create_block();
        let exit = b.create_block();
        for block in [row_head, row_body] {
            b.append_block_param(block, self.ptr);
        }
        b.ins().jump(row_head, &[BlockArg::Value(row_start)]);

        // for row in row_start..row_end
        b.switch_to_block(row_head);
        let row = b.block_params(row_head)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, row, row_end);
        b.ins().brif(more, row_body, &[BlockArg::Value(row)], exit, &[]);

        b.switch_to_block(row_body);
        let row = b.block_params(row_body)[0];
        let size = b.ins().iconst(self.ptr, self.size);
        let row_offset = b.ins().imul(row, cols);
        let row_bytes = b.ins().imul(row_offset, size);
        let row_elem_bytes = b.ins().imul(row, size);
        // Base address of this row for every buffer, by access mode: outputs are Full,
        // column sums and scratch rows are indexed by column only (like a Row input).
        let stored = self.spec.inputs.len() + self.spec.outputs.len();
        let bases: Vec<Value> = pointers
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let access = match self.spec.inputs.get(i) {
                    Some(&access) => access,
                    None if i < stored => Access::Full,
                    None => Access::Row,
                };
                match access {
                    Access::Full => b.ins().iadd(p, row_bytes),
                    Access::Col => b.ins().iadd(p, row_elem_bytes),
                    Access::Row | Access::Scalar => p,
                }
            })
            .collect();
        let context = Row { bases, row };
        let passes: Vec<Pass> = match &self.staging {
            None => vec![Pass::Whole],
            Some(staging) => (1..=staging.stages()).map(Pass::Stage).chain([Pass::Last]).collect(),
        };
        for pass in passes {
            self.columns(b, &context, vec_cols, cols, pass);
            if let (Pass::Stage(stage), Some(staging)) = (pass, &self.staging) {
                // The routines of this stage, each in place on its scratch row.
                let first_scratch = self.first_scratch();
                for (k, &e) in staging.routines.iter().enumerate() {
                    if staging.level[e] == stage {
                        let KExpr::Unary(op, _) = self.spec.exprs[e] else {
                            unreachable!("a staged routine")
                        };
                        let f = self.slices.iter().find(|(o, _)| *o == op).expect("declared slice routine").1;
                        b.ins().call(f, &[context.bases[first_scratch + k], cols]);
                    }
                }
            }
        }
        let one = b.ins().iconst(self.ptr, 1);
        let next = b.ins().iadd(context.row, one);
        b.ins().jump(row_head, &[BlockArg::Value(next)]);

        b.switch_to_block(exit);
        b.ins().return_(&[]);
    }

    /// Index of the first scratch row among the kernel's buffers.
    fn first_scratch(&self) -> usize {
        self.spec.inputs.len() + self.spec.outputs.len() + self.spec.column_sums.len()
    }

    /// One loop over the columns of a row computing `pass`: vectors, then a scalar tail.
    /// Leaves the builder in the block after the loop.
    fn columns(&self, b: &mut FunctionBuilder, row: &Row, vec_cols: Value, cols: Value, pass: Pass) {
        let (vec_head, vec_body, tail_head, tail_body, done) =
            (b.create_block(), b.create_block(), b.create_block(), b.create_block(), b.create_block());
        for block in [vec_head, vec_body, tail_head, tail_body] {
            b.append_block_param(block, self.ptr);
        }
        let needed = self.needed(pass);
        let zero = b.ins().iconst(self.ptr, 0);
        let first = if self.vectors { vec_head } else { tail_head };
        b.ins().jump(first, &[BlockArg::Value(zero)]);

        // for col in (0..vec_cols).step_by(lanes): vector body (unreachable without vectors)
        b.switch_to_block(vec_head);
        let col = b.block_params(vec_head)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, col, vec_cols);
        b.ins().brif(more, vec_body, &[BlockArg::Value(col)], tail_head, &[BlockArg::Value(col)]);
        b.switch_to_block(vec_body);
        let col = b.block_params(vec_body)[0];
        self.body(b, row, col, true, pass, &needed);
        let lanes = b.ins().iconst(self.ptr, self.lanes);
        let next = b.ins().iadd(col, lanes);
        b.ins().jump(vec_head, &[BlockArg::Value(next)]);

        // for col in vec_cols..cols: scalar tail
        b.switch_to_block(tail_head);
        let col = b.block_params(tail_head)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, col, cols);
        b.ins().brif(more, tail_body, &[BlockArg::Value(col)], done, &[]);
        b.switch_to_block(tail_body);
        let col = b.block_params(tail_body)[0];
        self.body(b, row, col, false, pass, &needed);
        let one = b.ins().iconst(self.ptr, 1);
        let next = b.ins().iadd(col, one);
        b.ins().jump(tail_head, &[BlockArg::Value(next)]);

        b.switch_to_block(done);
    }

    /// Whether `pass` reads expression `e` from its scratch row (a staged routine computed
    /// by an earlier stage).
    fn scratch_read(&self, e: usize, pass: Pass) -> Option<usize> {
        let staging = self.staging.as_ref()?;
        let k = staging.row(e)?;
        match pass {
            Pass::Whole => None,
            Pass::Last => Some(k),
            Pass::Stage(stage) => (staging.level[e] < stage).then_some(k),
        }
    }

    /// The expressions `pass` evaluates.
    fn needed(&self, pass: Pass) -> Vec<bool> {
        let exprs = &self.spec.exprs;
        let mut needed = vec![false; exprs.len()];
        match (pass, &self.staging) {
            (Pass::Stage(stage), Some(staging)) => {
                for &r in &staging.routines {
                    if staging.level[r] == stage {
                        needed[expr_operands(&exprs[r])[0]] = true;
                    }
                }
            }
            (Pass::Whole, _) => return vec![true; exprs.len()],
            _ => {
                for &e in &self.spec.outputs {
                    needed[e] = true;
                }
                for sum in &self.spec.column_sums {
                    needed[sum.expr] = true;
                }
            }
        }
        for e in (0..exprs.len()).rev() {
            if needed[e] && self.scratch_read(e, pass).is_none() {
                for o in expr_operands(&exprs[e]) {
                    needed[o] = true;
                }
            }
        }
        needed
    }

    /// Loads, computes and stores one element (or one vector of elements) at `col` for `pass`,
    /// evaluating the expressions `needed` marks.
    fn body(
        &self,
        b: &mut FunctionBuilder,
        row: &Row,
        col: Value,
        vector: bool,
        pass: Pass,
        needed: &[bool],
    ) {
        // In bounds, but aligned to an element only: a vector at column `col` of a row is
        // not aligned to its own size, and Cranelift's `aligned` flag would let it fold the
        // load into an SSE instruction that faults on such an address (CPUs without AVX).
        let flags = MemFlagsData::new().with_notrap();
        let ty = if vector { self.vector } else { self.scalar };
        let size = b.ins().iconst(self.ptr, self.size);
        let col_bytes = b.ins().imul(col, size);
        let first_scratch = self.first_scratch();
        let mut values: Vec<Option<Value>> = Vec::with_capacity(self.spec.exprs.len());
        for (e, expr) in self.spec.exprs.iter().enumerate() {
            if !needed[e] {
                values.push(None);
                continue;
            }
            let v = |i: usize| values[i].expect("operands are evaluated before their users");
            let value = if let Some(k) = self.scratch_read(e, pass) {
                let addr = b.ins().iadd(row.bases[first_scratch + k], col_bytes);
                b.ins().load(ty, flags, addr, 0)
            } else {
                match *expr {
                    KExpr::Input(i) => match self.spec.inputs[i] {
                        Access::Full | Access::Row => {
                            let addr = b.ins().iadd(row.bases[i], col_bytes);
                            b.ins().load(ty, flags, addr, 0)
                        }
                        Access::Col | Access::Scalar => {
                            let s = b.ins().load(self.scalar, flags, row.bases[i], 0);
                            if vector { b.ins().splat(ty, s) } else { s }
                        }
                    },
                    KExpr::Const(c) => self.constant(b, c, vector),
                    KExpr::Unary(u, x) => self.unary(b, u, v(x), vector),
                    KExpr::Binary(op, x, y) => self.binary(b, op, v(x), v(y)),
                    KExpr::Choose { cmp, lhs, rhs, then, otherwise } => {
                        let mask = b.ins().fcmp(float_cc(cmp), v(lhs), v(rhs));
                        crate::math::select(b, ty, mask, v(then), v(otherwise))
                    }
                }
            };
            values.push(Some(value));
        }
        let v = |i: usize| values[i].expect("needed values are evaluated");
        if let (Pass::Stage(stage), Some(staging)) = (pass, &self.staging) {
            // The arguments of this stage's routines, into their scratch rows.
            for (k, &r) in staging.routines.iter().enumerate() {
                if staging.level[r] == stage {
                    let addr = b.ins().iadd(row.bases[first_scratch + k], col_bytes);
                    b.ins().store(flags, v(expr_operands(&self.spec.exprs[r])[0]), addr, 0);
                }
            }
            return;
        }
        for (k, &e) in self.spec.outputs.iter().enumerate() {
            let addr = b.ins().iadd(row.bases[self.spec.inputs.len() + k], col_bytes);
            b.ins().store(flags, v(e), addr, 0);
        }
        // Column sums: this row's values added to the running sums of its columns.
        let first_sum = self.spec.inputs.len() + self.spec.outputs.len();
        for (k, sum) in self.spec.column_sums.iter().enumerate() {
            let addr = b.ins().iadd(row.bases[first_sum + k], col_bytes);
            let running = b.ins().load(ty, flags, addr, 0);
            let total = b.ins().fadd(running, v(sum.expr));
            b.ins().store(flags, total, addr, 0);
        }
    }

    fn constant(&self, b: &mut FunctionBuilder, c: f64, vector: bool) -> Value {
        let s = match self.spec.dtype {
            DType::F32 => b.ins().f32const(c as f32),
            DType::F64 => b.ins().f64const(c),
        };
        if vector { b.ins().splat(self.vector, s) } else { s }
    }

    /// `function(x)`: inline (the shared routine) or by libm calls, one per lane.
    fn math(&self, b: &mut FunctionBuilder, function: Function, x: Value, vector: bool) -> Value {
        let ty = if vector { self.vector } else { self.scalar };
        if !self.libm_math {
            return crate::math::emit(b, &function.routine(self.spec.dtype), x, ty);
        }
        match function {
            Function::Exp => self.call(b, "exp", &[x], vector),
            Function::Log => self.call(b, "log", &[x], vector),
            Function::Log1p => self.call(b, "log1p", &[x], vector),
            Function::Tanh => self.call(b, "tanh", &[x], vector),
            Function::Pow(p) => {
                let p = self.constant(b, p, vector);
                self.call(b, "pow", &[x, p], vector)
            }
        }
    }

    fn call(&self, b: &mut FunctionBuilder, name: &str, args: &[Value], vector: bool) -> Value {
        let f = self.libm.iter().find(|(n, _)| *n == name).expect("declared libm function").1;
        if !vector {
            let call = b.ins().call(f, args);
            return b.inst_results(call)[0];
        }
        let mut out = args[0];
        for lane in 0..self.lanes as u8 {
            let lane_args: Vec<Value> = args.iter().map(|&a| b.ins().extractlane(a, lane)).collect();
            let call = b.ins().call(f, &lane_args);
            let r = b.inst_results(call)[0];
            out = b.ins().insertlane(out, r, lane);
        }
        out
    }

    fn unary(&self, b: &mut FunctionBuilder, op: KUnary, x: Value, vector: bool) -> Value {
        match op {
            KUnary::Neg => b.ins().fneg(x),
            KUnary::Abs => b.ins().fabs(x),
            KUnary::Square => b.ins().fmul(x, x),
            KUnary::Sqrt => b.ins().sqrt(x),
            KUnary::Exp => self.math(b, Function::Exp, x, vector),
            KUnary::Log => self.math(b, Function::Log, x, vector),
            KUnary::Log1p => self.math(b, Function::Log1p, x, vector),
            KUnary::Tanh => self.math(b, Function::Tanh, x, vector),
            KUnary::Pow(p) => self.math(b, Function::Pow(p), x, vector),
        }
    }

    fn binary(&self, b: &mut FunctionBuilder, op: Binary, x: Value, y: Value) -> Value {
        match op {
            Binary::Add => b.ins().fadd(x, y),
            Binary::Sub => b.ins().fsub(x, y),
            Binary::Mul => b.ins().fmul(x, y),
            Binary::Div => b.ins().fdiv(x, y),
            Binary::Maximum => b.ins().fmax(x, y),
        }
    }
}

fn float_cc(cmp: Compare) -> FloatCC {
    match cmp {
        Compare::Lt => FloatCC::LessThan,
        Compare::Le => FloatCC::LessThanOrEqual,
        Compare::Gt => FloatCC::GreaterThan,
        Compare::Ge => FloatCC::GreaterThanOrEqual,
        Compare::Eq => FloatCC::Equal,
        Compare::Ne => FloatCC::NotEqual,
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use cranelift_codegen::isa::OwnedTargetIsa;
    use cranelift_codegen::settings::{self, Configurable};

    use super::vector_loops_are_safe;

    /// The host's x86-64 ISA with AVX (and everything that implies it) switched on or off.
    fn x64(avx: bool) -> OwnedTargetIsa {
        let mut isa = cranelift_native::builder().expect("the host is supported");
        for flag in ["has_avx", "has_avx2", "has_fma", "has_avx512f", "has_avx512vl", "has_avx512dq"] {
            isa.set(flag, if avx { "true" } else { "false" }).expect("an x64 flag");
        }
        isa.finish(settings::Flags::new(settings::builder())).expect("a valid ISA")
    }

    #[test]
    fn vector_loops_need_avx_on_x86_64() {
        assert!(vector_loops_are_safe(&*x64(true)));
        assert!(!vector_loops_are_safe(&*x64(false)));
    }
}
