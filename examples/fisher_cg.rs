//! Build a small classifier in the DSL, compile its Fisher product once, and solve the
//! damped natural-gradient system `(G + λI) x = g` with CG — the inner loop of natural
//! gradient descent (paper section 2, eq. 7 and 30).
//!
//! Run with `cargo run -p natgrad --example fisher_cg`.

use natgrad::ir::ParamLayout;
use natgrad::nn::{dense, per_example_loss};
use natgrad::optim::{CgOptions, HostOf, VectorOps, cg};
use natgrad::prelude::*;
use natgrad::{CompileOptions, compile_fisher_product, compile_gradient};

fn main() -> Result<(), natgrad::optim::OpError> {
    // A 20-16-5 softmax classifier in the DSL (`nn::mlp` builds the same model).
    let b = Builder::new(DType::F64);
    let x = b.input("x", Shape::batched(&[20]));
    let t = b.input("t", Shape::batched(&[5]));
    let mut layout = ParamLayout::default();
    let h = dense(&x, 20, 16, 1, &mut layout).tanh();
    let r = dense(&h, 16, 5, 2, &mut layout);
    let y = r.softmax(1);
    let per_example = per_example_loss(OutputKind::Softmax, &r, &y, &t);
    let loss = per_example.mean(&[0], false);
    let model = Model {
        graph: b.finish(&[&loss])?,
        input: x.id(),
        targets: t.id(),
        preactivation: r.id(),
        output: y.id(),
        loss: loss.id(),
        per_example_loss: per_example.id(),
        kind: OutputKind::Softmax,
        layout,
    };

    // Parameters, a batch and one-hot targets, from a fixed pseudo-random sequence.
    let n = model.layout.len();
    let wave = |i: usize, k: f64| (i as f64 * k).sin() * 0.5;
    let theta: Vec<f64> = (0..n).map(|i| wave(i, 0.37)).collect();
    let batch = 64;
    let inputs: Vec<f64> = (0..batch * 20).map(|i| wave(i, 1.13)).collect();
    let targets: Vec<f64> = (0..batch * 5).map(|i| f64::from(i % 5 == (i / 5) % 5)).collect();

    // Compile once: the gradient, and the Fisher product G·v (forward pass cached by prepare).
    let options = CompileOptions::default();
    let mut gradient = compile_gradient::<f64>(&model, &options)?;
    let mut fisher = compile_fisher_product::<f64>(&model, &options)?;
    println!(
        "compiled the Fisher product in {:.1} ms ({} fused kernels)",
        fisher.report.total().as_secs_f64() * 1e3,
        fisher.report.kernels
    );
    let mut g = vec![0.0; n];
    let loss = gradient.loss_and_gradient(&theta, &inputs, Some(&targets), &mut g)?;
    fisher.prepare(&theta, &inputs)?;

    // CG on (G + λI) x = g; every iteration is one compiled product.
    let damping = 1e-3;
    let ops = HostOf::<f64>::new();
    let mut apply =
        |v: &Vec<f64>, out: &mut Vec<f64>| fisher.apply_damped(v, damping, out).map_err(|e| e.into());
    let options = CgOptions { max_iterations: 200, tolerance: 1e-8, progress: None, ..CgOptions::default() };
    let solution = cg(&ops, &mut apply, &g, None, None, &options)?;

    // The residual, recomputed with one more product.
    let mut ax = vec![0.0; n];
    fisher.apply_damped(&solution.x, damping, &mut ax)?;
    let residual = ax.iter().zip(&g).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / ops.norm(&g);
    println!(
        "loss {loss:.4}; CG stopped after {} iterations ({:?}); ‖(G + λI)x − g‖ / ‖g‖ = {residual:.2e}",
        solution.iterations, solution.flag
    );
    Ok(())
}
