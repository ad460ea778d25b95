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

#[test]
fn ir_emits_the_ptx_of_a_product() {
    let args = ["ir", "--model", "mlp:3,4,2:tanh,softmax", "--product", "fisher", "--emit", "ptx"];
    let (ok, ptx, err) = natgrad(&args);
    assert!(ok, "{err}");
    assert!(ptx.starts_with(".version 8.0\n.target sm_90\n"), "{ptx}");
    assert!(ptx.contains(".func (.param .f32 ng_tanh_f32_r) ng_tanh_f32"), "{ptx}");
    assert!(ptx.matches(".visible .entry").count() >= 3, "{ptx}");
    let (ok, ptx, _) = natgrad(&[&args[..], &["--arch", "sm_80", "--dtype", "f64"]].concat());
    assert!(ok && ptx.contains(".target sm_80") && ptx.contains("ld.global.nc.f64"), "{ptx}");
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("natgrad-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn values(n: usize, seed: usize) -> Vec<f64> {
    (0..n).map(|i| (((i + seed) * 7919) % 1000) as f64 / 1000.0 - 0.5).collect()
}

/// G·v by the interpreter on the naive product graph, in f64.
fn reference_fvp(
    model: &natgrad::ir::Model,
    theta: &[f64],
    x: &[f64],
    shape: [usize; 2],
    v: &[f64],
) -> Vec<f64> {
    use natgrad::ir::{Bindings, Tensor, eval_nodes};
    let product = natgrad::autodiff::fisher_product(model).unwrap();
    let mut b = Bindings::new().with("x_metric", Tensor::new(shape.to_vec(), x.to_vec()).unwrap());
    model.layout.bind(theta, &mut b).unwrap();
    for slot in model.layout.slots() {
        b.set(
            format!("v.{}", slot.name),
            Tensor::new(slot.shape.clone(), v[slot.offset..slot.offset + slot.len()].to_vec()).unwrap(),
        );
    }
    eval_nodes(&product.graph, &b, &product.results)
        .unwrap()
        .into_iter()
        .flat_map(|t| t.into_data())
        .collect()
}

#[test]
fn fvp_of_a_conv_spec_matches_the_interpreter() {
    let dir = scratch("conv");
    let spec = r#"{"conv": {"image": [5, 4, 2], "filters": 3, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]},
        "layers": [4, 3], "activations": ["relu", "tanh", "sigmoid"], "output": "sigmoid"}"#;
    std::fs::write(dir.join("spec.json"), spec).unwrap();
    let model = natgrad::spec::load(&dir.join("spec.json"), natgrad::ir::DType::F64).unwrap();
    // k1 [3,2,2,3], b1 [3], w2 [3·3·3, 4] (3×3 positions of 3 filters), b2, w3 [4, 3], b3.
    let n = model.layout.len();
    assert_eq!(n, 36 + 3 + 27 * 4 + 4 + 12 + 3);
    let (theta, x, v) = (values(n, 4), values(6 * 40, 5), values(n, 6));
    natgrad::npy::write(&dir.join("theta.npy"), &[n], &theta).unwrap();
    natgrad::npy::write(&dir.join("x.npy"), &[6, 40], &x).unwrap();
    natgrad::npy::write(&dir.join("v.npy"), &[n], &v).unwrap();
    let path = |f: &str| dir.join(f).display().to_string();
    let (ok, _, err) = natgrad(&[
        "fvp",
        "--model",
        &path("spec.json"),
        "--params",
        &path("theta.npy"),
        "--inputs",
        &path("x.npy"),
        "--vector",
        &path("v.npy"),
        "--out",
        &path("gv.npy"),
        "--dtype",
        "f64",
    ]);
    assert!(ok, "{err}");
    let gv = natgrad::npy::read(&dir.join("gv.npy")).unwrap().1;
    let expected = reference_fvp(&model, &theta, &x, [6, 40], &v);
    assert_eq!(gv.len(), expected.len());
    for (a, e) in gv.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-12 * e.abs().max(1.0), "{a} vs {e}");
    }
    std::fs::write(
        dir.join("bad.json"),
        spec.replace("\"padding\": [1, 0]", "\"padding\": [1, 0], \"dilation\": 2"),
    )
    .unwrap();
    let err = natgrad::spec::load(&dir.join("bad.json"), natgrad::ir::DType::F64).unwrap_err();
    assert!(err.contains("dilation"), "{err}");
    // Found by fuzzing (spec_json): a filter count whose parameter count overflows is an
    // error naming the shape, not an arithmetic overflow.
    let filters = r#"{"conv": {"image": [2, 4, 2], "filters": 799999999999999988, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]}, "layers": [4, 3], "activations": ["relu", "tanh", "sigmoid"], "output": "sigmoid"}"#;
    std::fs::write(dir.join("huge.json"), filters).unwrap();
    let err = natgrad::spec::load(&dir.join("huge.json"), natgrad::ir::DType::F64).unwrap_err();
    assert!(err.contains("more elements than can be addressed"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fvp_and_grad_round_trip_npy_files() {
    use natgrad::ir::{Bindings, DType, Tensor, eval_nodes};
    let dir = scratch("fvp");
    let spec = r#"{"layers": [4, 3, 2], "activations": ["tanh", "softmax"], "output": "softmax"}"#;
    std::fs::write(dir.join("spec.json"), spec).unwrap();
    let model = natgrad::spec::load(&dir.join("spec.json"), DType::F64).unwrap();
    let n = model.layout.len();
    let (theta, x, v) = (values(n, 1), values(5 * 4, 2), values(n, 3));
    let t: Vec<f64> = (0..5 * 2).map(|i| if i % 2 == (i / 2) % 2 { 1.0 } else { 0.0 }).collect();
    natgrad::npy::write(&dir.join("theta.npy"), &[n], &theta).unwrap();
    natgrad::npy::write(&dir.join("x.npy"), &[5, 4], &x.iter().map(|&v| v as f32).collect::<Vec<f32>>())
        .unwrap();
    natgrad::npy::write(&dir.join("v.npy"), &[n], &v).unwrap();
    natgrad::npy::write(&dir.join("t.npy"), &[5, 2], &t).unwrap();
    let path = |f: &str| dir.join(f).display().to_string();
    let (ok, _, err) = natgrad(&[
        "fvp",
        "--model",
        &path("spec.json"),
        "--params",
        &path("theta.npy"),
        "--inputs",
        &path("x.npy"),
        "--vector",
        &path("v.npy"),
        "--out",
        &path("gv.npy"),
        "--dtype",
        "f64",
    ]);
    assert!(ok, "{err}");
    let (shape, gv) = natgrad::npy::read(&dir.join("gv.npy")).unwrap();
    assert_eq!(shape, vec![n]);
    // Reference: the interpreter on the naive product (x was stored as f32).
    let x32: Vec<f64> = x.iter().map(|&v| v as f32 as f64).collect();
    let expected = reference_fvp(&model, &theta, &x32, [5, 4], &v);
    for (a, e) in gv.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-12, "{a} vs {e}");
    }

    let (ok, stdout, err) = natgrad(&[
        "grad",
        "--model",
        &path("spec.json"),
        "--params",
        &path("theta.npy"),
        "--inputs",
        &path("x.npy"),
        "--targets",
        &path("t.npy"),
        "--out",
        &path("g.npy"),
        "--dtype",
        "f64",
    ]);
    assert!(ok, "{err}");
    let loss: f64 = stdout.trim().strip_prefix("loss ").unwrap().parse().unwrap();
    let b = Bindings::new()
        .with("x", Tensor::new(vec![5, 4], x32).unwrap())
        .with("t", Tensor::new(vec![5, 2], t).unwrap());
    let mut b = b;
    model.layout.bind(&theta, &mut b).unwrap();
    let expected = eval_nodes(&model.graph, &b, &[model.loss]).unwrap()[0].data()[0];
    assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
    assert_eq!(natgrad::npy::read(&dir.join("g.npy")).unwrap().0, vec![n]);

    // A vector of the wrong length is an error naming it.
    natgrad::npy::write(&dir.join("short.npy"), &[3], &[1.0f64, 2.0, 3.0]).unwrap();
    let (ok, _, err) = natgrad(&[
        "fvp",
        "--model",
        &path("spec.json"),
        "--params",
        &path("theta.npy"),
        "--inputs",
        &path("x.npy"),
        "--vector",
        &path("short.npy"),
        "--out",
        &path("gv.npy"),
    ]);
    assert!(!ok);
    assert_eq!(err.trim(), format!("error: v: expected {n}, got 3 values"));
    std::fs::write(
        dir.join("bad.json"),
        r#"{"layers": [4, 2], "activations": ["tanh"], "output": "softmax"}"#,
    )
    .unwrap();
    let (ok, _, err) = natgrad(&[
        "grad",
        "--model",
        &path("bad.json"),
        "--params",
        &path("theta.npy"),
        "--inputs",
        &path("x.npy"),
        "--targets",
        &path("t.npy"),
        "--out",
        &path("g.npy"),
    ]);
    assert!(!ok && err.contains("must be the output activation"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn generated_curves_export_to_npy_and_read_back_with_data() {
    let dir = scratch("data");
    let path = dir.display().to_string();
    let (ok, out, err) =
        natgrad(&["data", "curves", "--out", &path, "--train", "40", "--test", "10", "--seed", "3"]);
    assert!(ok, "{err}");
    assert!(out.contains("train.npy (40×784)"));
    let (shape, values) = natgrad::npy::read(&dir.join("train.npy")).unwrap();
    assert_eq!(shape, vec![40, 784]);
    let generated = natgrad::data::Curves::generate(&natgrad::data::CurvesOptions {
        seed: 3,
        train: 40,
        test: 10,
        ..Default::default()
    })
    .unwrap();
    assert!(values.iter().zip(&generated.train.data).all(|(a, b)| *a as f32 == *b));
    // The benchmark reads them back with --data.
    let (ok, table, err) = natgrad(&[
        "bench",
        "curves",
        "--data",
        &path,
        "--methods",
        "sgd",
        "--budget",
        "0.5",
        "--out",
        &format!("{path}/out"),
    ]);
    assert!(ok, "{err}");
    assert!(table.contains("Curves (from --data), 40 train / 10 test images"), "{table}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_curves_rejects_bad_settings_with_a_message() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--device", "cuda:1"],
            "device cuda:1: this build has no CUDA backend (build with --features cuda)",
        ),
        (&["--device", "tpu"], "unknown device 'tpu': expected cpu, cuda, cuda:N or sim"),
        (&["--damping=-1"], "--damping must be a positive number, got -1"),
        (&["--eval-every", "0"], "--eval-every must be at least 1"),
        (&["--budget", "0"], "--budget must be a positive number of seconds, got 0"),
        (&["--methods", "adam"], "unknown method `adam`"),
    ];
    for (flags, message) in cases {
        let out = scratch("bad-settings");
        let mut args = vec!["bench", "curves", "--out", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        let (ok, _, err) = natgrad(&args);
        assert!(!ok, "{flags:?} succeeded");
        assert!(err.contains(message), "{flags:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Sizes too large to address, or for this machine's memory, are errors (before: "capacity
/// overflow" panics, or aborts when an allocation failed).
#[test]
fn sizes_too_large_for_memory_are_errors() {
    let huge = "100000000000000000"; // 10¹⁷
    let cases: [(&[&str], &str); 6] = [
        (
            &["bench", "fvp", "--batch", huge, "--runs", "1"],
            "batch size 100000000000000000: the inputs (f32[100000000000000000,784]) would need more memory than can be addressed",
        ),
        (
            &["bench", "fvp", "--batch", "100000000000000", "--runs", "1"],
            "out of memory: the inputs at batch size 100000000000000 needs 313600000000000000 bytes",
        ),
        (&["bench", "exp", "--batch", huge, "--runs", "1"], "would need more memory than can be addressed"),
        (
            &["bench", "sums", "--lengths", huge, "--runs", "1"],
            "out of memory: a vector of 100000000000000000 f32 values needs 400000000000000000 bytes",
        ),
        (
            &["data", "curves", "--out", "unused", "--train", huge],
            "out of memory: 100000000000000000 Curves images of 784 f32 pixels need more bytes than can be addressed",
        ),
        (
            &["data", "curves", "--out", "unused", "--test", "100000000000000"],
            "out of memory: 100000000000000 Curves images of 784 f32 pixels need 313600000000000000 bytes",
        ),
    ];
    for (args, message) in cases {
        let (ok, _, err) = natgrad(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--distributed` in a build without MPI (or NCCL) says how to build one; with MPI, a
/// world of one process (no `mpirun`) runs as a single process.
#[test]
fn distributed_without_the_feature_says_how_to_build_it() {
    let (ok, _, err) = natgrad(&["bench", "sums", "--lengths", "10", "--runs", "1", "--distributed"]);
    if cfg!(feature = "mpi") {
        assert!(ok, "{err}");
    } else {
        assert!(!ok);
        assert!(err.contains("--features mpi") && err.contains("mpirun"), "{err}");
    }
    let (ok, _, err) = natgrad(&["bench", "sums", "--distributed", "--device", "cuda"]);
    assert!(!ok);
    // With NCCL built in, this machine's missing driver or libnccl is the error.
    let named = match cfg!(feature = "nccl") {
        true => err.contains("CUDA driver") || err.contains("NCCL"),
        false => err.contains("--features nccl"),
    };
    assert!(named, "{err}");
}
