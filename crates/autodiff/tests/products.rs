//! The curvature products against explicitly formed matrices, in f64:
//! `fisher_product` = (1/N) Σᵢ J_iᵀ M_i J_i v with Jacobians built column by column,
//! = `gauss_newton_product` for the matching loss (section 5), symmetric and PSD;
//! `empirical_fisher_product` = (1/N) Σᵢ gᵢ gᵢᵀ v.

mod common;

use common::*;
use natgrad_autodiff::{
    Product, empirical_fisher_product, fisher_product, gauss_newton_product, gradient, rop,
};
use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{Bindings, DType, Model, NodeId, Op, OutputKind, Provenance, Tensor, Window, eval_nodes};

fn models() -> Vec<(&'static str, Model)> {
    use Activation::*;
    vec![
        ("tanh-softmax", nn::mlp(&[3, 4, 3], &[Tanh, Softmax], DType::F64).unwrap()),
        ("relu-sigmoid", nn::mlp(&[3, 4, 2], &[Relu, Sigmoid], DType::F64).unwrap()),
        ("sigmoid-linear", nn::mlp(&[3, 4, 2], &[Sigmoid, Linear], DType::F64).unwrap()),
        ("deep-tanh-relu-softmax", nn::mlp(&[3, 4, 3, 3], &[Tanh, Relu, Softmax], DType::F64).unwrap()),
        ("narrow-curves", nn::autoencoder(&[5, 4, 3, 2], DType::F64).unwrap()),
        (
            "convnet-sigmoid",
            nn::convnet(
                [4, 5, 2],
                Window { kernel: [3, 2], stride: [2, 1], padding: [1, 0] },
                3,
                &[4, 3],
                &[Sigmoid, Tanh, Sigmoid],
                DType::F64,
            )
            .unwrap(),
        ),
    ]
}

struct Point {
    theta: Vec<f64>,
    x: Tensor<f64>,
    t: Tensor<f64>,
}

fn point(model: &Model, batch: usize, seed: u64) -> Point {
    let mut rng = rng(seed);
    let theta = uniform(&mut rng, &[model.layout.len()], -1.0, 1.0).into_data();
    let n_in = model.graph.shape(model.input).0[1].resolve(0);
    let n_out = model.graph.shape(model.targets).0[1].resolve(0);
    let x = uniform(&mut rng, &[batch, n_in], 0.0, 1.0);
    // Targets: probabilities for sigmoid, one-hot for softmax, anything for linear.
    let t = match model.kind {
        OutputKind::Softmax => {
            Tensor::from_fn(vec![batch, n_out], |i| if i % n_out == (i / n_out) % n_out { 1.0 } else { 0.0 })
        }
        _ => uniform(&mut rng, &[batch, n_out], 0.0, 1.0),
    };
    Point { theta, x, t }
}

