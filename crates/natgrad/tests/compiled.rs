//! The compiled functions against the reference interpreter, and their input validation.

use natgrad::autodiff::{fisher_product, gradient};
use natgrad::ir::{Bindings, DType, Model, Scalar, Tensor, Window, eval_nodes};
use natgrad::nn::{self, Activation};
use natgrad::{CompileOptions, compile_fisher_product, compile_gradient, compile_loss};
use rand::{Rng, SeedableRng};

fn random(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn cast<T: Scalar>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// G·v by the interpreter on the naive product graph, in f64.
fn reference_fvp(model: &Model, theta: &[f64], x: &[f64], batch: usize, v: &[f64]) -> Vec<f64> {
    let product = fisher_product(model).unwrap();
    let width = x.len() / batch;
    let mut b = Bindings::new().with("x_metric", Tensor::new(vec![batch, width], x.to_vec()).unwrap());
    model.layout.bind(theta, &mut b).unwrap();
    for slot in model.layout.slots() {
        let part = v[slot.offset..slot.offset + slot.len()].to_vec();
        b.set(format!("v.{}", slot.name), Tensor::new(slot.shape.clone(), part).unwrap());
    }
    eval_nodes(&product.graph, &b, &product.results)
        .unwrap()
        .into_iter()
        .flat_map(|t| t.into_data())
        .collect()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

#[test]
fn fisher_product_matches_the_interpreter_in_f64() {
    let models = [
        nn::autoencoder(&[20, 12, 7, 3], DType::F64).unwrap(),
        nn::mlp(&[9, 6, 5], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap(),
        nn::mlp(&[9, 6, 5], &[Activation::Relu, Activation::Linear], DType::F64).unwrap(),
        nn::convnet(
            [6, 5, 2],
            Window { kernel: [3, 3], stride: [2, 1], padding: [1, 1] },
            4,
            &[6, 3],
            &[Activation::Sigmoid, Activation::Sigmoid, Activation::Sigmoid],
            DType::F64,
        )
        .unwrap(),
    ];
    for model in models {
        let mut fvp = compile_fisher_product::<f64>(&model, &CompileOptions::default()).unwrap();
        let n = model.layout.len();
        let theta = random(n, -1.0, 1.0, 1);
        let width = model.graph.shape(model.input).0[1].resolve(0);
        for batch in [1, 5] {
            let x = random(batch * width, 0.0, 1.0, 2);
            fvp.prepare(&theta, &x).unwrap();
            for seed in 3..5 {
                let v = random(n, -1.0, 1.0, seed);
                let mut gv = vec![0.0; n];
                fvp.apply(&v, &mut gv).unwrap();
                let err = rel(&gv, &reference_fvp(&model, &theta, &x, batch, &v));
                assert!(err < 1e-12, "batch {batch}: {err:e}");
                let mut damped = vec![0.0; n];
                fvp.apply_damped(&v, 0.5, &mut damped).unwrap();
                let expected: Vec<f64> = gv.iter().zip(&v).map(|(g, v)| g + 0.5 * v).collect();
                assert!(rel(&damped, &expected) < 1e-15);
            }
        }
    }
}

#[test]
fn curves_fisher_product_matches_the_interpreter_in_f32() {
    let model = nn::curves_autoencoder();
    let mut fvp = compile_fisher_product::<f32>(&model, &CompileOptions::default()).unwrap();
    let n = model.layout.len();
    let theta = random(n, -0.1, 0.1, 7);
    let batch = 6;
    let x = random(batch * 784, 0.0, 1.0, 8);
    let v = random(n, -1.0, 1.0, 9);
    fvp.prepare(&cast::<f32>(&theta), &cast::<f32>(&x)).unwrap();
    let mut gv = vec![0.0f32; n];
    fvp.apply(&cast::<f32>(&v), &mut gv).unwrap();
    let gv: Vec<f64> = gv.iter().map(|&g| g as f64).collect();
    let err = rel(&gv, &reference_fvp(&model, &theta, &x, batch, &v));
    assert!(err < 1e-4, "f32 vs f64 reference: {err:e}");
    assert!(fvp.peak_bytes().unwrap() > 0);
}

#[test]
fn gradient_and_loss_match_the_interpreter() {
    let model = nn::mlp(&[9, 6, 5], &[Activation::Sigmoid, Activation::Sigmoid], DType::F64).unwrap();
    let n = model.layout.len();
    let (theta, x, t) = (random(n, -1.0, 1.0, 1), random(4 * 9, 0.0, 1.0, 2), random(4 * 5, 0.0, 1.0, 3));
    let mut g = compile_gradient::<f64>(&model, &CompileOptions::default()).unwrap();
    let mut grad = vec![0.0; n];
    let loss = g.loss_and_gradient(&theta, &x, Some(&t), &mut grad).unwrap();
    let graph = gradient(&model).unwrap();
    let mut b = Bindings::new()
        .with("x", Tensor::new(vec![4, 9], x.clone()).unwrap())
        .with("t", Tensor::new(vec![4, 5], t.clone()).unwrap());
    model.layout.bind(&theta, &mut b).unwrap();
    let mut wanted = vec![graph.loss];
    wanted.extend(&graph.grads);
    let values = eval_nodes(&graph.graph, &b, &wanted).unwrap();
    assert!((loss - values[0].data()[0]).abs() < 1e-12);
    let expected: Vec<f64> = values[1..].iter().flat_map(|t| t.data().to_vec()).collect();
    assert!(rel(&grad, &expected) < 1e-12);
    let mut l = compile_loss::<f64>(&model, &CompileOptions::default()).unwrap();
    assert!((l.loss(&theta, &x, Some(&t)).unwrap() - loss).abs() < 1e-12);
}

#[test]
fn bad_lengths_are_typed_errors() {
    let model = nn::mlp(&[9, 6, 5], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let n = model.layout.len();
    let mut fvp = compile_fisher_product::<f64>(&model, &CompileOptions::default()).unwrap();
    let mut gv = vec![0.0; n];
    let err = fvp.apply(&vec![0.0; n], &mut gv).unwrap_err();
    assert_eq!(err.to_string(), "call prepare(params, metric_batch) before apply");
    let err = fvp.prepare(&[0.0; 5], &[0.0; 9]).unwrap_err();
    assert_eq!(err.to_string(), format!("params: expected {n}, got 5 values"));
    let err = fvp.prepare(&vec![0.0; n], &[0.0; 10]).unwrap_err();
    assert_eq!(err.to_string(), "metric batch: expected a positive multiple of 9, got 10 values");
    fvp.prepare(&vec![0.0; n], &[0.0; 18]).unwrap();
    let err = fvp.apply(&vec![0.0; n - 1], &mut gv).unwrap_err();
    assert_eq!(err.to_string(), format!("v: expected {n}, got {} values", n - 1));
    let err = fvp.apply(&vec![0.0; n], &mut gv[..3]).unwrap_err();
    assert_eq!(err.to_string(), format!("gv: expected {n}, got 3 values"));
    let mut g = compile_gradient::<f64>(&model, &CompileOptions::default()).unwrap();
    let err = g.loss_and_gradient(&vec![0.0; n], &[0.0; 18], Some(&[0.0; 9]), &mut vec![0.0; n]).unwrap_err();
    assert_eq!(err.to_string(), "input 't' expects f64[B,5] = 10 values at batch size 2, got 9");
    let err = g.loss_and_gradient(&vec![0.0; n], &[0.0; 18], None, &mut vec![0.0; n]).unwrap_err();
    assert!(err.to_string().starts_with("targets 't'"), "{err}");
    // A model in f64 compiled for f32 names the node and both dtypes.
    let err = compile_loss::<f32>(&model, &CompileOptions::default()).err().unwrap();
    assert!(err.to_string().contains("has dtype f64, but the program computes in f32"), "{err}");
}

#[test]
fn compiling_the_same_graph_twice_hits_the_cache() {
    let model = nn::mlp(&[9, 6, 5], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let first = compile_fisher_product::<f64>(&model, &CompileOptions::default()).unwrap();
    let second = compile_fisher_product::<f64>(&model, &CompileOptions::default()).unwrap();
    assert!(std::ptr::eq(first.graph(), second.graph()), "the second compile reuses the cached program");
    // A different model is a different program.
    let other = nn::mlp(&[9, 7, 5], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let third = compile_fisher_product::<f64>(&other, &CompileOptions::default()).unwrap();
    assert!(!std::ptr::eq(first.graph(), third.graph()));
}
