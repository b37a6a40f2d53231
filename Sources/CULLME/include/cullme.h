// CULLME: the C side of libullme. OpenBLAS (through cblas.h) and the inner loops that must be
// fast even in debug builds of the Swift engine (compiled with -O3 by Package.swift).
#ifndef CULLME_H
#define CULLME_H

#include <stddef.h>
#include <stdint.h>
#include <cblas.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- Worker threads (pool.c) -----------------------------------------------------------------
typedef void (*cullme_task_fn)(void *ctx, int64_t index);
// Runs fn(ctx, i) for every i in [0, n) on the calling thread and up to threads - 1 persistent workers
// (started on first need), each task once, and returns when all are done. Tasks must not depend on which
// thread runs them. One region runs at a time; a call made while another runs (from another thread or
// from inside a task) runs its tasks inline, in order.
void cullme_pool_run(int64_t n, int threads, cullme_task_fn fn, void *ctx);

// ---- Installed files (image_path.c) -----------------------------------------------------------
// Writes the absolute path of the shared object or executable that holds `addr` into buf (cap bytes,
// NUL-terminated). 0 on success, -1 when it cannot be found or does not fit.
int cullme_image_path(const void *addr, char *buf, size_t cap);

// ---- Weight memory (alloc.c) ----------------------------------------------------------------
// `bytes` (at least 1) 64-byte aligned, free with free(); 2 MB and larger: 2 MB aligned and offered to
// transparent huge pages. NULL when out of memory.
void *cullme_alloc(size_t bytes);

// ---- Dequantisation (dequant.c) -------------------------------------------------------------
// Each function converts stored elements to float32 exactly as ggml's reference
// dequantize_row_* (ggml-quants.c) and gguf-py's gguf.quants.dequantize do, bit for bit.
// `src` needs no alignment. The caller guarantees that `src` holds the whole input
// (n elements, or n_blocks blocks of the type's size) and `dst` has room for every output element
// (n, or n_blocks * block size). Block sizes / bytes per block:
//   Q4_0 32/18, Q4_1 32/20, Q5_0 32/22, Q5_1 32/24, Q8_0 32/34, Q4_K 256/144, Q5_K 256/176, Q6_K 256/210.

/// IEEE 754 binary16 -> binary32 (exact; subnormals, infinities and NaN payloads preserved).
float ullme_fp16_to_fp32(uint16_t h);

void ullme_dequant_f16(const void *src, float *dst, int64_t n);
void ullme_dequant_bf16(const void *src, float *dst, int64_t n);
void ullme_dequant_q4_0(const void *src, float *dst, int64_t n_blocks);
void ullme_dequant_q4_1(const void *src, float *dst, int64_t n_blocks);
void ullme_dequant_q5_0(const void *src, float *dst, int64_t n_blocks);
void ullme_dequant_q5_1(const void *src, float *dst, int64_t n_blocks);
void ullme_dequant_q8_0(const void *src, float *dst, int64_t n_blocks);
void ullme_dequant_q4_K(const void *src, float *dst, int64_t n_blocks);
void ullme_dequant_q5_K(const void *src, float *dst, int64_t n_blocks);
void ullme_dequant_q6_K(const void *src, float *dst, int64_t n_blocks);

#ifdef __cplusplus
}
#endif
#endif // CULLME_H
