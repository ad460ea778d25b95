//! The transcendental functions of fused kernels (exp, log, log1p, tanh, pow), written once
//! as straight-line [`Routine`]s: the same steps are printed as a PTX `.func` by the GPU
//! backend, lowered to SIMD instructions by the CPU backend, and evaluated on the host, so
//! their accuracy is measured against the platform libm here (`tests/math.rs`).
//!
//! f32 follows Cephes' `expf` / `logf` / `tanhf` (range reduction, then a polynomial);
//! f64 follows Cephes' `exp` / `log` / `tanh` (rational approximations). PTX has no f64
//! `ex2`, and its f32 `ex2.approx` / `lg2.approx` are not accurate enough near 1, so
//! nothing here uses the approximate instructions.

// Cephes' coefficients are kept digit for digit as published, so they can be compared.
#![allow(clippy::excessive_precision)]

use natgrad_ir::DType;

/// A value of a routine: the index of the step computing it.
pub type V = usize;

/// A predicate over earlier values (false when a side is NaN, as IEEE orders).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cond {
    /// a < b
    Lt(V, V),
    /// a > b
    Gt(V, V),
    /// a == b
    Eq(V, V),
    /// a is NaN
    IsNan(V),
}

/// One step of a routine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// The argument.
    Arg,
    /// A constant (rounded to the routine's dtype).
    Const(f64),
    /// a + b
    Add(V, V),
    /// a − b
    Sub(V, V),
    /// a · b
    Mul(V, V),
    /// a / b (IEEE)
    Div(V, V),
    /// a · b + c, rounded once
    Fma(V, V, V),
    /// |a|
    Abs(V),
    /// Round to the nearest integer, ties to even.
    Rint(V),
    /// The exponent `e` of `a = m · 2ᵉ`, `m ∈ [0.5, 1)` (normal, finite, non-zero `a`).
    Exponent(V),
    /// The mantissa `m` of the same.
    Mantissa(V),
    /// `a · 2ⁿ` for an integral `n` within twice the normal exponent range, in two exact
    /// scalings (so subnormal results round once).
    Ldexp(V, V),
    /// `cond ? a : b`
    Select(Cond, V, V),
}

/// A straight-line function of one argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Routine {
    /// Element type.
    pub dtype: DType,
    /// Steps in evaluation order (step 0 is the argument).
    pub steps: Vec<Step>,
    /// The step holding the result.
    pub result: V,
}

/// The functions kernels call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Function {
    /// eˣ
    Exp,
    /// ln x
    Log,
    /// ln(1 + x)
    Log1p,
    /// tanh x
    Tanh,
    /// xᵖ for a constant p
    Pow(f64),
}

impl Function {
    /// The PTX `.func` name of this function in `dtype`.
    pub fn symbol(self, dtype: DType) -> String {
        match self {
            Function::Exp => format!("ng_exp_{dtype}"),
            Function::Log => format!("ng_log_{dtype}"),
            Function::Log1p => format!("ng_log1p_{dtype}"),
            Function::Tanh => format!("ng_tanh_{dtype}"),
            Function::Pow(p) => format!("ng_pow_{dtype}_{:016x}", p.to_bits()),
        }
    }

    /// The routine computing this function in `dtype`.
    pub fn routine(self, dtype: DType) -> Routine {
        let mut b = Builder { dtype, steps: vec![Step::Arg] };
        let x = 0;
        let result = match self {
            Function::Exp => b.exp(x),
            Function::Log => b.log(x),
            Function::Log1p => b.log1p(x),
            Function::Tanh => b.tanh(x),
            Function::Pow(p) => b.pow(x, p),
        };
        Routine { dtype, steps: b.steps, result }
    }
}

/// Appends steps; every method returns the value it computed.
struct Builder {
    dtype: DType,
    steps: Vec<Step>,
}

impl Builder {
    fn push(&mut self, step: Step) -> V {
        self.steps.push(step);
        self.steps.len() - 1
    }

    fn c(&mut self, value: f64) -> V {
        self.push(Step::Const(value))
    }

    fn add(&mut self, a: V, b: V) -> V {
        self.push(Step::Add(a, b))
    }

    fn sub(&mut self, a: V, b: V) -> V {
        self.push(Step::Sub(a, b))
    }

    fn mul(&mut self, a: V, b: V) -> V {
        self.push(Step::Mul(a, b))
    }

    fn div(&mut self, a: V, b: V) -> V {
        self.push(Step::Div(a, b))
    }

    fn fma(&mut self, a: V, b: V, c: V) -> V {
        self.push(Step::Fma(a, b, c))
    }

