//! Compiled programs: JIT'd kernels plus host steps, a liveness-based memory plan per batch
//! size, and sessions that bind validated inputs and run phases.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use natgrad_ir::{DType, Graph, NodeId, Op, Shape, TensorType};

use crate::Error;
use crate::host::{self, Element};
use crate::kernel::{Jit, KernelFn};
use crate::lower::{Lowered, Work, lower};

/// Options for [`Program::compile`].
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Run the simplifier before lowering (default true).
    pub simplify: bool,
    /// Threads for fused kernels (default: available parallelism).
    pub threads: usize,
    /// f32 `exp` by an in-IR polynomial instead of libm calls. Default false: measured
    /// with `natgrad bench exp`, both routes run at the same speed here (the fused kernels
    /// are memory-bound), and libm matches the interpreter exactly (docs/benchmarks.md).
    pub fast_exp: bool,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        CompileOptions { simplify: true, threads, fast_exp: false }
    }
}

/// Where compile time went.
#[derive(Clone, Debug, Default)]
pub struct CompileTimes {
    /// Simplifier.
    pub simplify: Duration,
    /// Lowering to units.
    pub lower: Duration,
    /// Cranelift code generation and linking.
    pub codegen: Duration,
}

/// A graph compiled for the CPU, generic over the element type.
pub struct Program<T: Element> {
    graph: Graph,
    /// Every input and param of the source graph (the optimized one may have dropped some).
    leaves: BTreeMap<String, TensorType>,
    lowered: Lowered,
    kernels: Vec<KernelFn>,
    kernel_of_unit: Vec<Option<usize>>,
    threads: usize,
    /// Compile-time breakdown.
    pub times: CompileTimes,
    _jit: Jit,
    _marker: std::marker::PhantomData<T>,
}

/// A memory plan and buffers for one batch size.
pub struct Session<T: Element> {
    program: Rc<Program<T>>,
    batch: usize,
    buffers: Vec<Vec<T>>,
    buffer_of: HashMap<NodeId, usize>,
    bound: BTreeMap<String, bool>,
    peak_bytes: usize,
    profile: Option<BTreeMap<&'static str, (usize, Duration)>>,
}

impl<T: Element> Program<T> {
    /// Compiles `graph` (its outputs are the program's outputs); `phases[k]` names the
    /// inputs and params first needed in phase `k` — work depending only on earlier phases'
    /// inputs is not redone when a later phase runs again.
    pub fn compile(graph: &Graph, phases: &[&[&str]], options: &CompileOptions) -> Result<Program<T>, Error> {
        let dtype = if std::mem::size_of::<T>() == 4 { DType::F32 } else { DType::F64 };
        if let Some(bad) = graph.node_ids().find(|&id| graph.dtype(id) != dtype) {
            return Err(Error::DType {
                node: graph.site(bad).to_string(),
                expected: dtype,
                got: graph.dtype(bad),
            });
        }
        let mut times = CompileTimes::default();
        let start = Instant::now();
        let simplified = if options.simplify {
            natgrad_rewrite::simplify(graph, &natgrad_rewrite::Options::default())?
        } else {
            let fusion = natgrad_rewrite::fusion_groups(graph);
            natgrad_rewrite::Simplified { graph: graph.clone(), fusion, stats: Default::default() }
        };
        times.simplify = start.elapsed();
        let start = Instant::now();
        let lowered = lower(&simplified.graph, &simplified.fusion, phases)?;
        times.lower = start.elapsed();
        let start = Instant::now();
        let mut jit = Jit::new(options.fast_exp)?;
        let mut kernel_of_unit = Vec::new();
        for unit in &lowered.units {
            kernel_of_unit.push(match &unit.work {
                Work::Kernel { spec, .. } => Some(jit.compile(spec)?),
                _ => None,
            });
        }
        let kernels = jit.finish()?;
        times.codegen = start.elapsed();
        let leaves = graph
            .node_ids()
            .filter_map(|id| match graph.op(id) {
                Op::Input { name, .. } | Op::Param { name, .. } => Some((name.clone(), graph.ty(id).clone())),
                _ => None,
            })
            .collect();
        Ok(Program {
            leaves,
            graph: simplified.graph,
            lowered,
            kernels,
            kernel_of_unit,
            threads: options.threads.max(1),
            times,
            _jit: jit,
            _marker: std::marker::PhantomData,
        })
    }

