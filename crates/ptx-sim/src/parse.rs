//! PTX text to decoded functions: registers and parameters resolved to slots, labels to
//! instruction indices, operands to registers, immediates, special registers or
//! addresses. Strict: an instruction outside the subset natgrad-ptx emits is an error
//! naming its line, so the simulator never guesses.

use std::collections::HashMap;

use natgrad_ir::Compare;

/// A PTX type suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Untyped 32 bits.
    B32,
    /// Untyped 64 bits.
    B64,
    /// Unsigned 32 bits.
    U32,
    /// Unsigned 64 bits.
    U64,
    /// Signed 32 bits.
    S32,
    /// Signed 64 bits.
    S64,
    /// IEEE single.
    F32,
    /// IEEE double.
    F64,
    /// A predicate.
    Pred,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "b32" => Ty::B32,
            "b64" => Ty::B64,
            "u32" => Ty::U32,
            "u64" => Ty::U64,
            "s32" => Ty::S32,
            "s64" => Ty::S64,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            "pred" => Ty::Pred,
            _ => return None,
        })
    }

    /// Size in bytes of a value in memory.
    pub fn bytes(self) -> usize {
        match self {
            Ty::B32 | Ty::U32 | Ty::S32 | Ty::F32 => 4,
            Ty::B64 | Ty::U64 | Ty::S64 | Ty::F64 => 8,
            Ty::Pred => 1,
        }
    }

    /// Whether it is a float type.
    pub fn is_float(self) -> bool {
        matches!(self, Ty::F32 | Ty::F64)
    }

    /// Whether it is a signed integer type.
    pub fn is_signed(self) -> bool {
        matches!(self, Ty::S32 | Ty::S64)
    }
}

/// A special register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// `%tid.x`.
    Tid,
    /// `%ntid.x`.
    Ntid,
    /// `%ctaid.x`.
    Ctaid,
    /// `%nctaid.x`.
    Nctaid,
}

/// An instruction operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A register slot.
    Reg(usize),
    /// An immediate's bits (floats as written: `0f…` f32 bits, `0d…` f64 bits).
    Imm(u64),
    /// A special register.
    Special(Special),
}

/// A memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Address {
    /// `[%reg+offset]`: a register plus a byte offset.
    Reg(usize, i64),
    /// `[name]`: a parameter slot of the function.
    Param(usize),
    /// `[name+offset]` of a shared array: a byte offset in the block's shared memory.
    Shared(u64),
}

/// A state space of loads and stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Device memory.
    Global,
    /// The block's shared memory.
    Shared,
    /// Parameters.
    Param,
}

/// A comparison of `setp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// An order relation.
    Rel {
        /// Which.
        rel: Compare,
        /// True with a NaN operand (`ltu`, `neu`, …); ordered forms are false then.
        unordered: bool,
    },
    /// Either operand is NaN.
    Nan,
    /// Neither is NaN.
    Num,
}

/// Rounding of `cvt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// None written (exact conversions, or integers).
    None,
    /// To nearest even (`rn`, and `rni` to an integer).
    Nearest,
    /// Toward zero (`rz`, `rzi`).
    Zero,
    /// Toward −∞ (`rm`, `rmi`).
    Down,
    /// Toward +∞ (`rp`, `rpi`).
    Up,
}

