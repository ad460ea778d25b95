//! Every optimizer through the compiled CPU path on small problems, and TONGA's metric.

use natgrad::data::Dataset;
use natgrad::ir::{DType, Model};
use natgrad::nn::{self, Activation};
use natgrad::optim::{
    Conjugacy, Damping, HessianFree, Ncg, Ngd, Optimizer, Problem, SecondOrder, Sgd, Solver, StepSize,
    StopWhen, train,
};
use natgrad::training::{Batching, MetricSource, ModelProblem};
use natgrad::{CompileOptions, MetricKind, compile_gradient, compile_metric_product};
use rand::{Rng, SeedableRng};

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// 120 points in 6-D labelled by a random linear teacher into 3 classes (one-hot).
fn classification() -> (Dataset, Dataset) {
    let x = uniform(120 * 6, 1);
    let w = uniform(6 * 3, 2);
    let mut t = vec![0.0f32; 120 * 3];
    for i in 0..120 {
        let scores: Vec<f32> = (0..3).map(|k| (0..6).map(|j| x[i * 6 + j] * w[j * 3 + k]).sum()).collect();
        let best = (0..3).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        t[i * 3 + best] = 1.0;
    }
    (Dataset { width: 6, data: x }, Dataset { width: 3, data: t })
}

fn batching(kind: MetricKind) -> Batching {
    Batching {
        gradient: None,
        metric: None,
        source: MetricSource::OtherBatch,
        seed: 3,
        metric_kind: kind,
        in_order: false,
    }
}

fn small_init(model: &Model) -> Vec<f64> {
    uniform(model.layout.len(), 4).iter().map(|&v| v as f64 * 0.5).collect()
}

#[test]
fn ngd_solves_a_linear_least_squares_model_in_one_step() {
    let model = nn::mlp(&[4, 3], &[Activation::Linear], DType::F64).unwrap();
    let inputs = Dataset { width: 4, data: uniform(40 * 4, 5) };
    let targets = Dataset { width: 3, data: uniform(40 * 3, 6) };
    let mut problem =
        ModelProblem::<f64>::new(&model, inputs, Some(targets), batching(MetricKind::Fisher)).unwrap();
    let mut theta = small_init(&model);
    let mut g = vec![0.0; theta.len()];
    problem.loss_and_gradient(&theta, &mut g).unwrap();
    let before = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let exact = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: 200,
        damping: Damping::Fixed(0.0),
        warm_start: false,
    };
    Ngd::new(exact, StepSize::Fixed(1.0)).step(&mut problem, &mut theta).unwrap();
    problem.loss_and_gradient(&theta, &mut g).unwrap();
    let after = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(after < 1e-6 * before, "gradient norm {before:e} → {after:e}");
}

