//! A [`Routine`] printed as a PTX `.func` taking and returning one float by `.param`.

use natgrad_ir::DType;

use crate::text::{Lines, constant, float};
use natgrad_lower::math::{Cond, Function, Routine, Step};

/// The `.func` computing `function` in `dtype`.
pub fn func(function: Function, dtype: DType) -> String {
    let routine = function.routine(dtype);
    let name = function.symbol(dtype);
    let t = float(dtype);
    let mut lines = Lines::default();
    let values: Vec<String> = (0..routine.steps.len()).map(|_| lines.reg("v")).collect();
    lines.op(format!("ld.param.{t} {}, [{name}_x]", values[0]));
    for (k, step) in routine.steps.iter().enumerate().skip(1) {
        step_text(&mut lines, &routine, &values, k, *step);
    }
    lines.op(format!("st.param.{t} [{name}_r], {}", values[routine.result]));
    lines.op("ret");
    let declarations = lines.declarations(&[("v", t), ("p", "pred"), ("i", integer(dtype)), ("s", t)]);
    format!(".func (.param .{t} {name}_r) {name}(.param .{t} {name}_x)\n{{\n{declarations}{}}}\n", lines.text)
}

/// The signed integer type as wide as `dtype`.
fn integer(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "s32",
        DType::F64 => "s64",
    }
}

fn step_text(lines: &mut Lines, routine: &Routine, v: &[String], k: usize, step: Step) {
    let dtype = routine.dtype;
    let t = float(dtype);
    let (bits, mantissa_bits, bias) = match dtype {
        DType::F32 => ("b32", 23, 127i64),
        DType::F64 => ("b64", 52, 1023i64),
    };
    let i = integer(dtype);
    let d = &v[k];
    match step {
        Step::Arg => unreachable!("the argument is step 0"),
        Step::Const(c) => lines.op(format!("mov.{t} {d}, {}", constant(dtype, c))),
        Step::Add(a, b) => lines.op(format!("add.rn.{t} {d}, {}, {}", v[a], v[b])),
        Step::Sub(a, b) => lines.op(format!("sub.rn.{t} {d}, {}, {}", v[a], v[b])),
        Step::Mul(a, b) => lines.op(format!("mul.rn.{t} {d}, {}, {}", v[a], v[b])),
        Step::Div(a, b) => lines.op(format!("div.rn.{t} {d}, {}, {}", v[a], v[b])),
        Step::Fma(a, b, c) => lines.op(format!("fma.rn.{t} {d}, {}, {}, {}", v[a], v[b], v[c])),
        Step::Abs(a) => lines.op(format!("abs.{t} {d}, {}", v[a])),
        Step::Rint(a) => lines.op(format!("cvt.rni.{t}.{t} {d}, {}", v[a])),
        Step::Exponent(a) => {
            let r = lines.reg("i");
            lines.op(format!("mov.{bits} {r}, {}", v[a]));
            lines.op(format!("shr.u{} {r}, {r}, {mantissa_bits}", &bits[1..]));
            lines.op(format!(
                "and.{bits} {r}, {r}, {}",
                (1i64 << (bits[1..].parse::<i64>().unwrap() - 1 - mantissa_bits)) - 1
            ));
            lines.op(format!("add.{i} {r}, {r}, {}", 1 - bias));
            lines.op(format!("cvt.rn.{t}.{i} {d}, {r}"));
        }
        Step::Mantissa(a) => {
            let r = lines.reg("i");
            let (keep, half) = match dtype {
                DType::F32 => ("0x807FFFFF".to_string(), "0x3F000000".to_string()),
                DType::F64 => ("0x800FFFFFFFFFFFFF".to_string(), "0x3FE0000000000000".to_string()),
            };
            lines.op(format!("mov.{bits} {r}, {}", v[a]));
            lines.op(format!("and.{bits} {r}, {r}, {keep}"));
            lines.op(format!("or.{bits} {r}, {r}, {half}"));
            lines.op(format!("mov.{bits} {d}, {r}"));
        }
        Step::Ldexp(a, n) => {
            // 2^first · 2^second with first = trunc(n/2): both factors are normal.
            let (half, first, second) = (lines.reg("s"), lines.reg("i"), lines.reg("i"));
            lines.op(format!("mul.rn.{t} {half}, {}, {}", v[n], constant(dtype, 0.5)));
            lines.op(format!("cvt.rzi.{i}.{t} {first}, {half}"));
            lines.op(format!("cvt.rzi.{i}.{t} {second}, {}", v[n]));
            lines.op(format!("sub.{i} {second}, {second}, {first}"));
            let mut factors = Vec::new();
            for r in [first, second] {
                let factor = lines.reg("s");
                lines.op(format!("add.{i} {r}, {r}, {bias}"));
                lines.op(format!("shl.{bits} {r}, {r}, {mantissa_bits}"));
                lines.op(format!("mov.{bits} {factor}, {r}"));
                factors.push(factor);
            }
            lines.op(format!("mul.rn.{t} {d}, {}, {}", v[a], factors[0]));
            lines.op(format!("mul.rn.{t} {d}, {d}, {}", factors[1]));
        }
        Step::Select(cond, a, b) => {
            let p = lines.reg("p");
            match cond {
                Cond::Lt(x, y) => lines.op(format!("setp.lt.{t} {p}, {}, {}", v[x], v[y])),
                Cond::Gt(x, y) => lines.op(format!("setp.gt.{t} {p}, {}, {}", v[x], v[y])),
                Cond::Eq(x, y) => lines.op(format!("setp.eq.{t} {p}, {}, {}", v[x], v[y])),
                Cond::IsNan(x) => lines.op(format!("setp.nan.{t} {p}, {}, {}", v[x], v[x])),
            }
            lines.op(format!("selp.{t} {d}, {}, {}, {p}", v[a], v[b]));
        }
    }
}
