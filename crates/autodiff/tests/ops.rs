//! Per-op derivative checks in f64 through the reference interpreter:
//! Rop against central finite differences, Lop by the dot-product test
//! ⟨u, J v⟩ = ⟨Jᵀ u, v⟩, and Rop against Rop-via-double-Lop.

mod common;

use common::*;
use natgrad_autodiff::{Tangent, lop_in, rop_in};
use natgrad_ir::{Bindings, Builder, Compare, DType, Dim, Expr, NodeId, Op, Shape, Tensor, Window};

const BATCH: usize = 3;

/// Domain of an input's random values.
#[derive(Clone, Copy)]
enum Domain {
    Any,
    Positive,
}

/// Builds `f` on inputs of the given shapes and runs the three checks at a random point.
fn check(label: &str, inputs: &[(Shape, Domain)], f: impl Fn(&[Expr]) -> Expr) {
    let b = Builder::new(DType::F64);
    let xs: Vec<Expr> =
        inputs.iter().enumerate().map(|(i, (s, _))| b.input(&format!("x{i}"), s.clone())).collect();
    let y = f(&xs);
    let graph = b.finish(&[&y]).unwrap_or_else(|e| panic!("{label}: {e}"));
    let x_ids: Vec<NodeId> = xs.iter().map(|x| x.id()).collect();
    let mut rng = rng(label.len() as u64 * 7919);
    let point: Vec<Tensor<f64>> = inputs
        .iter()
        .map(|(s, d)| {
            let dims = s.resolve(BATCH);
            match d {
                Domain::Any => uniform(&mut rng, &dims, -1.5, 1.5),
                Domain::Positive => uniform(&mut rng, &dims, 0.5, 2.0),
            }
        })
        .collect();
    let dirs: Vec<Tensor<f64>> =
        inputs.iter().map(|(s, _)| uniform(&mut rng, &s.resolve(BATCH), -1.0, 1.0)).collect();
    check_derivatives(label, &graph, y.id(), &x_ids, &point, &dirs, &mut rng, BATCH);
}

fn bx(n: usize) -> (Shape, Domain) {
    (Shape::batched(&[n]), Domain::Any)
}
fn pos(n: usize) -> (Shape, Domain) {
    (Shape::batched(&[n]), Domain::Positive)
}
fn fixed(dims: &[usize]) -> (Shape, Domain) {
    (Shape::fixed(dims), Domain::Any)
}

#[test]
fn unary_ops() {
    check("neg", &[bx(4)], |x| -&x[0]);
    check("exp", &[bx(4)], |x| x[0].exp());
    check("log", &[pos(4)], |x| x[0].log());
    check("log1p", &[pos(4)], |x| x[0].log1p());
    check("sqrt", &[pos(4)], |x| x[0].sqrt());
    check("square", &[bx(4)], |x| x[0].square());
    check("pow", &[pos(4)], |x| x[0].pow(2.5));
    check("pow2", &[bx(4)], |x| x[0].pow(2.0));
    check("pow1", &[bx(4)], |x| x[0].pow(1.0));
    check("sigmoid", &[bx(4)], |x| x[0].sigmoid());
    check("tanh", &[bx(4)], |x| x[0].tanh());
    check("relu", &[bx(4)], |x| x[0].relu());
    check("softplus", &[bx(4)], |x| x[0].softplus());
}

#[test]
fn binary_and_selection_ops() {
    check("add", &[bx(4), bx(4)], |x| &x[0] + &x[1]);
    check("sub", &[bx(4), bx(4)], |x| &x[0] - &x[1]);
    check("mul", &[bx(4), bx(4)], |x| &x[0] * &x[1]);
    check("div", &[bx(4), pos(4)], |x| &x[0] / &x[1]);
    check("maximum", &[bx(4), bx(4)], |x| x[0].maximum(&x[1]));
    check("self-mul", &[bx(4)], |x| &x[0] * &x[0]);
    check("compare", &[bx(4), bx(4)], |x| x[0].compare(Compare::Lt, &x[1]));
    check("select", &[bx(4), bx(4), bx(4)], |x| x[0].compare(Compare::Gt, &x[2]).select(&x[1], &x[2].exp()));
    check("select-one-side", &[bx(4), bx(4)], |x| {
        let c = x[0].compare(Compare::Gt, &x[0].constant(0.0));
        c.select(&x[1], &x[0].constant(2.0).broadcast_to(Shape::batched(&[4])))
    });
}

#[test]
fn normalisations() {
    check("softmax1", &[bx(5)], |x| x[0].softmax(1));
    check("softmax0", &[bx(5)], |x| x[0].softmax(0));
    check("log_softmax1", &[bx(5)], |x| x[0].log_softmax(1));
    check("log_softmax0", &[bx(5)], |x| x[0].log_softmax(0));
}

#[test]
fn matmul_all_transposes() {
    check("mm", &[bx(4), fixed(&[4, 2])], |x| x[0].matmul(&x[1]));
    check("mm-tb", &[bx(4), fixed(&[2, 4])], |x| x[0].matmul_t(&x[1], false, true));
    check("mm-ta", &[bx(4), bx(2)], |x| x[0].matmul_t(&x[1], true, false));
    check("mm-ta-tb", &[fixed(&[4, 3]), fixed(&[2, 4])], |x| x[0].matmul_t(&x[1], true, true));
    check("mm-data-only", &[bx(4), fixed(&[4, 2])], |x| {
        x[0].matmul(&x[1].constant(0.5).broadcast_to(Shape::fixed(&[4, 2])))
    });
}

