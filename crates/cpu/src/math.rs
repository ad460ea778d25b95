//! The shared math routines ([`natgrad_lower::math`]) as Cranelift instructions: exp, log,
//! log1p, tanh and pow inline in a kernel's loop, on f32x4 / f64x2 vectors or scalars, step
//! for step as [`natgrad_lower::math::Evaluate`] computes them on the host (fused
//! multiply-adds included), so compiled kernels and the host evaluation agree bit for bit.
//!
//! Integer work on float bits (exponent, mantissa, `2ⁿ`) avoids float↔int conversions,
//! which x64 has no 64-bit-lane SSE instruction for: an integral float `k` is turned into
//! bits by adding `1.5·2^(mantissa bits)`, whose low mantissa bits then hold `k`.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;
use natgrad_ir::DType;
use natgrad_lower::math::{Cond, Routine, Step};

/// The element layout of one float type.
struct Layout {
    /// The float type of values (vector or scalar).
    float: Type,
    /// The integer type with the same lanes and lane width.
    int: Type,
    /// The scalar integer type of one lane.
    lane_int: Type,
    mantissa_bits: i64,
    bias: i64,
    exponent_mask: i64,
}

impl Layout {
    fn new(dtype: DType, float: Type) -> Layout {
        match dtype {
            DType::F32 => Layout {
                float,
                int: if float.is_vector() { types::I32X4 } else { types::I32 },
                lane_int: types::I32,
                mantissa_bits: 23,
                bias: 127,
                exponent_mask: 0x7f80_0000,
            },
            DType::F64 => Layout {
                float,
                int: if float.is_vector() { types::I64X2 } else { types::I64 },
                lane_int: types::I64,
                mantissa_bits: 52,
                bias: 1023,
                exponent_mask: 0x7ff0_0000_0000_0000,
            },
        }
    }
}

/// Emits `routine` applied to `arg` (of type `float`, a vector or scalar of the routine's
/// dtype) and returns the result.
pub fn emit(b: &mut FunctionBuilder, routine: &Routine, arg: Value, float: Type) -> Value {
    let layout = Layout::new(routine.dtype, float);
    let mut values: Vec<Value> = Vec::with_capacity(routine.steps.len());
    for step in &routine.steps {
        let value = match *step {
            Step::Arg => arg,
            Step::Const(c) => float_const(b, &layout, c),
            Step::Add(x, y) => b.ins().fadd(values[x], values[y]),
            Step::Sub(x, y) => b.ins().fsub(values[x], values[y]),
            Step::Mul(x, y) => b.ins().fmul(values[x], values[y]),
            Step::Div(x, y) => b.ins().fdiv(values[x], values[y]),
            Step::Fma(x, y, z) => b.ins().fma(values[x], values[y], values[z]),
            Step::Abs(x) => b.ins().fabs(values[x]),
            Step::Rint(x) => b.ins().nearest(values[x]),
            Step::Exponent(x) => exponent(b, &layout, values[x]),
            Step::Mantissa(x) => mantissa(b, &layout, values[x]),
            Step::Ldexp(x, n) => ldexp(b, &layout, values[x], values[n]),
            Step::Select(cond, x, y) => {
                let mask = match cond {
                    Cond::Lt(p, q) => b.ins().fcmp(FloatCC::LessThan, values[p], values[q]),
                    Cond::Gt(p, q) => b.ins().fcmp(FloatCC::GreaterThan, values[p], values[q]),
                    Cond::Eq(p, q) => b.ins().fcmp(FloatCC::Equal, values[p], values[q]),
                    Cond::IsNan(p) => b.ins().fcmp(FloatCC::Unordered, values[p], values[p]),
                };
                select(b, float, mask, values[x], values[y])
            }
        };
        values.push(value);
    }
    values[routine.result]
}

/// `mask ? x : y` for a scalar condition or a lane mask (as `fcmp` returns them).
pub fn select(b: &mut FunctionBuilder, float: Type, mask: Value, x: Value, y: Value) -> Value {
    if float.is_vector() {
        let mask = b.ins().bitcast(float, little_endian(), mask);
        b.ins().bitselect(mask, x, y)
    } else {
        b.ins().select(mask, x, y)
    }
}

