#!/bin/sh
# Builds and runs the BF16 vs exact GEMM microbenchmark (bench/gemm_bf16_bench.c), one thread.
# Usage: bench/run_gemm_bf16_bench.sh [M N K [min_seconds [rounds]]]   (default 512 1536 576)
# Env: BENCH_TIMER=cpu (thread CPU time, for a shared machine), CC (default: Swift's clang).
set -e
cd "$(dirname "$0")/.."
if [ -z "$CC" ]; then if [ -x /opt/swift/usr/bin/clang ]; then CC=/opt/swift/usr/bin/clang; else CC=cc; fi; fi
$CC -O3 -fno-math-errno -o /tmp/cullme_gemm_bf16_bench -I Sources/CULLME/include \
    bench/gemm_bf16_bench.c Sources/CULLME/gemm.c Sources/CULLME/gemm_bf16.c -lm
/tmp/cullme_gemm_bf16_bench "$@"
