//! Running a parsed module's entry over a grid: every thread of every block, in order,
//! with exact IEEE semantics for the `.rn` arithmetic the emitter writes (so results are
//! the GPU's bit for bit, up to the order of `red.global.add`s). Blocks that synchronise
//! run their threads in turns from one `bar.sync` to the next.

use std::collections::HashMap;

use crate::memory::Memory;
use natgrad_ir::Compare;

use crate::parse::{self, Address, Cmp, Function, Inst, Kind, Operand, Round, Space, Special, Ty};

/// Most instructions one thread may run (an endless loop is an error, not a hang).
const STEP_LIMIT: u64 = 1 << 32;

/// What uninitialised registers and shared memory hold: a NaN in both widths, so reading
/// one before writing it shows in the results.
const POISON: u64 = 0x7ff4_dead_7fa0_dead;

/// A parsed PTX module, ready to launch.
pub struct Module {
    functions: HashMap<String, Function>,
}

/// The thread and grid coordinates of a running thread.
#[derive(Clone, Copy)]
struct Coordinates {
    tid: u32,
    ntid: u32,
    ctaid: u32,
    nctaid: u32,
}

/// One block of a launch.
struct Block<'a> {
    function: &'a Function,
    args: &'a [u64],
    index: u32,
    blocks: u32,
    threads: u32,
}

impl Block<'_> {
    fn at(&self, tid: u32) -> Coordinates {
        Coordinates { tid, ntid: self.threads, ctaid: self.index, nctaid: self.blocks }
    }

    /// Sets the entry's parameters in a thread's first frame.
    fn start(&self, frame: &mut Frame) {
        for (&slot, &arg) in self.function.params.iter().zip(self.args) {
            frame.params[slot] = arg;
        }
    }

    /// `e` located at thread `tid` of this block.
    fn fail(&self, tid: u32, e: String) -> String {
        format!("{}, block {}, thread {tid}: {e}", self.function.name, self.index)
    }
}

/// One activation of a function: its registers, parameters and next instruction.
struct Frame {
    regs: Vec<u64>,
    params: Vec<u64>,
    pc: usize,
    steps: u64,
}

impl Frame {
    fn new(function: &Function) -> Frame {
        Frame {
            regs: vec![POISON; function.registers],
            params: vec![0; function.param_slots],
            pc: 0,
            steps: 0,
        }
    }
}

/// Why a thread stopped running.
#[derive(PartialEq)]
enum Stop {
    Returned,
    Barrier,
}

impl Module {
    /// Parses `text`; an instruction outside the simulated subset is an error.
    pub fn parse(text: &str) -> Result<Module, parse::ParseError> {
        Ok(Module { functions: parse::module(text)? })
    }

    /// Whether the module has an entry `name`.
    pub fn has_entry(&self, name: &str) -> bool {
        self.functions.get(name).is_some_and(|f| f.entry)
    }

    /// Runs entry `name` on `blocks × threads` threads with `.u64` parameters `args`.
    pub fn launch(
        &self,
        memory: &mut Memory,
        name: &str,
        blocks: u32,
        threads: u32,
        args: &[u64],
    ) -> Result<(), String> {
        let function =
            self.functions.get(name).filter(|f| f.entry).ok_or_else(|| format!("no entry {name}"))?;
        if args.len() != function.params.len() {
            return Err(format!("{name} takes {} parameters, {} given", function.params.len(), args.len()));
        }
        let mut shared = vec![0u8; function.shared_bytes];
        for block in 0..blocks {
            shared.fill(0xff);
            let block = Block { function, args, index: block, blocks, threads };
            if function.barrier {
                self.run_synchronised(&block, memory, &mut shared)?;
            } else {
                self.run_independent(&block, memory, &mut shared)?;
            }
        }
        Ok(())
    }

    /// A block whose threads never synchronise: one after the other, in one reused frame.
    fn run_independent(&self, block: &Block, memory: &mut Memory, shared: &mut [u8]) -> Result<(), String> {
        let mut frame = Frame::new(block.function);
        for tid in 0..block.threads {
            frame.regs.fill(POISON);
            frame.pc = 0;
            frame.steps = 0;
            block.start(&mut frame);
            self.run(block.function, &mut frame, block.at(tid), memory, shared)
                .map_err(|e| block.fail(tid, e))?;
        }
        Ok(())
    }

