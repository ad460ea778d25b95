//! Differential tests: compiled programs against the reference interpreter, for every op,
//! awkward sizes (not multiples of the SIMD width, batch 1), broadcasting edge cases, and
//! random graphs. f64 within 1e-12 relative, f32 within 1e-5.

use std::sync::Arc;

use natgrad_cpu::Program;
use natgrad_ir::Scalar;
use natgrad_ir::{Bindings, Builder, Compare, DType, Dim, Expr, Graph, Op, Shape, Tensor, Window, eval};
use natgrad_lower::{CompileOptions, Executable as _, Partition, Plan, Session as _};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

/// Compiles `graph` (all inputs in one phase), runs it at `batch` on random inputs and
/// compares every output with the interpreter.
/// Plans `graph` (every input in one phase) and JIT-compiles it.
fn compile<T: Scalar>(
    graph: &Graph,
    options: &CompileOptions,
) -> Result<Arc<Program<T>>, natgrad_lower::Error> {
    let plan = Plan::build(graph, &Partition::single(), T::DTYPE, options.simplify)?;
    Ok(Arc::new(Program::new(Arc::new(plan), options)?))
}

fn check<T: Scalar>(label: &str, graph: &Graph, batch: usize, seed: u64, tol: f64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let leaves: Vec<(String, Vec<usize>)> = graph
        .node_ids()
        .filter_map(|id| match graph.op(id) {
            Op::Input { name, shape, .. } | Op::Param { name, shape, .. } => {
                Some((name.clone(), shape.resolve(batch)))
            }
            _ => None,
        })
        .collect();
    let values: Vec<Tensor<T>> = leaves
        .iter()
        .map(|(_, s)| Tensor::from_fn(s.clone(), |_| T::from_f64(rng.random_range(-2.0..2.0))))
        .collect();
    let program =
        compile::<T>(graph, &CompileOptions::default()).unwrap_or_else(|e| panic!("{label}: {e}\n{graph}"));
    let mut session = program.open_session(batch).unwrap();
    let mut bindings = Bindings::new().with_batch(batch);
    for ((name, _), v) in leaves.iter().zip(&values) {
        session.set(name, v.data()).unwrap();
        bindings.set(name.clone(), v.clone());
    }
    session.run(0).unwrap();
    let expected = eval(graph, &bindings).unwrap();
    for (i, e) in expected.iter().enumerate() {
        let got = session.output(i).unwrap();
        assert_eq!(got.len(), e.data().len(), "{label}: output {i} length");
        let scale = e.data().iter().fold(1.0f64, |m, v| m.max(v.as_f64().abs()));
        for (k, (g, w)) in got.iter().zip(e.data()).enumerate() {
            let (g, w) = (g.as_f64(), w.as_f64());
            let same = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * scale;
            assert!(
                same,
                "{label} (batch {batch}): output {i}[{k}] = {g}, interpreter {w}\n{}",
                program.plan().graph
            );
        }
    }
}

/// Builds `f` on inputs of the given shapes and checks it in f64 and f32 at several batches.
fn op(label: &str, shapes: &[Shape], f: impl Fn(&[Expr]) -> Expr) {
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let b = Builder::new(dtype);
        let xs: Vec<Expr> =
            shapes.iter().enumerate().map(|(i, s)| b.input(&format!("x{i}"), s.clone())).collect();
        let y = f(&xs);
        let graph = b.finish(&[&y]).unwrap_or_else(|e| panic!("{label}: {e}"));
        for batch in [1, 3, 9] {
            match dtype {
                DType::F64 => check::<f64>(label, &graph, batch, 1, tol),
                DType::F32 => check::<f32>(label, &graph, batch, 1, tol),
            }
        }
    }
}

fn bx(n: usize) -> Shape {
    Shape::batched(&[n])
}