    fn select(&mut self, cond: Cond, a: V, b: V) -> V {
        self.push(Step::Select(cond, a, b))
    }

    /// `((c₀·x + c₁)·x + …)·x + cₙ` by fused multiply-adds.
    fn horner(&mut self, x: V, coefficients: &[f64]) -> V {
        let mut y = self.c(coefficients[0]);
        for &k in &coefficients[1..] {
            let k = self.c(k);
            y = self.fma(y, x, k);
        }
        y
    }

    /// `(((x + c₀)·x + c₁)·x + …)`: a monic polynomial.
    fn horner_monic(&mut self, x: V, coefficients: &[f64]) -> V {
        let k = self.c(coefficients[0]);
        let mut y = self.add(x, k);
        for &k in &coefficients[1..] {
            let k = self.c(k);
            y = self.fma(y, x, k);
        }
        y
    }

    /// Special values: `+∞` above `hi`, 0 below `lo`, NaN kept.
    fn exp(&mut self, x: V) -> V {
        let f32 = self.dtype == DType::F32;
        // Bounds: e^hi is the largest finite value, e^lo rounds to 0.
        let (lo, hi) = if f32 { (-104.0, 88.722_83) } else { (-745.2, 709.782_712_893_384) };
        let (lo, hi) = (self.c(lo), self.c(hi));
        let clamped = self.select(Cond::Gt(x, hi), hi, x);
        let t = self.select(Cond::Lt(clamped, lo), lo, clamped);
        let log2e = self.c(std::f64::consts::LOG2_E);
        let scaled = self.mul(t, log2e);
        let n = self.push(Step::Rint(scaled));
        // r = t − n·ln 2, with ln 2 split in a part exact in n·C1 and a correction.
        let (c1, c2) = if f32 {
            (0.693_359_375, -2.121_944_4e-4)
        } else {
            (6.931_457_519_531_25e-1, 1.428_606_820_309_417_232_12e-6)
        };
        let (minus_c1, minus_c2) = (self.c(-c1), self.c(-c2));
        let r = self.fma(n, minus_c1, t);
        let r = self.fma(n, minus_c2, r);
        let e = if f32 {
            // eʳ = 1 + r + r²·P(r)
            let p = self.horner(
                r,
                &[
                    1.987_569_15e-4,
                    1.398_199_950_7e-3,
                    8.333_451_907_3e-3,
                    4.166_579_589_4e-2,
                    1.666_666_545_9e-1,
                    5.000_000_120_1e-1,
                ],
            );
            let r2 = self.mul(r, r);
            let y = self.fma(p, r2, r);
            let one = self.c(1.0);
            self.add(y, one)
        } else {
            // eʳ = 1 + 2·r·P(r²) / (Q(r²) − r·P(r²))
            let r2 = self.mul(r, r);
            let p = self.horner(
                r2,
                &[
                    1.261_771_930_748_105_908_78e-4,
                    3.029_944_077_074_419_613e-2,
                    9.999_999_999_999_999_999_1e-1,
                ],
            );
            let px = self.mul(r, p);
            let q = self.horner(
                r2,
                &[
                    3.001_985_051_386_644_550_42e-6,
                    2.524_483_403_496_841_041_92e-3,
                    2.272_655_482_081_550_287_66e-1,
                    2.000_000_000_000_000_000_09,
                ],
            );
            let denominator = self.sub(q, px);
            let ratio = self.div(px, denominator);
            let two = self.c(2.0);
            let one = self.c(1.0);
            self.fma(two, ratio, one)
        };
        let scaled = self.push(Step::Ldexp(e, n));
        let infinity = self.c(f64::INFINITY);
        let zero = self.c(0.0);
        let result = self.select(Cond::Gt(x, hi), infinity, scaled);
        let result = self.select(Cond::Lt(x, lo), zero, result);
        self.select(Cond::IsNan(x), x, result)
    }

