//! Reference interpreter: values against hand-computed results and closed forms, stability
//! at extreme inputs, and binding errors.

use natgrad_ir::{Bindings, Builder, DType, Error, Expr, Scalar, Shape, Tensor, eval};

fn t64(shape: &[usize], data: &[f64]) -> Tensor<f64> {
    Tensor::new(shape.to_vec(), data.to_vec()).unwrap()
}

/// Evaluates `f(x)` for one input `x` of the given shape and data.
fn run<T: Scalar>(shape: Shape, data: &[f64], f: impl Fn(&Expr) -> Expr) -> Vec<T> {
    let dtype = if std::mem::size_of::<T>() == 4 { DType::F32 } else { DType::F64 };
    let b = Builder::new(dtype);
    let x = b.input("x", shape.clone());
    let y = f(&x);
    let g = b.finish(&[&y]).unwrap();
    let dims = shape.resolve(data.len() / shape.num_elements(1).max(1));
    let value = Tensor::new(dims, data.iter().map(|v| T::from_f64(*v)).collect()).unwrap();
    eval(&g, &Bindings::new().with("x", value)).unwrap().remove(0).into_data()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn elementwise_values() {
    let xs = [-2.0, -0.5, 0.0, 0.5, 3.0];
    let s = || Shape::fixed(&[5]);
    let apply = |f: fn(f64) -> f64| xs.iter().map(|&x| f(x)).collect::<Vec<_>>();
    close(&run::<f64>(s(), &xs, |x| x.exp()), &apply(f64::exp), 1e-15);
    close(&run::<f64>(s(), &xs, |x| x.sigmoid()), &apply(|x| 1.0 / (1.0 + (-x).exp())), 1e-15);
    close(&run::<f64>(s(), &xs, |x| x.tanh()), &apply(f64::tanh), 1e-15);
    close(&run::<f64>(s(), &xs, |x| x.relu()), &[0.0, 0.0, 0.0, 0.5, 3.0], 0.0);
    close(&run::<f64>(s(), &xs, |x| x.softplus()), &apply(|x| (1.0 + x.exp()).ln()), 1e-15);
    close(&run::<f64>(s(), &xs, |x| x.square()), &[4.0, 0.25, 0.0, 0.25, 9.0], 0.0);
    close(&run::<f64>(s(), &xs, |x| (x * 2.0 - 1.0) / 4.0), &[-1.25, -0.5, -0.25, 0.0, 1.25], 0.0);
    close(&run::<f64>(s(), &xs, |x| -x), &[2.0, 0.5, 0.0, -0.5, -3.0], 0.0);
    close(&run::<f64>(s(), &xs, |x| x.maximum(&x.constant(0.25))), &[0.25, 0.25, 0.25, 0.5, 3.0], 0.0);
    let pos = [0.25, 1.0, 4.0];
    let p = || Shape::fixed(&[3]);
    close(&run::<f64>(p(), &pos, |x| x.sqrt()), &[0.5, 1.0, 2.0], 0.0);
    close(&run::<f64>(p(), &pos, |x| x.log()), &[-(4f64.ln()), 0.0, 4f64.ln()], 1e-15);
    close(&run::<f64>(p(), &pos, |x| x.log1p()), &[1.25f64.ln(), 2f64.ln(), 5f64.ln()], 1e-15);
    close(&run::<f64>(p(), &pos, |x| x.pow(1.5)), &[0.125, 1.0, 8.0], 1e-15);
    let cmp = run::<f64>(s(), &xs, |x| x.compare(natgrad_ir::Compare::Gt, &x.constant(0.0)));
    close(&cmp, &[0.0, 0.0, 0.0, 1.0, 1.0], 0.0);
    let sel = run::<f64>(s(), &xs, |x| {
        let mask = x.compare(natgrad_ir::Compare::Lt, &x.constant(0.0));
        mask.select(&x.square(), &x.exp())
    });
    close(&sel, &[4.0, 0.25, 1.0, 0.5f64.exp(), 3f64.exp()], 1e-15);
}

#[test]
fn structural_ops_match_hand_computed_results() {
    let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [[1,2,3],[4,5,6]]
    let s = || Shape::fixed(&[2, 3]);
    close(&run::<f64>(s(), &m, |x| x.transpose(&[1, 0])), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], 0.0);
    close(&run::<f64>(s(), &m, |x| x.sum(&[0], false)), &[5.0, 7.0, 9.0], 0.0);
    close(&run::<f64>(s(), &m, |x| x.sum(&[1], true)), &[6.0, 15.0], 0.0);
    close(&run::<f64>(s(), &m, |x| x.mean(&[0, 1], false)), &[3.5], 0.0);
    close(&run::<f64>(s(), &m, |x| x.max(&[1], false)), &[3.0, 6.0], 0.0);
    close(&run::<f64>(s(), &m, |x| x.matmul_t(x, false, true)), &[14.0, 32.0, 32.0, 77.0], 0.0);
    close(
        &run::<f64>(s(), &m, |x| x.matmul_t(x, true, false)),
        &[17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0],
        0.0,
    );
    close(
        &run::<f64>(s(), &m, |x| x.reshape(Shape::fixed(&[3, 2])).sum(&[1], false)),
        &[3.0, 7.0, 11.0],
        0.0,
    );
    // Row vector broadcast down the rows: x + x.sum(0)
    close(&run::<f64>(s(), &m, |x| x + &x.sum(&[0], false)), &[6.0, 9.0, 12.0, 9.0, 12.0, 15.0], 0.0);
    // Column broadcast via keep_dims.
    close(&run::<f64>(s(), &m, |x| x - &x.max(&[1], true)), &[-2.0, -1.0, 0.0, -2.0, -1.0, 0.0], 0.0);
    let e = |v: f64| v.exp();
    let z = e(1.0) + e(2.0) + e(3.0);
    close(
        &run::<f64>(s(), &m, |x| x.softmax(1)),
        &[e(1.0) / z, e(2.0) / z, e(3.0) / z, e(1.0) / z, e(2.0) / z, e(3.0) / z],
        1e-15,
    );
    let col = |a: f64, b: f64| e(a) / (e(a) + e(b));
    close(
        &run::<f64>(s(), &m, |x| x.softmax(0)),
        &[col(1.0, 4.0), col(2.0, 5.0), col(3.0, 6.0), col(4.0, 1.0), col(5.0, 2.0), col(6.0, 3.0)],
        1e-15,
    );
    close(&run::<f64>(s(), &m, |x| x.log_softmax(1).exp()), &run::<f64>(s(), &m, |x| x.softmax(1)), 1e-15);
}

