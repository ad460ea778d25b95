//! The CUDA backend against the reference interpreter and the CPU backend. On a machine
//! without a CUDA driver the same tests run the same PTX and launch steps on the PTX
//! simulator (`natgrad-ptx-sim`) instead, and say so; the device-vector CG test uses the
//! simulator's device vectors there. The GPU runs are `scripts/gpu-check.sh`.

use std::sync::Arc;

use natgrad_cuda::{Cuda, device};
use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{Bindings, Builder, Compare, DType, Dim, Graph, Op, Scalar, Shape, Tensor, eval};
use natgrad_lower::{Backend, CompileOptions, Executable, Partition, Plan};
use natgrad_ptx::device_vectors::{DeviceVector, DeviceVectors, Runtime};
use natgrad_ptx_sim::Simulator;
use rand::{Rng, SeedableRng};

/// `graph` compiled for GPU 0, or for the PTX simulator when this machine has no driver.
fn compile<T: Scalar>(graph: &Graph, partition: &Partition) -> Arc<dyn Executable<T>> {
    let plan = Arc::new(Plan::build(graph, partition, T::DTYPE, true).unwrap());
    let options = CompileOptions::default();
    let compiled = if device::driver_present() {
        Backend::<T>::compile(&Cuda { ordinal: 0 }, plan, &options)
    } else {
        eprintln!("no CUDA driver on this machine: running on the PTX simulator");
        Backend::<T>::compile(&Simulator::default(), plan, &options)
    };
    compiled.unwrap_or_else(|e| panic!("compiling for the GPU failed: {e}"))
}

#[test]
fn without_a_driver_compiling_for_cuda_is_a_typed_error() {
    if device::driver_present() {
        eprintln!("skipped: this machine has a CUDA driver");
        return;
    }
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[3]));
    let graph = b.finish(&[&x.exp()]).unwrap();
    let plan = Arc::new(Plan::build(&graph, &Partition::single(), DType::F32, true).unwrap());
    let error =
        Backend::<f32>::compile(&Cuda { ordinal: 0 }, plan, &CompileOptions::default()).err().unwrap();
    assert_eq!(error.to_string(), "device cuda:0: no CUDA driver (libcuda) on this machine");
}

