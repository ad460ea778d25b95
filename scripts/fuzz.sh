#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), starting from the
# seeds in fuzz/seeds/TARGET; the growing corpus stays in fuzz/corpus/ (git-ignored), and
# crashes land in fuzz/artifacts/. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Builds every target first (a build error is printed as
# cargo gives it), then prints libFuzzer's last status lines per target; each run's whole
# output is kept in fuzz/logs/TARGET.log, and when a run fails its last 60 lines are printed.
# `.ci/run` runs it for 20 s per target as a smoke test; a failure makes it exit non-zero.
#   scripts/fuzz.sh 600
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")/../fuzz"
mkdir -p logs
if ! cargo +nightly fuzz build >logs/build.log 2>&1; then
  tail -60 logs/build.log
  echo "error: building the fuzz targets failed (whole output: fuzz/logs/build.log)"
  exit 1
fi
failed=()
for target in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$target"
  echo "== $target ($seconds s)"
  log="logs/$target.log"
  status=0
  cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 ||
    status=$?
  grep -E "^(#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|==[0-9]+== ?ERROR|Done)" "$log" |
    tail -5 || true
  if [ "$status" -ne 0 ]; then
    echo "-- $target failed (exit status $status); the last 60 lines of fuzz/$log:"
    tail -60 "$log"
    failed+=("$target")
  fi
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "error: fuzz targets failed: ${failed[*]}"
  exit 1
fi