#[test]
fn elementwise_ops() {
    for n in [1, 4, 7, 13] {
        op("neg", &[bx(n)], |x| -&x[0]);
        op("exp", &[bx(n)], |x| x[0].exp());
        op("log", &[bx(n)], |x| x[0].square().log());
        op("log1p", &[bx(n)], |x| x[0].square().log1p());
        op("sqrt", &[bx(n)], |x| x[0].square().sqrt());
        op("pow", &[bx(n)], |x| (x[0].square() + 0.5).pow(1.7));
        op("sigmoid", &[bx(n)], |x| (&x[0] * 20.0).sigmoid());
        op("tanh", &[bx(n)], |x| x[0].tanh());
        op("relu", &[bx(n)], |x| x[0].relu());
        op("softplus", &[bx(n)], |x| (&x[0] * 30.0).softplus());
        op("arith", &[bx(n), bx(n)], |x| (&x[0] + &x[1]) * &x[0] / &(x[1].square() + 1.0) - &x[1]);
        op("maximum", &[bx(n), bx(n)], |x| x[0].maximum(&x[1]));
        op("compare-select", &[bx(n), bx(n)], |x| {
            let gt = x[0].compare(Compare::Gt, &x[1]);
            let le = x[0].compare(Compare::Le, &x[1]);
            gt.select(&x[0], &x[1].exp()) + &le
        });
        op("all-compares", &[bx(n), bx(n)], |x| {
            [Compare::Lt, Compare::Ge, Compare::Eq, Compare::Ne]
                .iter()
                .fold(x[0].clone(), |acc, c| acc + x[0].compare(*c, &x[1]))
        });
    }
}

/// The legalized stable forms against the interpreter on the values where naive forms
/// break: ±0, huge magnitudes, ±∞ and NaN (bit-exact up to the sign of NaN).
#[test]
fn stable_forms_match_the_interpreter_on_special_values() {
    let values =
        [0.0, -0.0, 1e-300, -1e-300, 40.0, -40.0, 800.0, -800.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[values.len()]));
    let y = b.input("y", Shape::batched(&[values.len()]));
    let outputs = [
        x.sigmoid(),
        x.softplus(),
        x.relu(),
        x.compare(Compare::Lt, &y),
        x.compare(Compare::Ge, &y),
        x.compare(Compare::Ne, &y),
        x.select(&y, &x.exp()),
    ];
    let graph = b.finish(&outputs.iter().collect::<Vec<_>>()).unwrap();
    let program = compile::<f64>(&graph, &CompileOptions::default()).unwrap();
    let mut session = program.open_session(values.len()).unwrap();
    let xs: Vec<f64> = (0..values.len()).flat_map(|_| values).collect();
    let ys: Vec<f64> = (0..values.len()).flat_map(|i| std::iter::repeat_n(values[i], values.len())).collect();
    session.set("x", &xs).unwrap();
    session.set("y", &ys).unwrap();
    session.run(0).unwrap();
    let shape = vec![values.len(), values.len()];
    let bindings = Bindings::new()
        .with_batch(values.len())
        .with("x", Tensor::new(shape.clone(), xs.clone()).unwrap())
        .with("y", Tensor::new(shape, ys).unwrap());
    let expected = eval(&graph, &bindings).unwrap();
    for (i, e) in expected.iter().enumerate() {
        for (k, (g, w)) in session.output(i).unwrap().iter().zip(e.data()).enumerate() {
            let same = (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits();
            assert!(same, "output {i} at x = {}: compiled {g}, interpreter {w}", xs[k]);
        }
    }
}

#[test]
fn broadcasting_edge_cases() {
    op("row", &[bx(7), Shape::fixed(&[7])], |x| &x[0] + &x[1]);
    op("col", &[bx(7), bx(1)], |x| &x[0] * &x[1]);
    op("scalar", &[bx(7), Shape::scalar()], |x| &x[0] - &x[1]);
    op("scalar-const", &[bx(5)], |x| &x[0] * 3.0 + 1.0);
    op(
        "middle",
        &[
            Shape(vec![Dim::Fixed(2), Dim::Batch, Dim::Fixed(3)]),
            Shape(vec![Dim::Fixed(2), Dim::Fixed(1), Dim::Fixed(3)]),
        ],
        |x| &x[0] + &x[1],
    );
    op(
        "leading",
        &[Shape(vec![Dim::Fixed(2), Dim::Batch, Dim::Fixed(3)]), Shape(vec![Dim::Batch, Dim::Fixed(1)])],
        |x| &x[0] * &x[1],
    );
    op("broadcast-output", &[Shape::fixed(&[5])], |x| x[0].broadcast_to(bx(5)));
    op("one-by-one", &[bx(1), Shape::fixed(&[1])], |x| &x[0] + &x[1]);
}

