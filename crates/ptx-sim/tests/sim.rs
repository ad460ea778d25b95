//! The simulator on PTX written by natgrad-ptx (math routines, the optimizers' vector
//! kernels) against host computations, and the errors it reports: memory faults, PTX
//! outside the subset, barriers that threads reach apart.

use natgrad_ir::DType;
use natgrad_lower::math::{Evaluate, Function};
use natgrad_optim::{HostOf, VectorOps};
use natgrad_ptx::Arch;
use natgrad_ptx::launch::float_bits;
use natgrad_ptx_sim::exec::Module;
use natgrad_ptx_sim::memory::Memory;
use natgrad_ptx_sim::{SimVector, SimVectors, sim_vectors};
use rand::{Rng, SeedableRng};

/// A buffer holding `values` (as f64 or f32 bits).
fn upload(memory: &mut Memory, dtype: DType, values: &[f64]) -> u64 {
    let size = dtype.size_bytes();
    let address = memory.allocate(values.len() * size);
    for (i, &v) in values.iter().enumerate() {
        memory.store(address + (i * size) as u64, size, float_bits(dtype, v)).unwrap();
    }
    address
}

fn download(memory: &Memory, dtype: DType, address: u64, len: usize) -> Vec<f64> {
    let size = dtype.size_bytes();
    (0..len)
        .map(|i| {
            let raw = memory.load(address + (i * size) as u64, size).unwrap();
            match dtype {
                DType::F32 => f64::from(f32::from_bits(raw as u32)),
                DType::F64 => f64::from_bits(raw),
            }
        })
        .collect()
}

/// A module with `function`'s `.func` and an entry `apply(x, out, n)` calling it per element.
fn routine_module(function: Function, dtype: DType) -> String {
    let t = dtype.name();
    let size = dtype.size_bytes();
    let symbol = function.symbol(dtype);
    format!(
        ".version 8.0\n.target sm_90\n.address_size 64\n\n{}\n\
         .visible .entry apply(\n\t.param .u64 apply_x,\n\t.param .u64 apply_out,\n\t.param .u64 apply_n\n)\n{{\n\
         \t.reg .b64 %rd<6>;\n\t.reg .{t} %f<2>;\n\t.reg .pred %p0;\n\t.reg .b32 %r<2>;\n\
         \tld.param.u64 %rd0, [apply_x];\n\tld.param.u64 %rd1, [apply_out];\n\tld.param.u64 %rd2, [apply_n];\n\
         \tmov.u32 %r0, %ctaid.x;\n\tmov.u32 %r1, %ntid.x;\n\tmul.wide.u32 %rd3, %r0, %r1;\n\
         \tmov.u32 %r0, %tid.x;\n\tcvt.u64.u32 %rd4, %r0;\n\tadd.u64 %rd3, %rd3, %rd4;\n\
         \tsetp.ge.u64 %p0, %rd3, %rd2;\n\t@%p0 bra $END;\n\
         \tmad.lo.u64 %rd4, %rd3, {size}, %rd0;\n\tld.global.{t} %f0, [%rd4];\n\
         \t{{\n\t.param .{t} arg;\n\t.param .{t} result;\n\tst.param.{t} [arg], %f0;\n\
         \tcall.uni (result), {symbol}, (arg);\n\tld.param.{t} %f1, [result];\n\t}}\n\
         \tmad.lo.u64 %rd5, %rd3, {size}, %rd1;\n\tst.global.{t} [%rd5], %f1;\n$END:\n\tret;\n}}\n",
        natgrad_ptx::func::func(function, dtype)
    )
}