#[test]
fn stable_at_extreme_inputs() {
    let xs = [-1e4, -800.0, -40.0, 40.0, 800.0, 1e4];
    let s = || Shape::fixed(&[6]);
    let sig: Vec<f64> = run::<f64>(s(), &xs, |x| x.sigmoid());
    close(&sig[2..4], &[(-40f64).exp() / (1.0 + (-40f64).exp()), 1.0 / (1.0 + (-40f64).exp())], 1e-15);
    assert_eq!(&sig[..2], &[0.0, 0.0]);
    assert_eq!(&sig[4..], &[1.0, 1.0]);
    // softplus(x) → x for large x and → eˣ for very negative x.
    let sp = run::<f64>(s(), &xs, |x| x.softplus());
    close(&sp, &[0.0, 0.0, (-40f64).exp(), 40.0 + (-40f64).exp(), 800.0, 1e4], 1e-15);
    let sp32 = run::<f32>(s(), &xs, |x| x.softplus());
    assert!(sp32.iter().all(|v| v.is_finite()), "{sp32:?}");
    let sig32 = run::<f32>(s(), &xs, |x| x.sigmoid());
    assert!(sig32.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{sig32:?}");
    // softmax / log-softmax over huge logits: no NaN, closed forms.
    let logits = [1e4, 0.0, -1e4];
    let sm = run::<f64>(Shape::fixed(&[1, 3]), &logits, |x| x.softmax(1));
    assert_eq!(sm, vec![1.0, 0.0, 0.0]);
    let lsm = run::<f64>(Shape::fixed(&[1, 3]), &logits, |x| x.log_softmax(1));
    assert_eq!(lsm, vec![0.0, -1e4, -2e4]);
    let lsm32 = run::<f32>(Shape::fixed(&[1, 3]), &logits, |x| x.log_softmax(1));
    assert_eq!(lsm32, vec![0.0, -1e4, -2e4]);
    let tanh = run::<f32>(s(), &xs, |x| x.tanh());
    assert_eq!(tanh, vec![-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]);
}

#[test]
fn batch_dimension_binds_at_run_time() {
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[2]));
    let w = b.param("w", Shape::fixed(&[2, 1]));
    let y = x.matmul(&w).mean(&[0], false) * &b.batch_size();
    let g = b.finish(&[&y]).unwrap();
    let bind = |rows: usize| {
        Bindings::new().with("x", t64(&[rows, 2], &vec![1.0; rows * 2])).with("w", t64(&[2, 1], &[0.5, 0.25]))
    };
    assert_eq!(eval(&g, &bind(3)).unwrap()[0].data(), &[3.0 * 0.75]);
    assert_eq!(eval(&g, &bind(7)).unwrap()[0].data(), &[7.0 * 0.75]);
}

#[test]
fn binding_errors_name_the_input_and_both_shapes() {
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[2]));
    let w = b.param("w", Shape::fixed(&[2, 1]));
    let g = b.finish(&[&x.matmul(&w)]).unwrap();
    let err = eval(&g, &Bindings::new().with("x", t64(&[1, 2], &[1.0, 2.0]))).unwrap_err();
    assert_eq!(err.to_string(), "missing value for param 'w' (f64[2,1])");
    let bad = Bindings::new().with("x", t64(&[1, 3], &[1.0, 2.0, 3.0])).with("w", t64(&[2, 1], &[1.0, 2.0]));
    let err = eval(&g, &bad).unwrap_err();
    assert!(matches!(err, Error::Binding { .. }));
    assert_eq!(err.to_string(), "input 'x' expects f64[B,2] (B = 1), got shape [1, 3]");
    let err = Tensor::new(vec![2, 2], vec![1.0f64; 3]).unwrap_err();
    assert_eq!(err.to_string(), "tensor of shape [2, 2] needs 4 values, got 3");
}

#[test]
fn an_unknown_batch_size_is_an_error() {
    let b = Builder::new(DType::F64);
    let n = b.batch_size();
    let g = b.finish(&[&n]).unwrap();
    let err = eval::<f64>(&g, &Bindings::new()).unwrap_err();
    assert!(err.to_string().starts_with("the batch size B is unknown"), "{err}");
    assert_eq!(eval::<f64>(&g, &Bindings::new().with_batch(4)).unwrap()[0].data(), &[4.0]);
}
