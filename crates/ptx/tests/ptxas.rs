//! Every kernel of the Curves Fisher product, gradient and loss, f32 and f64, assembled by
//! `ptxas` for sm_80 and sm_90. `ptxas` comes from `NATGRAD_PTXAS`, else `.venv-ptx` at the
//! workspace root (where `.ci/run` installs it), else `PATH`; without one the test says it
//! was skipped and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use natgrad_ir::{DType, Graph, Scalar};
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

fn plans<T: Scalar>() -> Vec<(&'static str, Plan)> {
    let mut model = natgrad_ir::nn::curves_autoencoder();
    if T::DTYPE == DType::F64 {
        let sizes = [784, 400, 200, 100, 50, 25, 6];
        model = natgrad_ir::nn::autoencoder(&sizes, DType::F64).unwrap();
    }
    let product = natgrad_autodiff::fisher_product(&model).unwrap();
    let gradient = natgrad_autodiff::gradient(&model).unwrap().graph;
    let plan = |graph: &Graph, partition: &Partition| Plan::build(graph, partition, T::DTYPE, true).unwrap();
    vec![
        ("fisher", plan(&product.graph, &Partition::new(product.phases()))),
        ("gradient", plan(&gradient, &Partition::single())),
        ("loss", plan(&model.graph, &Partition::single())),
    ]
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
                let file = dir.join(format!("{what}_{dtype}_{}.ptx", arch.target()));
                std::fs::write(&file, &module.text).unwrap();
                let out = Command::new(&ptxas)
                    .args(["-arch", arch.target(), "-O3", "-o"])
                    .arg(dir.join("out.cubin"))
                    .arg(&file)
                    .output()
                    .expect("run ptxas");
                assert!(
                    out.status.success(),
                    "ptxas rejected {}:\n{}",
                    file.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                assembled += module.kernels.len();
            }
        }
    }
    eprintln!("ptxas assembled {assembled} kernels");
    std::fs::remove_dir_all(&dir).ok();
}
