#!/usr/bin/env bash
# Settings sweep of the second-order methods on the reduced Curves data (5,000 images),
# the same start (seed 1) and the same wall-clock budget each; prints one markdown row per
# configuration. Usage: scripts/curves-sweep.sh [SECONDS per configuration, default 40]
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-40}"
cargo build --release -p natgrad >/dev/null
bin=target/release/natgrad
out=$(mktemp -d)
row() { # method, extra flags...
  local method=$1; shift
  "$bin" bench curves --methods "$method" --budget "$budget" --out "$out" "$@" >/dev/null 2>&1
  grep "^| $method |" "$out/summary.md" | sed "s/^| $method |/| $method | \`$*\` |/"
}
echo "| method | flags | train error | test error | seconds | iterations | metric products | λ range | settings |"
echo "|---|---|---|---|---|---|---|---|---|"
row sgd
row ngd --batch 250 --solver-iterations 10
row ngd --batch 250 --solver-iterations 20
row ngd --batch 250 --solver-iterations 50
row ngd --batch 500 --solver-iterations 20
row ngd --batch 1250 --solver-iterations 50
row ngd --batch 250 --solver-iterations 20 --damping 3
row ngd --batch 250 --solver-iterations 20 --solver cg
row ngd --batch 250 --solver-iterations 20 --warm-start true
row ngd-l --batch 250 --solver-iterations 20
row ngd-l --batch 1250 --solver-iterations 50
row ncg-f --batch 250 --solver-iterations 20
row ncg-f --batch 1250 --solver-iterations 50
row ncg-l --batch 250 --solver-iterations 20
row hf --batch 1250 --metric-batch 250 --solver-iterations 50
row hf --batch 0 --metric-batch 1250 --solver-iterations 50
rm -rf "$out"