    /// ln x: −∞ at ±0, NaN below 0, +∞ at +∞, NaN kept; subnormal x scaled first.
    fn log(&mut self, x: V) -> V {
        let f32 = self.dtype == DType::F32;
        let (min_normal, scale, shift) = if f32 {
            (f32::MIN_POSITIVE as f64, 8_388_608.0, -23.0)
        } else {
            (f64::MIN_POSITIVE, 4_503_599_627_370_496.0, -52.0)
        };
        let (min_normal, scale) = (self.c(min_normal), self.c(scale));
        let scaled = self.mul(x, scale);
        let xs = self.select(Cond::Lt(x, min_normal), scaled, x);
        let (shift, no_shift) = (self.c(shift), self.c(0.0));
        let adjust = self.select(Cond::Lt(x, min_normal), shift, no_shift);
        let exponent = self.push(Step::Exponent(xs));
        let e = self.add(exponent, adjust);
        let m = self.push(Step::Mantissa(xs));
        // Bring m into [√½, √2): m ← 2m − 1 and e ← e − 1 below √½, else m ← m − 1.
        let sqrt_half = self.c(std::f64::consts::FRAC_1_SQRT_2);
        let one = self.c(1.0);
        let e_less = self.sub(e, one);
        let e = self.select(Cond::Lt(m, sqrt_half), e_less, e);
        let twice = self.add(m, m);
        let m_small = self.sub(twice, one);
        let m_large = self.sub(m, one);
        let m = self.select(Cond::Lt(m, sqrt_half), m_small, m_large);
        let z = self.mul(m, m);
        let y = if f32 {
            let p = self.horner(
                m,
                &[
                    7.037_683_629_2e-2,
                    -1.151_461_031_0e-1,
                    1.167_699_874_0e-1,
                    -1.242_014_084_6e-1,
                    1.424_932_278_7e-1,
                    -1.666_805_766_5e-1,
                    2.000_071_476_5e-1,
                    -2.499_999_399_3e-1,
                    3.333_333_117_4e-1,
                ],
            );
            let pm = self.mul(p, m);
            self.mul(pm, z)
        } else {
            let p = self.horner(
                m,
                &[
                    1.018_756_638_045_809_317_96e-4,
                    4.974_949_949_767_470_014_25e-1,
                    4.705_791_198_788_817_258_54,
                    1.449_892_253_416_109_308_46e1,
                    1.793_686_785_078_198_163_13e1,
                    7.708_387_337_558_853_916_66,
                ],
            );
            let q = self.horner_monic(
                m,
                &[
                    1.128_735_871_891_674_505_90e1,
                    4.522_791_458_375_322_211_05e1,
                    8.298_752_669_127_766_032_11e1,
                    7.115_447_506_185_638_944_66e1,
                    2.312_516_201_267_653_405_83e1,
                ],
            );
            let mz = self.mul(m, z);
            let ratio = self.div(p, q);
            self.mul(mz, ratio)
        };
        let c2 = self.c(-2.121_944_400_546_905_827_679e-4);
        let y = self.fma(e, c2, y);
        let minus_half = self.c(-0.5);
        let y = self.fma(z, minus_half, y);
        let r = self.add(m, y);
        let c1 = self.c(0.693_359_375);
        let r = self.fma(e, c1, r);
        let (infinity, minus_infinity, zero, nan) =
            (self.c(f64::INFINITY), self.c(f64::NEG_INFINITY), self.c(0.0), self.c(f64::NAN));
        let r = self.select(Cond::Eq(x, infinity), infinity, r);
        let r = self.select(Cond::Lt(x, zero), nan, r);
        let r = self.select(Cond::Eq(x, zero), minus_infinity, r);
        self.select(Cond::IsNan(x), x, r)
    }

    /// ln(1 + x) = ln(u) · x / (u − 1) with u = 1 + x (exact for tiny x), ∞ at ∞.
    fn log1p(&mut self, x: V) -> V {
        let one = self.c(1.0);
        let u = self.add(one, x);
        let d = self.sub(u, one);
        let log_u = self.log(u);
        let ratio = self.div(x, d);
        let r = self.mul(log_u, ratio);
        let zero = self.c(0.0);
        let r = self.select(Cond::Eq(d, zero), x, r);
        let infinity = self.c(f64::INFINITY);
        self.select(Cond::Eq(x, infinity), infinity, r)
    }