/// Points over `range` and the special values.
fn points(range: (f64, f64), count: usize) -> Vec<f64> {
    let mut xs: Vec<f64> =
        (0..count).map(|i| range.0 + (range.1 - range.0) * i as f64 / (count - 1) as f64).collect();
    xs.extend([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
    xs
}

/// Every math routine's PTX `.func`, run by the simulator, gives the host evaluation of the
/// same routine bit for bit — so the accuracy measured for the host routines (docs/benchmarks.md)
/// is the GPU kernels' accuracy.
#[test]
fn ptx_math_routines_equal_the_host_routines_bit_for_bit() {
    let cases = [
        (Function::Exp, (-800.0, 800.0)),
        (Function::Log, (-1.0, 1e6)),
        (Function::Log1p, (-1.5, 10.0)),
        (Function::Tanh, (-25.0, 25.0)),
        (Function::Pow(1.5), (-2.0, 50.0)),
    ];
    for (function, range) in cases {
        for dtype in [DType::F32, DType::F64] {
            let module = Module::parse(&routine_module(function, dtype)).unwrap();
            let xs = points(range, 20_001);
            let mut memory = Memory::default();
            let x = upload(&mut memory, dtype, &xs);
            let out = memory.allocate(xs.len() * dtype.size_bytes());
            let blocks = xs.len().div_ceil(256) as u32;
            module.launch(&mut memory, "apply", blocks, 256, &[x, out, xs.len() as u64]).unwrap();
            let got = download(&memory, dtype, out, xs.len());
            let routine = function.routine(dtype);
            for (&x, &g) in xs.iter().zip(&got) {
                let (want, got) = match dtype {
                    DType::F32 => (f64::from(f32::eval(&routine, x as f32)), g),
                    DType::F64 => (f64::eval(&routine, x), g),
                };
                assert!(
                    want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()),
                    "{function:?} {dtype} at {x}: PTX {got}, host routine {want}"
                );
            }
        }
    }
}

/// The optimizers' device vectors (`natgrad_ptx::device_vectors`, the code the CUDA
/// runtime runs, here on the simulator's runtime) against `HostOf`'s operations:
/// elementwise ones bit for bit (same order, no fused multiply-adds), `ng_dot`'s block
/// partials (a shared-memory tree behind barriers, grid-stride beyond 1024 blocks) within
/// rounding of the host's sum, `ng_shifted_power` within a few ulp of `powf`; a length
/// mismatch is kept as an error for `check`.
#[test]
fn device_vectors_compute_the_host_operations() {
    for n in [1usize, 1000, 300_000] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
        let a: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        let b: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..3.0)).collect();
        vectors_agree::<f32>(&a, &b);
        vectors_agree::<f64>(&a, &b);
    }
}

fn vectors_agree<T: natgrad_ir::Scalar>(a: &[f64], b: &[f64]) {
    let (host, device) = (HostOf::<T>::new(), sim_vectors::<T>().unwrap());
    let (ha, hb): (Vec<T>, Vec<T>) = (host.vector_from_f64(a), host.vector_from_f64(b));
    let (da, db) = (device.vector_from_f64(a), device.vector_from_f64(b));
    let label = format!("{}, n = {}", T::DTYPE, a.len());
    let exact = |what: &str, device: Vec<f64>, host: Vec<f64>| {
        for (i, (d, h)) in device.iter().zip(&host).enumerate() {
            assert_eq!(d.to_bits(), h.to_bits(), "{what} ({label}) [{i}]: device {d}, host {h}");
        }
    };
    let (alpha, beta) = (0.37, -1.3);
    let both = |op: &dyn Fn(&HostOf<T>, &mut Vec<T>), dop: &dyn Fn(&SimVectors<T>, &mut SimVector<T>)| {
        let (mut h, mut d) = (hb.clone(), device.vector_from_f64(b));
        op(&host, &mut h);
        dop(&device, &mut d);
        (device.to_f64(&d), host.to_f64(&h))
    };
    let (d, h) = both(&|o, y| o.axpy(alpha, &ha, y), &|o, y| o.axpy(alpha, &da, y));
    exact("axpy", d, h);
    let (d, h) = both(&|o, y| o.axpby(alpha, &ha, beta, y), &|o, y| o.axpby(alpha, &da, beta, y));
    exact("axpby", d, h);
    let (d, h) = both(&|o, y| o.scale(beta, y), &|o, y| o.scale(beta, y));
    exact("scale", d, h);
    let (d, h) = both(&|o, y| o.fill(y, alpha), &|o, y| o.fill(y, alpha));
    exact("fill", d, h);
    let (d, h) = both(&|o, y| o.mul(&ha, &hb, y), &|o, y| o.mul(&da, &db, y));
    exact("mul", d, h);
    let (d, h) = both(&|o, y| o.copy(&ha, y), &|o, y| o.copy(&da, y));
    exact("copy", d, h);
    let (d, h) =
        both(&|o, y| o.shifted_power(&hb, 0.25, -0.75, y), &|o, y| o.shifted_power(&db, 0.25, -0.75, y));
    let ulp = match T::DTYPE {
        DType::F32 => f64::from(f32::EPSILON),
        DType::F64 => f64::EPSILON,
    };
    for (i, (d, h)) in d.iter().zip(&h).enumerate() {
        assert!((d - h).abs() <= 8.0 * ulp * h.abs(), "shifted_power ({label}) [{i}]: device {d}, host {h}");
    }
    let (on_device, on_host) = (device.dot(&da, &db), host.dot(&ha, &hb));
    let scale: f64 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    assert!(
        (on_device - on_host).abs() <= 1e-13 * scale,
        "dot ({label}): device {on_device}, host {on_host}"
    );
    device.check().unwrap();

    let mut short = device.zeros(a.len() + 1);
    device.axpy(1.0, &da, &mut short);
    assert!(device.dot(&da, &short).is_nan());
    let error = device.check().unwrap_err().to_string();
    assert!(
        error.contains(&format!("axpby of device vectors of lengths [{}, {}]", a.len(), a.len() + 1)),
        "{error}"
    );
}

