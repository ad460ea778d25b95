//! Compiled products are values a Rust user can move between threads and share.

use natgrad::ir::DType;
use natgrad::nn::{self, Activation};
use natgrad::{CompileOptions, FisherProduct, compile_fisher_product};
use rand::{Rng, SeedableRng};

fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A small softmax MLP's product, θ, a metric batch of 7 and a vector v.
fn setup() -> (FisherProduct<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let model = nn::mlp(&[9, 6, 5], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let n = model.layout.len();
    let fvp = compile_fisher_product::<f64>(&model, &CompileOptions::default()).unwrap();
    (fvp, random(n, 1), random(7 * 9, 2), random(n, 3))
}

fn gv(fvp: &mut FisherProduct<f64>, theta: &[f64], x: &[f64], v: &[f64]) -> Vec<f64> {
    fvp.prepare(theta, x).unwrap();
    let mut out = vec![0.0; v.len()];
    fvp.apply(v, &mut out).unwrap();
    out
}

#[test]
fn a_product_moved_to_another_thread_gives_the_same_gv() {
    let (mut fvp, theta, x, v) = setup();
    let here = gv(&mut fvp, &theta, &x, &v);
    assert!(here.iter().any(|g| *g != 0.0));
    let (there, v) = std::thread::spawn(move || {
        let mut out = vec![0.0; v.len()];
        fvp.apply(&v, &mut out).unwrap();
        (out, v)
    })
    .join()
    .unwrap();
    assert_eq!(here, there);
    assert_eq!(v.len(), here.len());
}

#[test]
fn two_threads_share_one_compiled_program() {
    let (mut fvp, theta, x, v) = setup();
    let expected = gv(&mut fvp, &theta, &x, &v);
    let mut forks = [fvp.fork(), fvp.fork()];
    for fork in &forks {
        assert!(std::ptr::eq(fork.graph(), fvp.graph()), "forks share the compiled program");
    }
    let results: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = forks
            .iter_mut()
            .map(|fork| {
                let (theta, x, v) = (&theta, &x, &v);
                scope.spawn(move || (0..20).map(|_| gv(fork, theta, x, v)).last().unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        assert_eq!(r, expected);
    }
}