fn little_endian() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

fn float_const(b: &mut FunctionBuilder, layout: &Layout, c: f64) -> Value {
    let scalar = match layout.lane_int {
        types::I32 => b.ins().f32const(c as f32),
        _ => b.ins().f64const(c),
    };
    if layout.float.is_vector() { b.ins().splat(layout.float, scalar) } else { scalar }
}

fn int_const(b: &mut FunctionBuilder, layout: &Layout, c: i64) -> Value {
    let scalar = b.ins().iconst(layout.lane_int, c);
    if layout.int.is_vector() { b.ins().splat(layout.int, scalar) } else { scalar }
}

fn to_bits(b: &mut FunctionBuilder, layout: &Layout, x: Value) -> Value {
    b.ins().bitcast(layout.int, little_endian(), x)
}

fn from_bits(b: &mut FunctionBuilder, layout: &Layout, bits: Value) -> Value {
    b.ins().bitcast(layout.float, little_endian(), bits)
}

/// The unbiased exponent `e` of `x = m·2ᵉ`, `m ∈ [0.5, 1)`, as a float: the exponent field
/// ORed into the mantissa of `2^(mantissa bits)`, minus that power, minus `bias − 1`.
fn exponent(b: &mut FunctionBuilder, layout: &Layout, x: Value) -> Value {
    let bits = to_bits(b, layout, x);
    let mask = int_const(b, layout, layout.exponent_mask);
    let field = b.ins().band(bits, mask);
    let shift = b.ins().iconst(types::I32, layout.mantissa_bits);
    let field = b.ins().ushr(field, shift);
    let power = float_const(b, layout, (2.0f64).powi(layout.mantissa_bits as i32));
    let power_bits = to_bits(b, layout, power);
    let combined = b.ins().bor(field, power_bits);
    let combined = from_bits(b, layout, combined);
    let e = b.ins().fsub(combined, power);
    let offset = float_const(b, layout, (layout.bias - 1) as f64);
    b.ins().fsub(e, offset)
}

/// The mantissa `m ∈ [0.5, 1)` of `x = m·2ᵉ`: the exponent field replaced by `bias − 1`.
fn mantissa(b: &mut FunctionBuilder, layout: &Layout, x: Value) -> Value {
    let bits = to_bits(b, layout, x);
    let keep = int_const(b, layout, !layout.exponent_mask);
    let kept = b.ins().band(bits, keep);
    let half = int_const(b, layout, (layout.bias - 1) << layout.mantissa_bits);
    let m = b.ins().bor(kept, half);
    from_bits(b, layout, m)
}

/// `2ᵏ` for an integral float `k` with `k + bias` a normal exponent.
fn pow2(b: &mut FunctionBuilder, layout: &Layout, k: Value) -> Value {
    let magic = float_const(b, layout, 1.5 * (2.0f64).powi(layout.mantissa_bits as i32));
    let shifted = b.ins().fadd(k, magic);
    let bits = to_bits(b, layout, shifted);
    let bias = int_const(b, layout, layout.bias);
    let biased = b.ins().iadd(bits, bias);
    let shift = b.ins().iconst(types::I32, layout.mantissa_bits);
    let power = b.ins().ishl(biased, shift);
    from_bits(b, layout, power)
}

/// `x · 2ⁿ` in two scalings by `2^⌊n/2⌋` and `2^(n − ⌊n/2⌋)` (rounded toward zero), as
/// [`Step::Ldexp`] specifies.
fn ldexp(b: &mut FunctionBuilder, layout: &Layout, x: Value, n: Value) -> Value {
    let half = float_const(b, layout, 0.5);
    let halved = b.ins().fmul(n, half);
    let first = b.ins().trunc(halved);
    let whole = b.ins().trunc(n);
    let second = b.ins().fsub(whole, first);
    let p1 = pow2(b, layout, first);
    let p2 = pow2(b, layout, second);
    let scaled = b.ins().fmul(x, p1);
    b.ins().fmul(scaled, p2)
}
