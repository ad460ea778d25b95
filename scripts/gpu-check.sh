#!/usr/bin/env bash
# The one prepared GPU run (issues 11 and 16): at most 505 s of timeouts. Build first, here:
#   scripts/gpu-build.sh
# then, through the device tool: command `bash scripts/gpu-check.sh`, carry [".gpu-bin"],
# timeout_s 560. Everything it prints is also kept under $OUT (gpu.txt — the GPU, then the
# NCCL run at the end —, tests.log, memcheck.log, fvp.txt, fvp.json, fvp-tf32.txt,
# compare.txt, curves.txt: 8 files, the most that come back).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
# cudarc loads libcuda and libcublas at run time: point the loader at CUDA's libraries.
cublas=$(find / -name 'libcublas.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)
[ -n "$cublas" ] && export LD_LIBRARY_PATH="$(dirname "$cublas"):${LD_LIBRARY_PATH:-}"
echo "libcublas: ${cublas:-not found}" | tee -a "$OUT/gpu.txt"

echo "== GPU differential tests"
timeout 90 .gpu-bin/gpu-tests --nocapture --test-threads 1 2>&1 | tee "$OUT/tests.log"
echo "== compute-sanitizer memcheck over them (the Curves-sized product left out and 48 random graphs: too slow there)"
NATGRAD_RANDOM_GRAPHS=48 timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 .gpu-bin/gpu-tests --test-threads 1 \
  --skip the_curves_fisher_product 2>&1 |
  tail -20 | tee "$OUT/memcheck.log"
echo "== natgrad bench fvp --device cuda"
timeout 90 .gpu-bin/natgrad bench fvp --device cuda --model curves --batch 1000,5000,20000 --runs 20 \
  --units 15 --json "$OUT/fvp.json" 2>&1 | tee "$OUT/fvp.txt"
echo "== natgrad bench fvp --device cuda --tf32"
timeout 40 .gpu-bin/natgrad bench fvp --device cuda --tf32 --model curves --batch 5000,20000 --runs 20 2>&1 |
  tee "$OUT/fvp-tf32.txt"
echo "== JAX and PyTorch on the same GPU"
timeout 90 python3 .gpu-bin/compare.py --batch 1000,5000,20000 --runs 20 2>&1 | tee "$OUT/compare.txt"
echo "== bench curves --full --device cuda (short)"
timeout 45 .gpu-bin/natgrad bench curves --full --device cuda --methods ngd,hf --budget 15 --out /tmp/curves \
  2>&1 | tail -15 | tee "$OUT/curves.txt"
echo "== NCCL communicator, world of one GPU (bench sums --distributed --device cuda)"
timeout 30 .gpu-bin/natgrad bench sums --distributed --device cuda 2>&1 | tee -a "$OUT/gpu.txt"