    /// [`Program::compile`] through a per-thread cache keyed on the canonical IR text of
    /// `graph` (plus dtype, phases and options): compiling the same graph again returns the
    /// same program without running the simplifier or the JIT. (JIT modules are not `Send`,
    /// so the cache is per thread.)
    pub fn compile_cached(
        graph: &Graph,
        phases: &[&[&str]],
        options: &CompileOptions,
    ) -> Result<Rc<Program<T>>, Error> {
        thread_local! {
            static CACHE: std::cell::RefCell<HashMap<String, Box<dyn std::any::Any>>> = std::cell::RefCell::new(HashMap::new());
        }
        let key = format!(
            "{}|{phases:?}|{}|{}|{}\n{}",
            std::any::type_name::<T>(),
            options.simplify,
            options.threads,
            options.fast_exp,
            natgrad_ir::text::print(graph)
        );
        if let Some(hit) =
            CACHE.with(|c| c.borrow().get(&key).and_then(|p| p.downcast_ref::<Rc<Program<T>>>().cloned()))
        {
            return Ok(hit);
        }
        let program = Rc::new(Program::compile(graph, phases, options)?);
        CACHE.with(|c| c.borrow_mut().insert(key, Box::new(Rc::clone(&program))));
        Ok(program)
    }

    /// The optimized graph that was lowered.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Number of fused kernels.
    pub fn kernel_count(&self) -> usize {
        self.kernels.len()
    }

    /// Number of phases.
    pub fn phases(&self) -> usize {
        self.lowered.input_phase.values().max().map_or(1, |p| p + 1)
    }

    /// A session for batch size `batch`: plans memory and writes constants.
    pub fn session(self: &Rc<Self>, batch: usize) -> Session<T> {
        let plan = plan_memory(self, batch);
        let mut session = Session {
            program: Rc::clone(self),
            batch,
            buffers: plan.sizes.iter().map(|&n| vec![T::zero(); n]).collect(),
            buffer_of: plan.buffer_of,
            bound: self
                .graph
                .input_nodes()
                .iter()
                .chain(&self.graph.param_nodes())
                .filter_map(|&id| match self.graph.op(id) {
                    Op::Input { name, .. } | Op::Param { name, .. } => Some((name.clone(), false)),
                    _ => None,
                })
                .collect(),
            peak_bytes: plan.sizes.iter().sum::<usize>() * std::mem::size_of::<T>(),
            profile: None,
        };
        for (u, unit) in self.lowered.units.iter().enumerate() {
            if unit.phase == usize::MAX {
                session.execute(u);
            }
        }
        session
    }
}

struct MemoryPlan {
    sizes: Vec<usize>,
    buffer_of: HashMap<NodeId, usize>,
}