    /// A block with `bar.sync`: every thread runs to the next barrier (or its end) in turn,
    /// then all go on; threads waiting at different barriers are an error.
    fn run_synchronised(&self, block: &Block, memory: &mut Memory, shared: &mut [u8]) -> Result<(), String> {
        let mut frames: Vec<Frame> = (0..block.threads).map(|_| Frame::new(block.function)).collect();
        frames.iter_mut().for_each(|f| block.start(f));
        let mut done = vec![false; block.threads as usize];
        loop {
            let mut waiting_at = None;
            for tid in 0..block.threads {
                let t = tid as usize;
                if done[t] {
                    continue;
                }
                let frame = &mut frames[t];
                let stop = self
                    .run(block.function, frame, block.at(tid), memory, shared)
                    .map_err(|e| block.fail(tid, e))?;
                match stop {
                    Stop::Returned => done[t] = true,
                    Stop::Barrier => {
                        if *waiting_at.get_or_insert(frame.pc) != frame.pc {
                            return Err(
                                block.fail(tid, "threads of one block wait at different barriers".into())
                            );
                        }
                    }
                }
            }
            if waiting_at.is_none() {
                return Ok(());
            }
        }
    }

    /// Runs `frame` of `function` until it returns or reaches a barrier (its `pc` then past it).
    fn run(
        &self,
        function: &Function,
        frame: &mut Frame,
        at: Coordinates,
        memory: &mut Memory,
        shared: &mut [u8],
    ) -> Result<Stop, String> {
        loop {
            let Some(inst) = function.code.get(frame.pc) else {
                return Ok(Stop::Returned);
            };
            frame.steps += 1;
            if frame.steps > STEP_LIMIT {
                return Err(format!(
                    "over {STEP_LIMIT} instructions in {} (an endless loop?)",
                    function.name
                ));
            }
            frame.pc += 1;
            if let Some((p, negated)) = inst.guard
                && (frame.regs[p] & 1 == 1) == negated
            {
                continue;
            }
            let located = |e: String| format!("{}, PTX line {}: {e}", function.name, inst.line + 1);
            match &inst.kind {
                Kind::Bra(target) => frame.pc = *target,
                Kind::Ret => return Ok(Stop::Returned),
                Kind::Bar => {
                    if !function.entry {
                        return Err(located("bar.sync in a called function".into()));
                    }
                    return Ok(Stop::Barrier);
                }
                Kind::Call { function: callee, result, argument } => {
                    let f =
                        self.functions.get(callee).ok_or_else(|| located(format!("no function {callee}")))?;
                    let mut inner = Frame::new(f);
                    let [r, x] = f.params[..] else {
                        return Err(located(format!("{callee} does not take one argument")));
                    };
                    inner.params[x] = frame.params[*argument];
                    if self.run(f, &mut inner, at, memory, shared)? != Stop::Returned {
                        return Err(located(format!("{callee} did not return")));
                    }
                    frame.params[*result] = inner.params[r];
                }
                Kind::Ld(Space::Global) if !inst.dests.is_empty() => {
                    let bytes = inst.ty.bytes();
                    let data = memory
                        .read(Self::address(inst, frame), bytes * inst.dests.len(), bytes * inst.dests.len())
                        .map_err(|e| located(format!("vector load: {e}")))?;
                    let lanes: Vec<u64> = data
                        .chunks_exact(bytes)
                        .map(|c| {
                            let mut b = [0u8; 8];
                            b[..bytes].copy_from_slice(c);
                            u64::from_le_bytes(b)
                        })
                        .collect();
                    for (&r, value) in inst.dests.iter().zip(lanes) {
                        frame.regs[r] = value;
                    }
                }
                Kind::St(Space::Global) if inst.src.len() > 1 => {
                    let bytes = inst.ty.bytes();
                    let values: Vec<u64> = inst.src.iter().map(|&s| operand(s, frame, at)).collect();
                    let target = memory
                        .write(Self::address(inst, frame), bytes * values.len(), bytes * values.len())
                        .map_err(|e| located(format!("vector store: {e}")))?;
                    for (chunk, value) in target.chunks_exact_mut(bytes).zip(values) {
                        chunk.copy_from_slice(&value.to_le_bytes()[..bytes]);
                    }
                }
                Kind::Ld(space) => {
                    let value = self.load(inst, *space, frame, memory, shared).map_err(located)?;
                    frame.regs[inst.dest.expect("a load has a destination")] = value;
                }
                Kind::St(space) => {
                    let value = operand(inst.src[0], frame, at);
                    self.store(inst, *space, value, frame, memory, shared).map_err(located)?;
                }
                Kind::RedAdd => {
                    let value = operand(inst.src[0], frame, at);
                    let old = self.load(inst, Space::Global, frame, memory, shared).map_err(located)?;
                    let sum = float_op(inst.ty, old, value, |a, b| a + b, |a, b| a + b);
                    self.store(inst, Space::Global, sum, frame, memory, shared).map_err(located)?;
                }
                _ => {
                    let value = compute(inst, frame, at).map_err(located)?;
                    frame.regs[inst.dest.expect("arithmetic has a destination")] = value;
                }
            }
        }
    }

