//! Optimizer behaviour on dense quadratics: damping updates, NCG-L conjugacy, NaN detection.

use natgrad_optim::{
    Conjugacy, Damping, HessianFree, HostOf, Ncg, Ngd, OpError, Optimizer, Problem, SecondOrder, Sgd, Solver,
    StepInfo, StepSize, StopWhen, TrainError, train,
};

type Matrix = Vec<Vec<f64>>;

fn matvec(a: &Matrix, x: &[f64]) -> Vec<f64> {
    a.iter().map(|row| row.iter().zip(x).map(|(p, q)| p * q).sum()).collect()
}

/// L(θ) = ½θᵀHθ − bᵀθ with a chosen metric G.
struct Quadratic {
    h: Matrix,
    b: Vec<f64>,
    metric: Matrix,
    ops: HostOf<f64>,
}

impl Problem for Quadratic {
    type Ops = HostOf<f64>;
    fn ops(&self) -> &HostOf<f64> {
        &self.ops
    }
    fn loss_and_gradient(&mut self, theta: &Vec<f64>, grad: &mut Vec<f64>) -> Result<f64, OpError> {
        let h = matvec(&self.h, theta);
        *grad = h.iter().zip(&self.b).map(|(a, b)| a - b).collect();
        self.loss(theta)
    }
    fn loss(&mut self, theta: &Vec<f64>) -> Result<f64, OpError> {
        let h = matvec(&self.h, theta);
        Ok(0.5 * theta.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>()
            - theta.iter().zip(&self.b).map(|(a, b)| a * b).sum::<f64>())
    }
    fn prepare_metric(&mut self, _: &Vec<f64>) -> Result<(), OpError> {
        Ok(())
    }
    fn metric_product(&mut self, v: &Vec<f64>, out: &mut Vec<f64>) -> Result<(), OpError> {
        *out = matvec(&self.metric, v);
        Ok(())
    }
}

fn quadratic(n: usize, metric_is_hessian: bool) -> Quadratic {
    // A fixed SPD matrix: tridiagonal (3, −1) plus a varying diagonal.
    let h: Matrix = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        3.0 + i as f64 * 0.3
                    } else if i.abs_diff(j) == 1 {
                        -1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let identity: Matrix = (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    let b = (0..n).map(|i| ((i * 37) % 11) as f64 / 11.0 - 0.3).collect();
    Quadratic { metric: if metric_is_hessian { h.clone() } else { identity }, h, b, ops: HostOf::new() }
}

/// The minimum value −½ bᵀH⁻¹b, by Newton's method.
fn minimum(n: usize) -> f64 {
    let mut q = quadratic(n, true);
    let mut theta = vec![0.0; n];
    let exact = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: 200,
        damping: Damping::Fixed(0.0),
        warm_start: false,
    };
    Ngd::new(exact, StepSize::Fixed(1.0)).step(&mut q, &mut theta).unwrap();
    q.loss(&theta).unwrap()
}

#[test]
fn levenberg_marquardt_grows_after_bad_steps_and_shrinks_after_good_ones() {
    let lm = Damping::levenberg_marquardt(3.0);
    assert_eq!(lm.update(2.0, 0.1), 3.0);
    assert_eq!(lm.update(2.0, f64::NEG_INFINITY), 3.0);
    assert_eq!(lm.update(2.0, f64::NAN), 3.0);
    assert!((lm.update(3.0, 0.9) - 2.0).abs() < 1e-15);
    assert_eq!(lm.update(2.0, 0.5), 2.0);
    assert_eq!(Damping::Fixed(1.0).update(5.0, 0.0), 1.0);
    // ρ: the achieved over the predicted decrease.
    assert_eq!(natgrad_optim::reduction_ratio(1.0, 0.5, -1.0, 1.0), 1.0);
    assert_eq!(natgrad_optim::reduction_ratio(1.0, 0.5, 1.0, 1.0), f64::NEG_INFINITY);
}