/// What an instruction does.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `mov` (and `cvta.to.global`, an identity here).
    Mov,
    /// `add`.
    Add,
    /// `sub`.
    Sub,
    /// `mul` (`.lo` for integers, `.rn` for floats).
    Mul,
    /// `mul.wide.u32`: 32 × 32 → 64 bits.
    MulWide,
    /// `mad.lo`: `a·b + c`, integer.
    Mad,
    /// `fma.rn`.
    Fma,
    /// `div`.
    Div,
    /// `rem`.
    Rem,
    /// `neg`.
    Neg,
    /// `abs`.
    Abs,
    /// `sqrt.rn`.
    Sqrt,
    /// `max` (`nan`: the `.NaN` form, NaN when either side is).
    Max {
        /// The `.NaN` form.
        nan: bool,
    },
    /// `min`.
    Min {
        /// The `.NaN` form.
        nan: bool,
    },
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `shl`.
    Shl,
    /// `shr`.
    Shr,
    /// `setp`.
    Setp(Cmp),
    /// `selp`.
    Selp,
    /// `cvt` from the second type to the instruction's.
    Cvt {
        /// The source type.
        from: Ty,
        /// The rounding.
        round: Round,
        /// Rounds to an integral value (`rni`, `rzi`, …).
        integer: bool,
    },
    /// `ld`.
    Ld(Space),
    /// `st`.
    St(Space),
    /// `red.global.add`.
    RedAdd,
    /// `bra` to an instruction index.
    Bra(usize),
    /// `ret`.
    Ret,
    /// `bar.sync`.
    Bar,
    /// `call.uni (result), function, (argument)`: slots of the caller's parameters.
    Call {
        /// The callee.
        function: String,
        /// The caller's parameter slot receiving the result.
        result: usize,
        /// The caller's parameter slot holding the argument.
        argument: usize,
    },
}

/// One decoded instruction.
#[derive(Clone, Debug)]
pub struct Inst {
    /// The guard: predicate slot and whether it is negated (`@!%p`).
    pub guard: Option<(usize, bool)>,
    /// What it does.
    pub kind: Kind,
    /// The (destination) type.
    pub ty: Ty,
    /// The destination register, if any.
    pub dest: Option<usize>,
    /// The destinations of a vector load (`ld….v4 {%a, %b, %c, %d}`), in order.
    pub dests: Vec<usize>,
    /// Source operands (a vector store's lanes, in order).
    pub src: Vec<Operand>,
    /// The memory operand of loads, stores and reductions.
    pub address: Option<Address>,
    /// The source line (for errors).
    pub line: usize,
}

/// A `.func` or `.entry`.
#[derive(Clone, Debug)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// Whether it is a kernel entry.
    pub entry: bool,
    /// Parameter slots of the signature, in order (for a `.func`: the result, then the argument).
    pub params: Vec<usize>,
    /// Parameter slots in all (signature and `{ .param … }` blocks).
    pub param_slots: usize,
    /// Register slots.
    pub registers: usize,
    /// Bytes of shared memory.
    pub shared_bytes: usize,
    /// Whether it synchronises (`bar.sync`).
    pub barrier: bool,
    /// The body.
    pub code: Vec<Inst>,
}

/// A parse error: the line and why.
#[derive(Debug)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// The line's text.
    pub text: String,
    /// Why.
    pub why: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PTX line {} `{}`: {}", self.line, self.text.trim(), self.why)
    }
}

/// The functions of a module, by name.
pub fn module(text: &str) -> Result<HashMap<String, Function>, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut functions = HashMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with(".func") || line.starts_with(".visible .entry") || line.starts_with(".entry") {
            let (function, next) = FunctionParser::parse(&lines, i)?;
            functions.insert(function.name.clone(), function);
            i = next;
        } else {
            i += 1;
        }
    }
    Ok(functions)
}

struct FunctionParser {
    registers: HashMap<String, usize>,
    params: HashMap<String, usize>,
    shared: HashMap<String, u64>,
    shared_bytes: usize,
    labels: HashMap<String, usize>,
    /// Branches to patch: (instruction, label, line).
    branches: Vec<(usize, String, usize)>,
    code: Vec<Inst>,
}

fn error(lines: &[&str], line: usize, why: impl Into<String>) -> ParseError {
    ParseError { line: line + 1, text: lines.get(line).copied().unwrap_or("").to_string(), why: why.into() }
}