    fn address(inst: &Inst, frame: &Frame) -> u64 {
        match inst.address.expect("a memory instruction has an address") {
            Address::Reg(r, offset) => frame.regs[r].wrapping_add(offset as u64),
            Address::Shared(at) => at,
            Address::Param(slot) => slot as u64,
        }
    }

    fn load(
        &self,
        inst: &Inst,
        space: Space,
        frame: &Frame,
        memory: &Memory,
        shared: &[u8],
    ) -> Result<u64, String> {
        let at = Self::address(inst, frame);
        let bytes = inst.ty.bytes();
        match space {
            Space::Param => Ok(frame.params[at as usize]),
            Space::Global => memory.load(at, bytes).map_err(|e| format!("global load: {e}")),
            Space::Shared => {
                let range = shared_range(at, bytes, shared.len())?;
                let mut b = [0u8; 8];
                b[..bytes].copy_from_slice(&shared[range]);
                Ok(u64::from_le_bytes(b))
            }
        }
    }

    fn store(
        &self,
        inst: &Inst,
        space: Space,
        value: u64,
        frame: &mut Frame,
        memory: &mut Memory,
        shared: &mut [u8],
    ) -> Result<(), String> {
        let at = Self::address(inst, frame);
        let bytes = inst.ty.bytes();
        match space {
            Space::Param => frame.params[at as usize] = value,
            Space::Global => memory.store(at, bytes, value).map_err(|e| format!("global store: {e}"))?,
            Space::Shared => {
                let range = shared_range(at, bytes, shared.len())?;
                shared[range].copy_from_slice(&value.to_le_bytes()[..bytes]);
            }
        }
        Ok(())
    }
}

/// The bytes of a shared-memory access, bounds- and alignment-checked.
fn shared_range(at: u64, bytes: usize, len: usize) -> Result<std::ops::Range<usize>, String> {
    if !at.is_multiple_of(bytes as u64) || at as usize + bytes > len {
        return Err(format!("shared access of {bytes} bytes at {at} (shared memory holds {len} bytes)"));
    }
    Ok(at as usize..at as usize + bytes)
}

fn operand(op: Operand, frame: &Frame, at: Coordinates) -> u64 {
    match op {
        Operand::Reg(r) => frame.regs[r],
        Operand::Imm(bits) => bits,
        Operand::Special(s) => u64::from(match s {
            Special::Tid => at.tid,
            Special::Ntid => at.ntid,
            Special::Ctaid => at.ctaid,
            Special::Nctaid => at.nctaid,
        }),
    }
}

fn f32_of(bits: u64) -> f32 {
    f32::from_bits(bits as u32)
}

fn f64_of(bits: u64) -> f64 {
    f64::from_bits(bits)
}

/// Bits of a value of type `ty`: 32-bit types in the low half, predicates 0 or 1.
fn narrow(ty: Ty, bits: u64) -> u64 {
    match ty.bytes() {
        4 => bits & 0xffff_ffff,
        1 => bits & 1,
        _ => bits,
    }
}

/// An integer value of `ty`, sign-extended when signed.
fn integer(ty: Ty, bits: u64) -> i128 {
    match ty {
        Ty::S32 => i128::from(bits as u32 as i32),
        Ty::S64 => i128::from(bits as i64),
        _ => i128::from(narrow(ty, bits)),
    }
}

