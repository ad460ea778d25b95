//! The GPU math routines, evaluated step for step on the host, against the platform libm
//! (what the CPU backend and the interpreter call): errors in units in the last place.

use natgrad_ir::DType;
use natgrad_lower::math::{Evaluate, Function};

/// Distance in representable values (0 when both are NaN or equal infinities).
fn ulps_f32(a: f32, b: f32) -> u64 {
    if (a.is_nan() && b.is_nan()) || a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    let key = |x: f32| if x.is_sign_negative() { -(x.abs().to_bits() as i64) } else { x.to_bits() as i64 };
    key(a).abs_diff(key(b))
}

fn ulps_f64(a: f64, b: f64) -> u64 {
    if (a.is_nan() && b.is_nan()) || a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    let key = |x: f64| if x.is_sign_negative() { -(x.abs().to_bits() as i128) } else { x.to_bits() as i128 };
    key(a).abs_diff(key(b)) as u64
}

/// Points spread over `lo..hi` plus the special values.
fn points(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let mut out: Vec<f64> = (0..=n).map(|i| lo + (hi - lo) * i as f64 / n as f64).collect();
    out.extend([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
    out
}

fn worst_f32(function: Function, reference: fn(f32) -> f32, xs: &[f64]) -> (u64, f32) {
    let routine = function.routine(DType::F32);
    xs.iter()
        .map(|&x| x as f32)
        .map(|x| (ulps_f32(f32::eval(&routine, x), reference(x)), x))
        .max_by_key(|p| p.0)
        .unwrap()
}

fn worst_f64(function: Function, reference: fn(f64) -> f64, xs: &[f64]) -> (u64, f64) {
    let routine = function.routine(DType::F64);
    xs.iter().map(|&x| (ulps_f64(f64::eval(&routine, x), reference(x)), x)).max_by_key(|p| p.0).unwrap()
}

/// A function, its libm references in f32 and f64, and where to compare.
type Case = (Function, fn(f32) -> f32, fn(f64) -> f64, Vec<f64>);

#[test]
fn accuracy_against_libm() {
    let cases: [Case; 5] = [
        (Function::Exp, f32::exp, f64::exp, points(-800.0, 800.0, 200_001)),
        (
            Function::Log,
            f32::ln,
            f64::ln,
            points(-1.0, 1e6, 200_001).into_iter().chain(points(0.0, 3.0, 200_001)).collect(),
        ),
        (
            Function::Log1p,
            f32::ln_1p,
            f64::ln_1p,
            points(-1.5, 10.0, 200_001).into_iter().chain(points(-1e-6, 1e-6, 20_001)).collect(),
        ),
        (
            Function::Tanh,
            f32::tanh,
            f64::tanh,
            points(-25.0, 25.0, 200_001).into_iter().chain(points(-1.0, 1.0, 20_001)).collect(),
        ),
        (Function::Pow(1.5), |x| x.powf(1.5), |x| x.powf(1.5), points(-2.0, 50.0, 100_001)),
    ];
    for (function, f32_ref, f64_ref, xs) in cases {
        let (e32, x32) = worst_f32(function, f32_ref, &xs);
        let (e64, x64) = worst_f64(function, f64_ref, &xs);
        eprintln!("{function:?}: f32 {e32} ulp (at {x32}), f64 {e64} ulp (at {x64})");
        let bound = match function {
            Function::Exp | Function::Log => 1,
            Function::Log1p | Function::Tanh => 2,
            // exp(p·ln x): the rounding of p·ln x is amplified by |p·ln x|.
            Function::Pow(_) => 64,
        };
        assert!(e32 <= bound, "{function:?} f32: {e32} ulp at {x32} (bound {bound})");
        assert!(e64 <= bound, "{function:?} f64: {e64} ulp at {x64} (bound {bound})");
    }
}