    /// tanh x: a polynomial (f32) or rational (f64) below |x| = 0.625, else
    /// `±(1 − 2/(e^{2|x|} + 1))`; NaN kept, ±0 kept.
    fn tanh(&mut self, x: V) -> V {
        let a = self.push(Step::Abs(x));
        let two = self.c(2.0);
        let twice = self.mul(two, a);
        let e = self.exp(twice);
        let one = self.c(1.0);
        let e1 = self.add(e, one);
        let q = self.div(two, e1);
        let large = self.sub(one, q);
        let zero = self.c(0.0);
        let minus = self.sub(zero, large);
        let large = self.select(Cond::Lt(x, zero), minus, large);
        let z = self.mul(x, x);
        let small = if self.dtype == DType::F32 {
            let p = self.horner(
                z,
                &[
                    -5.704_988_727_45e-3,
                    2.063_908_879_54e-2,
                    -5.373_971_555_31e-2,
                    1.333_144_220_36e-1,
                    -3.333_328_194_22e-1,
                ],
            );
            let pz = self.mul(p, z);
            self.fma(pz, x, x)
        } else {
            let p = self.horner(
                z,
                &[
                    -9.643_991_794_250_522_386_28e-1,
                    -9.928_772_310_019_185_865_64e1,
                    -1.614_687_684_417_084_479_52e3,
                ],
            );
            let q = self.horner_monic(
                z,
                &[
                    1.128_116_784_916_329_314_02e2,
                    2.235_488_390_601_004_485_83e3,
                    4.844_063_053_251_254_860_48e3,
                ],
            );
            let pz = self.mul(p, z);
            let ratio = self.div(pz, q);
            self.fma(ratio, x, x)
        };
        let bound = self.c(0.625);
        self.select(Cond::Lt(a, bound), small, large)
    }

    /// xᵖ: exact for p ∈ {0, 1, 2, −1}; otherwise `exp(p · ln x)` (for integral p on |x|,
    /// negated for odd p and x < 0; the sign of a zero result is not kept).
    fn pow(&mut self, x: V, p: f64) -> V {
        match p {
            0.0 => return self.c(1.0),
            1.0 => return x,
            2.0 => return self.mul(x, x),
            -1.0 => {
                let one = self.c(1.0);
                return self.div(one, x);
            }
            _ => {}
        }
        let integral = p.fract() == 0.0;
        let base = if integral { self.push(Step::Abs(x)) } else { x };
        let log = self.log(base);
        let exponent = self.c(p);
        let product = self.mul(exponent, log);
        let r = self.exp(product);
        if integral && (p % 2.0).abs() == 1.0 {
            let zero = self.c(0.0);
            let minus = self.sub(zero, r);
            self.select(Cond::Lt(x, zero), minus, r)
        } else if integral {
            r
        } else {
            // (−∞)ᵖ for non-integral p is ∞ⁿ, not NaN (IEEE pow).
            let minus_infinity = self.c(f64::NEG_INFINITY);
            let of_infinity = self.c(if p > 0.0 { f64::INFINITY } else { 0.0 });
            self.select(Cond::Eq(x, minus_infinity), of_infinity, r)
        }
    }
}

impl Routine {
    /// This routine as a Rust function `fn {name}(x: f32) -> f32` (or f64): straight-line,
    /// branch-free code whose steps are those [`Evaluate::eval`] interprets, written so a
    /// compiler can vectorise a loop over it (no float↔64-bit-integer conversions). The CPU
    /// backend compiles the generated text into its slice routines.
    pub fn to_rust(&self, name: &str) -> String {
        use std::fmt::Write;
        let (t, mantissa_bits, bias) = match self.dtype {
            DType::F32 => ("f32", 23, 127i64),
            DType::F64 => ("f64", 52, 1023),
        };
        let exponent_mask = match self.dtype {
            DType::F32 => "0x7f80_0000".to_string(),
            DType::F64 => "0x7ff0_0000_0000_0000".to_string(),
        };
        let half_exponent = format!("{:#x}", ((bias - 1) as u64) << mantissa_bits);
        let constant = |c: f64| match self.dtype {
            DType::F32 => format!("f32::from_bits({:#010x})", (c as f32).to_bits()),
            DType::F64 => format!("f64::from_bits({:#018x})", c.to_bits()),
        };
        let mut out = String::new();
        let _ = writeln!(out, "#[inline(always)]");
        let _ = writeln!(out, "pub fn {name}(x: {t}) -> {t} {{");
        for (i, step) in self.steps.iter().enumerate() {
            let cond = |c: &Cond| match *c {
                Cond::Lt(a, b) => format!("v{a} < v{b}"),
                Cond::Gt(a, b) => format!("v{a} > v{b}"),
                Cond::Eq(a, b) => format!("v{a} == v{b}"),
                Cond::IsNan(a) => format!("v{a}.is_nan()"),
            };
            let value = match *step {
                Step::Arg => "x".to_string(),
                Step::Const(c) => constant(c),
                Step::Add(a, b) => format!("v{a} + v{b}"),
                Step::Sub(a, b) => format!("v{a} - v{b}"),
                Step::Mul(a, b) => format!("v{a} * v{b}"),
                Step::Div(a, b) => format!("v{a} / v{b}"),
                Step::Fma(a, b, c) => format!("v{a}.mul_add(v{b}, v{c})"),
                Step::Abs(a) => format!("v{a}.abs()"),
                Step::Rint(a) => format!("v{a}.round_ties_even()"),
                Step::Exponent(a) => format!(
                    "((((v{a}.to_bits() & {exponent_mask}) >> {mantissa_bits}) as i32) - {}) as {t}",
                    bias - 1
                ),
                Step::Mantissa(a) => {
                    format!("{t}::from_bits((v{a}.to_bits() & !{exponent_mask}) | {half_exponent})")
                }
                // The two halves of n as integers by the magic-number trick (adding
                // 1.5·2^mantissa_bits puts an integral value in the low mantissa bits), not
                // by float→int conversions, which compilers do not vectorise; equal to the
                // interpreter's for every integral n inside the step's range, and NaN counts
                // as 0 as there.
                Step::Ldexp(a, n) => {
                    let (magic, magic_bits) = match self.dtype {
                        DType::F32 => (constant(12_582_912.0), "0x4b40_0000"),
                        DType::F64 => (constant(6_755_399_441_055_744.0), "0x4338_0000_0000_0000"),
                    };
                    let pow2 = |half: &str| {
                        format!(
                            "{t}::from_bits(({half} + {magic}).to_bits().wrapping_sub({magic_bits}).wrapping_add({bias}) << {mantissa_bits})"
                        )
                    };
                    format!(
                        "{{ let n = if v{n}.is_nan() {{ 0.0 }} else {{ v{n} }}; let first = (n * 0.5).trunc(); \
                         let second = n - first; v{a} * {} * {} }}",
                        pow2("first"),
                        pow2("second")
                    )
                }
                Step::Select(c, a, b) => format!("if {} {{ v{a} }} else {{ v{b} }}", cond(&c)),
            };
            let _ = writeln!(out, "    let v{i}: {t} = {value};");
        }
        let _ = writeln!(out, "    v{}", self.result);
        let _ = writeln!(out, "}}");
        out
    }
}