/// Evaluates a product at `p` along the flat vector `v`; returns the flat result.
fn apply(model: &Model, product: &Product, p: &Point, v: &[f64]) -> Vec<f64> {
    let mut b = Bindings::new().with("x_metric", p.x.clone()).with("t_metric", p.t.clone());
    model.layout.bind(&p.theta, &mut b).unwrap();
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

/// The Jacobian of the output `y` (rows: example-major, then unit) w.r.t. the flat θ, built
/// column by column from Rop along basis vectors.
fn jacobian(model: &Model, p: &Point) -> Vec<Vec<f64>> {
    let mut g = model.graph.clone();
    let params = model.param_nodes();
    let tangents: Vec<NodeId> = model
        .layout
        .slots()
        .iter()
        .zip(&params)
        .map(|(slot, &param)| {
            let ty = g.ty(param).clone();
            let op = Op::Input { name: format!("e.{}", slot.name), dtype: ty.dtype, shape: ty.shape };
            g.add_with(op, &[], Provenance::default()).unwrap()
        })
        .collect();
    let d = rop(&g, &[model.output], &params, &tangents).unwrap();
    let n = model.layout.len();
    let mut columns = Vec::with_capacity(n);
    for k in 0..n {
        let mut b = Bindings::new().with("x", p.x.clone()).with("t", p.t.clone());
        model.layout.bind(&p.theta, &mut b).unwrap();
        for slot in model.layout.slots() {
            let basis = Tensor::from_fn(slot.shape.clone(), |i| if slot.offset + i == k { 1.0 } else { 0.0 });
            b.set(format!("e.{}", slot.name), basis);
        }
        columns.push(eval_nodes(&d.graph, &b, d.graph.outputs()).unwrap().remove(0).into_data());
    }
    columns
}

/// (1/N) Σᵢ J_iᵀ M_i J_i v with the paper's M for each output kind.
fn explicit_fisher(model: &Model, p: &Point, v: &[f64]) -> Vec<f64> {
    let columns = jacobian(model, p);
    let mut b = Bindings::new().with("x", p.x.clone());
    model.layout.bind(&p.theta, &mut b).unwrap();
    let y = eval_nodes(&model.graph, &b, &[model.output]).unwrap().remove(0).into_data();
    let m: Vec<f64> = y
        .iter()
        .map(|&y| match model.kind {
            OutputKind::Linear { beta } => beta * beta,
            OutputKind::Sigmoid => 1.0 / (y * (1.0 - y)),
            OutputKind::Softmax => 1.0 / y,
        })
        .collect();
    let batch = p.x.shape()[0] as f64;
    let jv: Vec<f64> =
        (0..y.len()).map(|row| columns.iter().zip(v).map(|(c, vk)| c[row] * vk).sum()).collect();
    columns.iter().map(|c| (0..y.len()).map(|row| c[row] * m[row] * jv[row]).sum::<f64>() / batch).collect()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn random_vector(n: usize, seed: u64) -> Vec<f64> {
    uniform(&mut rng(seed), &[n], -1.0, 1.0).into_data()
}

#[test]
fn fisher_product_equals_the_explicit_matrix_and_gauss_newton() {
    for (label, model) in models() {
        let fisher = fisher_product(&model).unwrap();
        let gn = gauss_newton_product(&model).unwrap();
        assert!(fisher.targets.is_none(), "{label}: the Fisher needs no targets");
        let p = point(&model, 4, 11);
        let v = random_vector(model.layout.len(), 12);
        let gv = apply(&model, &fisher, &p, &v);
        let expected = explicit_fisher(&model, &p, &v);
        let err = rel(&gv, &expected);
        assert!(err < 1e-10, "{label}: fisher_product vs explicit: {err:e}");
        let err = rel(&apply(&model, &gn, &p, &v), &gv);
        assert!(err < 1e-10, "{label}: gauss_newton_product vs fisher_product: {err:e}");
    }
}

#[test]
fn fisher_is_symmetric_and_positive_semidefinite() {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for (label, model) in models() {
        let fisher = fisher_product(&model).unwrap();
        let p = point(&model, 5, 3);
        for seed in 0..4 {
            let u = random_vector(model.layout.len(), 100 + seed);
            let v = random_vector(model.layout.len(), 200 + seed);
            let (gu, gv) = (apply(&model, &fisher, &p, &u), apply(&model, &fisher, &p, &v));
            let (ugv, gu_v) = (dot(&u, &gv), dot(&gu, &v));
            assert!(
                (ugv - gu_v).abs() <= 1e-10 * (1.0 + ugv.abs()),
                "{label}: ⟨u,Gv⟩ = {ugv}, ⟨Gu,v⟩ = {gu_v}"
            );
            assert!(dot(&v, &gv) >= -1e-12, "{label}: ⟨v,Gv⟩ = {} < 0", dot(&v, &gv));
        }
    }
}

#[test]
fn empirical_fisher_equals_the_mean_outer_product_of_per_example_gradients() {
    for (label, model) in models() {
        let product = empirical_fisher_product(&model).unwrap();
        let grads = gradient(&model).unwrap();
        let p = point(&model, 4, 5);
        let v = random_vector(model.layout.len(), 6);
        let n_in = p.x.shape()[1];
        let n_out = p.t.shape()[1];
        let mut expected = vec![0.0; v.len()];
        for i in 0..4 {
            let xi = Tensor::new(vec![1, n_in], p.x.data()[i * n_in..(i + 1) * n_in].to_vec()).unwrap();
            let ti = Tensor::new(vec![1, n_out], p.t.data()[i * n_out..(i + 1) * n_out].to_vec()).unwrap();
            let mut b = Bindings::new().with("x", xi).with("t", ti);
            model.layout.bind(&p.theta, &mut b).unwrap();
            let gi: Vec<f64> = eval_nodes(&grads.graph, &b, &grads.grads)
                .unwrap()
                .into_iter()
                .flat_map(|t| t.into_data())
                .collect();
            let giv: f64 = gi.iter().zip(&v).map(|(a, b)| a * b).sum();
            for (e, g) in expected.iter_mut().zip(&gi) {
                *e += g * giv / 4.0;
            }
        }
        let err = rel(&apply(&model, &product, &p, &v), &expected);
        assert!(err < 1e-10, "{label}: empirical Fisher vs dense: {err:e}");
    }
}

#[test]
fn gradient_matches_finite_differences() {
    for (label, model) in models() {
        let grads = gradient(&model).unwrap();
        let p = point(&model, 3, 9);
        let loss_at = |theta: &[f64]| {
            let mut b = Bindings::new().with("x", p.x.clone()).with("t", p.t.clone());
            model.layout.bind(theta, &mut b).unwrap();
            eval_nodes(&model.graph, &b, &[model.loss]).unwrap()[0].data()[0]
        };
        let mut b = Bindings::new().with("x", p.x.clone()).with("t", p.t.clone());
        model.layout.bind(&p.theta, &mut b).unwrap();
        let g: Vec<f64> = eval_nodes(&grads.graph, &b, &grads.grads)
            .unwrap()
            .into_iter()
            .flat_map(|t| t.into_data())
            .collect();
        let v = random_vector(g.len(), 10);
        let h = 1e-6;
        let shifted =
            |s: f64| loss_at(&p.theta.iter().zip(&v).map(|(t, d)| t + s * h * d).collect::<Vec<_>>());
        let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * h);
        let gv: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert!((fd - gv).abs() < 1e-6 * (1.0 + gv.abs()), "{label}: ⟨g,v⟩ = {gv}, finite differences {fd}");
    }
}

#[test]
fn metric_batch_differs_from_the_gradient_batch_and_needs_no_targets() {
    let model = nn::mlp(&[3, 4, 3], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let fisher = fisher_product(&model).unwrap();
    assert!(fisher.graph.leaf("t_metric").is_none() && fisher.graph.leaf("t").is_none());
    assert_eq!(fisher.graph.leaf("x_metric"), Some(fisher.data));
    let metric = point(&model, 7, 21); // 7 unlabeled examples
    let v = random_vector(model.layout.len(), 22);
    // Bind only the metric batch and parameters: no targets, no gradient batch.
    let mut b = Bindings::new().with("x_metric", metric.x.clone());
    model.layout.bind(&metric.theta, &mut b).unwrap();
    for slot in model.layout.slots() {
        b.set(
            format!("v.{}", slot.name),
            Tensor::new(slot.shape.clone(), v[slot.offset..slot.offset + slot.len()].to_vec()).unwrap(),
        );
    }
    let gv: Vec<f64> = eval_nodes(&fisher.graph, &b, &fisher.results)
        .unwrap()
        .into_iter()
        .flat_map(|t| t.into_data())
        .collect();
    assert!(rel(&gv, &explicit_fisher(&model, &metric, &v)) < 1e-10);
    // The gradient batch (3 labelled examples) is a different graph input.
    let grads = gradient(&model).unwrap();
    let gradient_batch = point(&model, 3, 23);
    let mut b = Bindings::new().with("x", gradient_batch.x.clone()).with("t", gradient_batch.t.clone());
    model.layout.bind(&metric.theta, &mut b).unwrap();
    assert_eq!(eval_nodes(&grads.graph, &b, &grads.grads).unwrap().len(), 4);
}

#[test]
fn raw_fisher_product_snapshot() {
    let model = nn::mlp(&[4, 3, 2], &[Activation::Sigmoid, Activation::Softmax], DType::F32).unwrap();
    let fisher = fisher_product(&model).unwrap();
    fisher.graph.verify().unwrap();
    insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("raw_fisher_softmax_mlp", fisher.graph.to_string());
    });
}