#[test]
fn layout_ops() {
    check("broadcast-row", &[fixed(&[4])], |x| x[0].broadcast_to(Shape::batched(&[4])));
    check("broadcast-col", &[bx(1)], |x| x[0].broadcast_to(Shape::batched(&[4])));
    check("broadcast-scalar", &[fixed(&[])], |x| x[0].broadcast_to(Shape::fixed(&[2, 3])));
    check("broadcast-rank", &[fixed(&[1, 3])], |x| {
        x[0].broadcast_to(Shape(vec![Dim::Fixed(2), Dim::Batch, Dim::Fixed(3)]))
    });
    check("reshape", &[bx(6)], |x| x[0].reshape(Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)])));
    check("transpose", &[bx(4)], |x| x[0].transpose(&[1, 0]));
    check("transpose3", &[fixed(&[2, 3, 4])], |x| x[0].transpose(&[2, 0, 1]));
}

fn nhwc(h: usize, w: usize, c: usize) -> (Shape, Domain) {
    (Shape(vec![Dim::Batch, Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(c)]), Domain::Any)
}

#[test]
fn convolutions_and_stacked_matmuls() {
    let window = |k: usize, s: usize, p: usize| Window { kernel: [k, k], stride: [s, s], padding: [p, p] };
    check("im2col", &[nhwc(4, 5, 2)], |x| x[0].im2col(window(3, 1, 1)));
    check("im2col-strided", &[nhwc(5, 5, 1)], |x| {
        x[0].im2col(Window { kernel: [2, 3], stride: [2, 1], padding: [0, 1] })
    });
    check("col2im", &[nhwc(2, 3, 8)], |x| x[0].col2im(window(2, 2, 1), [3, 4]));
    check("conv2d", &[nhwc(4, 4, 2), fixed(&[3, 3, 2, 3])], |x| x[0].conv2d(&x[1], [1, 1], [1, 1]));
    check("conv2d-strided-sigmoid", &[nhwc(5, 4, 1), fixed(&[2, 2, 1, 2])], |x| {
        x[0].conv2d(&x[1], [2, 1], [0, 1]).sigmoid()
    });
    let stack = |m: usize, k: usize| (Shape(vec![Dim::Batch, Dim::Fixed(m), Dim::Fixed(k)]), Domain::Any);
    check("mm-stacked", &[stack(3, 4), fixed(&[4, 2])], |x| x[0].matmul(&x[1]));
    check("mm-stacked-tb", &[stack(3, 4), fixed(&[2, 4])], |x| x[0].matmul_t(&x[1], false, true));
    check("mm-stacked-ta", &[stack(3, 4), stack(3, 2)], |x| x[0].matmul_t(&x[1], true, false));
}

#[test]
fn reductions() {
    check("sum1", &[bx(4)], |x| x[0].sum(&[1], false));
    check("sum0-keep", &[bx(4)], |x| x[0].sum(&[0], true));
    check("sum-all", &[bx(4)], |x| x[0].sum_all());
    check("mean-batch", &[bx(4)], |x| x[0].mean(&[0], false));
    check("mean-both-keep", &[bx(4)], |x| x[0].mean(&[0, 1], true));
    check("max1", &[bx(4)], |x| x[0].max(&[1], false));
    check("max0-keep", &[bx(4)], |x| x[0].max(&[0], true));
    check("batch-size", &[bx(4)], |x| &x[0] * &x[0].builder().batch_size());
}

#[test]
fn disconnected_outputs_give_zero_not_a_crash() {
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[2]));
    let w = b.param("w", Shape::fixed(&[2]));
    let y = x.exp();
    let g = b.finish(&[&y]).unwrap();
    let mut g2 = g.clone();
    let v =
        g2.add(Op::Input { name: "v".into(), dtype: DType::F64, shape: Shape::fixed(&[2]) }, &[]).unwrap();
    let before = g2.len();
    assert_eq!(rop_in(&mut g2, &[y.id()], &[w.id()], &[v]).unwrap(), vec![Tangent::Zero]);
    let u =
        g2.add(Op::Input { name: "u".into(), dtype: DType::F64, shape: Shape::batched(&[2]) }, &[]).unwrap();
    assert_eq!(lop_in(&mut g2, &[y.id()], &[w.id()], &[u]).unwrap(), vec![Tangent::Zero]);
    assert_eq!(g2.len(), before + 1, "no zero tensors were built");
    // The graph-returning forms materialise the zero.
    let d = natgrad_autodiff::rop(&g2, &[y.id()], &[w.id()], &[v]).unwrap();
    let out = natgrad_ir::eval(&d.graph, &Bindings::<f64>::new().with_batch(3)).unwrap();
    assert_eq!(out[0].data(), &[0.0; 6]);
}

#[test]
fn seed_errors_name_the_node_and_both_types() {
    let b = Builder::new(DType::F64);
    let (x, line) = (b.input("x", Shape::batched(&[2])), line!());
    let y = x.exp().named("y");
    let mut g = b.finish(&[&y]).unwrap();
    let v =
        g.add(Op::Input { name: "v".into(), dtype: DType::F64, shape: Shape::batched(&[3]) }, &[]).unwrap();
    let err = rop_in(&mut g, &[y.id()], &[x.id()], &[v]).unwrap_err().to_string();
    let expected = format!(
        "rop: the seed for input 'x' at {}:{line} has type f64[B,3], the node has type f64[B,2]",
        file!()
    );
    assert_eq!(err, expected);
    let err = lop_in(&mut g, &[y.id()], &[x.id()], &[v]).unwrap_err().to_string();
    assert!(err.starts_with("lop: the seed for exp 'y' at "), "{err}");
    assert!(err.ends_with(" has type f64[B,3], the node has type f64[B,2]"), "{err}");
    let err = rop_in(&mut g, &[y.id()], &[x.id()], &[]).unwrap_err().to_string();
    assert_eq!(err, "rop: 1 nodes but 0 seeds");
}
