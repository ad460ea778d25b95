//! The `natgrad` binary, run as a user would.

use std::process::Command;

fn natgrad(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_natgrad")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn ir_prints_the_curves_autoencoder() {
    let (ok, text, _) = natgrad(&["ir", "--model", "curves"]);
    assert!(ok);
    assert_eq!(text.lines().filter(|l| l.contains("= matmul")).count(), 12);
    assert_eq!(text.lines().filter(|l| l.contains("= sigmoid")).count(), 11);
    assert!(text.contains("%0 : f32[B,784] = input \"x\""));
    assert!(text.contains("# h6") && text.contains("f32[B,6] = add"));
    let parsed = natgrad::ir::text::parse(&text).unwrap();
    assert_eq!(natgrad::ir::text::print(&parsed), text);
}

#[test]
fn ir_accepts_mlp_specs_and_dot() {
    let (ok, text, _) = natgrad(&["ir", "--model", "mlp:784,100,10:tanh,softmax", "--dtype", "f64"]);
    assert!(ok);
    assert!(text.contains("f64[B,10] = softmax[axis=1]"), "{text}");
    let (ok, dot, _) = natgrad(&["ir", "--model", "mlp:4,3:sigmoid", "--dot"]);
    assert!(ok && dot.starts_with("digraph"));
    let (ok, _, err) = natgrad(&["ir", "--model", "mlp:4,x:sigmoid"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: bad model spec `mlp:4,x:sigmoid`: `x` is not a layer size");
}
