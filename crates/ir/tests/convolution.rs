//! Convolution in the IR: `conv2d` (im2col, then a matmul with the filters) against a direct
//! NHWC convolution written out in loops, im2col and col2im as an adjoint pair, stacked
//! matmuls, the text form and the shape errors.

use natgrad_ir::text::{parse, print};
use natgrad_ir::{Bindings, Builder, DType, Dim, Shape, Tensor, Window, eval};

/// Deterministic values in [−1, 1).
fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let h =
                (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn nhwc(h: usize, w: usize, c: usize) -> Shape {
    Shape(vec![Dim::Batch, Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(c)])
}

/// `y[n, i, j, f] = Σ x[n, i·s₀ + a − p₀, j·s₁ + b − p₁, c] · k[a, b, c, f]` over the pixels
/// inside the image.
fn direct(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    k: &[f64],
    [kh, kw, f]: [usize; 3],
    window: &Window,
) -> Vec<f64> {
    let [oh, ow] = window.positions([h, w]).unwrap();
    let mut y = vec![0.0; n * oh * ow * f];
    for (b, i, j, o) in (0..n)
        .flat_map(|b| (0..oh).flat_map(move |i| (0..ow).flat_map(move |j| (0..f).map(move |o| (b, i, j, o)))))
    {
        let mut sum = 0.0;
        for a in 0..kh {
            for q in 0..kw {
                let (r, s) = (
                    (i * window.stride[0] + a) as isize - window.padding[0] as isize,
                    (j * window.stride[1] + q) as isize - window.padding[1] as isize,
                );
                if r < 0 || s < 0 || r as usize >= h || s as usize >= w {
                    continue;
                }
                for ch in 0..c {
                    let pixel = x[((b * h + r as usize) * w + s as usize) * c + ch];
                    sum += pixel * k[((a * kw + q) * c + ch) * f + o];
                }
            }
        }
        y[((b * oh + i) * ow + j) * f + o] = sum;
    }
    y
}

#[test]
fn conv2d_equals_a_direct_convolution() {
    let cases = [
        ([2, 5, 6, 3], [3, 3, 4], [1, 1], [1, 1]),
        ([1, 7, 5, 2], [2, 3, 1], [2, 1], [0, 1]),
        ([3, 4, 4, 1], [4, 4, 2], [1, 1], [0, 0]),
        ([1, 6, 6, 2], [3, 3, 3], [3, 2], [2, 0]),
        ([2, 1, 1, 2], [1, 1, 5], [1, 1], [0, 0]),
    ];
    for (image @ [n, h, w, c], filters @ [kh, kw, f], stride, padding) in cases {
        let b = Builder::new(DType::F64);
        let x = b.input("x", nhwc(h, w, c));
        let k = b.input("k", Shape::fixed(&[kh, kw, c, f]));
        let graph = b.finish(&[&x.conv2d(&k, stride, padding)]).unwrap();
        let (xs, ks) = (values(n * h * w * c, 1), values(kh * kw * c * f, 2));
        let bindings = Bindings::new()
            .with("x", Tensor::new(image.to_vec(), xs.clone()).unwrap())
            .with("k", Tensor::new(vec![kh, kw, c, f], ks.clone()).unwrap());
        let got = eval(&graph, &bindings).unwrap().remove(0);
        let window = Window { kernel: [kh, kw], stride, padding };
        let [oh, ow] = window.positions([h, w]).unwrap();
        assert_eq!(got.shape(), &[n, oh, ow, f][..]);
        let want = direct(&xs, image, &ks, filters, &window);
        for (i, (g, w)) in got.data().iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-12, "{image:?} {filters:?} {window:?}: [{i}] {g} vs {w}");
        }
    }
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let window = Window { kernel: [3, 2], stride: [2, 1], padding: [1, 1] };
    let b = Builder::new(DType::F64);
    let x = b.input("x", nhwc(5, 4, 2));
    let y = b.input("y", nhwc(3, 5, 12));
    let graph = b.finish(&[&x.im2col(window), &y.col2im(window, [5, 4])]).unwrap();
    let (xs, ys) = (values(2 * 5 * 4 * 2, 3), values(2 * 3 * 5 * 12, 4));
    let bindings = Bindings::new()
        .with("x", Tensor::new(vec![2, 5, 4, 2], xs.clone()).unwrap())
        .with("y", Tensor::new(vec![2, 3, 5, 12], ys.clone()).unwrap());
    let out = eval(&graph, &bindings).unwrap();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let (left, right) = (dot(out[0].data(), &ys), dot(&xs, out[1].data()));
    assert!(
        (left - right).abs() < 1e-12 * left.abs().max(1.0),
        "⟨im2col x, y⟩ = {left}, ⟨x, col2im y⟩ = {right}"
    );
    // Padding contributes zeros: the top-left patch of the first image starts with them.
    assert_eq!(&out[0].data()[..2], &[0.0, 0.0]);
}

