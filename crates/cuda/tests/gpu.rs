//! The CUDA backend against the reference interpreter and the CPU backend. On a machine
//! without a CUDA driver every test checks the typed "no driver" error instead and says it
//! was skipped (the GPU runs are `scripts/gpu-check.sh`).

use std::sync::Arc;

use natgrad_cuda::{Cuda, device};
use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{Bindings, Builder, DType, Graph, Op, Scalar, Shape, Tensor, eval};
use natgrad_lower::{Backend, CompileOptions, Executable, Partition, Plan};
use rand::{Rng, SeedableRng};

fn compile<T: Scalar>(
    graph: &Graph,
    partition: &Partition,
) -> Result<Arc<dyn Executable<T>>, natgrad_lower::Error> {
    let plan = Arc::new(Plan::build(graph, partition, T::DTYPE, true)?);
    Backend::<T>::compile(&Cuda { ordinal: 0 }, plan, &CompileOptions::default())
}

/// `None` (after checking the error and saying so) when this machine has no GPU.
fn gpu_or_skip<T: Scalar>(graph: &Graph, partition: &Partition) -> Option<Arc<dyn Executable<T>>> {
    match compile::<T>(graph, partition) {
        Ok(program) => Some(program),
        Err(e) if !device::driver_present() => {
            assert_eq!(e.to_string(), "device cuda:0: no CUDA driver (libcuda) on this machine");
            eprintln!("skipped: no CUDA driver on this machine ({e})");
            None
        }
        Err(e) => panic!("compiling for the GPU failed: {e}"),
    }
}

/// Random inputs for every leaf, the GPU's outputs and the interpreter's, compared.
fn check<T: Scalar>(label: &str, graph: &Graph, batch: usize, tol: f64) {
    let Some(program) = gpu_or_skip::<T>(graph, &Partition::single()) else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut session = Arc::clone(&program).session(batch).unwrap();
    let mut bindings = Bindings::new().with_batch(batch);
    for id in graph.node_ids() {
        if let Op::Input { name, shape, .. } | Op::Param { name, shape, .. } = graph.op(id) {
            let dims = shape.resolve(batch);
            let t = Tensor::from_fn(dims, |_| T::from_f64(rng.random_range(-2.0..2.0)));
            session.set(name, t.data()).unwrap();
            bindings.set(name.clone(), t);
        }
    }
    session.run(0).unwrap();
    for (i, expected) in eval(graph, &bindings).unwrap().iter().enumerate() {
        let mut got = vec![T::zero(); expected.data().len()];
        session.read(i, &mut got).unwrap();
        let scale = expected.data().iter().fold(1.0f64, |m, v| m.max(v.as_f64().abs()));
        for (k, (g, w)) in got.iter().zip(expected.data()).enumerate() {
            let (g, w) = (g.as_f64(), w.as_f64());
            assert!(
                (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * scale,
                "{label}: output {i}[{k}] = {g}, interpreter {w}"
            );
        }
    }
}

#[test]
fn elementwise_host_steps_and_gemms_match_the_interpreter() {
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-4)] {
        let b = Builder::new(dtype);
        let x = b.input("x", Shape::batched(&[13]));
        let w = b.param("w", Shape::fixed(&[13, 7]));
        let v = b.param("v", Shape::fixed(&[7]));
        let h = (x.matmul(&w) + &v).sigmoid();
        let outputs = [
            h.clone(),
            h.softplus() * h.tanh(),
            x.exp().log1p(),
            h.softmax(1),
            h.log_softmax(1),
            h.sum(&[0], false),
            h.mean(&[0], true),
            h.max(&[1], false),
            h.transpose(&[1, 0]),
            h.matmul_t(&x, true, false),
        ];
        let graph = b.finish(&outputs.iter().collect::<Vec<_>>()).unwrap();
        for batch in [1, 5, 300] {
            match dtype {
                DType::F64 => check::<f64>("ops f64", &graph, batch, tol),
                DType::F32 => check::<f32>("ops f32", &graph, batch, tol),
            }
        }
    }
}

/// im2col and col2im (stride, padding, odd sizes) and a sigmoid convolution layer.
#[test]
fn convolution_patches_match_the_interpreter() {
    let image = |h: usize, w: usize, c: usize| {
        Shape(vec![
            natgrad_ir::Dim::Batch,
            natgrad_ir::Dim::Fixed(h),
            natgrad_ir::Dim::Fixed(w),
            natgrad_ir::Dim::Fixed(c),
        ])
    };
    let window = natgrad_ir::Window { kernel: [3, 2], stride: [2, 1], padding: [1, 1] };
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-4)] {
        let b = Builder::new(dtype);
        let x = b.input("x", image(7, 5, 2));
        let k = b.param("k", Shape::fixed(&[3, 3, 2, 4]));
        let patches = x.im2col(window);
        let outputs = [
            patches.clone(),
            (&patches * 2.0).col2im(window, [7, 5]),
            x.conv2d(&k, [2, 2], [1, 0]).sigmoid(),
        ];
        let graph = b.finish(&outputs.iter().collect::<Vec<_>>()).unwrap();
        for batch in [1, 3, 300] {
            match dtype {
                DType::F64 => check::<f64>("patches f64", &graph, batch, tol),
                DType::F32 => check::<f32>("patches f32", &graph, batch, tol),
            }
        }
    }
}

#[test]
fn the_fisher_product_matches_the_cpu_backend() {
    let model = nn::mlp(&[20, 16, 10], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let product = natgrad_autodiff::fisher_product(&model).unwrap();
    let partition = Partition::new(product.phases());
    let Some(gpu) = gpu_or_skip::<f64>(&product.graph, &partition) else { return };
    let plan = Arc::new(Plan::build(&product.graph, &partition, DType::F64, true).unwrap());
    let cpu = Backend::<f64>::compile(&natgrad_cpu::Cpu, plan, &CompileOptions::default()).unwrap();
    let batch = 64;
    let mut results = Vec::new();
    for program in [gpu, cpu] {
        let mut session = Arc::clone(&program).session(batch).unwrap();
        let mut rng_values = rand::rngs::StdRng::seed_from_u64(5);
        for names in product.phases() {
            for name in names {
                let ty = &program.plan().leaves[&name];
                let data: Vec<f64> =
                    (0..ty.shape.num_elements(batch)).map(|_| rng_values.random_range(-1.0..1.0)).collect();
                session.set(&name, &data).unwrap();
            }
        }
        session.run(0).unwrap();
        session.run(1).unwrap();
        let mut out = Vec::new();
        for i in 0..product.results.len() {
            let node = program.plan().graph.outputs()[i];
            let mut values = vec![0.0; program.plan().graph.shape(node).num_elements(batch)];
            session.read(i, &mut values).unwrap();
            out.extend(values);
        }
        results.push(out);
    }
    let scale = results[1].iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    for (g, c) in results[0].iter().zip(&results[1]) {
        assert!((g - c).abs() <= 1e-10 * scale, "GPU {g} vs CPU {c}");
    }
}
