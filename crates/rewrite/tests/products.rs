//! The simplifier on the paper's product graphs: optimized-IR snapshots, the stability
//! cancellations (no division by the network output remains; saturated outputs stay finite
//! in f32), value preservation, and the minimum matmul count of the Curves Fisher product.

use natgrad_autodiff::{Product, fisher_product, gradient};
use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{Bindings, DType, Graph, Model, NodeId, Op, Scalar, Tensor, Unary, Window, eval_nodes};
use natgrad_rewrite::{Options, print_with_groups, simplify};
use rand::{Rng, SeedableRng};

fn models() -> Vec<(&'static str, Model)> {
    use Activation::*;
    vec![
        ("curves", nn::curves_autoencoder()),
        ("softmax_mlp", nn::mlp(&[784, 100, 10], &[Tanh, Softmax], DType::F32).unwrap()),
        ("sigmoid_mlp", nn::mlp(&[784, 100, 10], &[Relu, Sigmoid], DType::F32).unwrap()),
        ("linear_mlp", nn::mlp(&[784, 100, 10], &[Sigmoid, Linear], DType::F32).unwrap()),
        ("section7_convnet", section7_convnet(DType::F32)),
    ]
}

/// The paper's section-7 shape on 28×28 images: a 5×5 convolution of 16 sigmoid filters,
/// 100 sigmoid hidden units, 10 sigmoid outputs with per-unit cross-entropy.
fn section7_convnet(dtype: DType) -> Model {
    let window = Window { kernel: [5, 5], stride: [1, 1], padding: [0, 0] };
    use Activation::Sigmoid;
    nn::convnet([28, 28, 1], window, 16, &[100, 10], &[Sigmoid, Sigmoid, Sigmoid], dtype).unwrap()
}

#[test]
fn optimized_ir_snapshots() {
    for (label, model) in models() {
        let fisher = simplify(&fisher_product(&model).unwrap().graph, &Options::default()).unwrap();
        let grad = simplify(&gradient(&model).unwrap().graph, &Options::default()).unwrap();
        assert!(fisher.stats.budget.is_none() && grad.stats.budget.is_none());
        insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(format!("optimized_fisher_{label}"), print_with_groups(&fisher.graph, &fisher.fusion));
            insta::assert_snapshot!(format!("optimized_gradient_{label}"), print_with_groups(&grad.graph, &grad.fusion));
        });
    }
}

/// Whether `id` depends on a sigmoid or softmax node (the network output or its variance).
fn depends_on_output(graph: &Graph, id: NodeId) -> bool {
    let mut stack = vec![id];
    let mut seen = vec![false; graph.len()];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n.index()], true) {
            continue;
        }
        if matches!(graph.op(n), Op::Unary(Unary::Sigmoid) | Op::Softmax { .. }) {
            return true;
        }
        stack.extend(graph.inputs(n));
    }
    false
}

fn divisions_by_output(graph: &Graph) -> usize {
    graph
        .node_ids()
        .filter(|&id| matches!(graph.op(id), Op::Binary(natgrad_ir::Binary::Div)))
        .filter(|&id| depends_on_output(graph, graph.inputs(id)[1]))
        .count()
}

#[test]
fn no_division_by_the_network_output_remains() {
    for (label, model) in models() {
        let naive = fisher_product(&model).unwrap().graph;
        let optimized = simplify(&naive, &Options::default()).unwrap().graph;
        if label != "linear_mlp" {
            assert_eq!(divisions_by_output(&naive), 1, "{label}: the naive product divides by the output");
        }
        assert_eq!(
            divisions_by_output(&optimized),
            0,
            "{label}: a division by the output remains:\n{optimized}"
        );
    }
}

/// Binds params (flat `theta`), the metric batch and a flat tangent `v`.
fn bindings<T: Scalar>(model: &Model, theta: &[f64], x: &Tensor<f64>, v: &[f64]) -> Bindings<T> {
    let theta: Vec<T> = theta.iter().map(|&t| T::from_f64(t)).collect();
    let mut b = Bindings::new().with("x_metric", x.cast());
    model.layout.bind(&theta, &mut b).unwrap();
    for slot in model.layout.slots() {
        let part = v[slot.offset..slot.offset + slot.len()].iter().map(|&t| T::from_f64(t)).collect();
        b.set(format!("v.{}", slot.name), Tensor::new(slot.shape.clone(), part).unwrap());
    }
    b
}

