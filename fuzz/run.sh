#!/usr/bin/env bash
# Runs one libFuzzer target of fuzz/ (or all of them) for a number of seconds.
#
#   fuzz/run.sh PARSER SECONDS [libFuzzer flags...]
#   fuzz/run.sh all SECONDS          # every target in turn (CI: fuzz/run.sh all 20)
#
# PARSER: gguf safetensors config tokenizer-json gguf-tokenizer encode-smollm2 encode-spm model-gguf
#         grl-jsonl train-yaml
# Seeds: fuzz/seeds/PARSER (read-only; scripts/fixtures/make_fuzz_seeds.py). Corpus grown by the run:
# $ULLME_FUZZ_WORK/PARSER/corpus (default /tmp/ullme-fuzz). Crashes, timeouts and OOM inputs:
# fuzz/artifacts/PARSER/. Exit status non-zero on any finding. The build is a separate package
# (fuzz/Package.swift) built in debug mode with -sanitize=fuzzer,address, so Swift's overflow and
# bounds traps are findings too. Runs under `nice` (the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGETS="gguf safetensors config tokenizer-json gguf-tokenizer encode-smollm2 encode-spm model-gguf grl-jsonl train-yaml"
PARSER=${1:?usage: fuzz/run.sh PARSER|all SECONDS [libFuzzer flags]}
SECS=${2:?usage: fuzz/run.sh PARSER|all SECONDS [libFuzzer flags]}
shift 2
SCRATCH=${ULLME_FUZZ_SCRATCH:-/tmp/build-rel-fuzz}
WORK=${ULLME_FUZZ_WORK:-/tmp/ullme-fuzz}
BIN=$SCRATCH/debug/ullme-fuzz

if [ -z "${ULLME_FUZZ_NO_BUILD:-}" ]; then
  nice swift build -c debug --package-path fuzz --scratch-path "$SCRATCH" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | grep -v "Cannot export local symbol" | tail -1
fi

max_len() {
  case $1 in
    gguf|gguf-tokenizer|tokenizer-json) echo 32768 ;;
    model-gguf) echo 400000 ;;
    *) echo 4096 ;;
  esac
}

run_one() {
  local t=$1; shift
  mkdir -p "$WORK/$t/corpus" "$ROOT/fuzz/artifacts/$t"
  local log="$WORK/$t/last.log"
  echo "== $t: ${SECS}s"
  set +e
  ULLME_FUZZ_TARGET=$t SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1} \
    nice -n "${ULLME_FUZZ_NICE:-10}" "$BIN" "$WORK/$t/corpus" "$ROOT/fuzz/seeds/$t" \
    -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -artifact_prefix="$ROOT/fuzz/artifacts/$t/" -print_final_stats=1 "$@" >"$log" 2>&1
  local rc=$?
  set -e
  rm -f /dev/shm/ullme-fuzz-model-*.gguf 2>/dev/null || true
  local runs cov
  runs=$(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(grep -aoE 'cov: [0-9]+' "$log" | tail -1 || true)
  echo "   executions: $runs  $cov  exit: $rc  (log: $log)"
  if [ $rc -ne 0 ]; then
    grep -aE 'ERROR|Fatal|panic|deadly|Test unit written' "$log" | head -20
    return 1
  fi
}

status=0
if [ "$PARSER" = all ]; then
  for t in $TARGETS; do run_one "$t" "$@" || status=1; done
else
  run_one "$PARSER" "$@" || status=1
fi
exit $status
