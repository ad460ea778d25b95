//! Shared helpers for the autodiff tests: random tensors, interpreter calls, dot products.
#![allow(dead_code)]

use natgrad_autodiff::{Tangent, lop_in, rop_in};
use natgrad_ir::{Bindings, Graph, NodeId, Op, Provenance, Tensor, eval_nodes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A tensor with entries uniform in `[lo, hi)`.
pub fn uniform(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
    Tensor::from_fn(shape.to_vec(), |_| rng.random_range(lo..hi))
}

pub fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.data().iter().zip(b.data()).map(|(x, y)| x * y).sum()
}

pub fn dots(a: &[Tensor<f64>], b: &[Tensor<f64>]) -> f64 {
    a.iter().zip(b).map(|(x, y)| dot(x, y)).sum()
}

/// ‖a − b‖∞ / max(1, ‖b‖∞) over lists of tensors.
pub fn rel_err(a: &[Tensor<f64>], b: &[Tensor<f64>]) -> f64 {
    let scale = b.iter().flat_map(|t| t.data()).fold(1.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.shape(), y.shape());
            x.data().iter().zip(y.data()).map(|(p, q)| (p - q).abs()).collect::<Vec<_>>()
        })
        .fold(0.0f64, f64::max);
    diff / scale
}

pub fn eval(graph: &Graph, bindings: &Bindings<f64>, nodes: &[NodeId]) -> Vec<Tensor<f64>> {
    eval_nodes(graph, bindings, nodes).unwrap_or_else(|e| panic!("{e}\n{graph}"))
}

/// `a + s·b` elementwise.
pub fn axpy(a: &Tensor<f64>, s: f64, b: &Tensor<f64>) -> Tensor<f64> {
    Tensor::from_fn(a.shape().to_vec(), |i| a.data()[i] + s * b.data()[i])
}

/// Rop against central differences, Lop by the dot-product test, and Rop against
/// Rop-via-double-Lop: the three checks for output `y` of `graph` w.r.t. the input nodes `xs` at `point`.
#[allow(clippy::too_many_arguments)]
pub fn check_derivatives(
    label: &str,
    graph: &Graph,
    y: NodeId,
    xs: &[NodeId],
    point: &[Tensor<f64>],
    dirs: &[Tensor<f64>],
    rng: &mut StdRng,
    batch: usize,
) {
    let name = |g: &Graph, id: NodeId| match g.op(id) {
        Op::Input { name, .. } => name.clone(),
        _ => unreachable!(),
    };
    let bind = |g: &Graph, values: &[Tensor<f64>]| {
        xs.iter()
            .zip(values)
            .fold(Bindings::new().with_batch(batch), |b, (&x, v)| b.with(name(g, x), v.clone()))
    };
    let y_val = eval(graph, &bind(graph, point), &[y]).remove(0);

    // Rop: J v.
    let mut g = graph.clone();
    let tangents: Vec<NodeId> = xs
        .iter()
        .map(|&x| {
            let ty = g.ty(x).clone();
            let op = Op::Input { name: format!("d.{}", name(&g, x)), dtype: ty.dtype, shape: ty.shape };
            g.add_with(op, &[], Provenance::default()).unwrap()
        })
        .collect();
    let jv_t = rop_in(&mut g, &[y], xs, &tangents).unwrap_or_else(|e| panic!("{label}: {e}"))[0];
    let mut b = bind(&g, point);
    for (t, d) in tangents.iter().zip(dirs) {
        b.set(name(&g, *t), d.clone());
    }
    let jv = match jv_t {
        Tangent::Value(id) => eval(&g, &b, &[id]).remove(0),
        Tangent::Zero => Tensor::zeros(y_val.shape().to_vec()),
    };

    // Central differences.
    let h = 1e-6;
    let shifted = |s: f64| {
        let moved: Vec<Tensor<f64>> = point.iter().zip(dirs).map(|(p, d)| axpy(p, s * h, d)).collect();
        eval(graph, &bind(graph, &moved), &[y]).remove(0)
    };
    let (plus, minus) = (shifted(1.0), shifted(-1.0));
    let fd = Tensor::from_fn(plus.shape().to_vec(), |i| (plus.data()[i] - minus.data()[i]) / (2.0 * h));
    let err = rel_err(std::slice::from_ref(&jv), std::slice::from_ref(&fd));
    assert!(err < 1e-6, "{label}: Rop vs finite differences: rel err {err:e}\nrop {jv:?}\nfd {fd:?}");

    // Lop: Jᵀ u and the dot-product test.
    let mut g2 = g.clone();
    let ty = g2.ty(y).clone();
    let u = g2
        .add_with(
            Op::Input { name: "u".into(), dtype: ty.dtype, shape: ty.shape },
            &[],
            Provenance::default(),
        )
        .unwrap();
    let jtu_t = lop_in(&mut g2, &[y], xs, &[u]).unwrap_or_else(|e| panic!("{label}: {e}"));
    let u_val = uniform(rng, y_val.shape(), -1.0, 1.0);
    b.set("u", u_val.clone());
    let jtu: Vec<Tensor<f64>> = jtu_t
        .iter()
        .zip(point)
        .map(|(t, p)| match t {
            Tangent::Value(id) => eval(&g2, &b, &[*id]).remove(0),
            Tangent::Zero => Tensor::zeros(p.shape().to_vec()),
        })
        .collect();
    let lhs = dot(&u_val, &jv);
    let rhs = dots(&jtu, dirs);
    assert!((lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()), "{label}: ⟨u, Jv⟩ = {lhs} but ⟨Jᵀu, v⟩ = {rhs}");

    // Rop via double Lop: J v = Lop(Jᵀu, u, v), for each input's direction.
    let jtu_nodes: Vec<NodeId> = jtu_t.iter().filter_map(|t| t.node()).collect();
    let dir_nodes: Vec<NodeId> =
        jtu_t.iter().zip(&tangents).filter(|(t, _)| t.node().is_some()).map(|(_, d)| *d).collect();
    let double = if jtu_nodes.is_empty() {
        Tensor::zeros(y_val.shape().to_vec())
    } else {
        match lop_in(&mut g2, &jtu_nodes, &[u], &dir_nodes).unwrap_or_else(|e| panic!("{label}: {e}"))[0] {
            Tangent::Value(id) => eval(&g2, &b, &[id]).remove(0),
            Tangent::Zero => Tensor::zeros(y_val.shape().to_vec()),
        }
    };
    let err = rel_err(&[double], &[jv]);
    assert!(err < 1e-10, "{label}: Rop vs Rop-via-double-Lop: rel err {err:e}");
    g2.verify().unwrap();
}
