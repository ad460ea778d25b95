//! Model helpers: dense layers, MLPs and the Curves autoencoder of the paper's section 10.

use crate::{Builder, DType, Dim, Error, Expr, Model, OutputKind, ParamLayout, Result, Shape, Site, Window};

/// Activation of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear.
    Relu,
    /// Identity.
    Linear,
    /// Softmax over the units (output layer only).
    Softmax,
}

impl Activation {
    /// Parses `sigmoid`, `tanh`, `relu`, `linear`, `softmax`.
    pub fn from_name(name: &str) -> Option<Activation> {
        match name {
            "sigmoid" => Some(Activation::Sigmoid),
            "tanh" => Some(Activation::Tanh),
            "relu" => Some(Activation::Relu),
            "linear" => Some(Activation::Linear),
            "softmax" => Some(Activation::Softmax),
            _ => None,
        }
    }

    /// Applies the activation to a pre-activation `[B, n]` (softmax over the units).
    #[track_caller]
    pub fn apply(self, r: &Expr) -> Expr {
        match self {
            Activation::Sigmoid => r.sigmoid(),
            Activation::Tanh => r.tanh(),
            Activation::Relu => r.relu(),
            Activation::Linear => r.clone(),
            Activation::Softmax => r.softmax(1),
        }
    }
}

/// A dense layer's pre-activation `x·W + b` with params `w{index}` `[fan_in, fan_out]` and
/// `b{index}` `[fan_out]`, appended to `layout` in that order.
#[track_caller]
pub fn dense(x: &Expr, fan_in: usize, fan_out: usize, index: usize, layout: &mut ParamLayout) -> Expr {
    let builder = x.builder();
    let (w_name, b_name) = (format!("w{index}"), format!("b{index}"));
    let w = builder.param(&w_name, Shape::fixed(&[fan_in, fan_out]));
    let b = builder.param(&b_name, Shape::fixed(&[fan_out]));
    layout.push(&w_name, vec![fan_in, fan_out]);
    layout.push(&b_name, vec![fan_out]);
    x.matmul(&w) + &b
}

/// A convolutional layer's pre-activation `conv2d(x, k) + b` on NHWC images `x`
/// `[N, H, W, C]`, with params `k{index}` `[KH, KW, C, filters]` and `b{index}` `[filters]`,
/// appended to `layout` in that order.
#[track_caller]
pub fn conv2d(x: &Expr, window: Window, filters: usize, index: usize, layout: &mut ParamLayout) -> Expr {
    let builder = x.builder();
    let channels = match x.shape().0.last() {
        Some(Dim::Fixed(c)) => *c,
        _ => 0, // not an image: conv2d records the error
    };
    let (k_name, b_name) = (format!("k{index}"), format!("b{index}"));
    let [kh, kw] = window.kernel;
    let k = builder.param(&k_name, Shape::fixed(&[kh, kw, channels, filters]));
    let b = builder.param(&b_name, Shape::fixed(&[filters]));
    layout.push(&k_name, vec![kh, kw, channels, filters]);
    layout.push(&b_name, vec![filters]);
    x.conv2d(&k, window.stride, window.padding) + &b
}

/// A convolutional network as in the paper's section 7: flat images `[B, H·W·C]` (so data
/// sets stay rows of numbers) viewed as NHWC `image`, one convolutional layer of `filters`,
/// then dense layers of `sizes` units (the last is the output). `activations` has one entry
/// per layer (convolution first); the last one (sigmoid, softmax or linear) picks the loss.
/// Params: `k1` `[KH, KW, C, filters]`, `b1`, then `w2`, `b2`, … as in [`mlp`].
#[track_caller]
pub fn convnet(
    image: [usize; 3],
    window: Window,
    filters: usize,
    sizes: &[usize],
    activations: &[Activation],
    dtype: DType,
) -> Result<Model> {
    let invalid =
        |message: String| Error::Type { site: Site { op: "convnet", name: None, location: None }, message };
    if sizes.is_empty() || activations.len() != sizes.len() + 1 {
        return Err(invalid(format!(
            "a convolution and {} dense layers need {} activations, got {}",
            sizes.len(),
            sizes.len() + 1,
            activations.len()
        )));
    }
    let kind = output_kind(activations[activations.len() - 1], "convnet")?;
    if activations[..activations.len() - 1].contains(&Activation::Softmax) {
        return Err(invalid("softmax is only supported on the output layer".into()));
    }
    let [h, w, c] = image;
    let [oh, ow] = window.positions([h, w]).unwrap_or([0, 0]);
    let (Some(pixels), Some(mut width)) = (
        h.checked_mul(w).and_then(|n| n.checked_mul(c)),
        oh.checked_mul(ow).and_then(|n| n.checked_mul(filters)),
    ) else {
        return Err(invalid(format!("image {image:?} with {filters} filters is too large")));
    };
    let builder = Builder::new(dtype);
    let x = builder.input("x", Shape::batched(&[pixels]));
    let t = builder.input("t", Shape::batched(&[sizes[sizes.len() - 1]]));
    let mut layout = ParamLayout::default();
    let images = x.reshape(Shape(vec![Dim::Batch, Dim::Fixed(h), Dim::Fixed(w), Dim::Fixed(c)]));
    let features = activations[0].apply(&conv2d(&images, window, filters, 1, &mut layout)).named("h1");
    let mut y = features.reshape(Shape::batched(&[width]));
    let mut r = y.clone();
    for (i, (&units, activation)) in sizes.iter().zip(&activations[1..]).enumerate() {
        r = dense(&y, width, units, i + 2, &mut layout);
        y = activation.apply(&r).named(&format!("h{}", i + 2));
        width = units;
    }
    finish(builder, x, t, r, y, kind, layout)
}

