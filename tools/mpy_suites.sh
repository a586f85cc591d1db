#!/usr/bin/env bash
# Run MicroPython test suites (default: every host_tests/mpy/test_*.py) under the real
# MicroPython 1.29 WASM port via tools/mpwasm.mjs. Runs all suites, then fails if any failed.
# Each suite should close with "<name>: N passed, N failed" (host_tests/mpy/mptest.py does).
#   MICROPYPATH        default lib:firmware:host_tests/mpy:host_tests/fakes
#   MPY_SUITE_TIMEOUT  seconds per suite, default 300
set -uo pipefail
cd "$(dirname "$0")/.."
export MICROPYPATH="${MICROPYPATH:-lib:firmware:host_tests/mpy:host_tests/fakes}"
limit="${MPY_SUITE_TIMEOUT:-300}"
if [ $# -gt 0 ]; then suites=("$@"); else
  shopt -s nullglob; suites=(host_tests/mpy/test_*.py); fi
if [ ${#suites[@]} -eq 0 ]; then echo "micropython: no suites found"; exit 0; fi

passed=0 failed=0 bad=()
log=$(mktemp); trap 'rm -f "$log"' EXIT
re='^([A-Za-z0-9_.-]+: )?([0-9]+) passed, ([0-9]+) failed'
for t in "${suites[@]}"; do
  echo "== $t"
  start=$EPOCHREALTIME
  timeout -k 5 "$limit" node tools/mpwasm.mjs "$t" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  ms=$(( (${EPOCHREALTIME/./} - ${start/./}) / 1000 ))
  line=$(grep -E "$re" "$log" | tail -n 1 || true)
  if [[ $line =~ $re ]]; then
    passed=$((passed + BASH_REMATCH[2])); failed=$((failed + BASH_REMATCH[3]))
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))   # crashed before reporting counts: count the suite as one failure
  fi
  [ "$rc" -eq 124 ] && echo "!! $t: timed out after ${limit}s"
  if [ "$rc" -ne 0 ]; then bad+=("$t (rc $rc)"); fi
  printf -- '-- %s: rc %s, %d ms\n' "$t" "$rc" "$ms"
done
for b in "${bad[@]}"; do echo "FAILED SUITE: $b"; done
echo "micropython: $passed passed, $failed failed"
[ ${#bad[@]} -eq 0 ]