/// A float operation in the width of `ty`.
fn float_op(
    ty: Ty,
    a: u64,
    b: u64,
    single: impl Fn(f32, f32) -> f32,
    double: impl Fn(f64, f64) -> f64,
) -> u64 {
    match ty {
        Ty::F32 => u64::from(single(f32_of(a), f32_of(b)).to_bits()),
        _ => double(f64_of(a), f64_of(b)).to_bits(),
    }
}

/// A float value of `ty`, widened (exactly) to f64.
fn float(ty: Ty, bits: u64) -> f64 {
    match ty {
        Ty::F32 => f64::from(f32_of(bits)),
        _ => f64_of(bits),
    }
}

/// PTX `max`/`min` on floats: a NaN side gives the other (`nan`: gives NaN).
fn extremum(ty: Ty, a: u64, b: u64, nan: bool, max: bool) -> u64 {
    let (x, y) = (float(ty, a), float(ty, b));
    if x.is_nan() || y.is_nan() {
        return match (nan, x.is_nan()) {
            (true, _) => canonical_nan(ty),
            (false, true) => b,
            (false, false) => a,
        };
    }
    let pick_a = if max {
        x > y || (x == y && x.is_sign_positive())
    } else {
        x < y || (x == y && x.is_sign_negative())
    };
    if pick_a { a } else { b }
}

fn canonical_nan(ty: Ty) -> u64 {
    match ty {
        Ty::F32 => 0x7fff_ffff,
        _ => 0x7fff_ffff_ffff_ffff,
    }
}

fn compute(inst: &Inst, frame: &Frame, at: Coordinates) -> Result<u64, String> {
    let ty = inst.ty;
    let src = |k: usize| operand(inst.src[k], frame, at);
    let int_op = |f: fn(i128, i128) -> Option<i128>| -> Result<u64, String> {
        let (a, b) = (integer(ty, src(0)), integer(ty, src(1)));
        f(a, b).map(|v| narrow(ty, v as u64)).ok_or_else(|| format!("integer {a} and {b}: undefined result"))
    };
    Ok(match &inst.kind {
        Kind::Mov => narrow(ty, src(0)),
        Kind::Add if ty.is_float() => float_op(ty, src(0), src(1), |a, b| a + b, |a, b| a + b),
        Kind::Sub if ty.is_float() => float_op(ty, src(0), src(1), |a, b| a - b, |a, b| a - b),
        Kind::Mul if ty.is_float() => float_op(ty, src(0), src(1), |a, b| a * b, |a, b| a * b),
        Kind::Div if ty.is_float() => float_op(ty, src(0), src(1), |a, b| a / b, |a, b| a / b),
        Kind::Add => narrow(ty, src(0).wrapping_add(src(1))),
        Kind::Sub => narrow(ty, src(0).wrapping_sub(src(1))),
        Kind::Mul => narrow(ty, src(0).wrapping_mul(src(1))),
        Kind::MulWide => (src(0) & 0xffff_ffff) * (src(1) & 0xffff_ffff),
        Kind::Mad => narrow(ty, src(0).wrapping_mul(src(1)).wrapping_add(src(2))),
        Kind::Div => int_op(|a, b| if b == 0 { None } else { Some(a / b) })?,
        Kind::Rem => int_op(|a, b| if b == 0 { None } else { Some(a % b) })?,
        Kind::Fma => match ty {
            Ty::F32 => u64::from(f32_of(src(0)).mul_add(f32_of(src(1)), f32_of(src(2))).to_bits()),
            _ => f64_of(src(0)).mul_add(f64_of(src(1)), f64_of(src(2))).to_bits(),
        },
        Kind::Neg if ty.is_float() => src(0) ^ if ty == Ty::F32 { 1 << 31 } else { 1 << 63 },
        Kind::Abs if ty.is_float() => src(0) & if ty == Ty::F32 { 0x7fff_ffff } else { u64::MAX >> 1 },
        Kind::Neg => narrow(ty, src(0).wrapping_neg()),
        Kind::Abs => narrow(ty, integer(ty, src(0)).unsigned_abs() as u64),
        Kind::Sqrt => match ty {
            Ty::F32 => u64::from(f32_of(src(0)).sqrt().to_bits()),
            _ => f64_of(src(0)).sqrt().to_bits(),
        },
        Kind::Max { nan } if ty.is_float() => extremum(ty, src(0), src(1), *nan, true),
        Kind::Min { nan } if ty.is_float() => extremum(ty, src(0), src(1), *nan, false),
        Kind::Max { .. } => int_op(|a, b| Some(a.max(b)))?,
        Kind::Min { .. } => int_op(|a, b| Some(a.min(b)))?,
        Kind::And => narrow(ty, src(0) & src(1)),
        Kind::Or => narrow(ty, src(0) | src(1)),
        // Shifts past the width give 0 (or the sign, for a signed right shift), as PTX defines.
        Kind::Shl => {
            let shift = src(1) & 0xffff_ffff;
            if shift >= ty.bytes() as u64 * 8 { 0 } else { narrow(ty, src(0) << shift) }
        }
        Kind::Shr => {
            let shift = (src(1) & 0xffff_ffff).min(ty.bytes() as u64 * 8);
            // An i128 holds the value sign- or zero-extended, so shifting by the full width
            // is defined and gives PTX's result.
            narrow(ty, (integer(ty, src(0)) >> shift) as u64)
        }
        Kind::Setp(cmp) => u64::from(compare(ty, *cmp, src(0), src(1))),
        Kind::Selp => {
            if src(2) & 1 == 1 {
                narrow(ty, src(0))
            } else {
                narrow(ty, src(1))
            }
        }
        Kind::Cvt { from, round, integer: to_integral } => convert(ty, *from, *round, *to_integral, src(0))?,
        other => return Err(format!("{other:?} is not arithmetic")),
    })
}