impl FunctionParser {
    /// The function whose header starts at line `start`, and the line after it.
    fn parse(lines: &[&str], start: usize) -> Result<(Function, usize), ParseError> {
        let mut p = FunctionParser {
            registers: HashMap::new(),
            params: HashMap::new(),
            shared: HashMap::new(),
            shared_bytes: 0,
            labels: HashMap::new(),
            branches: Vec::new(),
            code: Vec::new(),
        };
        // The header runs to the line holding the opening brace.
        let mut header = String::new();
        let mut i = start;
        while i < lines.len() && lines[i].trim() != "{" {
            header.push_str(lines[i].trim());
            header.push(' ');
            i += 1;
        }
        if i == lines.len() {
            return Err(error(lines, start, "a function without a body"));
        }
        let entry = header.contains(".entry");
        let (name, params) = p.header(&header).map_err(|why| error(lines, start, why))?;
        i += 1;
        let mut depth = 1;
        let mut barrier = false;
        while i < lines.len() {
            let line = lines[i].trim();
            match line {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                "" => {}
                _ if line.ends_with(':') => {
                    p.labels.insert(line.trim_end_matches(':').to_string(), p.code.len());
                }
                _ => {
                    let statement = line.strip_suffix(';').ok_or_else(|| error(lines, i, "no `;`"))?;
                    if let Some(rest) = statement.strip_prefix(".reg ") {
                        p.declare_registers(rest).map_err(|why| error(lines, i, why))?;
                    } else if let Some(rest) = statement.strip_prefix(".param ") {
                        let name = rest.split_whitespace().last().unwrap_or("").to_string();
                        p.param_slot(&name);
                    } else if let Some(rest) = statement.strip_prefix(".shared ") {
                        p.declare_shared(rest).map_err(|why| error(lines, i, why))?;
                    } else {
                        let inst = p.instruction(statement, i).map_err(|why| error(lines, i, why))?;
                        barrier |= inst.kind == Kind::Bar;
                        p.code.push(inst);
                    }
                }
            }
            i += 1;
        }
        for (at, label, line) in std::mem::take(&mut p.branches) {
            let target =
                *p.labels.get(&label).ok_or_else(|| error(lines, line, format!("no label {label}")))?;
            p.code[at].kind = Kind::Bra(target);
        }
        let function = Function {
            name,
            entry,
            params,
            param_slots: p.params.len(),
            registers: p.registers.len(),
            shared_bytes: p.shared_bytes,
            barrier,
            code: p.code,
        };
        Ok((function, i + 1))
    }

    fn param_slot(&mut self, name: &str) -> usize {
        let n = self.params.len();
        *self.params.entry(name.to_string()).or_insert(n)
    }

    /// `.func (.param .f32 r) name(.param .f32 x)` or `.visible .entry name(.param .u64 a, …)`.
    fn header(&mut self, header: &str) -> Result<(String, Vec<usize>), String> {
        let mut rest = header.trim();
        let mut slots = Vec::new();
        if let Some(after) = rest.strip_prefix(".func") {
            rest = after.trim();
            if rest.starts_with('(') {
                let close = rest.find(')').ok_or("an unclosed result list")?;
                for p in rest[1..close].split(',') {
                    let name = p.split_whitespace().last().ok_or("an empty result")?;
                    slots.push(self.param_slot(name));
                }
                rest = rest[close + 1..].trim();
            }
        } else {
            rest = rest.trim_start_matches(".visible").trim().trim_start_matches(".entry").trim();
        }
        let open = rest.find('(').ok_or("no parameter list")?;
        let name = rest[..open].trim().to_string();
        let close = rest.rfind(')').ok_or("an unclosed parameter list")?;
        for p in rest[open + 1..close].split(',').filter(|p| !p.trim().is_empty()) {
            let name = p.split_whitespace().last().ok_or("an empty parameter")?;
            slots.push(self.param_slot(name));
        }
        Ok((name, slots))
    }

    /// `.b64 %rd<20>` or `.pred %done`.
    fn declare_registers(&mut self, rest: &str) -> Result<(), String> {
        let name = rest.split_whitespace().nth(1).ok_or("a register declaration without a name")?;
        if let Some((prefix, count)) = name.split_once('<') {
            let count: usize = count.trim_end_matches('>').parse().map_err(|_| "a bad register count")?;
            for k in 0..count {
                let n = self.registers.len();
                self.registers.insert(format!("{prefix}{k}"), n);
            }
        } else {
            let n = self.registers.len();
            self.registers.insert(name.to_string(), n);
        }
        Ok(())
    }