/// An MLP with `layer_sizes.len() − 1` dense layers; `activations` has one entry per layer and
/// the last one (sigmoid, softmax or linear) fixes the output kind and loss.
#[track_caller]
pub fn mlp(layer_sizes: &[usize], activations: &[Activation], dtype: DType) -> Result<Model> {
    build(layer_sizes, activations, dtype, false)
}

/// An autoencoder with the given encoder sizes mirrored into a decoder: logistic units
/// everywhere except the linear code layer, logistic output, cross-entropy against the input.
#[track_caller]
pub fn autoencoder(encoder_sizes: &[usize], dtype: DType) -> Result<Model> {
    let mut sizes = encoder_sizes.to_vec();
    sizes.extend(encoder_sizes.iter().rev().skip(1));
    let layers = sizes.len().saturating_sub(1);
    let code_layer = encoder_sizes.len().saturating_sub(2);
    let activations: Vec<Activation> =
        (0..layers).map(|i| if i == code_layer { Activation::Linear } else { Activation::Sigmoid }).collect();
    build(&sizes, &activations, dtype, true)
}

/// The Curves autoencoder 784-400-200-100-50-25-6-25-50-100-200-400-784 in f32.
#[track_caller]
pub fn curves_autoencoder() -> Model {
    autoencoder(&CURVES_ENCODER, DType::F32).expect("the Curves sizes are valid")
}

/// Encoder layer sizes of the Curves autoencoder.
pub const CURVES_ENCODER: [usize; 7] = [784, 400, 200, 100, 50, 25, 6];

#[track_caller]
fn build(sizes: &[usize], activations: &[Activation], dtype: DType, autoencoder: bool) -> Result<Model> {
    let invalid =
        |message: String| Error::Type { site: Site { op: "mlp", name: None, location: None }, message };
    if sizes.len() < 2 || activations.len() != sizes.len() - 1 {
        return Err(invalid(format!(
            "{} layer sizes need {} activations, got {}",
            sizes.len(),
            sizes.len().saturating_sub(1),
            activations.len()
        )));
    }
    let kind = output_kind(activations[activations.len() - 1], "mlp")?;
    if let Some(i) = activations[..activations.len() - 1].iter().position(|a| *a == Activation::Softmax) {
        return Err(invalid(format!(
            "softmax is only supported on the output layer, found it on layer {}",
            i + 1
        )));
    }
    let builder = Builder::new(dtype);
    let n_out = sizes[sizes.len() - 1];
    let x = builder.input("x", Shape::batched(&[sizes[0]]));
    let t = if autoencoder { x.clone() } else { builder.input("t", Shape::batched(&[n_out])) };
    let mut layout = ParamLayout::default();
    let mut h = x.clone();
    let mut r = x.clone();
    for (i, (pair, activation)) in sizes.windows(2).zip(activations).enumerate() {
        r = dense(&h, pair[0], pair[1], i + 1, &mut layout);
        h = activation.apply(&r).named(&format!("h{}", i + 1));
    }
    finish(builder, x, t, r, h, kind, layout)
}

/// The loss matching an output activation.
fn output_kind(activation: Activation, op: &'static str) -> Result<OutputKind> {
    match activation {
        Activation::Sigmoid => Ok(OutputKind::Sigmoid),
        Activation::Softmax => Ok(OutputKind::Softmax),
        Activation::Linear => Ok(OutputKind::Linear { beta: 1.0 }),
        other => Err(Error::Type {
            site: Site { op, name: None, location: None },
            message: format!(
                "output activation {other:?} has no matching loss; use sigmoid, softmax or linear"
            ),
        }),
    }
}

/// The model of pre-activation `r` and output `y` of input `x` against targets `t`: the
/// per-example loss, its mean, and the finished graph.
fn finish(
    builder: Builder,
    x: Expr,
    t: Expr,
    r: Expr,
    y: Expr,
    kind: OutputKind,
    layout: ParamLayout,
) -> Result<Model> {
    let per_example = per_example_loss(kind, &r, &y, &t).named("per_example_loss");
    let loss = per_example.mean(&[0], false).named("loss");
    let graph = builder.finish(&[&loss])?;
    if layout.checked_len().is_none() {
        return Err(Error::Type {
            site: Site { op: "model", name: None, location: None },
            message: "the parameters together have more elements than can be addressed".into(),
        });
    }
    Ok(Model {
        graph,
        input: x.id(),
        targets: t.id(),
        preactivation: r.id(),
        output: y.id(),
        loss: loss.id(),
        per_example_loss: per_example.id(),
        kind,
        layout,
    })
}

/// The loss of each example (shape `[B]`) matching `kind`, summed over units, written from the
/// pre-activation `r` where that is the stable form.
#[track_caller]
pub fn per_example_loss(kind: OutputKind, r: &Expr, y: &Expr, t: &Expr) -> Expr {
    match kind {
        // ½β²Σ(y − t)²
        OutputKind::Linear { beta } => (y - t).square().sum(&[1], false) * (0.5 * beta * beta),
        // −t·log σ(r) − (1−t)·log(1−σ(r)) = softplus(r) − t·r
        OutputKind::Sigmoid => (r.softplus() - t * r).sum(&[1], false),
        // −Σ t·log softmax(r)
        OutputKind::Softmax => -(t * &r.log_softmax(1)).sum(&[1], false),
    }
}
