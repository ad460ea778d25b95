#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), starting from the
# seeds in fuzz/seeds/TARGET; the growing corpus stays in fuzz/corpus/ (git-ignored), and
# crashes land in fuzz/artifacts/. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Prints libFuzzer's last status line per target.
# `.ci/run` runs it for 20 s per target as a smoke test; a crash makes it exit non-zero.
#   scripts/fuzz.sh 600
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")/../fuzz"
for target in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$target"
  echo "== $target ($seconds s)"
  cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    grep -E "^(#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|==[0-9]+==ERROR|Done)" | tail -5
done
