#!/usr/bin/env bash
# Builds, on the development machine, everything scripts/gpu-check.sh runs on a GPU machine
# (which has CUDA, JAX and PyTorch but no Rust), into .gpu-bin/ (git-ignored; name it in the
# device tool's `carry`):
#   .gpu-bin/natgrad     the CLI with the CUDA backend (release)
#   .gpu-bin/gpu-tests   crates/cuda/tests/gpu.rs (the GPU differential tests)
#   .gpu-bin/compare.py  the JAX / PyTorch Gauss-Newton products on the same shapes
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-bin
cargo build --release -p natgrad --features cuda,nccl
cp target/release/natgrad .gpu-bin/natgrad
tests=$(cargo test --release -p natgrad-cuda --test gpu --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])')
cp "$tests" .gpu-bin/gpu-tests
cp scripts/compare-frameworks.py .gpu-bin/compare.py
ls -la .gpu-bin