/// Greedy liveness-based plan: a value's buffer returns to the pool after its last reader
/// in the same phase; values read in a later phase, leaves and outputs keep theirs.
fn plan_memory<T: Element>(program: &Program<T>, batch: usize) -> MemoryPlan {
    let g = &program.graph;
    let units = &program.lowered.units;
    let owner = |n: NodeId| program.lowered.storage.get(&n).copied().unwrap_or(n);
    let mut last_read: HashMap<NodeId, usize> = HashMap::new();
    let mut pinned: Vec<NodeId> = g.outputs().iter().map(|&o| owner(o)).collect();
    let mut phase_of: HashMap<NodeId, usize> = HashMap::new();
    for (u, unit) in units.iter().enumerate() {
        for &o in &unit.outputs {
            phase_of.insert(o, unit.phase);
        }
        for &r in &unit.reads {
            let r = owner(r);
            last_read.insert(r, u);
            if phase_of.get(&r).is_some_and(|&p| p != unit.phase) {
                pinned.push(r);
            }
        }
    }
    let mut sizes: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buffer_of: HashMap<NodeId, usize> = HashMap::new();
    let elements = |n: NodeId| g.shape(n).num_elements(batch).max(1);
    // Leaves (inputs and params) get their own buffers.
    for id in g.node_ids() {
        if matches!(g.op(id), Op::Input { .. } | Op::Param { .. })
            && program.lowered.storage.contains_key(&id)
        {
            buffer_of.insert(id, sizes.len());
            sizes.push(elements(id));
        }
    }
    for (u, unit) in units.iter().enumerate() {
        for &o in &unit.outputs {
            let need = elements(o);
            let fit = free
                .iter()
                .enumerate()
                .filter(|&(_, &b)| sizes[b] >= need)
                .min_by_key(|&(_, &b)| sizes[b])
                .map(|(i, _)| i);
            let buffer = match (fit, unit.phase == usize::MAX || pinned.contains(&o)) {
                (Some(i), false) => free.swap_remove(i),
                _ => {
                    sizes.push(need);
                    sizes.len() - 1
                }
            };
            buffer_of.insert(o, buffer);
        }
        // Release what this unit read last (unless pinned or set-up values).
        for &r in &unit.reads {
            let r = owner(r);
            if last_read.get(&r) == Some(&u)
                && !pinned.contains(&r)
                && phase_of.get(&r).is_some_and(|&p| p != usize::MAX)
                && let Some(&b) = buffer_of.get(&r)
                && !free.contains(&b)
            {
                free.push(b);
            }
        }
        // Outputs nobody reads are released at once.
        for &o in &unit.outputs {
            if !last_read.contains_key(&o) && !pinned.contains(&o) && unit.phase != usize::MAX {
                free.push(buffer_of[&o]);
            }
        }
    }
    for (&n, &o) in &program.lowered.storage {
        if let Some(&b) = buffer_of.get(&o) {
            buffer_of.insert(n, b);
        }
    }
    MemoryPlan { sizes, buffer_of }
}

/// Raw pointers handed to kernel threads.
struct Pointers(Vec<*mut u8>);
// SAFETY: each thread writes disjoint rows of the output buffers and only reads inputs.
unsafe impl Send for Pointers {}
unsafe impl Sync for Pointers {}

impl Pointers {
    fn as_ptr(&self) -> *const *mut u8 {
        self.0.as_ptr()
    }
}

impl<T: Element> Session<T> {
    /// The batch size this session was planned for.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Total bytes of the planned buffers.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// Copies `data` into the input or param `name`, after checking its length.
    pub fn set(&mut self, name: &str, data: &[T]) -> Result<(), Error> {
        let ty =
            self.program.leaves.get(name).ok_or_else(|| Error::UnknownInput { name: name.to_string() })?;
        let expected = ty.shape.num_elements(self.batch);
        if data.len() != expected {
            return Err(Error::Length {
                name: name.to_string(),
                ty: ty.to_string(),
                batch: self.batch,
                expected,
                got: data.len(),
            });
        }
        // Inputs the optimized graph no longer reads are checked and otherwise ignored.
        if let Some(b) = self.program.graph.leaf(name).and_then(|id| self.buffer_of.get(&id)) {
            self.buffers[*b][..expected].copy_from_slice(data);
        }
        self.bound.insert(name.to_string(), true);
        Ok(())
    }

    /// Runs phase `phase`; every input of phases up to it must have been set.
    pub fn run(&mut self, phase: usize) -> Result<(), Error> {
        if let Some((name, _)) = self.bound.iter().find(|(name, set)| {
            !**set && self.program.lowered.input_phase.get(*name).is_some_and(|&p| p <= phase)
        }) {
            return Err(Error::Unbound { name: name.clone() });
        }
        for u in 0..self.program.lowered.units.len() {
            if self.program.lowered.units[u].phase == phase {
                let start = self.profile.is_some().then(Instant::now);
                self.execute(u);
                if let (Some(profile), Some(start)) = (&mut self.profile, start) {
                    let entry = profile.entry(self.program.lowered.units[u].work.kind()).or_default();
                    entry.0 += 1;
                    entry.1 += start.elapsed();
                }
            }
        }
        Ok(())
    }