/// Host evaluation of a routine, step for step as the kernels compute it.
pub trait Evaluate: Copy {
    /// Evaluates `routine` at `x`.
    fn eval(routine: &Routine, x: Self) -> Self;
}

macro_rules! evaluate {
    ($t:ty, $bits:ty, $mantissa_bits:expr, $bias:expr) => {
        impl Evaluate for $t {
            fn eval(routine: &Routine, x: $t) -> $t {
                let pow2 = |k: i64| <$t>::from_bits((((k + $bias) as $bits) << $mantissa_bits) as $bits);
                let exponent_mask: $bits =
                    ((1 << (<$bits>::BITS - 1 - $mantissa_bits)) - 1) << $mantissa_bits;
                let half_exponent: $bits = (($bias - 1) as $bits) << $mantissa_bits;
                let mut v: Vec<$t> = Vec::with_capacity(routine.steps.len());
                for step in &routine.steps {
                    let holds = |c: &Cond| match *c {
                        Cond::Lt(a, b) => v[a] < v[b],
                        Cond::Gt(a, b) => v[a] > v[b],
                        Cond::Eq(a, b) => v[a] == v[b],
                        Cond::IsNan(a) => v[a].is_nan(),
                    };
                    let value = match *step {
                        Step::Arg => x,
                        Step::Const(c) => c as $t,
                        Step::Add(a, b) => v[a] + v[b],
                        Step::Sub(a, b) => v[a] - v[b],
                        Step::Mul(a, b) => v[a] * v[b],
                        Step::Div(a, b) => v[a] / v[b],
                        Step::Fma(a, b, c) => v[a].mul_add(v[b], v[c]),
                        Step::Abs(a) => v[a].abs(),
                        Step::Rint(a) => v[a].round_ties_even(),
                        Step::Exponent(a) => {
                            (((v[a].to_bits() & exponent_mask) >> $mantissa_bits) as i64 - ($bias - 1)) as $t
                        }
                        Step::Mantissa(a) => {
                            <$t>::from_bits((v[a].to_bits() & !exponent_mask) | half_exponent)
                        }
                        Step::Ldexp(a, n) => {
                            let first = (v[n] * 0.5).trunc() as i64;
                            let second = v[n].trunc() as i64 - first;
                            v[a] * pow2(first) * pow2(second)
                        }
                        Step::Select(c, a, b) => {
                            if holds(&c) {
                                v[a]
                            } else {
                                v[b]
                            }
                        }
                    };
                    v.push(value);
                }
                v[routine.result]
            }
        }
    };
}

evaluate!(f32, u32, 23, 127);
evaluate!(f64, u64, 52, 1023);
