//! Every kernel of the Curves Fisher product, gradient and loss (and of the other plans and
//! the vector module below), f32 and f64, assembled by
//! `ptxas` for sm_80 and sm_90. `ptxas` comes from `NATGRAD_PTXAS`, else `.venv-ptx` at the
//! workspace root (where `.ci/run` installs it), else `PATH`; without one the test says it
//! was skipped and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{Builder, DType, Graph, Scalar, Shape};
use natgrad_lower::{Partition, Plan};
use natgrad_ptx::{Arch, module};

fn ptxas() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATGRAD_PTXAS") {
        return Some(PathBuf::from(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".venv-ptx/lib");
    let from_venv = std::fs::read_dir(&venv).ok().and_then(|mut dirs| {
        dirs.find_map(|d| {
            let candidate = d.ok()?.path().join("site-packages/nvidia/cuda_nvcc/bin/ptxas");
            candidate.exists().then_some(candidate)
        })
    });
    from_venv.or_else(|| Command::new("ptxas").arg("--version").output().ok().map(|_| PathBuf::from("ptxas")))
}

/// The Fisher product, gradient and loss of the Curves autoencoder, of a softmax MLP
/// (softmax rows, log-softmax) and of the section-7 convolutional network (im2col), and a
/// graph of the remaining host steps (transposes, materialised broadcasts, max and mean
/// reductions over inner and outer axes, im2col and col2im with padding), and the GPU tests'
/// 48 seeded random graphs.
fn plans<T: Scalar>() -> Vec<(String, Plan)> {
    let mut curves = natgrad_ir::nn::curves_autoencoder();
    if T::DTYPE == DType::F64 {
        let sizes = [784, 400, 200, 100, 50, 25, 6];
        curves = natgrad_ir::nn::autoencoder(&sizes, DType::F64).unwrap();
    }
    let mlp = nn::mlp(&[20, 16, 10], &[Activation::Tanh, Activation::Softmax], T::DTYPE).unwrap();
    let plan = |graph: &Graph, partition: &Partition| Plan::build(graph, partition, T::DTYPE, true).unwrap();
    let window = natgrad_ir::Window { kernel: [5, 5], stride: [2, 2], padding: [1, 1] };
    let convnet =
        nn::convnet([28, 28, 1], window, 16, &[32, 10], &[Activation::Sigmoid; 3], T::DTYPE).unwrap();
    let mut out = Vec::new();
    for (label, model) in [("curves", &curves), ("mlp", &mlp), ("convnet", &convnet)] {
        let product = natgrad_autodiff::fisher_product(model).unwrap();
        let gradient = natgrad_autodiff::gradient(model).unwrap().graph;
        out.push((format!("{label}_fisher"), plan(&product.graph, &Partition::new(product.phases()))));
        out.push((format!("{label}_gradient"), plan(&gradient, &Partition::single())));
        out.push((format!("{label}_loss"), plan(&model.graph, &Partition::single())));
    }
    let b = Builder::new(T::DTYPE);
    let x = b.input("x", Shape::batched(&[3, 5]));
    let v = b.input("v", Shape::fixed(&[5]));
    let transposed = x.transpose(&[2, 0, 1]);
    let spread = v.broadcast_to(Shape::batched(&[3, 5]));
    let graph = b
        .finish(&[
            &transposed,
            &spread,
            &x.max(&[1], false),
            &x.mean(&[0, 2], true),
            &x.softmax(1),
            &x.exp().mean(&[0, 1], false),
            &x.reshape(Shape(vec![
                natgrad_ir::Dim::Batch,
                natgrad_ir::Dim::Fixed(3),
                natgrad_ir::Dim::Fixed(5),
                natgrad_ir::Dim::Fixed(1),
            ]))
            .im2col(natgrad_ir::Window { kernel: [2, 3], stride: [1, 2], padding: [1, 1] })
            .col2im(natgrad_ir::Window { kernel: [2, 3], stride: [1, 2], padding: [1, 1] }, [3, 5]),
        ])
        .unwrap();
    out.push(("host_steps".to_string(), plan(&graph, &Partition::single())));
    for seed in 0..48u64 {
        let width = if seed % 4 == 3 { 37 } else { 5 };
        let steps = natgrad_ir::random_graphs::seeded_steps(seed);
        let graph = natgrad_ir::random_graphs::graph(T::DTYPE, width, &steps).unwrap();
        out.push((format!("random_{seed}"), plan(&graph, &Partition::single())));
    }
    out
}

/// Assembles `text` (written to `dir/file`) for `arch`; panics with ptxas's log if it fails.
fn assemble(ptxas: &Path, dir: &Path, file: &str, text: &str, arch: Arch) {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(ptxas)
        .args(["-arch", arch.target(), "-O3", "-o"])
        .arg(dir.join("out.cubin"))
        .arg(&path)
        .output()
        .expect("run ptxas");
    assert!(
        out.status.success(),
        "ptxas rejected {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_curves_kernel_assembles_with_ptxas() {
    let Some(ptxas) = ptxas() else {
        eprintln!("skipped: no ptxas (set NATGRAD_PTXAS, or install it as .ci/run does into .venv-ptx)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("natgrad-ptxas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut assembled = 0;
    for (dtype, plans) in [("f32", plans::<f32>()), ("f64", plans::<f64>())] {
        for (what, plan) in plans {
            for arch in [Arch::Sm80, Arch::Sm90] {
                let module = module(&plan, arch);
                assert!(!module.kernels.is_empty(), "{what} {dtype} has kernels");
                assemble(&ptxas, &dir, &format!("{what}_{dtype}_{}.ptx", arch.target()), &module.text, arch);
                assembled += module.kernels.len();
            }
        }
    }
    // The optimizers' vector operations (one module per element type).
    for dtype in [DType::F32, DType::F64] {
        for arch in [Arch::Sm80, Arch::Sm90] {
            let text = natgrad_ptx::vectors::module(dtype, arch);
            assemble(&ptxas, &dir, &format!("vectors_{dtype}_{}.ptx", arch.target()), &text, arch);
            assembled += text.matches(".entry").count();
        }
    }
    eprintln!("ptxas assembled {assembled} kernels");
    std::fs::remove_dir_all(&dir).ok();
}
