#!/bin/sh
# Builds and runs the GEMM benchmark: cullme_gemm vs OpenBLAS cblas_sgemm (forced to its
# Haswell/AVX2 kernels, as in production) for the SmolLM2-135M linear layers, 1 and 2 threads.
# Usage: bench/run_gemm_bench.sh [min_seconds_per_round [rounds [M [N]]]]
# Env: CULLME_GEMM_PATH=avx512|avx2|generic forces our code path; BENCH_TIMER=cpu measures CPU
# time instead of wall time (use on a machine shared with other jobs); BENCH_1T=1 skips 2 threads;
# OPENBLAS_CORETYPE overrides Haswell; CC picks the compiler (default: Swift's clang).
set -e
cd "$(dirname "$0")/.."
if [ -z "$CC" ]; then if [ -x /opt/swift/usr/bin/clang ]; then CC=/opt/swift/usr/bin/clang; else CC=cc; fi; fi
$CC -O3 -fno-math-errno -o /tmp/cullme_gemm_bench -I Sources/CULLME/include \
    bench/gemm_bench.c Sources/CULLME/gemm.c -lopenblas -lpthread -lm
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} /tmp/cullme_gemm_bench "$@"