#[test]
fn every_optimizer_trains_a_small_mlp_below_a_target_loss() {
    let model = nn::mlp(&[6, 8, 3], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let (x, t) = classification();
    let second = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: 100,
        damping: Damping::levenberg_marquardt(1.0),
        warm_start: false,
    };
    let cg = SecondOrder { solver: Solver::Cg, ..second };
    let target = 0.35;
    type Case = (&'static str, Box<dyn Optimizer<ModelProblem<f64>>>, MetricKind, usize);
    let optimizers: Vec<Case> = vec![
        ("ngd", Box::new(Ngd::new(second, StepSize::Fixed(1.0))), MetricKind::Fisher, 60),
        ("ngd-l", Box::new(Ngd::new(second, StepSize::LineSearch)), MetricKind::Fisher, 60),
        ("ncg-l", Box::new(Ncg::<Vec<f64>>::new(second, Conjugacy::Cobyla)), MetricKind::Fisher, 60),
        ("ncg-f", Box::new(Ncg::<Vec<f64>>::new(second, Conjugacy::PolakRibiere)), MetricKind::Fisher, 60),
        ("hf", Box::new(HessianFree::<Vec<f64>>::new(cg)), MetricKind::GaussNewton, 60),
        ("tonga", Box::new(Ngd::new(second, StepSize::LineSearch)), MetricKind::EmpiricalFisher, 60),
        ("ksd", Box::new(natgrad::optim::Ksd::<Vec<f64>>::new(8, 12)), MetricKind::GaussNewton, 60),
        ("sgd", Box::new(Sgd::<Vec<f64>>::new(0.5, 0.9)), MetricKind::Fisher, 3000),
    ];
    for (name, mut optimizer, kind, iterations) in optimizers {
        let mut problem =
            ModelProblem::<f64>::new(&model, x.clone(), Some(t.clone()), batching(kind)).unwrap();
        let mut theta = small_init(&model);
        let start = problem.loss(&theta).unwrap();
        assert!(start > 2.0 * target, "{name}: the problem starts solved ({start})");
        let stop =
            StopWhen { max_iterations: Some(iterations), target_loss: Some(target), ..StopWhen::default() };
        let records = train(&mut problem, optimizer.as_mut(), &mut theta, &stop, |_, _| {}).unwrap();
        let end = problem.loss(&theta).unwrap();
        assert!(end < target, "{name}: loss {start:.3} → {end:.3} in {} iterations", records.len());
    }
}

#[test]
fn tongas_metric_is_the_empirical_fisher() {
    let model = nn::mlp(&[6, 5, 3], &[Activation::Sigmoid, Activation::Softmax], DType::F64).unwrap();
    let (x, t) = classification();
    let (x, t) = (x.head(7), t.head(7));
    let theta = small_init(&model);
    let to64 = |d: &[f32]| d.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let mut metric =
        compile_metric_product::<f64>(&model, MetricKind::EmpiricalFisher, &CompileOptions::default())
            .unwrap();
    metric.prepare_with_targets(&theta, &to64(&x.data), Some(&to64(&t.data))).unwrap();
    let v: Vec<f64> = uniform(theta.len(), 9).iter().map(|&a| a as f64).collect();
    let mut fv = vec![0.0; theta.len()];
    metric.apply(&v, &mut fv).unwrap();
    // Dense (1/N) Σ gᵢ gᵢᵀ v from per-example gradients of the compiled gradient.
    let mut gradient = compile_gradient::<f64>(&model, &CompileOptions::default()).unwrap();
    let mut expected = vec![0.0; theta.len()];
    let mut g = vec![0.0; theta.len()];
    for i in 0..7 {
        gradient.loss_and_gradient(&theta, &to64(x.row(i)), Some(&to64(t.row(i))), &mut g).unwrap();
        let gv: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
        expected.iter_mut().zip(&g).for_each(|(e, gi)| *e += gi * gv / 7.0);
    }
    let scale = expected.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let err = fv.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
    assert!(err < 1e-12, "empirical Fisher vs dense: {err:e}");
}

#[test]
fn a_resumed_run_equals_the_uninterrupted_one_bit_for_bit() {
    use natgrad::optim::Checkpoint;
    let model = nn::mlp(&[6, 8, 3], &[Activation::Tanh, Activation::Softmax], DType::F32).unwrap();
    let (x, t) = classification();
    let minibatches = Batching {
        gradient: Some(30),
        metric: Some(30),
        source: MetricSource::OtherBatch,
        seed: 11,
        metric_kind: MetricKind::Fisher,
        in_order: false,
    };
    let second = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: 20,
        damping: Damping::levenberg_marquardt(1.0),
        warm_start: false,
    };
    let dir = std::env::temp_dir().join(format!("natgrad-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    type Make = fn(SecondOrder) -> Box<dyn Optimizer<ModelProblem<f32>>>;
    let makers: [(&str, Make); 3] = [
        ("ngd", |s| Box::new(Ngd::new(s, StepSize::Fixed(1.0)))),
        ("ncg-f", |s| Box::new(Ncg::<Vec<f32>>::new(s, Conjugacy::PolakRibiere))),
        ("sgd", |_| Box::new(Sgd::<Vec<f32>>::new(0.3, 0.9))),
    ];
    for (name, make) in makers {
        let theta0: Vec<f32> = uniform(model.layout.len(), 4).iter().map(|v| v * 0.5).collect();
        let run = |problem: &mut ModelProblem<f32>,
                   optimizer: &mut dyn Optimizer<ModelProblem<f32>>,
                   theta: &mut Vec<f32>,
                   n: usize| {
            train(
                problem,
                optimizer,
                theta,
                &StopWhen { max_iterations: Some(n), ..StopWhen::default() },
                |_, _| {},
            )
            .unwrap();
        };
        // Uninterrupted: 6 iterations.
        let mut problem =
            ModelProblem::<f32>::new(&model, x.clone(), Some(t.clone()), minibatches.clone()).unwrap();
        let mut optimizer = make(second);
        let mut straight = theta0.clone();
        run(&mut problem, optimizer.as_mut(), &mut straight, 6);
        // Interrupted after 3, checkpointed to disk, resumed in a fresh problem and optimizer.
        let mut problem =
            ModelProblem::<f32>::new(&model, x.clone(), Some(t.clone()), minibatches.clone()).unwrap();
        let mut optimizer = make(second);
        let mut theta = theta0.clone();
        run(&mut problem, optimizer.as_mut(), &mut theta, 3);
        let path = dir.join(format!("{name}.ckpt"));
        Checkpoint::capture::<ModelProblem<f32>, _>(problem.ops(), optimizer.as_ref(), &theta, 3)
            .write(&path)
            .unwrap();
        let mut problem =
            ModelProblem::<f32>::new(&model, x.clone(), Some(t.clone()), minibatches.clone()).unwrap();
        let mut optimizer = make(second);
        let mut resumed = vec![0.0f32; theta.len()];
        let done =
            Checkpoint::read(&path).unwrap().resume(&mut problem, optimizer.as_mut(), &mut resumed).unwrap();
        assert_eq!(done, 3);
        run(&mut problem, optimizer.as_mut(), &mut resumed, 3);
        assert!(
            straight.iter().zip(&resumed).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: resumed run differs"
        );
        assert_ne!(straight, theta0, "{name}: training moved the parameters");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn squared_gradients_are_the_mean_of_per_example_squares() {
    let model = nn::mlp(&[6, 5, 3], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let (x, t) = classification();
    let (x, t) = (x.head(9), t.head(9));
    let theta = small_init(&model);
    let to64 = |d: &[f32]| d.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let mut squares = natgrad::compile_squared_gradients::<f64>(&model, &CompileOptions::default()).unwrap();
    let mut got = vec![0.0; theta.len()];
    squares.loss_and_gradient(&theta, &to64(&x.data), Some(&to64(&t.data)), &mut got).unwrap();
    let mut gradient = compile_gradient::<f64>(&model, &CompileOptions::default()).unwrap();
    let mut expected = vec![0.0; theta.len()];
    let mut g = vec![0.0; theta.len()];
    for i in 0..9 {
        gradient.loss_and_gradient(&theta, &to64(x.row(i)), Some(&to64(t.row(i))), &mut g).unwrap();
        expected.iter_mut().zip(&g).for_each(|(e, gi)| *e += gi * gi / 9.0);
    }
    let scale = expected.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let err = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
    assert!(err < 1e-12, "squared gradients vs per-example: {err:e}");
}

/// `DeviceProblem` (the GPU's training problem) with host vectors through `Transfer`: SGD,
/// which never needs a metric product, takes the very steps `ModelProblem` takes; a metric
/// product needs device vectors, and on the CPU that is an error that names the fix, not a
/// panic. (With the CUDA backend's vectors it runs in `scripts/gpu-check.sh`'s
/// `bench curves --device cuda`.)
#[test]
fn device_problem_plumbing_with_host_vectors() {
    use natgrad::device_problem::DeviceProblem;
    use natgrad::optim::HostOf;

    let model = nn::mlp(&[6, 5, 3], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let (x, t) = classification();
    let theta0 = small_init(&model);
    let stop = StopWhen { max_iterations: Some(20), ..StopWhen::default() };
    let mut direct =
        ModelProblem::<f64>::new(&model, x.clone(), Some(t.clone()), batching(MetricKind::Fisher)).unwrap();
    let mut straight = theta0.clone();
    train(&mut direct, &mut Sgd::<Vec<f64>>::new(0.5, 0.9), &mut straight, &stop, |_, _| {}).unwrap();
    let host =
        ModelProblem::<f64>::new(&model, x.clone(), Some(t.clone()), batching(MetricKind::Fisher)).unwrap();
    let mut wrapped = DeviceProblem::new(host, HostOf::<f64>::new()).unwrap();
    let mut through = theta0.clone();
    train(&mut wrapped, &mut Sgd::<Vec<f64>>::new(0.5, 0.9), &mut through, &stop, |_, _| {}).unwrap();
    assert_ne!(straight, theta0, "SGD moved");
    assert_eq!(straight, through, "the same steps through DeviceProblem");
    wrapped.prepare_metric(&through).unwrap();
    let mut out = vec![0.0; through.len()];
    let error = wrapped.metric_product(&through, &mut out).unwrap_err().to_string();
    assert!(error.contains("no device vectors"), "{error}");
}

/// NGD and HF for a few iterations on `Device::Sim` — every kernel, GEMM and solver vector
/// of the GPU code path (device vectors, `DeviceProblem`, device-to-device metric products)
/// run by the PTX simulator — take the CPU's steps: parameters within 1e-9 (f64; the dots
/// add in another order).
#[test]
fn the_gpu_code_path_on_the_simulator_takes_the_cpus_steps() {
    use natgrad::compile::{DeviceWork, with_device_vectors};
    use natgrad::device_problem::DeviceProblem;
    use natgrad::optim::{Transfer, VectorOps};

    struct OnDevice {
        problem: ModelProblem<f64>,
        theta0: Vec<f64>,
        hessian_free: bool,
    }

    fn second_order() -> SecondOrder {
        SecondOrder {
            solver: Solver::Cg,
            max_solver_iterations: 20,
            damping: Damping::levenberg_marquardt(1.0),
            warm_start: false,
        }
    }

    fn run<P: Problem>(problem: &mut P, theta: &mut <P::Ops as VectorOps>::Vector, hessian_free: bool) {
        let stop = StopWhen { max_iterations: Some(4), ..StopWhen::default() };
        let mut optimizer: Box<dyn Optimizer<P>> = if hessian_free {
            Box::new(HessianFree::new(second_order()))
        } else {
            Box::new(Ngd::new(second_order(), StepSize::Fixed(1.0)))
        };
        train(problem, optimizer.as_mut(), theta, &stop, |_, _| {}).unwrap();
    }

    impl DeviceWork<f64> for OnDevice {
        type Output = Vec<f64>;
        fn run<O>(self, ops: O) -> Vec<f64>
        where
            O: Transfer<f64> + Clone + 'static,
            <O as VectorOps>::Vector: std::any::Any,
        {
            let mut problem = DeviceProblem::new(self.problem, ops.clone()).unwrap();
            let mut theta = ops.upload(&self.theta0);
            run(&mut problem, &mut theta, self.hessian_free);
            ops.download(&theta).unwrap()
        }
    }

    let model = nn::mlp(&[6, 8, 3], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let (x, t) = classification();
    let theta0 = small_init(&model);
    for (hessian_free, kind) in [(false, MetricKind::Fisher), (true, MetricKind::GaussNewton)] {
        let mut on_cpu =
            ModelProblem::<f64>::new(&model, x.clone(), Some(t.clone()), batching(kind)).unwrap();
        let mut cpu = theta0.clone();
        run(&mut on_cpu, &mut cpu, hessian_free);
        let options = CompileOptions { device: natgrad::Device::Sim, ..CompileOptions::default() };
        let problem =
            ModelProblem::<f64>::with_options(&model, x.clone(), Some(t.clone()), batching(kind), &options)
                .unwrap();
        let work = OnDevice { problem, theta0: theta0.clone(), hessian_free };
        let sim = with_device_vectors::<f64, _>(natgrad::Device::Sim, work).unwrap();
        assert_ne!(cpu, theta0, "training moved");
        let scale = cpu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (s, c)) in sim.iter().zip(&cpu).enumerate() {
            let method = if hessian_free { "hf" } else { "ngd" };
            assert!((s - c).abs() <= 1e-9 * scale, "{method}: θ[{i}] simulator {s}, CPU {c}");
        }
    }
}
