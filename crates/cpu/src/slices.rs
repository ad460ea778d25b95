//! The shared math routines over whole slices, compiled by rustc for the widest vectors the
//! CPU has — AVX-512 (16 f32 lanes), AVX2 with FMA (8), or baseline x86-64 — chosen once at
//! run time. Kernels with wide rows call these in place on a row's arguments instead of
//! computing the routines on Cranelift's 128-bit vectors (see [`crate::kernel`]). The
//! routines are `natgrad_lower::math`'s, printed as Rust (`slices_generated.rs`), so the
//! results equal the host evaluation bit for bit on every path.

use std::sync::OnceLock;

use natgrad_ir::DType;
use natgrad_lower::math::Function;

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, unused)]
#[path = "slices_generated.rs"]
mod generated;

/// The vector extensions the slice routines were compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Avx512,
    Avx2,
    Baseline,
}

/// The levels this CPU supports, widest first (baseline always).
fn supported() -> Vec<Level> {
    let mut levels = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::is_x86_feature_detected!("fma");
        if fma
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512bw")
        {
            levels.push(Level::Avx512);
        }
        if fma && std::is_x86_feature_detected!("avx2") {
            levels.push(Level::Avx2);
        }
    }
    levels.push(Level::Baseline);
    levels
}

/// The environment variable that caps the level, as XLA's `--xla_cpu_max_isa` and oneDNN's
/// `ONEDNN_MAX_CPU_ISA` do: `avx512`, `avx2` or `baseline`. Unset, the widest level the CPU
/// has is used. Meant for measuring what a CPU without AVX-512 would see.
pub const MAX_ISA_VARIABLE: &str = "NATGRAD_CPU_MAX_ISA";

impl Level {
    /// Wider levels rank higher.
    fn rank(self) -> u8 {
        match self {
            Level::Avx512 => 2,
            Level::Avx2 => 1,
            Level::Baseline => 0,
        }
    }
}

/// The cap a value of [`MAX_ISA_VARIABLE`] asks for (`None`: no cap).
fn parse_cap(value: Option<&str>) -> Result<Option<Level>, String> {
    let Some(value) = value else { return Ok(None) };
    match value.trim().to_ascii_lowercase().as_str() {
        "avx512" | "avx-512" => Ok(Some(Level::Avx512)),
        "avx2" => Ok(Some(Level::Avx2)),
        "baseline" | "sse2" => Ok(Some(Level::Baseline)),
        other => Err(format!("{MAX_ISA_VARIABLE}={other:?}: expected avx512, avx2 or baseline")),
    }
}

fn cap_from_environment() -> Result<Option<Level>, String> {
    let value = std::env::var(MAX_ISA_VARIABLE).ok();
    parse_cap(value.as_deref())
}

/// Checks [`MAX_ISA_VARIABLE`] (compiling a program calls this, so a bad value is an error
/// before any kernel runs).
pub fn check_max_isa() -> Result<(), natgrad_lower::Error> {
    cap_from_environment()
        .map(|_| ())
        .map_err(|message| natgrad_lower::Error::Backend { backend: "cpu", message })
}

/// The widest level the CPU has, within `cap`.
fn widest(cap: Option<Level>) -> Level {
    let within = |level: &Level| cap.is_none_or(|cap| level.rank() <= cap.rank());
    supported().into_iter().find(within).unwrap_or(Level::Baseline)
}

fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| widest(cap_from_environment().unwrap_or(None)))
}

/// A slice routine's ABI: `xs[i] = f(xs[i])` for the `len` values at `ptr`.
pub type SliceFn = extern "C" fn(*mut u8, usize);

macro_rules! slice_routines {
    ($($name:ident, $at_level:ident: $t:ty => $routine:path;)*) => {
        $(
            /// `xs[i] = routine(xs[i])`, compiled for `level` (which the CPU must have).
            fn $at_level(level: Level, xs: &mut [$t]) {
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,fma")]
                fn wide(xs: &mut [$t]) {
                    xs.iter_mut().for_each(|x| *x = $routine(*x));
                }
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx2,fma")]
                fn narrow(xs: &mut [$t]) {
                    xs.iter_mut().for_each(|x| *x = $routine(*x));
                }
                match level {
                    // SAFETY: callers pass a level the CPU has (detected at run time).
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx512 => unsafe { wide(xs) },
                    // SAFETY: as above.
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx2 => unsafe { narrow(xs) },
                    _ => xs.iter_mut().for_each(|x| *x = $routine(*x)),
                }
            }

            extern "C" fn $name(ptr: *mut u8, len: usize) {
                if len == 0 {
                    return;
                }
                // SAFETY: kernels pass a scratch row of at least `len` elements of this type,
                // used by no one else while the call runs.
                let xs = unsafe { std::slice::from_raw_parts_mut(ptr.cast::<$t>(), len) };
                $at_level(level(), xs);
            }
        )*
    };
}