    /// Starts (or stops) accumulating time per kind of work (`kernel`, `matmul`, …).
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(BTreeMap::new);
    }

    /// Calls and total time per kind of work since profiling started.
    pub fn profile(&self) -> Option<&BTreeMap<&'static str, (usize, Duration)>> {
        self.profile.as_ref()
    }

    /// The value of output `index` (after the phase computing it has run).
    pub fn output(&self, index: usize) -> &[T] {
        let node = self.program.graph.outputs()[index];
        let len = self.program.graph.shape(node).num_elements(self.batch);
        &self.buffers[self.buffer_of[&node]][..len]
    }

    fn dims(&self, n: NodeId) -> Vec<usize> {
        self.program.graph.shape(n).resolve(self.batch)
    }

    /// (buffer, length) of a node's value.
    fn slot(&self, n: NodeId) -> (usize, usize) {
        (self.buffer_of[&n], self.program.graph.shape(n).num_elements(self.batch))
    }

    /// Takes the output buffer out so inputs can be borrowed alongside it.
    fn with_output(&mut self, out: NodeId, f: impl FnOnce(&Self, &mut [T])) {
        let (b, len) = self.slot(out);
        let mut buffer = std::mem::take(&mut self.buffers[b]);
        f(self, &mut buffer[..len]);
        self.buffers[b] = buffer;
    }

    fn value(&self, n: NodeId) -> &[T] {
        let (b, len) = self.slot(n);
        &self.buffers[b][..len]
    }

    fn execute(&mut self, u: usize) {
        let program = Rc::clone(&self.program);
        let unit = &program.lowered.units[u];
        let out = unit.outputs[0];
        match &unit.work {
            Work::Kernel { shape, args, .. } => {
                self.run_kernel(program.kernel_of_unit[u].expect("kernel unit"), shape, args)
            }
            Work::MatMul { a, b, ta, tb } => self.with_output(out, |s, o| {
                let (ad, bd) = (s.dims(*a), s.dims(*b));
                host::matmul(s.value(*a), [ad[0], ad[1]], *ta, s.value(*b), [bd[0], bd[1]], *tb, o)
            }),
            Work::Softmax { x, axis, log } => {
                self.with_output(out, |s, o| host::softmax(s.value(*x), &s.dims(*x), *axis, *log, o))
            }
            Work::Transpose { x, perm } => {
                self.with_output(out, |s, o| host::transpose(s.value(*x), &s.dims(*x), perm, o))
            }
            Work::Broadcast { x } => {
                self.with_output(out, |s, o| host::broadcast(s.value(*x), &s.dims(*x), &s.dims(out), o))
            }
            Work::Reduce { x, kind, axes } => {
                self.with_output(out, |s, o| host::reduce(s.value(*x), &s.dims(*x), *kind, axes, o))
            }
            Work::Constant { values } => self.with_output(out, |_, o| {
                for (slot, v) in o.iter_mut().zip(values.iter().cycle()) {
                    *slot = T::from_f64(*v);
                }
            }),
            Work::BatchSize => {
                let batch = T::from_f64(self.batch as f64);
                self.with_output(out, |_, o| o[0] = batch)
            }
        }
    }

    fn run_kernel(&mut self, kernel: usize, shape: &Shape, args: &[NodeId]) {
        let dims = shape.resolve(self.batch);
        let cols = dims.last().copied().unwrap_or(1);
        let total: usize = dims.iter().product();
        let rows = total.checked_div(cols).unwrap_or(0);
        let pointers =
            Pointers(args.iter().map(|a| self.buffers[self.buffer_of[a]].as_mut_ptr() as *mut u8).collect());
        let f = self.program.kernels[kernel];
        let threads = if total < 1 << 15 { 1 } else { self.program.threads.min(rows.max(1)) };
        let call = |start: usize, end: usize| {
            // SAFETY: every buffer holds at least `rows × cols` elements for Full access
            // (and `cols` / `rows` / 1 for Row / Col / Scalar), as sized by the plan for this
            // batch; threads get disjoint row ranges.
            unsafe { f(pointers.as_ptr(), start, end, cols) }
        };
        if threads <= 1 {
            call(0, rows);
            return;
        }
        let chunk = rows.div_ceil(threads);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let (start, end) = (t * chunk, ((t + 1) * chunk).min(rows));
                if start < end {
                    let call = &call;
                    scope.spawn(move || call(start, end));
                }
            }
        });
    }
}
