#!/usr/bin/env bash
# Runs the CPU backend's tests (differential tests of every op against the interpreter,
# odd sizes, batch 1, every broadcast mode, random graphs; split GEMMs; fused column sums;
# session errors) under valgrind memcheck. Generated code only ever sees buffers the memory
# plan sized and the input checks validated, so any invalid read or write is a bug in the
# lowering. Exit status 1 on any memcheck error.
#   scripts/valgrind.sh            (needs valgrind: apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
binaries=$(cargo test -p natgrad-cpu --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
status=0
for test in $binaries; do
  echo "== $(basename "$test")"
  # JIT code is written to fresh pages and then run: --smc-check=all-non-file makes valgrind
  # re-translate it.
  log=$(mktemp)
  valgrind --tool=memcheck --error-exitcode=1 --smc-check=all-non-file --quiet \
    "$test" --test-threads 1 > "$log" 2>&1 || status=1
  grep -E "test result|==[0-9]+==" "$log" | head -40 || true
  rm -f "$log"
done
exit $status
