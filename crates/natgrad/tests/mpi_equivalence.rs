//! Data-parallel runs under MPI equal single-process ones (issue: scale-out). Run with
//! `cargo test -p natgrad --features mpi --test mpi_equivalence`: started by cargo, this
//! program runs the command-line checks (each starts `mpirun -np 2`) and then starts itself
//! under `mpirun -np 2` for the library checks; under `mpirun` it is one of the two ranks.
//!
//! - `natgrad fvp --distributed` (f64) equals `natgrad fvp` within 1e-12 for an even and an
//!   uneven split of the inputs;
//! - the gradient and metric product of a batch split 76/75 equal one process's within 1e-12;
//! - 5 iterations of NGD, NCG-L and HF (f64) on a small Curves configuration, each batch split
//!   unevenly over 2 ranks, give the single-process parameters within 1e-9;
//! - `natgrad train --distributed`, SIGKILLed mid-run and started again, ends with the
//!   parameters of the uninterrupted distributed run, byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use natgrad::curves_bench::Method;
use natgrad::data::{Curves, CurvesOptions};
use natgrad::dist::{Communicator, Mpi, Solo};
use natgrad::optim::{
    Conjugacy, Damping, HessianFree, Ncg, Ngd, Optimizer, SecondOrder, Solver, StepSize, StopWhen, train,
};
use natgrad::training::{Batching, MetricSource, ModelProblem, sparse_init};

fn main() {
    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() {
        library_checks_as_one_rank();
        return;
    }
    if Command::new("mpirun").arg("--version").output().is_err() {
        println!(
            "mpi_equivalence: skipped, `mpirun` not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"
        );
        return;
    }
    let dir = scratch();
    distributed_fvp_equals_one_process(&dir);
    println!(
        "ok: natgrad fvp --distributed (f64, 2 ranks, even and uneven split) equals natgrad fvp within 1e-12"
    );
    killed_and_resumed_distributed_training_equals_uninterrupted(&dir);
    let own = std::env::current_exe().expect("this test's path");
    let output = mpirun(&[own.as_os_str().to_str().expect("utf-8 path")]);
    print!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        output.status.success(),
        "library checks under mpirun failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natgrad-mpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `mpirun -np 2 ARGS` with what loopback runs on a small machine need, started through
/// `launcher` (e.g. `setsid`) when one is given.
fn mpirun_command(launcher: Option<&str>, args: &[&str]) -> Command {
    let mut command = match launcher {
        Some(launcher) => {
            let mut command = Command::new(launcher);
            command.arg("mpirun");
            command
        }
        None => Command::new("mpirun"),
    };
    command.args(["-np", "2", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none"]).args(args);
    command.env("OMPI_MCA_btl", "self,vader,tcp").env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    command
}

fn mpirun(args: &[&str]) -> Output {
    mpirun_command(None, args).output().expect("mpirun starts")
}

fn natgrad_bin() -> &'static str {
    env!("CARGO_BIN_EXE_natgrad")
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0) - 1.0).collect()
}

fn distributed_fvp_equals_one_process(dir: &Path) {
    let spec = r#"{"layers": [6, 5, 3], "activations": ["tanh", "softmax"], "output": "softmax"}"#;
    std::fs::write(dir.join("spec.json"), spec).unwrap();
    let n = 6 * 5 + 5 + 5 * 3 + 3;
    natgrad::npy::write(&dir.join("theta.npy"), &[n], &values(n, 1)).unwrap();
    natgrad::npy::write(&dir.join("v.npy"), &[n], &values(n, 2)).unwrap();
    for batch in [10, 7] {
        natgrad::npy::write(&dir.join("x.npy"), &[batch, 6], &values(batch * 6, 3)).unwrap();
        let path = |f: &str| dir.join(f).display().to_string();
        let args = |out: &str| {
            ["fvp", "--model", &path("spec.json"), "--params", &path("theta.npy"), "--inputs", &path("x.npy")]
                .into_iter()
                .map(String::from)
                .chain([
                    "--vector".into(),
                    path("v.npy"),
                    "--out".into(),
                    path(out),
                    "--dtype".into(),
                    "f64".into(),
                ])
                .collect::<Vec<_>>()
        };
        let single = Command::new(natgrad_bin()).args(args("single.npy")).output().unwrap();
        assert!(single.status.success(), "{}", String::from_utf8_lossy(&single.stderr));
        let mut distributed: Vec<String> = vec![natgrad_bin().into()];
        distributed.extend(args("distributed.npy"));
        distributed.push("--distributed".into());
        let output = mpirun(&distributed.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let one = natgrad::npy::read(&dir.join("single.npy")).unwrap().1;
        let two = natgrad::npy::read(&dir.join("distributed.npy")).unwrap().1;
        let scale = one.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "the product is not trivially zero");
        for (i, (a, b)) in one.iter().zip(&two).enumerate() {
            assert!((a - b).abs() <= 1e-12 * scale, "batch {batch}, G·v[{i}]: {a} (1 process) vs {b} (2)");
        }
        std::fs::remove_file(dir.join("distributed.npy")).unwrap();
    }
}