    /// `.align 8 .f64 name[256]`.
    fn declare_shared(&mut self, rest: &str) -> Result<(), String> {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let ty =
            words.iter().find_map(|w| w.strip_prefix('.').and_then(Ty::parse)).ok_or("no element type")?;
        let array = words.last().ok_or("no name")?;
        let (name, count) = array.split_once('[').ok_or("not an array")?;
        let count: usize = count.trim_end_matches(']').parse().map_err(|_| "a bad length")?;
        let offset = self.shared_bytes.next_multiple_of(16);
        self.shared.insert(name.to_string(), offset as u64);
        self.shared_bytes = offset + count * ty.bytes();
        Ok(())
    }

    fn register(&self, name: &str) -> Result<usize, String> {
        self.registers.get(name).copied().ok_or_else(|| format!("undeclared register {name}"))
    }

    fn operand(&self, text: &str) -> Result<Operand, String> {
        let text = text.trim();
        Ok(match text {
            "%tid.x" => Operand::Special(Special::Tid),
            "%ntid.x" => Operand::Special(Special::Ntid),
            "%ctaid.x" => Operand::Special(Special::Ctaid),
            "%nctaid.x" => Operand::Special(Special::Nctaid),
            _ if text.starts_with('%') => Operand::Reg(self.register(text)?),
            _ => {
                if let Some(&offset) = self.shared.get(text) {
                    return Ok(Operand::Imm(offset));
                }
                Operand::Imm(immediate(text).ok_or_else(|| format!("a bad operand `{text}`"))?)
            }
        })
    }

    fn address(&self, text: &str) -> Result<Address, String> {
        let inner =
            text.trim().strip_prefix('[').and_then(|t| t.strip_suffix(']')).ok_or("not an address")?;
        let (base, offset) = match inner.split_once('+') {
            Some((b, o)) => (b.trim(), o.trim().parse::<i64>().map_err(|_| "a bad offset")?),
            None => (inner.trim(), 0),
        };
        if base.starts_with('%') {
            return Ok(Address::Reg(self.register(base)?, offset));
        }
        if let Some(&at) = self.shared.get(base) {
            return Ok(Address::Shared(at + offset as u64));
        }
        let slot = self.params.get(base).copied().ok_or_else(|| format!("unknown symbol {base}"))?;
        if offset != 0 {
            return Err("an offset into a parameter".into());
        }
        Ok(Address::Param(slot))
    }