#[test]
fn ngd_with_the_hessian_as_metric_is_newton() {
    let mut q = quadratic(12, true);
    let mut theta = vec![0.0; 12];
    let settings = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: 100,
        damping: Damping::Fixed(0.0),
        warm_start: false,
    };
    let mut ngd = Ngd::new(settings, StepSize::Fixed(1.0));
    ngd.step(&mut q, &mut theta).unwrap();
    let mut g = vec![0.0; 12];
    q.loss_and_gradient(&theta, &mut g).unwrap();
    assert!(g.iter().all(|x| x.abs() < 1e-6), "{g:?}");
}

#[test]
fn ncg_l_directions_are_conjugate_on_a_quadratic() {
    // With G = I the natural direction is −g, and exact minimisation over (α, β) makes
    // consecutive directions H-conjugate.
    let n = 10;
    let mut q = quadratic(n, false);
    let mut theta = vec![0.0; n];
    let settings = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: 50,
        damping: Damping::Fixed(0.0),
        warm_start: false,
    };
    let mut ncg: Ncg<Vec<f64>> = Ncg::new(settings, Conjugacy::Cobyla);
    ncg.max_evaluations = 400;
    let mut directions: Vec<Vec<f64>> = Vec::new();
    for _ in 0..4 {
        ncg.step(&mut q, &mut theta).unwrap();
        directions.push(ncg.direction().unwrap().clone());
    }
    let h = q.h.clone();
    let h_inner = |a: &[f64], b: &[f64]| a.iter().zip(matvec(&h, b)).map(|(x, y)| x * y).sum::<f64>();
    for pair in directions.windows(2).skip(1) {
        let cos =
            h_inner(&pair[1], &pair[0]) / (h_inner(&pair[1], &pair[1]) * h_inner(&pair[0], &pair[0])).sqrt();
        assert!(cos.abs() < 0.05, "H-cosine of consecutive directions: {cos}");
    }
}

#[test]
fn every_method_decreases_a_quadratic() {
    let settings = SecondOrder {
        solver: Solver::Cg,
        max_solver_iterations: 50,
        damping: Damping::levenberg_marquardt(1.0),
        warm_start: false,
    };
    let start = quadratic(8, true).loss(&vec![0.0; 8]).unwrap();
    let run = |opt: &mut dyn FnMut(&mut Quadratic, &mut Vec<f64>)| {
        let mut q = quadratic(8, true);
        let mut theta = vec![0.0; 8];
        for _ in 0..5 {
            opt(&mut q, &mut theta);
        }
        q.loss(&theta).unwrap()
    };
    let mut ngd = Ngd::new(settings, StepSize::LineSearch);
    let mut ncg_f: Ncg<Vec<f64>> = Ncg::new(settings, Conjugacy::PolakRibiere);
    let mut hf: HessianFree<Vec<f64>> = HessianFree::new(settings);
    let mut sgd: Sgd<Vec<f64>> = Sgd::new(0.1, 0.5);
    let mut ksd: natgrad_optim::Ksd<Vec<f64>> = natgrad_optim::Ksd::new(4, 10);
    let losses = [
        run(&mut |q, t| drop(ksd.step(q, t).unwrap())),
        run(&mut |q, t| drop(ngd.step(q, t).unwrap())),
        run(&mut |q, t| drop(ncg_f.step(q, t).unwrap())),
        run(&mut |q, t| drop(hf.step(q, t).unwrap())),
        run(&mut |q, t| drop(sgd.step(q, t).unwrap())),
    ];
    let best = minimum(8);
    for (name, loss) in ["ksd", "ngd-l", "ncg-f", "hf", "sgd"].iter().zip(losses) {
        assert!(loss - best < 0.5 * (start - best), "{name}: {loss}, start {start}, minimum {best}");
    }
}