/// A launch whose buffers are shorter than `n` faults on the first element past the end,
/// with a message naming the access and the allocation (what memcheck reports on a GPU).
#[test]
fn an_access_outside_an_allocation_is_an_error() {
    let module = Module::parse(&natgrad_ptx::vectors::module(DType::F32, Arch::Sm90)).unwrap();
    let mut memory = Memory::default();
    let (x, y) = (memory.allocate(100 * 4), memory.allocate(100 * 4));
    let error = module.launch(&mut memory, "ng_axpy", 1, 256, &[x, y, 101, 0]).unwrap_err();
    assert!(error.contains("ng_axpy, block 0, thread 100"), "{error}");
    assert!(error.contains("global load: 4 bytes at") && error.contains("outside the allocation"), "{error}");
    let error = module.launch(&mut memory, "ng_axpy", 1, 256, &[x, y, 100]).unwrap_err();
    assert_eq!(error, "ng_axpy takes 4 parameters, 3 given");
}

const KERNEL_HEAD: &str = ".version 8.0\n.target sm_90\n.address_size 64\n\n.visible .entry k(\n\t.param .u64 k_out\n)\n{\n\t.reg .b32 %r<2>;\n\t.reg .pred %p<2>;\n\t.reg .f32 %f<2>;\n";

/// An instruction the emitter never writes is refused with its line, not guessed at.
#[test]
fn ptx_outside_the_subset_is_a_parse_error() {
    let text = format!("{KERNEL_HEAD}\tex2.approx.f32 %f1, %f0;\n\tret;\n}}\n");
    let error = Module::parse(&text).err().unwrap().to_string();
    assert_eq!(
        error,
        "PTX line 12 `ex2.approx.f32 %f1, %f0;`: `ex2.approx.f32` is not in the simulated subset"
    );
}

/// Threads of a block that wait at different `bar.sync`s (undefined on a GPU) are an error.
#[test]
fn threads_waiting_at_different_barriers_is_an_error() {
    let body = "\tmov.u32 %r0, %tid.x;\n\tsetp.lt.u32 %p0, %r0, 16;\n\t@%p0 bra $LOW;\n\tbar.sync 0;\n\tret;\n$LOW:\n\tbar.sync 0;\n\tret;\n}\n";
    let module = Module::parse(&format!("{KERNEL_HEAD}{body}")).unwrap();
    let mut memory = Memory::default();
    let error = module.launch(&mut memory, "k", 1, 32, &[0]).unwrap_err();
    assert_eq!(error, "k, block 0, thread 16: threads of one block wait at different barriers");
}
