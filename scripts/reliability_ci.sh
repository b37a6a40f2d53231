#!/usr/bin/env bash
# The short versions of the reliability checks of docs/RELIABILITY.md, for CI (no Makefile needed):
#   1. every fuzz target for $FUZZ_SECONDS (default 20) s: fuzz/run.sh all
#   2. the C API tests: bad input, 8-thread concurrency (bit-identical), 100 load/embed/free cycles
#      with flat RSS, and 20 of them under valgrind --leak-check=full (skipped without valgrind)
#   3. training faults (Python + CLI): NaN/inf under nonfinite_policy stop and skip, disk full (tmpfs or
#      RLIMIT_FSIZE), $KILL9_TRIALS (default 10) kill -9 trials during checkpoint writes, Python threads
#   4. AddressSanitizer + LeakSanitizer on a small test subset, ThreadSanitizer on the concurrency test
# Needs: swift (6.3), cc, the tiny fixtures (in git) and, for the encode-* fuzz targets and the
# FuzzRegression SPM check, the models of scripts/fetch_models.sh in ~/.cache/ullme ($ULLME_CACHE).
# RELIABILITY_STEPS picks steps (default all: fuzz,capi,faults,sanitizers); `make test-reliability` (part of
# `make test`, so of CI) runs fuzz,capi, as test-python already runs the step-3 tests.
# Exit status: number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
MODEL=${ULLME_CI_MODEL:-Tests/fixtures/tiny-llama}
OUT=${OUT:-/tmp/build-rel/c}
failed=0
STEPS=",${RELIABILITY_STEPS:-fuzz,capi,faults,sanitizers},"
want() { [[ $STEPS == *",$1,"* ]]; }
step() { echo; echo "######## $*"; }
check() { if "$@"; then echo "-> ok"; else echo "-> FAILED: $*"; failed=$((failed + 1)); fi; }

if want fuzz; then
step "fuzz: every target ${FUZZ_SECONDS}s"
check fuzz/run.sh all "$FUZZ_SECONDS"
fi

if want capi; then
step "C API tests ($MODEL)"
check Tests/c/build.sh
check "$OUT/bad_input" "$MODEL"
check "$OUT/concurrency" "$MODEL" 8 4
check "$OUT/load_cycle" "$MODEL" 100
if command -v valgrind >/dev/null; then
  check valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=9 "$OUT/vg/load_cycle" "$MODEL" 20
else
  echo "valgrind not installed: leak check FAILED (apt-get install valgrind)"; failed=$((failed + 1))
fi
fi

if want faults; then
step "training faults: non-finite policies, disk full, kill -9 x ${KILL9_TRIALS:-10}, Python threads"
SCRATCH=${ULLME_SCRATCH:-/tmp/build-rel}
check bash -c "nice swift build -c release --product ullme-cli --scratch-path '$SCRATCH' 2>&1 | tail -1"
check env ULLME_LIB="$SCRATCH/release/libullme.so" ULLME_CLI="$SCRATCH/release/ullme-cli" ULLME_KILL9_TRIALS="${KILL9_TRIALS:-10}" \
  python3 -m pytest -q bindings/python/tests/test_train_faults.py bindings/python/tests/test_train_kill9.py \
  bindings/python/tests/test_threads.py -k "not test_threads_identical"
fi

if want sanitizers; then
step "sanitizers (subset)"
check scripts/sanitize.sh asan 'FuzzRegressionTests|FormatsTests|CAPITests|ConcurrencyTests|WorkerPoolTests|QuantizedPanelsTests'
check scripts/sanitize.sh tsan 'ConcurrencyTests|WorkerPoolTests'
fi

echo
echo "reliability_ci: $failed failed step(s)"
exit $failed
