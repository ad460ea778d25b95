//! The README's DSL example: a softmax MLP, printed as IR and evaluated by the interpreter.
//!
//! Run with `cargo run -p natgrad --example mlp`.

use natgrad::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[784])); // [B, 784]; B is bound at run time
    let w1 = b.param("w1", Shape::fixed(&[784, 100]));
    let b1 = b.param("b1", Shape::fixed(&[100]));
    let w2 = b.param("w2", Shape::fixed(&[100, 10]));
    let b2 = b.param("b2", Shape::fixed(&[10]));
    let h = (x.matmul(&w1) + &b1).sigmoid().named("h1"); // bias broadcast is explicit in the IR
    let y = h.matmul(&w2).add(&b2).softmax(1);
    let graph = b.finish(&[&y])?; // shape errors surface here, with file:line
    println!("{graph}");

    let bindings = Bindings::new()
        .with("x", Tensor::from_fn(vec![2, 784], |i| (i % 7) as f32 / 7.0))
        .with("w1", Tensor::from_fn(vec![784, 100], |i| ((i % 13) as f32 - 6.0) * 1e-3))
        .with("b1", Tensor::zeros(vec![100]))
        .with("w2", Tensor::from_fn(vec![100, 10], |i| ((i % 5) as f32 - 2.0) * 1e-2))
        .with("b2", Tensor::zeros(vec![10]));
    let probabilities = eval(&graph, &bindings)?.remove(0);
    println!("softmax rows: {:?}", probabilities.data().chunks(10).collect::<Vec<_>>());
    Ok(())
}
