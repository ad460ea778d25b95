//! The CPU backend's own worker pool: sized by `CompileOptions::threads` with no
//! environment variable, and GEMMs split across it give the interpreter's values.

use std::sync::Arc;

use natgrad_cpu::Program;
use natgrad_ir::{Bindings, Builder, DType, Shape, Tensor, eval};
use natgrad_lower::{CompileOptions, Partition, Plan, Session as _};

fn compile(graph: &natgrad_ir::Graph, threads: usize) -> Arc<Program<f64>> {
    let plan = Plan::build(graph, &Partition::single(), DType::F64, true).unwrap();
    let options = CompileOptions { threads, ..CompileOptions::default() };
    Arc::new(Program::new(Arc::new(plan), &options).unwrap())
}

#[test]
fn programs_run_on_the_requested_number_of_threads() {
    assert!(std::env::var_os("MATMUL_NUM_THREADS").is_none(), "the test must not rely on the variable");
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[4]));
    let graph = b.finish(&[&x.matmul(&x.transpose(&[1, 0]))]).unwrap();
    for threads in [1, 3, 5] {
        assert_eq!(compile(&graph, threads).threads(), threads);
    }
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = Plan::build(&graph, &Partition::single(), DType::F64, true).unwrap();
    let program = Program::<f64>::new(Arc::new(plan), &CompileOptions::default()).unwrap();
    assert_eq!(program.threads(), all, "the default is every logical core");
}

#[test]
fn gemms_split_by_rows_columns_and_inner_extent_match_the_interpreter() {
    // Tall (split by rows) and wide (split by columns) products, with transposes, large
    // enough to be split across 3 workers; transposed-left ones with a long inner extent
    // (weight gradients `hᵀδ`) split along it, unevenly.
    for (m, k, n, ta, tb) in [
        (301, 67, 29, false, false),
        (23, 71, 409, true, false),
        (97, 53, 211, false, true),
        (37, 1001, 43, true, false),
        (29, 997, 31, true, true),
    ] {
        let b = Builder::new(DType::F64);
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let a = b.input("a", Shape::fixed(&a_shape));
        let bb = b.input("b", Shape::fixed(&b_shape));
        let graph = b.finish(&[&a.matmul_t(&bb, ta, tb)]).unwrap();
        let values = |len: usize, seed: usize| -> Vec<f64> {
            (0..len).map(|i| (((i * 7919 + seed) % 1009) as f64 / 1009.0) - 0.5).collect()
        };
        let (av, bv) = (values(m * k, 1), values(k * n, 2));
        let program = compile(&graph, 3);
        let mut session = program.open_session(1).unwrap();
        session.set("a", &av).unwrap();
        session.set("b", &bv).unwrap();
        session.run(0).unwrap();
        let bindings = Bindings::new()
            .with("a", Tensor::new(a_shape.to_vec(), av).unwrap())
            .with("b", Tensor::new(b_shape.to_vec(), bv).unwrap());
        let expected = eval(&graph, &bindings).unwrap().remove(0);
        let got = session.output(0).unwrap();
        assert_eq!(got.len(), m * n);
        for (i, (g, e)) in got.iter().zip(expected.data()).enumerate() {
            assert!(
                (g - e).abs() <= 1e-12 * e.abs().max(1.0),
                "({m}×{k}·{k}×{n}, {ta}, {tb})[{i}]: {g} vs {e}"
            );
        }
    }
}

#[test]
fn column_sums_fused_into_kernels_match_the_interpreter() {
    use natgrad_lower::{Executable as _, Work};
    // Bias-gradient shapes: sums and means over the batch of elementwise values, 101
    // columns (a vector tail) and 400 rows (split across 3 workers).
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[101]));
    let v = b.input("v", Shape::fixed(&[101]));
    let delta = (&x * &v).sigmoid() * &x;
    let sum = delta.sum(&[0], false);
    let mean = delta.mean(&[0], true);
    let graph = b.finish(&[&delta, &sum, &mean]).unwrap();
    let program = compile(&graph, 3);
    let plan = program.plan();
    assert!(
        !plan.units.iter().any(|u| matches!(u.work, Work::Reduce { .. })),
        "the sums should be fused into the kernel"
    );
    let batch = 400;
    let xs: Vec<f64> = (0..batch * 101).map(|i| ((i * 7919 % 2003) as f64 / 2003.0 - 0.5) * 6.0).collect();
    let vs: Vec<f64> = (0..101).map(|i| (i as f64 / 101.0) - 0.3).collect();
    let mut session = program.open_session(batch).unwrap();
    session.set("x", &xs).unwrap();
    session.set("v", &vs).unwrap();
    session.run(0).unwrap();
    let bindings = Bindings::new()
        .with_batch(batch)
        .with("x", Tensor::new(vec![batch, 101], xs).unwrap())
        .with("v", Tensor::new(vec![101], vs).unwrap());
    let expected = eval(&graph, &bindings).unwrap();
    for (i, e) in expected.iter().enumerate() {
        let got = session.output(i).unwrap();
        assert_eq!(got.len(), e.data().len(), "output {i}");
        for (k, (g, w)) in got.iter().zip(e.data()).enumerate() {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "output {i}[{k}]: {g} vs {w}");
        }
    }
}