fn compare(ty: Ty, cmp: Cmp, a: u64, b: u64) -> bool {
    if ty.is_float() {
        let (x, y) = (float(ty, a), float(ty, b));
        let unordered = x.is_nan() || y.is_nan();
        match cmp {
            Cmp::Nan => unordered,
            Cmp::Num => !unordered,
            Cmp::Rel { rel, unordered: u } => {
                if unordered {
                    return u;
                }
                relation(rel, x.partial_cmp(&y).expect("ordered"))
            }
        }
    } else {
        let (x, y) = (integer(ty, a), integer(ty, b));
        match cmp {
            Cmp::Rel { rel, .. } => relation(rel, x.cmp(&y)),
            Cmp::Nan => false,
            Cmp::Num => true,
        }
    }
}

fn relation(rel: Compare, order: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match rel {
        Compare::Lt => order == Less,
        Compare::Le => order != Greater,
        Compare::Gt => order == Greater,
        Compare::Ge => order != Less,
        Compare::Eq => order == Equal,
        Compare::Ne => order != Equal,
    }
}

/// `cvt` from `from` to `to`: floats round by `round` (`to_integral`: to an integral float),
/// floats to integers saturate (NaN gives 0), integers extend by the source's signedness.
fn convert(to: Ty, from: Ty, round: Round, to_integral: bool, bits: u64) -> Result<u64, String> {
    let integral = |x: f64| match round {
        Round::Nearest => x.round_ties_even(),
        Round::Zero => x.trunc(),
        Round::Down => x.floor(),
        Round::Up => x.ceil(),
        Round::None => x,
    };
    Ok(match (from.is_float(), to.is_float()) {
        (true, true) => {
            let x = float(from, bits);
            let x = if to_integral { integral(x) } else { x };
            match to {
                Ty::F32 => {
                    if from == Ty::F64 && !to_integral && !matches!(round, Round::Nearest) {
                        return Err("f64 to f32 only with .rn".into());
                    }
                    u64::from((x as f32).to_bits())
                }
                _ => x.to_bits(),
            }
        }
        (true, false) => {
            let x = float(from, bits);
            if x.is_nan() {
                return Ok(0);
            }
            let (low, high) = match to {
                Ty::S32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
                Ty::S64 => (i64::MIN as f64, i64::MAX as f64),
                Ty::U32 => (0.0, f64::from(u32::MAX)),
                _ => (0.0, u64::MAX as f64),
            };
            let v = integral(x).clamp(low, high);
            let v = if to.is_signed() { v as i64 as u64 } else { v as u64 };
            narrow(to, v)
        }
        (false, true) => {
            let v = integer(from, bits);
            if !matches!(round, Round::Nearest) {
                return Err("integer to float only with .rn".into());
            }
            match to {
                Ty::F32 => u64::from((v as f32).to_bits()),
                _ => (v as f64).to_bits(),
            }
        }
        (false, false) => narrow(to, integer(from, bits) as u64),
    })
}