#[test]
fn structural_ops() {
    let s3 = || Shape(vec![Dim::Batch, Dim::Fixed(3), Dim::Fixed(5)]);
    op("softmax", &[bx(7)], |x| x[0].softmax(1));
    op("softmax0", &[bx(7)], |x| x[0].softmax(0));
    op("log_softmax", &[bx(7)], |x| (&x[0] * 50.0).log_softmax(1));
    op("transpose", &[s3()], |x| x[0].transpose(&[2, 0, 1]).exp());
    op("reshape", &[bx(15)], |x| x[0].reshape(s3()).sum(&[2], false));
    op("reshape-alias", &[bx(6)], |x| {
        x[0].exp().reshape(Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)])).sigmoid()
    });
    op("sum", &[s3()], |x| x[0].sum(&[0], false));
    op("sum-middle", &[s3()], |x| x[0].sum(&[1], true));
    op("mean", &[s3()], |x| x[0].mean(&[0, 2], false));
    op("max", &[s3()], |x| x[0].max(&[2], true) + &x[0].max(&[0, 1, 2], false));
    op("batch-size", &[bx(3)], |x| &x[0] * &x[0].builder().batch_size());
}

/// Row sums and means large enough to run in several blocks on the worker pool, with row
/// lengths that leave remainders after the vector lanes.
#[test]
fn large_row_reductions_split_over_workers() {
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let b = Builder::new(dtype);
        let x = b.input("x", bx(1003));
        let sums = x.sum(&[1], false);
        let means = (&x * 3.0).mean(&[1], true);
        let graph = b.finish(&[&sums, &means]).unwrap();
        for batch in [70, 300] {
            match dtype {
                DType::F64 => check::<f64>("row sums", &graph, batch, 2, tol),
                DType::F32 => check::<f32>("row sums", &graph, batch, 2, tol),
            }
        }
    }
}

#[test]
fn matmuls() {
    op("mm", &[bx(7), Shape::fixed(&[7, 5])], |x| x[0].matmul(&x[1]));
    op("mm-tb", &[bx(7), Shape::fixed(&[5, 7])], |x| x[0].matmul_t(&x[1], false, true));
    op("mm-ta", &[bx(7), bx(5)], |x| x[0].matmul_t(&x[1], true, false));
    op("mm-ta-tb", &[Shape::fixed(&[7, 3]), bx(7)], |x| x[0].matmul_t(&x[1], true, true));
    op("mlp", &[bx(6), Shape::fixed(&[6, 4]), Shape::fixed(&[4])], |x| {
        (x[0].matmul(&x[1]) + &x[2]).tanh().sum(&[1], false)
    });
}

#[test]
fn convolutions_and_stacked_matmuls() {
    let image =
        |h: usize, w: usize, c: usize| Shape(vec![Dim::Batch, Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(c)]);
    let window = Window { kernel: [3, 2], stride: [2, 1], padding: [1, 1] };
    op("im2col", &[image(5, 4, 2)], |x| x[0].im2col(window));
    op("col2im", &[image(3, 5, 12)], |x| x[0].col2im(window, [5, 4]));
    op("conv2d", &[image(6, 6, 2), Shape::fixed(&[3, 3, 2, 4])], |x| {
        x[0].conv2d(&x[1], [1, 1], [1, 1]).sigmoid()
    });
    op("conv2d-filter-gradient", &[image(5, 5, 1), image(3, 3, 2)], |x| {
        let window = Window { kernel: [3, 3], stride: [2, 2], padding: [1, 1] };
        x[0].im2col(window).matmul_t(&x[1], true, false)
    });
    let stack = Shape(vec![Dim::Batch, Dim::Fixed(3), Dim::Fixed(7)]);
    op("mm-stacked", &[stack.clone(), Shape::fixed(&[7, 5])], |x| x[0].matmul(&x[1]));
    op("mm-stacked-tb", &[stack.clone(), Shape::fixed(&[5, 7])], |x| x[0].matmul_t(&x[1], false, true));
    op("mm-stacked-ta", &[stack.clone(), stack], |x| x[0].matmul_t(&x[1], true, false));
}