slice_routines! {
    exp_f32_slice, exp_f32_at: f32 => generated::exp_f32;
    exp_f64_slice, exp_f64_at: f64 => generated::exp_f64;
    log_f32_slice, log_f32_at: f32 => generated::log_f32;
    log_f64_slice, log_f64_at: f64 => generated::log_f64;
    log1p_f32_slice, log1p_f32_at: f32 => generated::log1p_f32;
    log1p_f64_slice, log1p_f64_at: f64 => generated::log1p_f64;
    tanh_f32_slice, tanh_f32_at: f32 => generated::tanh_f32;
    tanh_f64_slice, tanh_f64_at: f64 => generated::tanh_f64;
}

/// The slice routine of `function` in `dtype`, if it has one (pow has none: its routine
/// depends on the exponent).
pub fn routine(function: Function, dtype: DType) -> Option<SliceFn> {
    let f32 = dtype == DType::F32;
    Some(match function {
        Function::Exp if f32 => exp_f32_slice,
        Function::Exp => exp_f64_slice,
        Function::Log if f32 => log_f32_slice,
        Function::Log => log_f64_slice,
        Function::Log1p if f32 => log1p_f32_slice,
        Function::Log1p => log1p_f64_slice,
        Function::Tanh if f32 => tanh_f32_slice,
        Function::Tanh => tanh_f64_slice,
        Function::Pow(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use natgrad_lower::math::{Evaluate, Function};

    use super::*;

    type Case<T> = (Function, fn(Level, &mut [T]));

    fn points() -> Vec<f64> {
        let mut points: Vec<f64> = (0..3001).map(|i| -120.0 + 240.0 * f64::from(i) / 3000.0).collect();
        points.extend((-40..=40).flat_map(|e| [10f64.powi(e), -(10f64.powi(e))]));
        points.extend([0.0, -0.0, 88.73, 709.8, -746.0, 1e-310, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        points
    }

    #[test]
    fn the_level_cap_parses_and_caps() {
        assert_eq!(parse_cap(None), Ok(None));
        assert_eq!(parse_cap(Some("AVX2")), Ok(Some(Level::Avx2)));
        assert_eq!(parse_cap(Some(" baseline ")), Ok(Some(Level::Baseline)));
        assert_eq!(parse_cap(Some("avx512")), Ok(Some(Level::Avx512)));
        let error = parse_cap(Some("avx9")).unwrap_err();
        assert!(error.contains(MAX_ISA_VARIABLE) && error.contains("avx9"), "{error}");
        assert_eq!(widest(Some(Level::Baseline)), Level::Baseline);
        assert_eq!(widest(None), supported()[0]);
        let avx2 = widest(Some(Level::Avx2));
        assert!(avx2.rank() <= 1 && supported().contains(&avx2));
    }

    /// Every routine at every vector level this CPU has equals the host evaluation of the
    /// shared routine bit for bit (NaN for NaN).
    #[test]
    fn every_level_computes_the_shared_routines_bit_for_bit() {
        let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
        let f32_cases: [Case<f32>; 4] = [
            (Function::Exp, exp_f32_at),
            (Function::Log, log_f32_at),
            (Function::Log1p, log1p_f32_at),
            (Function::Tanh, tanh_f32_at),
        ];
        let f64_cases: [Case<f64>; 4] = [
            (Function::Exp, exp_f64_at),
            (Function::Log, log_f64_at),
            (Function::Log1p, log1p_f64_at),
            (Function::Tanh, tanh_f64_at),
        ];
        let points = points();
        for level in supported() {
            for (function, at) in f32_cases {
                let routine = function.routine(DType::F32);
                let mut xs: Vec<f32> = points.iter().map(|&p| p as f32).collect();
                at(level, &mut xs);
                for (&p, &got) in points.iter().zip(&xs) {
                    let want = f32::eval(&routine, p as f32);
                    assert!(
                        same(got.into(), want.into()),
                        "{function:?} f32 {level:?} at {p}: {got} vs {want}"
                    );
                }
            }
            for (function, at) in f64_cases {
                let routine = function.routine(DType::F64);
                let mut xs = points.clone();
                at(level, &mut xs);
                for (&p, &got) in points.iter().zip(&xs) {
                    let want = f64::eval(&routine, p);
                    assert!(same(got, want), "{function:?} f64 {level:?} at {p}: {got} vs {want}");
                }
            }
        }
    }
}