    fn instruction(&mut self, statement: &str, line: usize) -> Result<Inst, String> {
        let mut text = statement.trim();
        let mut guard = None;
        if let Some(rest) = text.strip_prefix('@') {
            let (predicate, rest) =
                rest.split_once(char::is_whitespace).ok_or("a guard without instruction")?;
            let (negated, predicate) = match predicate.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, predicate),
            };
            guard = Some((self.register(predicate)?, negated));
            text = rest.trim();
        }
        let (opcode, operands) = match text.split_once(char::is_whitespace) {
            Some((o, rest)) => (o, rest.trim()),
            None => (text, ""),
        };
        let parts: Vec<&str> = opcode.split('.').collect();
        let ty_of = |k: usize| -> Result<Ty, String> {
            parts.get(k).and_then(|s| Ty::parse(s)).ok_or_else(|| format!("no type in `{opcode}`"))
        };
        let last_ty = || ty_of(parts.len() - 1);
        let split: Vec<&str> = split_operands(operands);
        let mut inst = Inst {
            guard,
            kind: Kind::Ret,
            ty: Ty::Pred,
            dest: None,
            dests: Vec::new(),
            src: Vec::new(),
            address: None,
            line,
        };
        let reg_dest = |p: &Self, k: usize| -> Result<usize, String> {
            p.register(split.get(k).ok_or("too few operands")?.trim())
        };
        let sources = |p: &Self, from: usize| -> Result<Vec<Operand>, String> {
            split[from..].iter().map(|s| p.operand(s)).collect()
        };
        let arithmetic = |p: &Self, inst: &mut Inst, kind: Kind, arity: usize| -> Result<(), String> {
            if split.len() != arity + 1 {
                return Err(format!("`{opcode}` takes {} operands", arity + 1));
            }
            inst.kind = kind;
            inst.ty = last_ty()?;
            inst.dest = Some(reg_dest(p, 0)?);
            inst.src = sources(p, 1)?;
            Ok(())
        };
        match parts[0] {
            "mov" | "cvta" => arithmetic(self, &mut inst, Kind::Mov, 1)?,
            "add" => arithmetic(self, &mut inst, Kind::Add, 2)?,
            "sub" => arithmetic(self, &mut inst, Kind::Sub, 2)?,
            "mul" if parts.get(1) == Some(&"wide") => {
                arithmetic(self, &mut inst, Kind::MulWide, 2)?;
                inst.ty = Ty::U64;
            }
            "mul" => arithmetic(self, &mut inst, Kind::Mul, 2)?,
            "mad" => arithmetic(self, &mut inst, Kind::Mad, 3)?,
            "fma" => arithmetic(self, &mut inst, Kind::Fma, 3)?,
            "div" => arithmetic(self, &mut inst, Kind::Div, 2)?,
            "rem" => arithmetic(self, &mut inst, Kind::Rem, 2)?,
            "neg" => arithmetic(self, &mut inst, Kind::Neg, 1)?,
            "abs" => arithmetic(self, &mut inst, Kind::Abs, 1)?,
            "sqrt" => arithmetic(self, &mut inst, Kind::Sqrt, 1)?,
            "max" => arithmetic(self, &mut inst, Kind::Max { nan: parts.contains(&"NaN") }, 2)?,
            "min" => arithmetic(self, &mut inst, Kind::Min { nan: parts.contains(&"NaN") }, 2)?,
            "and" => arithmetic(self, &mut inst, Kind::And, 2)?,
            "or" => arithmetic(self, &mut inst, Kind::Or, 2)?,
            "shl" => arithmetic(self, &mut inst, Kind::Shl, 2)?,
            "shr" => arithmetic(self, &mut inst, Kind::Shr, 2)?,
            "selp" => arithmetic(self, &mut inst, Kind::Selp, 3)?,
            "setp" => {
                let cmp = match parts.get(1).copied().ok_or("setp without a comparison")? {
                    "nan" => Cmp::Nan,
                    "num" => Cmp::Num,
                    c => {
                        let (c, unordered) = match c.strip_suffix('u') {
                            Some(base) if base.len() == 2 => (base, true),
                            _ => (c, false),
                        };
                        let rel = match c {
                            "lt" | "lo" => Compare::Lt,
                            "le" | "ls" => Compare::Le,
                            "gt" | "hi" => Compare::Gt,
                            "ge" | "hs" => Compare::Ge,
                            "eq" => Compare::Eq,
                            "ne" => Compare::Ne,
                            _ => return Err(format!("unknown comparison in `{opcode}`")),
                        };
                        Cmp::Rel { rel, unordered }
                    }
                };
                // `ty` is then the compared type (the destination is a predicate).
                arithmetic(self, &mut inst, Kind::Setp(cmp), 2)?;
            }
            "cvt" => {
                let round = match parts.get(1).copied() {
                    Some("rn") | Some("rni") => Round::Nearest,
                    Some("rz") | Some("rzi") => Round::Zero,
                    Some("rm") | Some("rmi") => Round::Down,
                    Some("rp") | Some("rpi") => Round::Up,
                    _ => Round::None,
                };
                let integer = parts.get(1).is_some_and(|r| r.len() == 3 && r.ends_with('i'));
                let from = last_ty()?;
                arithmetic(self, &mut inst, Kind::Cvt { from, round, integer }, 1)?;
                inst.ty = ty_of(parts.len() - 2)?;
            }
            "ld" | "st" | "red" => {
                let space = match parts.get(1).copied() {
                    Some("global") => Space::Global,
                    Some("shared") => Space::Shared,
                    Some("param") => Space::Param,
                    _ => return Err(format!("unknown state space in `{opcode}`")),
                };
                inst.ty = last_ty()?;
                if split.len() != 2 {
                    return Err(format!("`{opcode}` takes 2 operands"));
                }
                let lanes =
                    parts.iter().find_map(|p| p.strip_prefix('v').and_then(|n| n.parse::<usize>().ok()));
                if lanes.is_some() && (space != Space::Global || parts[0] == "red") {
                    return Err(format!("vector `{opcode}` outside global loads and stores"));
                }
                match parts[0] {
                    "ld" => {
                        inst.kind = Kind::Ld(space);
                        if lanes.is_some() {
                            let list = lane_list(split[0], lanes, opcode)?;
                            inst.dests =
                                list.iter().map(|r| self.register(r.trim())).collect::<Result<_, _>>()?;
                        } else {
                            inst.dest = Some(reg_dest(self, 0)?);
                        }
                        inst.address = Some(self.address(split[1])?);
                    }
                    _ => {
                        if parts[0] == "red" {
                            if space != Space::Global || parts.get(2) != Some(&"add") {
                                return Err(format!("unsupported reduction `{opcode}`"));
                            }
                            inst.kind = Kind::RedAdd;
                        } else {
                            inst.kind = Kind::St(space);
                        }
                        inst.address = Some(self.address(split[0])?);
                        inst.src = if lanes.is_some() {
                            lane_list(split[1], lanes, opcode)?
                                .iter()
                                .map(|r| self.operand(r))
                                .collect::<Result<_, _>>()?
                        } else {
                            vec![self.operand(split[1])?]
                        };
                    }
                }
            }
            "bra" => {
                self.branches.push((self.code.len(), operands.trim().to_string(), line));
                inst.kind = Kind::Bra(usize::MAX);
            }
            "ret" => inst.kind = Kind::Ret,
            "bar" => inst.kind = Kind::Bar,
            "call" => {
                // call.uni (result), function, (argument)
                let names: Vec<String> = split
                    .iter()
                    .map(|s| s.trim().trim_matches(|c| c == '(' || c == ')').to_string())
                    .collect();
                if names.len() != 3 {
                    return Err("`call` takes (result), function, (argument)".into());
                }
                let result = *self.params.get(&names[0]).ok_or("an undeclared result parameter")?;
                let argument = *self.params.get(&names[2]).ok_or("an undeclared argument parameter")?;
                inst.kind = Kind::Call { function: names[1].clone(), result, argument };
            }
            _ => return Err(format!("`{opcode}` is not in the simulated subset")),
        }
        Ok(inst)
    }
}

/// The registers of a vector operand `{%a, %b, …}`, which must number `lanes`.
fn lane_list<'t>(text: &'t str, lanes: Option<usize>, opcode: &str) -> Result<Vec<&'t str>, String> {
    let inner = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    let list: Vec<&str> = inner.ok_or("a vector operand without braces")?.split(',').map(str::trim).collect();
    if Some(list.len()) != lanes {
        return Err(format!("`{opcode}` with {} registers", list.len()));
    }
    Ok(list)
}

/// Operands split at top-level commas (brackets, braces and parentheses kept whole).
fn split_operands(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !text.trim().is_empty() {
        out.push(text[start..].trim());
    }
    out
}

/// The bits of an immediate: decimal (signed), `0x…` hexadecimal, `0f…` f32 or `0d…` f64.
fn immediate(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0f").or_else(|| text.strip_prefix("0F")) {
        return u32::from_str_radix(hex, 16).ok().map(u64::from);
    }
    if let Some(hex) = text.strip_prefix("0d").or_else(|| text.strip_prefix("0D")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    text.parse::<i64>().ok().map(|v| v as u64).or_else(|| text.parse::<u64>().ok())
}
