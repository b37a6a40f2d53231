#!/bin/sh
# Builds and runs the GEMM benchmark (ours vs OpenBLAS forced to its Haswell/AVX2 kernels).
# Usage: bench/run_gemm_bench.sh [min_seconds_per_round [rounds]]
# CULLME_GEMM_PATH=avx2|generic forces our code path; OPENBLAS_CORETYPE may be overridden.
set -e
cd "$(dirname "$0")/.."
if [ -z "$CC" ]; then if [ -x /opt/swift/usr/bin/clang ]; then CC=/opt/swift/usr/bin/clang; else CC=cc; fi; fi
$CC -O3 -fno-math-errno -o /tmp/cullme_gemm_bench -I Sources/CULLME/include \
    bench/gemm_bench.c Sources/CULLME/gemm.c -lopenblas -lpthread -lm
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} /tmp/cullme_gemm_bench "$@"