#[test]
fn stacked_matmuls_flatten_their_leading_dimensions() {
    let b = Builder::new(DType::F64);
    let a = b.input("a", Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(3)]));
    let m = b.input("m", Shape::fixed(&[3, 2]));
    let g = b.input("g", Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(2)]));
    let graph = b.finish(&[&a.matmul(&m), &a.matmul_t(&g, true, false)]).unwrap();
    let (av, mv, gv) = (values(12, 5), values(6, 6), values(8, 7));
    let bindings = Bindings::new()
        .with("a", Tensor::new(vec![2, 2, 3], av.clone()).unwrap())
        .with("m", Tensor::new(vec![3, 2], mv.clone()).unwrap())
        .with("g", Tensor::new(vec![2, 2, 2], gv.clone()).unwrap());
    let out = eval(&graph, &bindings).unwrap();
    assert_eq!(out[0].shape(), &[2, 2, 2][..]);
    assert_eq!(out[1].shape(), &[3, 2][..]);
    for row in 0..4 {
        for col in 0..2 {
            let want: f64 = (0..3).map(|k| av[row * 3 + k] * mv[k * 2 + col]).sum();
            assert!((out[0].data()[row * 2 + col] - want).abs() < 1e-14);
        }
    }
    for k in 0..3 {
        for col in 0..2 {
            let want: f64 = (0..4).map(|row| av[row * 3 + k] * gv[row * 2 + col]).sum();
            assert!((out[1].data()[k * 2 + col] - want).abs() < 1e-14);
        }
    }
}

#[test]
fn convolution_ops_round_trip_through_the_text_form() {
    let b = Builder::new(DType::F32);
    let x = b.input("x", nhwc(6, 5, 2));
    let k = b.param("k", Shape::fixed(&[3, 2, 2, 4]));
    let y = x.conv2d(&k, [2, 1], [1, 0]).sigmoid();
    let back = y.col2im(Window { kernel: [2, 2], stride: [1, 1], padding: [0, 0] }, [4, 5]);
    let graph = b.finish(&[&y, &back]).unwrap();
    let text = print(&graph);
    assert!(text.contains("im2col[3x2,stride=2x1,pad=1x0]"), "{text}");
    assert!(text.contains("col2im[2x2,stride=1x1,pad=0x0]"), "{text}");
    assert_eq!(parse(&text).unwrap(), graph);
}

#[test]
fn bad_windows_and_filters_are_errors_naming_the_shapes() {
    let b = Builder::new(DType::F32);
    let x = b.input("x", nhwc(2, 2, 1));
    let _ = x.im2col(Window { kernel: [3, 3], stride: [1, 1], padding: [0, 0] });
    let message = b.finish(&[&x]).unwrap_err().to_string();
    assert!(message.contains("does not fit a 2×2 image") && message.contains("f32[B,2,2,1]"), "{message}");

    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[4]));
    let _ = x.im2col(Window { kernel: [1, 1], stride: [1, 1], padding: [0, 0] });
    let message = b.finish(&[&x]).unwrap_err().to_string();
    assert!(message.contains("rank-4 NHWC"), "{message}");

    let b = Builder::new(DType::F32);
    let x = b.input("x", nhwc(4, 4, 1));
    let k = b.input("k", Shape::fixed(&[3, 3]));
    let _ = x.conv2d(&k, [1, 1], [0, 0]);
    let message = b.finish(&[&x]).unwrap_err().to_string();
    assert!(message.contains("conv2d") && message.contains("[KH, KW, C, F]"), "{message}");

    let b = Builder::new(DType::F32);
    let x = b.input("x", nhwc(4, 4, 1));
    let _ = x.im2col(Window { kernel: [1, 1], stride: [0, 1], padding: [0, 0] });
    assert!(b.finish(&[&x]).is_err(), "a zero stride is rejected");

    let parsed =
        parse("%0 : f32[B,4,4,1] = input \"x\"\n%1 : f32[B,2,2,9] = im2col[3x3,stride=0x1] %0\nreturn %1\n");
    assert!(parsed.is_err());
    let message = parse(
        "%0 : f32[B,4,4,1] = input \"x\"\n%1 : f32[B,2,2,9] = im2col[3x3,dilation=2x2] %0\nreturn %1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("dilation"), "{message}");
}

#[test]
fn the_fuzz_seed_of_a_convolution_parses() {
    let text = include_str!("../../../fuzz/seeds/ir_text/convolution");
    let graph = parse(text).unwrap();
    assert_eq!(print(&graph), text);
}