fn flat<T: Scalar>(graph: &Graph, product: &Product, b: &Bindings<T>) -> Vec<f64> {
    let outputs = graph.outputs().to_vec();
    assert_eq!(outputs.len(), product.results.len());
    eval_nodes(graph, b, &outputs)
        .unwrap()
        .iter()
        .flat_map(|t| t.data().iter().map(|v| v.as_f64()).collect::<Vec<_>>())
        .collect()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// A small model whose output biases push some units into saturation.
fn saturated(activation: Activation, output_bias: &[f64]) {
    let n_out = output_bias.len();
    let model = nn::mlp(&[4, 5, n_out], &[Activation::Tanh, activation], DType::F32).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut theta: Vec<f64> = (0..model.layout.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let b2 = model.layout.slot("b2").unwrap();
    theta[b2.offset..b2.offset + n_out].copy_from_slice(output_bias);
    let x = Tensor::from_fn(vec![6, 4], |_| rng.random_range(-1.0..1.0));
    let v: Vec<f64> = (0..model.layout.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let product = fisher_product(&model).unwrap();
    let optimized = simplify(&product.graph, &Options::default()).unwrap().graph;
    let reference = flat(&product.graph, &product, &bindings::<f64>(&model, &theta, &x, &v));
    assert!(reference.iter().all(|g| g.is_finite()), "the f64 reference is finite");
    let naive32 = flat(&product.graph, &product, &bindings::<f32>(&model, &theta, &x, &v));
    let optimized32 = flat(&optimized, &product, &bindings::<f32>(&model, &theta, &x, &v));
    assert!(naive32.iter().any(|g| !g.is_finite()), "{activation:?}: the naive f32 product should break");
    assert!(optimized32.iter().all(|g| g.is_finite()), "{activation:?}: optimized f32 product is not finite");
    let err = rel(&optimized32, &reference);
    assert!(err < 1e-4, "{activation:?}: optimized f32 vs f64: {err:e}");
}

#[test]
fn saturated_outputs_stay_finite_in_f32() {
    // Unit 0 has σ(r) = 1 exactly in f32.
    saturated(Activation::Sigmoid, &[30.0, 0.0, 0.5]);
    // Unit 2's probability e^-150 underflows to 0 in f32 (not in f64).
    saturated(Activation::Softmax, &[0.0, 0.5, -150.0]);
}

#[test]
fn optimized_products_keep_their_values() {
    let small = [
        nn::mlp(&[5, 4, 3], &[Activation::Tanh, Activation::Softmax], DType::F64).unwrap(),
        nn::mlp(&[5, 4, 3], &[Activation::Relu, Activation::Sigmoid], DType::F64).unwrap(),
        nn::mlp(&[5, 4, 3], &[Activation::Sigmoid, Activation::Linear], DType::F64).unwrap(),
        nn::autoencoder(&[6, 4, 2], DType::F64).unwrap(),
        nn::convnet(
            [5, 4, 2],
            Window { kernel: [2, 3], stride: [1, 2], padding: [1, 1] },
            3,
            &[4, 3],
            &[Activation::Relu, Activation::Tanh, Activation::Softmax],
            DType::F64,
        )
        .unwrap(),
    ];
    for model in small {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let theta: Vec<f64> = (0..model.layout.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Tensor::from_fn(vec![4, model.graph.shape(model.input).0[1].resolve(0)], |_| {
            rng.random_range(0.0..1.0)
        });
        let v: Vec<f64> = (0..model.layout.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let product = fisher_product(&model).unwrap();
        let optimized = simplify(&product.graph, &Options::default()).unwrap().graph;
        let b = bindings::<f64>(&model, &theta, &x, &v);
        let err = rel(&flat(&optimized, &product, &b), &flat(&product.graph, &product, &b));
        assert!(err < 1e-12, "optimized vs naive: {err:e}");
    }
}

#[test]
fn curves_fisher_product_has_the_minimum_number_of_matmuls() {
    let model = nn::curves_autoencoder();
    let optimized = simplify(&fisher_product(&model).unwrap().graph, &Options::default()).unwrap().graph;
    let depends_on_tangent = |id: NodeId| {
        let mut stack = vec![id];
        let mut seen = vec![false; optimized.len()];
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n.index()], true) {
                continue;
            }
            if matches!(optimized.op(n), Op::Input { name, .. } if name.starts_with("v.")) {
                return true;
            }
            stack.extend(optimized.inputs(n));
        }
        false
    };
    let (mut forward, mut tangent, mut backward) = (0, 0, 0);
    for id in optimized.node_ids() {
        match optimized.op(id) {
            Op::MatMul { transpose_a: false, transpose_b: false } if depends_on_tangent(id) => tangent += 1,
            Op::MatMul { transpose_a: false, transpose_b: false } => forward += 1,
            Op::MatMul { .. } => backward += 1,
            _ => {}
        }
    }
    assert_eq!((forward, tangent, backward), (12, 23, 23));
}

/// Contracting every fusion group to one node must leave a DAG (a kernel can run once all
/// its inputs exist), and every elementwise op must be in exactly one group.
#[test]
fn fusion_groups_are_acyclic_and_cover_every_elementwise_op() {
    for (label, model) in models() {
        for graph in [fisher_product(&model).unwrap().graph, gradient(&model).unwrap().graph] {
            let s = simplify(&graph, &Options::default()).unwrap();
            let g = &s.graph;
            let mut unit: Vec<usize> = (0..g.len()).map(|i| s.fusion.len() + i).collect();
            for (k, group) in s.fusion.iter().enumerate() {
                for n in &group.nodes {
                    assert_eq!(unit[n.index()], s.fusion.len() + n.index(), "{label}: {n} in two groups");
                    unit[n.index()] = k;
                }
            }
            for id in g.node_ids() {
                if g.op(id).is_elementwise() {
                    assert!(unit[id.index()] < s.fusion.len(), "{label}: {id} is in no group");
                }
            }
            let units = s.fusion.len() + g.len();
            let mut edges: Vec<Vec<usize>> = vec![Vec::new(); units];
            let mut indegree = vec![0usize; units];
            for id in g.node_ids() {
                for i in g.inputs(id) {
                    let (from, to) = (unit[i.index()], unit[id.index()]);
                    if from != to && !edges[from].contains(&to) {
                        edges[from].push(to);
                        indegree[to] += 1;
                    }
                }
            }
            let mut ready: Vec<usize> = (0..units).filter(|&u| indegree[u] == 0).collect();
            let mut seen = 0;
            while let Some(u) = ready.pop() {
                seen += 1;
                for &v in &edges[u] {
                    indegree[v] -= 1;
                    if indegree[v] == 0 {
                        ready.push(v);
                    }
                }
            }
            let stuck: Vec<String> = (0..s.fusion.len())
                .filter(|&k| indegree[k] > 0)
                .map(|k| format!("{:?}", s.fusion[k].nodes))
                .collect();
            assert_eq!(
                seen,
                units,
                "{label}: the fusion groups form a cycle: {stuck:?}\n{}",
                print_with_groups(g, &s.fusion)
            );
        }
    }
}