/// Random inputs for every leaf, the GPU's outputs and the interpreter's, compared.
fn check<T: Scalar>(label: &str, graph: &Graph, batch: usize, tol: f64) {
    let program = compile::<T>(graph, &Partition::single());
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

/// Every op family of the IR, in one graph: each unary op (NaN where the interpreter gives
/// NaN), each binary op, each comparison through select, softmax and log-softmax over both
/// axes, all four transpose combinations of GEMM, materialised broadcasts, reshapes, 3-D
/// transposes, sums / means / maxima over leading, trailing and middle axes, column sums
/// fused into kernels, the batch size; rows of 11 (one element per thread) and of 12
/// (16-byte vectors per thread).
#[test]
fn every_op_matches_the_interpreter() {
    for ((dtype, tol), n) in
        [(DType::F64, 1e-10), (DType::F32, 1e-4)].into_iter().flat_map(|d| [(d, 11), (d, 12)])
    {
        let b = Builder::new(dtype);
        let x = b.input("x", Shape::batched(&[n]));
        let y = b.input("y", Shape::batched(&[n]));
        let w = b.input("w", Shape::fixed(&[n, n]));
        let column = b.input("column", Shape(vec![Dim::Batch, Dim::Fixed(1)]));
        let cube = b.input("cube", Shape(vec![Dim::Batch, Dim::Fixed(3), Dim::Fixed(5)]));
        let mut outputs = vec![
            -&x,
            x.exp(),
            x.log(),
            x.log1p(),
            x.sqrt(),
            x.square(),
            x.pow(1.5),
            x.pow(-2.0),
            x.sigmoid(),
            x.tanh(),
            x.relu(),
            x.softplus(),
            &x + &y,
            &x - &y,
            &x * &y,
            &x / &y,
            x.maximum(&y),
            x.softmax(0),
            x.log_softmax(0),
            x.softmax(1),
            x.log_softmax(1),
            x.matmul(&w),
            x.matmul_t(&w, false, true),
            x.matmul_t(&y, true, false),
            w.matmul_t(&x, true, true),
            column.broadcast_to(Shape(vec![Dim::Batch, Dim::Fixed(n)])),
            &x * &column,
            x.reshape(Shape(vec![Dim::Batch, Dim::Fixed(n), Dim::Fixed(1)])).sum(&[2], false),
            cube.transpose(&[2, 0, 1]),
            cube.sum(&[0], false),
            cube.mean(&[1], true),
            cube.max(&[2], false),
            cube.sum(&[0, 2], false),
            cube.max(&[0, 1, 2], false),
            &x * &b.batch_size(),
            (&x * &y).sum(&[0], false),
            (&x - &y).mean(&[0], true),
            // A kernel over a [B] row: its width is the batch, so the path is chosen at run time.
            x.sum(&[1], false).tanh() * 2.0,
        ];
        for cmp in [Compare::Lt, Compare::Le, Compare::Gt, Compare::Ge, Compare::Eq, Compare::Ne] {
            outputs.push(x.compare(cmp, &y.relu()).select(&x, &y));
        }
        let graph = b.finish(&outputs.iter().collect::<Vec<_>>()).unwrap();
        for batch in [1, 5, 300] {
            match dtype {
                DType::F64 => check::<f64>("every op f64", &graph, batch, tol),
                DType::F32 => check::<f32>("every op f32", &graph, batch, tol),
            }
        }
    }
}

/// 160 random graphs (`NATGRAD_RANDOM_GRAPHS` to change) of every op family
/// (`natgrad_ir::random_graphs`, the CPU differential tests' generator; the first 48 seeds'
/// PTX is assembled by ptxas in CI), f64 and f32 alternately, at small and multi-block
/// batches.
#[test]
fn random_graphs_match_the_interpreter() {
    let seeds: u64 = std::env::var("NATGRAD_RANDOM_GRAPHS").ok().and_then(|v| v.parse().ok()).unwrap_or(160);
    for seed in 0..seeds {
        let steps = natgrad_ir::random_graphs::seeded_steps(seed);
        let case = seed as usize;
        // f64 rows of 5 and 6, f32 rows of 8 and 37: one element per thread and 16-byte
        // vectors per thread, in both types.
        let width = [5, 8, 6, 37][case % 4];
        let batch = [1, 3, 5, 300][case % 4];
        let label = format!("random graph {seed}: {steps:?}, width {width}, batch {batch}");
        if case.is_multiple_of(2) {
            let graph = natgrad_ir::random_graphs::graph(DType::F64, width, &steps).unwrap();
            check::<f64>(&label, &graph, batch, 1e-10);
        } else {
            let graph = natgrad_ir::random_graphs::graph(DType::F32, width, &steps).unwrap();
            check::<f32>(&label, &graph, batch, 1e-4);
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
    fisher_products_agree(&model, 64);
}

/// The Curves autoencoder's Gauss-Newton product (784-400-…-6-…-784, sigmoid layers,
/// sigmoid cross-entropy outputs), f64, on the GPU and on the CPU backend.
#[test]
fn the_curves_fisher_product_matches_the_cpu_backend() {
    fisher_products_agree(&nn::autoencoder(&nn::CURVES_ENCODER, DType::F64).unwrap(), 100);
}

/// Prepare and apply `model`'s Fisher product on both backends with the same random inputs
/// (every leaf of both phases); the products agree within 1e-10 of their largest value.
fn fisher_products_agree(model: &natgrad_ir::Model, batch: usize) {
    let product = natgrad_autodiff::fisher_product(model).unwrap();
    let partition = Partition::new(product.phases());
    let gpu = compile::<f64>(&product.graph, &partition);
    let plan = Arc::new(Plan::build(&product.graph, &partition, DType::F64, true).unwrap());
    let cpu = Backend::<f64>::compile(&natgrad_cpu::Cpu, plan, &CompileOptions::default()).unwrap();
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

/// `(G + λI) x = b` for a softmax MLP's Fisher product, 25 CG iterations with every vector
/// on the device (`CudaVectors`; the product's tangent inputs and results copied device to
/// device), against the same solve on the CPU backend with host vectors: the same
/// iterations, and x within 1e-8 of its largest element (f64; the dots add in another order).
/// Without a driver, the same on the simulator's device vectors.
#[test]
fn a_cg_solve_on_the_device_matches_the_cpu() {
    if device::driver_present() {
        cg_solve_agrees(natgrad_cuda::cuda_vectors::<f64>(0).unwrap());
    } else {
        cg_solve_agrees(natgrad_ptx_sim::sim_vectors::<f64>().unwrap());
    }
}

fn cg_solve_agrees<R: Runtime>(vectors: DeviceVectors<f64, R>) {
    use natgrad_optim::{CgOptions, HostOf, VectorOps, cg};

    let model = nn::mlp(&[20, 16, 10], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let product = natgrad_autodiff::fisher_product(&model).unwrap();
    let partition = Partition::new(product.phases());
    let gpu = compile::<f64>(&product.graph, &partition);
    let plan = Arc::new(Plan::build(&product.graph, &partition, DType::F64, true).unwrap());
    let cpu = Backend::<f64>::compile(&natgrad_cpu::Cpu, plan, &CompileOptions::default()).unwrap();
    let (batch, damping) = (64, 0.1);
    let names = product.vector_names();
    let lengths: Vec<usize> = names.iter().map(|n| cpu.plan().leaves[n].shape.num_elements(batch)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut random = |len: usize| -> Vec<f64> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let forward: Vec<(String, Vec<f64>)> = product.phases()[0]
        .iter()
        .map(|name| (name.clone(), random(cpu.plan().leaves[name].shape.num_elements(batch))))
        .collect();
    let b = random(lengths.iter().sum());
    let options = CgOptions { max_iterations: 25, tolerance: 0.0, progress: None, save_at: Vec::new() };
    let prepared = |program: &Arc<dyn Executable<f64>>| {
        let mut session = Arc::clone(program).session(batch).unwrap();
        for (name, values) in &forward {
            session.set(name, values).unwrap();
        }
        session.run(0).unwrap();
        session
    };

    let mut session = prepared(&gpu);
    let mut on_device = |v: &DeviceVector<f64, R::Buffer>,
                         out: &mut DeviceVector<f64, R::Buffer>|
     -> Result<(), natgrad_optim::OpError> {
        let mut offset = 0;
        for (name, &len) in names.iter().zip(&lengths) {
            session.set_from_device(name, v, offset, len)?;
            offset += len;
        }
        session.run(1)?;
        offset = 0;
        for (i, &len) in lengths.iter().enumerate() {
            session.read_to_device(i, out, offset, len)?;
            offset += len;
        }
        vectors.axpy(damping, v, out);
        Ok(vectors.check()?)
    };
    let device = cg(&vectors, &mut on_device, &vectors.upload(&b), None, None, &options).unwrap();
    let x_device = vectors.download(&device.x).unwrap();

    let host = HostOf::<f64>::new();
    let mut session = prepared(&cpu);
    let mut on_host = |v: &Vec<f64>, out: &mut Vec<f64>| -> Result<(), natgrad_optim::OpError> {
        let mut offset = 0;
        for (name, &len) in names.iter().zip(&lengths) {
            session.set(name, &v[offset..offset + len])?;
            offset += len;
        }
        session.run(1)?;
        offset = 0;
        for (i, &len) in lengths.iter().enumerate() {
            session.read(i, &mut out[offset..offset + len])?;
            offset += len;
        }
        host.axpy(damping, v, out);
        Ok(())
    };
    let on_cpu = cg(&host, &mut on_host, &b, None, None, &options).unwrap();

    assert_eq!(device.iterations, on_cpu.iterations);
    assert_eq!(device.flag, on_cpu.flag);
    let scale = on_cpu.x.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    for (i, (g, c)) in x_device.iter().zip(&on_cpu.x).enumerate() {
        assert!((g - c).abs() <= 1e-8 * scale, "x[{i}]: device {g}, CPU {c}");
    }
    // The relative residuals agree to 1e-6 of their size, or within 1e-12 once CG has
    // converged to where they are rounding noise (the dots add in another order).
    let residual = |r: f64| (r - on_cpu.relative_residual).abs() <= 1e-6 * on_cpu.relative_residual + 1e-12;
    assert!(
        residual(device.relative_residual),
        "{} vs {}",
        device.relative_residual,
        on_cpu.relative_residual
    );
}

/// TF32 mode (`CompileOptions::tf32`) on an f32 GEMM whose operands need more than TF32's
/// 10 mantissa bits: 1.0001 · 1 summed over 256 terms is 256.0256 exactly in f32 and 256
/// from TF32 operands. The simulator truncates operands as TF32 tensor cores read them; on
/// a GPU cuBLAS may still pick a full-f32 kernel, so there either value passes and the
/// test says which it got. Without the mode the product is exact everywhere.
#[test]
fn tf32_mode_rounds_f32_gemm_operands() {
    let n = 256;
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::fixed(&[n, n]));
    let y = b.input("y", Shape::fixed(&[n, n]));
    let graph = b.finish(&[&x.matmul(&y)]).unwrap();
    let mut got = Vec::new();
    for tf32 in [false, true] {
        let plan = Arc::new(Plan::build(&graph, &Partition::single(), DType::F32, true).unwrap());
        let options = CompileOptions { tf32, ..CompileOptions::default() };
        let program = if device::driver_present() {
            Backend::<f32>::compile(&Cuda { ordinal: 0 }, plan, &options)
        } else {
            Backend::<f32>::compile(&Simulator::default(), plan, &options)
        }
        .unwrap();
        let mut session = Arc::clone(&program).session(1).unwrap();
        session.set("x", &vec![1.0001f32; n * n]).unwrap();
        session.set("y", &vec![1.0f32; n * n]).unwrap();
        session.run(0).unwrap();
        let mut out = vec![0.0f32; n * n];
        session.read(0, &mut out).unwrap();
        got.push(out[0]);
    }
    let exact = 1.0001f32 * n as f32;
    assert!((got[0] - exact).abs() <= 1e-3, "without TF32: {} (exact {exact})", got[0]);
    if device::driver_present() {
        assert!(got[1] == n as f32 || (got[1] - exact).abs() <= 1e-3, "TF32: {}", got[1]);
        eprintln!("TF32 mode: {} ({})", got[1], if got[1] == n as f32 { "tensor cores" } else { "full f32" });
    } else {
        assert_eq!(got[1], n as f32, "TF32 on the simulator");
    }
}
