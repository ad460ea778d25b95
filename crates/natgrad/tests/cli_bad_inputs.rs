//! The CLI never panics on bad input: every case exits non-zero with a message naming the
//! thing that is wrong, and nothing in stderr says "panicked".

use std::path::{Path, PathBuf};
use std::process::Command;

fn natgrad(args: &[String]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_natgrad")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into())
}

/// A scratch directory with a valid 4-3-2 softmax MLP (23 params) and its files, plus
/// broken variants of each.
fn files() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natgrad-bad-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &[u8]| std::fs::write(dir.join(name), text).unwrap();
    write("spec.json", br#"{"layers": [4, 3, 2], "activations": ["tanh", "softmax"], "output": "softmax"}"#);
    write("bad.json", br#"{"layers": [4, 3, 2], "activations": ["tanh""#);
    write(
        "wrong_activation.json",
        br#"{"layers": [4, 3, 2], "activations": ["tanh", "swish"], "output": "softmax"}"#,
    );
    write("too_few.json", br#"{"layers": [4], "activations": [], "output": "softmax"}"#);
    let npy = |name: &str, shape: &[usize], values: &[f64]| {
        natgrad::npy::write(&dir.join(name), shape, values).unwrap()
    };
    npy("theta.npy", &[23], &[0.1; 23]);
    npy("theta_short.npy", &[22], &[0.1; 22]);
    npy("theta_nan.npy", &[23], &[f64::NAN; 23]);
    npy("x.npy", &[5, 4], &[0.5; 20]);
    npy("x_wide.npy", &[5, 3], &[0.5; 15]);
    npy("x_empty.npy", &[0, 4], &[]);
    npy("x_inf.npy", &[5, 4], &[f64::INFINITY; 20]);
    npy("v.npy", &[23], &[1.0; 23]);
    npy("v_long.npy", &[24], &[1.0; 24]);
    npy("t.npy", &[5, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    npy("t_wrong.npy", &[5, 3], &[0.0; 15]);
    let good = std::fs::read(dir.join("x.npy")).unwrap();
    write("x_truncated.npy", &good[..good.len() - 7]);
    write("x_corrupt.npy", b"\x93NUMPY\x01\x00garbage that is not a header");
    write("not_npy.npy", b"hello");
    std::fs::create_dir_all(dir.join("nan_data")).unwrap();
    npy("nan_data/train.npy", &[2, 784], &[f64::NAN; 2 * 784]);
    write("other_model.ckpt", b"natgrad-checkpoint 1\nngd\n3\n3ff0000000000000 3ff0000000000000\n\n0\n");
    write("other_method.ckpt", b"natgrad-checkpoint 1\nsgd\n3\n3ff0000000000000\n\n0\n");
    write("corrupt.ckpt", b"natgrad-checkpoint 1\nngd\nthree\n");
    // Fashion-MNIST-shaped IDX files of 2×3 images.
    std::fs::create_dir_all(dir.join("small_idx")).unwrap();
    let idx = |dims: &[u32], data: &[u8]| {
        let mut bytes = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
        bytes.extend(data);
        bytes
    };
    for split in ["train", "t10k"] {
        write(&format!("small_idx/{split}-images-idx3-ubyte"), &idx(&[2, 2, 3], &[7; 12]));
        write(&format!("small_idx/{split}-labels-idx1-ubyte"), &idx(&[2], &[1, 2]));
    }
    dir
}

#[test]
fn bad_inputs_are_errors_that_name_the_thing() {
    let dir = files();
    let p = |name: &str| dir.join(name).display().to_string();
    let fvp = |model: &str, params: &str, inputs: &str, vector: &str| -> Vec<String> {
        [
            "fvp",
            "--model",
            &p(model),
            "--params",
            &p(params),
            "--inputs",
            &p(inputs),
            "--vector",
            &p(vector),
            "--out",
            &p("gv.npy"),
        ]
        .map(String::from)
        .to_vec()
    };
    let grad = |model: &str, params: &str, inputs: &str, targets: &str| -> Vec<String> {
        [
            "grad",
            "--model",
            &p(model),
            "--params",
            &p(params),
            "--inputs",
            &p(inputs),
            "--targets",
            &p(targets),
            "--out",
            &p("g.npy"),
        ]
        .map(String::from)
        .to_vec()
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let train = |extra: &[&str]| -> Vec<String> {
        let mut list = args(&["train", "--train-size", "20", "--out", &p("trained.npy")]);
        if !extra.contains(&"--model") {
            list.extend(args(&["--model", "autoencoder:784,4"]));
        }
        list.extend(args(extra));
        list
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (fvp("missing.json", "theta.npy", "x.npy", "v.npy"), "missing.json"),
        (fvp("bad.json", "theta.npy", "x.npy", "v.npy"), "bad.json"),
        (fvp("wrong_activation.json", "theta.npy", "x.npy", "v.npy"), "swish"),
        (fvp("too_few.json", "theta.npy", "x.npy", "v.npy"), "too_few.json"),
        (fvp("spec.json", "missing.npy", "x.npy", "v.npy"), "missing.npy"),
        (fvp("spec.json", "theta_short.npy", "x.npy", "v.npy"), "params: expected 23, got 22"),
        (fvp("spec.json", "theta.npy", "x_wide.npy", "v.npy"), "metric batch"),
        (fvp("spec.json", "theta.npy", "x_empty.npy", "v.npy"), "metric batch"),
        (fvp("spec.json", "theta.npy", "x.npy", "v_long.npy"), "v: expected 23, got 24"),
        (fvp("spec.json", "theta.npy", "x_truncated.npy", "v.npy"), "x_truncated.npy"),
        (fvp("spec.json", "theta.npy", "x_corrupt.npy", "v.npy"), "x_corrupt.npy"),
        (fvp("spec.json", "theta.npy", "not_npy.npy", "v.npy"), "not_npy.npy"),
        (fvp("spec.json", "theta_nan.npy", "x.npy", "v.npy"), "theta_nan.npy: value 0 is NaN"),
        (fvp("spec.json", "theta.npy", "x_inf.npy", "v.npy"), "x_inf.npy: value 0 is inf"),
        (grad("spec.json", "theta.npy", "x.npy", "t_wrong.npy"), "t"),
        (grad("spec.json", "theta_short.npy", "x.npy", "t.npy"), "params: expected 23, got 22"),
        (grad("spec.json", "theta.npy", "x_empty.npy", "t.npy"), "inputs"),
        (grad("spec.json", "theta.npy", "missing.npy", "t.npy"), "missing.npy"),
        (args(&["ir", "--model", "resnet"]), "resnet"),
        (args(&["ir", "--model", "mlp:4,3:swish"]), "swish"),
        (args(&["ir", "--model", "mlp:4:sigmoid"]), "mlp:4:sigmoid"),
        (args(&["ir", "--model", "mlp:4,0,2:tanh,softmax"]), "layer sizes must be at least 1"),
        (args(&["ir", "--model", "mlp:4,3,2:softmax,softmax"]), "softmax"),
        (args(&["ir", "--dtype", "f16"]), "f16"),
        (args(&["ir", "--product", "hessian"]), "hessian"),
        (args(&["bench", "fvp", "--batch", "0"]), "--batch sizes must be at least 1"),
        (args(&["bench", "fvp", "--model", "nope"]), "nope"),
        (args(&["bench", "fvp", "--batch", "x"]), "--batch"),
        (args(&["bench", "curves", "--data", &p("no_such_dir")]), "no_such_dir"),
        (args(&["bench", "curves", "--init", &p("theta.npy"), "--budget", "1"]), "theta.npy"),
        (args(&["bench", "curves", "--iterations", "-3"]), "'-3'"),
        (args(&["bench", "curves", "--batch", "x"]), "--batch"),
        (args(&["data", "curves", "--out", "/proc/no/such/dir"]), "/proc/no/such/dir"),
        (train(&[]), "--iterations"),
        (train(&["--iterations", "1", "--model", "mlp:784,10:softmax"]), "autoencoders"),
        (train(&["--iterations", "1", "--model", "autoencoder:784"]), "at least an input and a code size"),
        (
            train(&["--iterations", "1", "--model", "autoencoder:4,2"]),
            "takes 4 values per example, the data has 784",
        ),
        (train(&["--iterations", "1", "--data", &p("nan_data")]), "train.npy: value [0, 0] is NaN"),
        (
            train(&["--iterations", "1", "--checkpoint", &p("other_model.ckpt")]),
            "holds 2 parameters, the model has 7060",
        ),
        (
            train(&["--iterations", "1", "--checkpoint", &p("other_method.ckpt")]),
            "checkpoint is of sgd, not ngd",
        ),
        (train(&["--iterations", "1", "--checkpoint", &p("corrupt.ckpt")]), "corrupt.ckpt"),
        (
            train(&["--iterations", "1", "--checkpoint-every", "0", "--checkpoint", &p("new.ckpt")]),
            "--checkpoint-every",
        ),
        (train(&["--iterations", "1", "--method", "adam"]), "adam"),
        (args(&["bench", "curves", "--data", &p("nan_data")]), "train.npy: value [0, 0] is NaN"),
        (args(&["bench", "unlabeled", "--data", &p("nowhere")]), "dataset-fashion-mnist"),
        (args(&["bench", "order", "--data", &p("nowhere")]), "dataset-fashion-mnist"),
        (args(&["bench", "unlabeled", "--data", &p("small_idx")]), "expected 28×28 images"),
        (args(&["bench", "order", "--data", &p("small_idx")]), "expected 28×28 images"),
        (args(&["bench", "unlabeled", "--runs", "same,other"]), "unknown run `other`"),
        (args(&["fvp"]), "--model"),
        (args(&["frobnicate"]), "frobnicate"),
    ];
    let mut failures = Vec::new();
    for (case, fragment) in &cases {
        let (ok, err) = natgrad(case);
        let shown = format!("natgrad {}", case.join(" ").replace(&dir.display().to_string(), "DIR"));
        if ok {
            failures.push(format!("{shown}: succeeded"));
        } else if err.contains("panicked") {
            failures.push(format!("{shown}: panicked:\n{err}"));
        } else if !err.contains(fragment) {
            failures.push(format!("{shown}: message does not name `{fragment}`:\n{err}"));
        }
    }
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));
    std::fs::remove_dir_all(Path::new(&dir)).ok();
}
