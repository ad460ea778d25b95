//! The layering issue 10 asks for, checked on the sources: the CPU crate has no
//! scheduling, memory-plan or validation logic of its own, and above the backends only the
//! facade's `Device` matches (the backend, a GPU's optimizer vectors) name a backend type.

use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `(file, text)` of every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

#[test]
fn only_the_device_match_names_a_backend_type() {
    let mut uses = Vec::new();
    for krate in
        ["natgrad/src", "natgrad/tests", "optim/src", "autodiff/src", "lower/src", "rewrite/src", "ptx/src"]
    {
        for (path, text) in sources(&crates_dir().join(krate)) {
            for (i, line) in text.lines().enumerate() {
                if line.contains(concat!("natgrad", "_cpu"))
                    || line.contains(concat!("natgrad", "_cuda"))
                    || line.contains(concat!("natgrad", "_ptx_sim"))
                {
                    uses.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }
    // The backend match, and the GPU's optimizer vectors (`with_device_vectors`), both in
    // compile.rs.
    assert_eq!(uses.len(), 5, "backend types named outside the Device matches:\n{}", uses.join("\n"));
    assert!(uses.iter().all(|u| u.contains("compile.rs") && u.contains(" => ")), "{}", uses.join("\n"));
    for arm in [
        "Device::Cpu => Ok(Box::new(",
        "Device::Cuda(ordinal) => Ok(Box::new(",
        "Device::Cuda(ordinal) => Ok(work.run(",
        "Device::Sim => Ok(Box::new(",
        "Device::Sim => Ok(work.run(",
    ] {
        assert_eq!(uses.iter().filter(|u| u.contains(arm)).count(), 1, "`{arm}` in:\n{}", uses.join("\n"));
    }
}

#[test]
fn the_cpu_backend_has_no_planning_or_validation_of_its_own() {
    let cpu = crates_dir().join("cpu");
    let manifest = std::fs::read_to_string(cpu.join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("natgrad-rewrite"),
        "the simplifier runs in the shared driver, not the backend"
    );
    for (path, text) in sources(&cpu.join("src")) {
        for needle in
            ["fn schedule", "fn plan_memory", "fn lower(", "Error::Length", "Error::Unbound", "usize::MAX"]
        {
            assert!(!text.contains(needle), "{} contains `{needle}`", path.display());
        }
    }
}
