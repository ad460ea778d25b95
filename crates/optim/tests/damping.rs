//! Damping that cannot collapse or explode, and NGD's rejection of steps that raise the loss
//! (ρ < 0): the failure seen on Curves with small batches and a short solver (λ collapsed,
//! then one accepted overshooting step), reproduced on a problem whose metric underestimates
//! the curvature.

use natgrad_optim::{
    Damping, HostOf, LM_CEILING, LM_FLOOR, Ngd, OpError, Optimizer, Problem, SecondOrder, Solver, StepSize,
    StopWhen, train,
};

/// Minibatches of `L(θ) = ½‖θ − c_k‖² + ¼ Σ θᵢ⁴`, batch k cycling over three centres; the
/// metric is `εI`, far below the true curvature (≥ 1), as a minibatch Fisher can be along
/// directions its few samples do not see. With a small λ the damped step `−g/(ε + λ)`
/// overshoots and the quartic term explodes.
struct Overconfident {
    centres: [Vec<f64>; 3],
    batch: usize,
    epsilon: f64,
    ops: HostOf<f64>,
}

impl Overconfident {
    fn new(n: usize) -> Overconfident {
        let centre = |k: usize| (0..n).map(|i| 1.0 + 0.2 * ((i * 7 + k * 3) % 5) as f64).collect();
        Overconfident {
            centres: [centre(0), centre(1), centre(2)],
            batch: 0,
            epsilon: 1e-3,
            ops: HostOf::new(),
        }
    }

    /// The loss averaged over all three batches.
    fn full_loss(&mut self, theta: &[f64]) -> f64 {
        let start = self.batch;
        let total = (0..3)
            .map(|k| {
                self.batch = k;
                self.loss(&theta.to_vec()).unwrap()
            })
            .sum::<f64>();
        self.batch = start;
        total / 3.0
    }
}

impl Problem for Overconfident {
    type Ops = HostOf<f64>;
    fn ops(&self) -> &HostOf<f64> {
        &self.ops
    }
    fn loss_and_gradient(&mut self, theta: &Vec<f64>, grad: &mut Vec<f64>) -> Result<f64, OpError> {
        let c = &self.centres[self.batch];
        *grad = theta.iter().zip(c).map(|(t, c)| t - c + t * t * t).collect();
        self.loss(theta)
    }
    fn loss(&mut self, theta: &Vec<f64>) -> Result<f64, OpError> {
        let c = &self.centres[self.batch];
        Ok(theta.iter().zip(c).map(|(t, c)| 0.5 * (t - c) * (t - c) + 0.25 * t.powi(4)).sum())
    }
    fn prepare_metric(&mut self, _: &Vec<f64>) -> Result<(), OpError> {
        Ok(())
    }
    fn metric_product(&mut self, v: &Vec<f64>, out: &mut Vec<f64>) -> Result<(), OpError> {
        *out = v.iter().map(|x| self.epsilon * x).collect();
        Ok(())
    }
    fn next_batch(&mut self) {
        self.batch = (self.batch + 1) % 3;
    }
}

#[test]
fn levenberg_marquardt_stays_between_its_floor_and_ceiling() {
    let lm = Damping::levenberg_marquardt(3.0);
    assert_eq!(lm.bounds(), (LM_FLOOR, LM_CEILING));
    let mut lambda = lm.initial();
    for _ in 0..1000 {
        lambda = lm.update(lambda, 1.0); // every step very good
    }
    assert_eq!(lambda, LM_FLOOR);
    for _ in 0..1000 {
        lambda = lm.update(lambda, f64::NEG_INFINITY); // every step rejected
    }
    assert_eq!(lambda, LM_CEILING);
    let narrow = Damping::LevenbergMarquardt { initial: 100.0, min: 0.5, max: 2.0 };
    assert_eq!(narrow.initial(), 2.0, "the initial λ is clamped too");
    assert_eq!(narrow.update(0.6, 0.9), 0.5);
}

#[test]
fn ngd_rejects_steps_that_raise_the_loss_and_recovers() {
    let n = 6;
    let mut problem = Overconfident::new(n);
    let mut theta = vec![0.0; n];
    let start = problem.full_loss(&theta);
    let settings = SecondOrder {
        solver: Solver::MinresQlp,
        max_solver_iterations: 3,
        // Where the Curves run's λ had collapsed to: the floor.
        damping: Damping::levenberg_marquardt(LM_FLOOR),
        warm_start: false,
    };
    let mut ngd: Ngd<Vec<f64>> = Ngd::new(settings, StepSize::Fixed(1.0));
    assert_eq!(Optimizer::<Overconfident>::name(&ngd), "ngd");
    let mut theta_before = theta.clone();
    let mut checked = 0;
    let records = train(
        &mut problem,
        &mut ngd,
        &mut theta,
        &StopWhen { max_iterations: Some(300), ..StopWhen::default() },
        |record, theta| {
            // A rejected step leaves θ exactly where it was.
            if record.step.step_size == 0.0 {
                assert_eq!(theta, &theta_before, "iteration {}", record.iteration);
                checked += 1;
            }
            theta_before.clone_from(theta);
        },
    )
    .expect("NGD stays finite");
    assert_eq!(records.len(), 300);
    let (min, max) = settings.damping.bounds();
    for r in &records {
        assert!((min..=max).contains(&r.step.damping), "iteration {}: λ = {}", r.iteration, r.step.damping);
    }
    // Accepting the first overshooting steps (the old fixed-rate NGD) sends θ to ~1e3, the
    // quartic term to ~1e12 and the next step to infinity.
    assert!(
        checked >= 5,
        "only {checked} steps were rejected: the problem no longer reproduces the overshoot"
    );
    // Recovered: close to the minimiser of the averaged loss (found by many damped steps).
    let end = problem.full_loss(&theta);
    let mut best = vec![0.0; n];
    for _ in 0..2000 {
        let mut g = vec![0.0; n];
        let mut total = vec![0.0; n];
        for k in 0..3 {
            problem.batch = k;
            problem.loss_and_gradient(&best, &mut g).unwrap();
            total.iter_mut().zip(&g).for_each(|(t, g)| *t += g / 3.0);
        }
        best.iter_mut().zip(&total).for_each(|(b, g)| *b -= 0.2 * g);
    }
    let minimum = problem.full_loss(&best);
    assert!(end < start, "{start} → {end}");
    assert!(end - minimum < 0.05 * (start - minimum), "end {end}, minimum {minimum}, start {start}");
}