/// `natgrad train --distributed` arguments writing `checkpoint` and `out`.
fn train_args(dir: &Path, checkpoint: &str, out: &str) -> Vec<String> {
    let path = |f: &str| dir.join(f).display().to_string();
    [natgrad_bin(), "train", "--distributed", "--model", "autoencoder:784,16", "--method", "ngd"]
        .into_iter()
        .map(String::from)
        .chain(["--iterations", "150", "--train-size", "301", "--checkpoint-every", "5"].map(String::from))
        .chain(["--checkpoint".into(), path(checkpoint), "--out".into(), path(out)])
        .collect()
}

fn killed_and_resumed_distributed_training_equals_uninterrupted(dir: &Path) {
    let args = train_args(dir, "straight.ckpt", "straight.npy");
    let start = Instant::now();
    let output = mpirun(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let straight_seconds = start.elapsed().as_secs_f64();
    let args = train_args(dir, "killed.ckpt", "killed.npy");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Killed once the first checkpoints exist: mpirun and both ranks, as one session (each
    // rank has a process group of its own).
    let mut child =
        mpirun_command(Some("setsid"), &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let checkpoint = dir.join("killed.ckpt");
    let written = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    // The second checkpoint (iteration 10 of 150) replaces the first: kill then.
    let mut first = None;
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its second checkpoint");
        match (first, written(&checkpoint)) {
            (None, Some(time)) => first = Some(time),
            (Some(a), Some(b)) if a != b => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed_mid_run = child.try_wait().unwrap().is_none();
    Command::new("pkill").args(["-KILL", "-s", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    while Command::new("pgrep").args(["-s", &child.id().to_string()]).output().unwrap().status.success() {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        killed_mid_run,
        "the run finished before it was killed (it took {straight_seconds:.1} s straight)"
    );
    assert!(!dir.join("killed.npy").exists(), "the killed run wrote its parameters");
    let output = mpirun(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resumed at iteration"), "the second run did not resume: {stderr}");
    let straight = std::fs::read(dir.join("straight.npy")).unwrap();
    let resumed = std::fs::read(dir.join("killed.npy")).unwrap();
    assert!(straight == resumed, "killed and resumed parameters differ from the uninterrupted run's");
    let resumed_at =
        stderr.split("resumed at iteration ").nth(1).and_then(|s| s.split(')').next()).unwrap_or("?");
    println!(
        "ok: natgrad train --distributed killed and resumed (at iteration {resumed_at} of 150) equals the uninterrupted run byte for byte"
    );
}

/// Under `mpirun -np 2`: each check runs distributed on both ranks, then rank 0 runs it alone
/// and compares.
fn library_checks_as_one_rank() {
    // A panicking rank must end the job (MPI_Finalize would wait for the other rank).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    let world: Rc<dyn Communicator> = Rc::new(Mpi::init().expect("MPI initializes"));
    let curves =
        Curves::generate(&CurvesOptions { seed: 3, train: 301, test: 0, ..CurvesOptions::default() })
            .unwrap();
    let model = natgrad::nn::autoencoder(&[784, 24, 6], natgrad::ir::DType::F64).unwrap();
    let theta0: Vec<f64> = sparse_init(&model.layout, 5);
    let (loss, gradient, product) = products_at(&model, &curves.train, &theta0, Rc::clone(&world));
    if world.rank() == 0 {
        let (loss1, gradient1, product1) = products_at(&model, &curves.train, &theta0, Rc::new(Solo));
        assert!((loss - loss1).abs() <= 1e-12 * loss1.abs(), "loss {loss} vs {loss1}");
        for (what, two, one) in [("gradient", &gradient, &gradient1), ("G·v", &product, &product1)] {
            let scale = one.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let worst = one.iter().zip(two).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-12 * scale, "{what}: differs by {worst:e} (scale {scale:e})");
            println!(
                "ok: {what} on a 151-example batch split 76/75: max difference {worst:.1e} of {scale:.1e}"
            );
        }
    }
    for method in [Method::Ngd, Method::NcgL, Method::Hf] {
        let (distributed, distributed_loss) =
            five_iterations(method, &model, &curves.train, &theta0, Rc::clone(&world));
        if world.rank() != 0 {
            continue;
        }
        let (single, single_loss) = five_iterations(method, &model, &curves.train, &theta0, Rc::new(Solo));
        let scale = single.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let moved = single.iter().zip(&theta0).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(moved > 1e-3, "{}: 5 iterations left the parameters where they were", method.name());
        let worst = single.iter().zip(&distributed).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        let loss_gap = (distributed_loss - single_loss).abs() / single_loss.abs();
        println!(
            "{}: 5 iterations (f64) on 2 ranks: max |Δθ| = {worst:.1e} of max |θ| = {scale:.2} (moved {moved:.2}); \
             relative loss difference {loss_gap:.1e}",
            method.name()
        );
        assert!(
            worst <= 1e-9 * scale,
            "{}: distributed θ differs by {worst:e} (scale {scale})",
            method.name()
        );
    }
}

/// The f64 problem on `data`: gradient batches of `gradient_batch` (all when `None`), metric
/// batches of 75 from the training set, as one rank of `world`.
fn problem(
    model: &natgrad::ir::Model,
    data: &natgrad::data::Dataset,
    gradient_batch: Option<usize>,
    world: Rc<dyn Communicator>,
) -> ModelProblem<f64> {
    let batching = Batching {
        gradient: gradient_batch,
        metric: Some(75),
        source: MetricSource::OtherBatch,
        seed: 11,
        metric_kind: natgrad::MetricKind::Fisher,
        in_order: false,
    };
    let options = natgrad::CompileOptions::default();
    ModelProblem::<f64>::sharded(model, data.clone(), None, batching, &options, world).unwrap()
}

/// Loss, gradient and metric product (`v` = θ0) at `theta0` on batches of 151 and 75 examples.
fn products_at(
    model: &natgrad::ir::Model,
    data: &natgrad::data::Dataset,
    theta0: &[f64],
    world: Rc<dyn Communicator>,
) -> (f64, Vec<f64>, Vec<f64>) {
    use natgrad::optim::Problem;
    let mut problem = problem(model, data, Some(151), world);
    problem.next_batch();
    let theta = theta0.to_vec();
    let mut gradient = vec![0.0; theta.len()];
    let loss = problem.loss_and_gradient(&theta, &mut gradient).unwrap();
    problem.prepare_metric(&theta).unwrap();
    let mut product = vec![0.0; theta.len()];
    problem.metric_product(&theta, &mut product).unwrap();
    (loss, gradient, product)
}

/// θ after 5 iterations of `method` from `theta0`, and the loss there; uneven shards (odd
/// batch sizes).
fn five_iterations(
    method: Method,
    model: &natgrad::ir::Model,
    data: &natgrad::data::Dataset,
    theta0: &[f64],
    world: Rc<dyn Communicator>,
) -> (Vec<f64>, f64) {
    use natgrad::optim::Problem;
    let second = SecondOrder {
        solver: if method == Method::Hf { Solver::Cg } else { Solver::MinresQlp },
        max_solver_iterations: 20,
        // λ = 1000 keeps the 20-iteration solves well conditioned. At λ = 1 they amplify
        // rounding so much that one process with 1 or 2 threads (another order of the sums)
        // differs by ~1e-4 after 5 iterations (docs/scaling.md) — as the 2-rank run does.
        damping: Damping::levenberg_marquardt(1000.0),
        warm_start: method == Method::Hf,
    };
    let mut optimizer: Box<dyn Optimizer<ModelProblem<f64>>> = match method {
        Method::Ngd => Box::new(Ngd::<Vec<f64>>::new(second, StepSize::Fixed(0.5))),
        Method::NcgL => Box::new(Ncg::<Vec<f64>>::new(second, Conjugacy::Cobyla)),
        _ => Box::new(HessianFree::<Vec<f64>>::new(second)),
    };
    let gradient_batch = if method == Method::Ngd { Some(151) } else { None };
    let mut problem = problem(model, data, gradient_batch, world);
    let mut theta = theta0.to_vec();
    let stop = StopWhen { max_iterations: Some(5), ..StopWhen::default() };
    let records = train(&mut problem, optimizer.as_mut(), &mut theta, &stop, |_, _| {}).unwrap();
    assert_eq!(records.len(), 5);
    let loss = problem.loss(&theta).unwrap();
    (theta, loss)
}
