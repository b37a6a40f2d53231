#!/usr/bin/env bash
# Runs the Swift test suite under AddressSanitizer (+LeakSanitizer) and ThreadSanitizer.
#
#   scripts/sanitize.sh [asan|tsan|all] [FILTER]
#
# FILTER is a |-separated list of test classes (or Class/testMethod); default: every class for ASan, and for
# TSan the tests that run threads or the C API (ConcurrencyTests, WorkerPoolTests, CAPITests, TokenizerTests, FuzzRegressionTests).
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
  echo "== $name: -Xswiftc -sanitize=$san -Xcc -fsanitize=$san, tests: ${filter:-all classes}"
  # -Xcc: the C kernels too (the worker pool's atomics are what orders the tasks' memory for TSan).
  nice swift build --build-tests -Xswiftc -sanitize="$san" -Xcc -fsanitize="$san" --scratch-path "$scratch" 2>&1 \
    | grep -E "error:|Compiling|Build complete" | grep -v "^\[" | tail -3
  local log=$scratch/sanitize-$name.log
  local t0=$SECONDS rc=0
  # The sanitizer runtimes of this toolchain abort while `swift test` lists the tests (a bad free / allocator
  # CHECK inside swift_getTypeName, also at commits before this script ran the binary itself), so the test
  # binary runs once per entry of the filter: a class (FormatsTests) or one test (FormatsTests/testX).
  local bin=$scratch/x86_64-unknown-linux-gnu/debug/libullmePackageTests.xctest
  local entries=${filter//|/ }
  [ -n "$entries" ] || entries=$(sed -n 's/^final class \([A-Za-z0-9_]*\): XCTestCase.*/\1/p' Tests/ULLMETests/*.swift)
  : >"$log"
  for entry in $entries; do
    nice "$bin" "ULLMETests.$entry" >>"$log" 2>&1 || { rc=1; echo "$entry failed" >>"$log"; }
  done
  local reports
  reports=$(grep -acE "^(==[0-9]+==ERROR|WARNING: ThreadSanitizer|SUMMARY: (Address|Thread|Leak)Sanitizer)" "$log")
  echo "   tests passed: $(grep -ac "^Test Case .* passed (" "$log"), failed: $(grep -ac "^Test Case .* failed (" "$log")"
  echo "   exit $rc, sanitizer reports: $reports, $((SECONDS - t0)) s (log: $log)"
  if [ $rc -ne 0 ] || [ "$reports" -ne 0 ]; then
    grep -aE "error:|failed|ERROR|WARNING: ThreadSanitizer|SUMMARY" "$log" | head -20
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
    run tsan thread /tmp/build-rel-tsan "${FILTER:-ConcurrencyTests|WorkerPoolTests|CAPITests|TokenizerTests|FuzzRegressionTests}"
fi
exit $status
