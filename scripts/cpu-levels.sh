#!/usr/bin/env bash
# The CPU backend's tests on emulated x86-64 CPUs older than the one here, so every vector
# level the JIT and the slice routines pick at run time is tested whatever machine CI lands
# on: `Nehalem` (SSE4.2, no AVX: Cranelift's SSE encodings, the baseline slice routines) and
# `max` (QEMU's TCG: AVX2 + FMA, no AVX-512). Needs qemu-user (Debian: `apt-get install
# qemu-user`); cargo runs each test binary under `qemu-x86_64 -cpu MODEL` as its runner.
# About 20 s per model after the build that `cargo test --workspace` made.
#   scripts/cpu-levels.sh            # both models
#   scripts/cpu-levels.sh Nehalem    # one
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -m)" != x86_64 ]; then
  echo "cpu-levels: not an x86-64 host; nothing to emulate"
  exit 0
fi
models=("$@")
[ "${#models[@]}" -eq 0 ] && models=(Nehalem max)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for model in "${models[@]}"; do
  echo "== natgrad-cpu tests on an emulated $model CPU"
  status=0
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="qemu-x86_64 -cpu $model" \
    cargo test -p natgrad-cpu >"$log" 2>&1 || status=$?
  grep -E "^test result" "$log" || true
  if [ "$status" -ne 0 ]; then
    grep -v "^qemu-x86_64: warning" "$log" | tail -40
    echo "error: natgrad-cpu's tests fail on an emulated $model CPU"
    exit 1
  fi
done
