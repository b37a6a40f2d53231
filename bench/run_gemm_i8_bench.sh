#!/bin/sh
# Builds and runs the int8 vs exact GEMM microbenchmark (bench/gemm_i8_bench.c), one thread, every int8
# kernel path this CPU has. Usage: bench/run_gemm_i8_bench.sh [M N K [min_seconds]]   (default 128 1536 576)
# Env: BENCH_TIMER=cpu (thread CPU time, for a shared machine), CC (default: Swift's clang).
set -e
cd "$(dirname "$0")/.."
if [ -z "$CC" ]; then if [ -x /opt/swift/usr/bin/clang ]; then CC=/opt/swift/usr/bin/clang; else CC=cc; fi; fi
$CC -O3 -fno-math-errno -o /tmp/cullme_gemm_i8_bench -I Sources/CULLME/include bench/gemm_i8_bench.c \
    Sources/CULLME/gemm.c Sources/CULLME/qpanels.c Sources/CULLME/gemm_i8.c Sources/CULLME/dequant.c Sources/CULLME/alloc.c -lm
/tmp/cullme_gemm_i8_bench "$@"
