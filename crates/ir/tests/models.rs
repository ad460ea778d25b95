//! `nn` helpers: structure of the Curves autoencoder, the flat parameter layout, losses.

use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{Bindings, DType, Op, OutputKind, Reduce, Tensor, Unary, eval, eval_nodes};

fn count(model: &natgrad_ir::Model, pred: impl Fn(&Op) -> bool) -> usize {
    model.graph.node_ids().filter(|&id| pred(model.graph.op(id))).count()
}

#[test]
fn curves_autoencoder_structure() {
    let m = nn::curves_autoencoder();
    assert_eq!(count(&m, |op| matches!(op, Op::MatMul { .. })), 12);
    assert_eq!(count(&m, |op| *op == Op::Unary(Unary::Sigmoid)), 11, "10 hidden layers + the output");
    assert_eq!(m.layout.len(), 842_340);
    assert_eq!(m.layout.slots().len(), 24);
    assert_eq!(m.kind, OutputKind::Sigmoid);
    assert!(m.is_autoencoder());
    // The code layer (h6) is linear: its node is the bias add itself, with 6 units.
    let code = m.graph.node_ids().find(|&id| m.graph.node(id).name.as_deref() == Some("h6")).unwrap();
    assert_eq!(m.graph.op(code), &Op::Binary(natgrad_ir::Binary::Add));
    assert_eq!(m.graph.shape(code).to_string(), "[B,6]");
    assert_eq!(m.graph.shape(m.output).to_string(), "[B,784]");
    assert_eq!(m.graph.outputs(), &[m.loss]);
    assert!(matches!(m.graph.op(m.loss), Op::Reduce { kind: Reduce::Mean, .. }));
    m.graph.verify().unwrap();
}

#[test]
fn flat_layout_is_layer_by_layer_weight_then_bias() {
    let m = nn::mlp(&[3, 2, 2], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap();
    let names: Vec<(&str, usize)> = m.layout.slots().iter().map(|s| (s.name.as_str(), s.offset)).collect();
    assert_eq!(names, vec![("w1", 0), ("b1", 6), ("w2", 8), ("b2", 12)]);
    let theta: Vec<f64> = (0..14).map(|i| i as f64).collect();
    let mut bindings = Bindings::new();
    m.layout.bind(&theta, &mut bindings).unwrap();
    assert_eq!(bindings.get("w1").unwrap().data(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(bindings.get("w1").unwrap().shape(), &[3, 2]);
    assert_eq!(bindings.get("b2").unwrap().data(), &[12.0, 13.0]);
    let err = m.layout.bind(&theta[..13], &mut bindings).unwrap_err();
    assert_eq!(err.to_string(), "flat parameter vector has 13 values, the model needs 14");
}

/// One-layer models whose losses have closed forms.
#[test]
fn losses_match_closed_forms() {
    let x = Tensor::new(vec![2, 2], vec![1.0, -1.0, 0.5, 2.0]).unwrap();
    let theta = [0.3, -0.2, 0.1, 0.4, 0.05, -0.05]; // w = [[.3,-.2],[.1,.4]], b = [.05,-.05]
    let r = |i: usize| -> [f64; 2] {
        let xi = &x.data()[2 * i..2 * i + 2];
        [xi[0] * 0.3 + xi[1] * 0.1 + 0.05, xi[0] * -0.2 + xi[1] * 0.4 - 0.05]
    };
    let t = Tensor::new(vec![2, 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    let loss_of = |act: Activation| {
        let m = nn::mlp(&[2, 2], &[act], DType::F64).unwrap();
        let mut b = Bindings::new().with("x", x.clone()).with("t", t.clone());
        m.layout.bind(&theta, &mut b).unwrap();
        eval(&m.graph, &b).unwrap()[0].data()[0]
    };
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let mut ce = 0.0;
    let mut nll = 0.0;
    let mut se = 0.0;
    for i in 0..2 {
        let ri = r(i);
        let ti = &t.data()[2 * i..2 * i + 2];
        let z: f64 = ri.iter().map(|v| v.exp()).sum();
        for j in 0..2 {
            ce -= ti[j] * sig(ri[j]).ln() + (1.0 - ti[j]) * (1.0 - sig(ri[j])).ln();
            nll -= ti[j] * (ri[j].exp() / z).ln();
            se += 0.5 * (ri[j] - ti[j]).powi(2);
        }
    }
    assert!((loss_of(Activation::Sigmoid) - ce / 2.0).abs() < 1e-14);
    assert!((loss_of(Activation::Softmax) - nll / 2.0).abs() < 1e-14);
    assert!((loss_of(Activation::Linear) - se / 2.0).abs() < 1e-14);
}

#[test]
fn autoencoder_output_reconstructs_its_input_shape() {
    let m = nn::autoencoder(&[8, 4, 2], DType::F64).unwrap();
    assert_eq!(m.layout.len(), 8 * 4 + 4 + 4 * 2 + 2 + 2 * 4 + 4 + 4 * 8 + 8);
    let mut b = Bindings::new().with("x", Tensor::from_fn(vec![3, 8], |i| (i % 5) as f64 / 5.0));
    m.layout.bind(&vec![0.0; m.layout.len()], &mut b).unwrap();
    let y = eval_nodes(&m.graph, &b, &[m.output]).unwrap().remove(0);
    assert_eq!(y.shape(), &[3, 8]);
    assert!(y.data().iter().all(|v| *v == 0.5), "zero weights give σ(0) everywhere");
}

#[test]
fn bad_mlp_specifications_are_errors() {
    let err = nn::mlp(&[3, 2], &[Activation::Tanh], DType::F32).unwrap_err();
    assert!(err.to_string().contains("output activation Tanh has no matching loss"), "{err}");
    let err = nn::mlp(&[3, 2, 2], &[Activation::Sigmoid], DType::F32).unwrap_err();
    assert!(err.to_string().contains("3 layer sizes need 2 activations, got 1"), "{err}");
    let err = nn::mlp(&[3, 2, 2], &[Activation::Softmax, Activation::Softmax], DType::F32).unwrap_err();
    assert!(err.to_string().contains("softmax is only supported on the output layer"), "{err}");
}