/// im2col and col2im over enough images to be split between workers, with windows that
/// overhang the image on every side (some entirely in the padding), against the interpreter.
#[test]
fn large_patches_split_over_workers() {
    let image =
        |h: usize, w: usize, c: usize| Shape(vec![Dim::Batch, Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(c)]);
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        for window in [
            Window { kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
            Window { kernel: [2, 3], stride: [3, 2], padding: [3, 2] },
            Window { kernel: [5, 5], stride: [2, 2], padding: [0, 0] },
        ] {
            let b = Builder::new(dtype);
            let x = b.input("x", image(11, 13, 3));
            let patches = x.im2col(window);
            let back = (&patches * 2.0).col2im(window, [11, 13]);
            let graph = b.finish(&[&patches, &back]).unwrap();
            for batch in [2, 47] {
                match dtype {
                    DType::F64 => check::<f64>("patches", &graph, batch, 4, tol),
                    DType::F32 => check::<f32>("patches", &graph, batch, 4, tol),
                }
            }
        }
    }
}

/// Wide rows compute exp / log / log1p / tanh in stages on slices: nested routines (two and
/// three stages), values used by several stages, several outputs, fused column sums, row
/// widths that leave vector tails, against the interpreter.
#[test]
fn wide_rows_compute_their_routines_in_stages() {
    for n in [32, 37, 130] {
        op("softplus", &[bx(n)], |x| x[0].softplus() - &(&x[0] * 0.5));
        op("nested", &[bx(n), bx(n)], |x| (x[0].tanh().exp() + 1.0).log() * &x[1] + x[1].exp());
        op("three-stages", &[bx(n)], |x| x[0].sigmoid().log1p().exp().tanh());
        op("sum", &[bx(n)], |x| (x[0].exp() * &x[0]).sum(&[0], false));
        op("mean-and-rows", &[bx(n), Shape::fixed(&[n])], |x| {
            (x[0].tanh() + &x[1]).sigmoid().mean(&[0], false) + x[0].log1p().sum(&[1], false).sum(&[0], false)
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_graphs_match_the_interpreter(
        steps in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..10),
        batch in 1usize..6,
        double in any::<bool>(),
    ) {
        let dtype = if double { DType::F64 } else { DType::F32 };
        let graph = natgrad_ir::random_graphs::graph(dtype, 5, &steps).unwrap();
        let label = format!("{steps:?}");
        if double { check::<f64>(&label, &graph, batch, 5, 1e-12) } else { check::<f32>(&label, &graph, batch, 5, 1e-5) }
    }
}

/// Found by fuzzing (`fuzz/seeds/compile_graph/dead-kernel`): without the simplifier, an
/// elementwise node nothing uses became a kernel with no outputs, and running it panicked.
#[test]
fn unsimplified_graphs_with_dead_elementwise_nodes_run() {
    let b = Builder::new(DType::F32);
    let a = b.input("a", bx(3));
    let c = b.input("c", bx(3));
    let _dead = -&c;
    let graph = b.finish(&[&(-&a)]).unwrap();
    let program =
        compile::<f32>(&graph, &CompileOptions { simplify: false, ..CompileOptions::default() }).unwrap();
    let mut session = program.open_session(2).unwrap();
    session.set("a", &[1.0, -2.0, 3.0, 0.5, 0.0, -1.0]).unwrap();
    session.set("c", &[0.0; 6]).unwrap();
    session.run(0).unwrap();
    assert_eq!(session.output(0).unwrap(), vec![-1.0, 2.0, -3.0, -0.5, -0.0, 1.0]);
}

/// Points over several decades of both signs, plus the special values.
fn math_points() -> Vec<f64> {
    let mut points: Vec<f64> = (0..4001).map(|i| -120.0 + 240.0 * i as f64 / 4000.0).collect();
    points.extend((0..2001).map(|i| -3.0 + 6.0 * i as f64 / 2000.0));
    points.extend((-40..=40).flat_map(|e| [10f64.powi(e), -(10f64.powi(e))]));
    points.extend([
        0.0,
        -0.0,
        1.0,
        -1.0,
        88.7,
        88.73,
        709.7,
        709.8,
        -745.0,
        -746.0,
        1e-310,
        f64::MIN_POSITIVE,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ]);
    points
}

/// `f` compiled over `points` in rows of `columns` (7: the routines inline on vector lanes
/// and scalar tails; 37: wide rows, the routines on slices), as f64.
fn compiled_math<T: Scalar>(
    f: &impl Fn(&Expr) -> Expr,
    points: &[f64],
    columns: usize,
    libm_math: bool,
) -> Vec<f64> {
    let b = Builder::new(T::DTYPE);
    let x = b.input("x", Shape::batched(&[columns]));
    let graph = b.finish(&[&f(&x)]).unwrap();
    let rows = points.len().div_ceil(columns);
    let mut values: Vec<T> = points.iter().map(|&p| T::from_f64(p)).collect();
    values.resize(rows * columns, T::one());
    let options = CompileOptions { libm_math, ..CompileOptions::default() };
    let program = compile::<T>(&graph, &options).unwrap();
    let mut session = program.open_session(rows).unwrap();
    session.set("x", &values).unwrap();
    session.run(0).unwrap();
    session.output(0).unwrap()[..points.len()].iter().map(|v| v.as_f64()).collect()
}

fn same_bits(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// The inline math routines compute exactly what the host evaluation of the shared
/// routines computes (whose accuracy against libm `natgrad-lower`'s tests measure), in
/// vector lanes and scalar tails, f32 and f64, and so do the slice routines of wide rows
/// (whichever vector extensions this CPU gives them); with `libm_math` the kernels compute
/// exactly what the interpreter (libm) computes.
#[test]
fn inline_math_equals_the_shared_routines_and_libm_math_equals_libm() {
    use natgrad_lower::math::{Evaluate, Function};
    type Case = (&'static str, Function, fn(&Expr) -> Expr, fn(f64) -> f64, fn(f32) -> f32);
    let cases: [Case; 7] = [
        ("exp", Function::Exp, |x| x.exp(), f64::exp, f32::exp),
        ("log", Function::Log, |x| x.log(), f64::ln, f32::ln),
        ("log1p", Function::Log1p, |x| x.log1p(), f64::ln_1p, f32::ln_1p),
        ("tanh", Function::Tanh, |x| x.tanh(), f64::tanh, f32::tanh),
        ("pow 1.5", Function::Pow(1.5), |x| x.pow(1.5), |x| x.powf(1.5), |x| x.powf(1.5)),
        ("pow 3", Function::Pow(3.0), |x| x.pow(3.0), |x| x.powf(3.0), |x| x.powf(3.0)),
        ("pow -0.5", Function::Pow(-0.5), |x| x.pow(-0.5), |x| x.powf(-0.5), |x| x.powf(-0.5)),
    ];
    let points = math_points();
    for (name, function, f, libm64, libm32) in cases {
        let routine64 = function.routine(DType::F64);
        let routine32 = function.routine(DType::F32);
        let inline64 = compiled_math::<f64>(&f, &points, 7, false);
        let inline32 = compiled_math::<f32>(&f, &points, 7, false);
        let wide64 = compiled_math::<f64>(&f, &points, 37, false);
        let wide32 = compiled_math::<f32>(&f, &points, 37, false);
        let libm_route64 = compiled_math::<f64>(&f, &points, 7, true);
        let libm_route32 = compiled_math::<f32>(&f, &points, 7, true);
        for (k, &p) in points.iter().enumerate() {
            let p32 = p as f32;
            let checks = [
                ("f64 inline", inline64[k], f64::eval(&routine64, p)),
                ("f32 inline", inline32[k], f32::eval(&routine32, p32) as f64),
                ("f64 wide rows", wide64[k], f64::eval(&routine64, p)),
                ("f32 wide rows", wide32[k], f32::eval(&routine32, p32) as f64),
                ("f64 libm", libm_route64[k], libm64(p)),
                ("f32 libm", libm_route32[k], libm32(p32) as f64),
            ];
            for (route, got, want) in checks {
                assert!(same_bits(got, want), "{name}({p}), {route}: compiled {got:e}, expected {want:e}");
            }
        }
    }
}