#[test]
fn bfgs_minimises_a_small_quadratic() {
    // f(a) = (a₀ − 1)² + 10 (a₁ + 2)² + a₀a₁
    let mut f = |a: &[f64]| -> Result<(f64, Vec<f64>), OpError> {
        Ok((
            (a[0] - 1.0).powi(2) + 10.0 * (a[1] + 2.0).powi(2) + a[0] * a[1],
            vec![2.0 * (a[0] - 1.0) + a[1], 20.0 * (a[1] + 2.0) + a[0]],
        ))
    };
    let (a, _) = natgrad_optim::bfgs(&mut f, &[0.0, 0.0], 30).unwrap();
    // Stationary point: 2a₀ − 2 + a₁ = 0, 20a₁ + 40 + a₀ = 0.
    let (x0, x1) = (80.0 / 39.0, -82.0 / 39.0);
    assert!((a[0] - x0).abs() < 1e-6 && (a[1] - x1).abs() < 1e-6, "{a:?}");
}

#[test]
fn non_finite_steps_stop_training_with_the_last_good_parameters_restored() {
    let mut q = quadratic(6, true);
    let mut theta = vec![1.0; 6];
    let mut sgd: Sgd<Vec<f64>> = Sgd::new(1e3, 0.0); // diverges
    let mut good = vec![theta.clone()];
    let err = train(
        &mut q,
        &mut sgd,
        &mut theta,
        &StopWhen { max_iterations: Some(10_000), ..Default::default() },
        |_, theta| good.push(theta.clone()),
    )
    .unwrap_err();
    let TrainError::NonFinite { iteration, .. } = err else { panic!("{err}") };
    assert!(err.to_string().contains("is not finite"), "{err}");
    assert!(err.to_string().contains("restored"), "{err}");
    // Diverged over several iterations, then stopped with the parameters of the last
    // recorded (finite) iteration, bit for bit.
    assert_eq!(iteration, good.len(), "{err}");
    assert!(iteration > 3, "{err}");
    assert!(theta.iter().all(|v| v.is_finite()));
    let last = good.last().unwrap();
    assert!(theta.iter().zip(last).all(|(a, b)| a.to_bits() == b.to_bits()), "{theta:?} vs {last:?}");
}

/// Takes a good step, then fails (as a solver breakdown would) after scribbling on θ.
struct FailsOnSecondStep {
    steps: usize,
}

impl Optimizer<Quadratic> for FailsOnSecondStep {
    fn name(&self) -> &'static str {
        "fails"
    }
    fn step(&mut self, _: &mut Quadratic, theta: &mut Vec<f64>) -> Result<StepInfo, OpError> {
        self.steps += 1;
        theta.iter_mut().for_each(|v| *v *= 0.5);
        if self.steps == 2 {
            return Err("solver broke down".into());
        }
        Ok(StepInfo { loss: 1.0, ..Default::default() })
    }
}

#[test]
fn a_failed_step_restores_the_parameters_before_it() {
    let mut q = quadratic(4, true);
    let mut theta = vec![1.0; 4];
    let err = train(&mut q, &mut FailsOnSecondStep { steps: 0 }, &mut theta, &StopWhen::default(), |_, _| {})
        .unwrap_err();
    assert!(matches!(err, TrainError::Step { iteration: 2, .. }), "{err}");
    assert!(err.to_string().contains("solver broke down"), "{err}");
    assert_eq!(theta, vec![0.5; 4], "the first step's parameters, not the failed second step's");
}

#[test]
fn train_stops_at_the_target_loss_and_records_every_iteration() {
    let mut q = quadratic(6, true);
    let mut theta = vec![0.0; 6];
    let mut sgd: Sgd<Vec<f64>> = Sgd::new(0.1, 0.0);
    let target = 0.9 * minimum(6);
    let records = train(
        &mut q,
        &mut sgd,
        &mut theta,
        &StopWhen { target_loss: Some(target), max_iterations: Some(1000), ..Default::default() },
        |_, _| {},
    )
    .unwrap();
    assert!(records.last().unwrap().step.loss <= target);
    assert!(records.windows(2).all(|w| w[1].iteration == w[0].iteration + 1 && w[1].seconds >= w[0].seconds));
}
