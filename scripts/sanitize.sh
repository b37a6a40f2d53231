#!/usr/bin/env bash
# Runs the Swift test suite under AddressSanitizer (+LeakSanitizer) and ThreadSanitizer.
#
#   scripts/sanitize.sh [asan|tsan|all] [FILTER]
#
# FILTER is a `swift test --filter` regex; default: the whole suite for ASan, and for TSan the tests
# that run threads or the C API (ConcurrencyTests, CAPITests, TokenizerTests, FuzzRegressionTests).
# Builds go to /tmp/build-rel-asan and /tmp/build-rel-tsan (debug). Exit status non-zero on any
# failure or sanitizer report. LeakSanitizer ignores one-time allocations of the Swift runtime and
# XCTest (scripts/lsan.supp).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
FILTER=${2:-}
status=0
export SWIFT_BACKTRACE=enable=no

run() {  # name sanitizer scratch filter options-var
  local name=$1 san=$2 scratch=$3 filter=$4
  echo "== $name: swift test -Xswiftc -sanitize=$san ${filter:+--filter '$filter'}"
  nice swift build --build-tests -Xswiftc -sanitize="$san" --scratch-path "$scratch" 2>&1 \
    | grep -E "error:|Compiling|Build complete" | grep -v "^\[" | tail -3
  local log=$scratch/sanitize-$name.log
  local t0=$SECONDS
  if [ -n "$filter" ]; then
    nice swift test --skip-build -Xswiftc -sanitize="$san" --scratch-path "$scratch" --filter "$filter" >"$log" 2>&1
  else
    nice swift test --skip-build -Xswiftc -sanitize="$san" --scratch-path "$scratch" >"$log" 2>&1
  fi
  local rc=$?
  local reports
  reports=$(grep -cE "^(==[0-9]+==ERROR|WARNING: ThreadSanitizer|SUMMARY: (Address|Thread|Leak)Sanitizer)" "$log")
  echo "   $(grep -E "Executed [0-9]+ tests?" "$log" | tail -1 | sed 's/^[[:space:]]*//')"
  echo "   exit $rc, sanitizer reports: $reports, $((SECONDS - t0)) s (log: $log)"
  if [ $rc -ne 0 ] || [ "$reports" -ne 0 ]; then
    grep -E "error:|failed|ERROR|WARNING: ThreadSanitizer|SUMMARY" "$log" | head -20
    status=1
  fi
}

if [ "$MODE" = asan ] || [ "$MODE" = all ]; then
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1} \
  LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0} \
    run asan address /tmp/build-rel-asan "$FILTER"
fi
if [ "$MODE" = tsan ] || [ "$MODE" = all ]; then
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1} \
    run tsan thread /tmp/build-rel-tsan "${FILTER:-ConcurrencyTests|CAPITests|TokenizerTests|FuzzRegressionTests}"
fi
exit $status
