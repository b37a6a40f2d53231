import CULLME
import Glibc

// Forward kernels on flat float buffers, shapes in the names (llm.c style): T tokens, C channels.
// FP32 throughout; matrix products go to OpenBLAS.

/// out[T, N] = x[T, K] · W[N, K]ᵀ (+ bias[N]). W is a row-major [out, in] weight as in PyTorch.
@inline(__always)
func linearForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                   bias: UnsafePointer<Float>?, T: Int, K: Int, N: Int) {
    guard T > 0 else { return }
    // Always sgemm (never sgemv for T == 1): one summation order per row whatever the batch holds.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(N), Int32(K),
                1, x, Int32(K), w, Int32(K), 0, out, Int32(N))
    if let bias {
        for t in 0..<T {
            let row = out + t * N
            for n in 0..<N { row[n] += bias[n] }
        }
    }
}

/// out[T, C] = x / rms(x) * weight, per row (Llama RMSNorm; `offset` 1 gives Gemma's (1 + weight)).
func rmsNormForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                    T: Int, C: Int, eps: Float, offset: Float = 0) {
    for t in 0..<T {
        let xr = x + t * C, yr = out + t * C
        var ss: Float = 0
        for c in 0..<C { ss += xr[c] * xr[c] }
        let inv = 1 / (ss / Float(C) + eps).squareRoot()
        for c in 0..<C { yr[c] = xr[c] * inv * (weight[c] + offset) }
    }
}

/// out[T, I] = silu(gu[T, 0..<I]) * gu[T, I..<2I]  (SwiGLU on a fused gate|up projection).
func swigluForward(_ out: UnsafeMutablePointer<Float>, _ gu: UnsafePointer<Float>, T: Int, I: Int) {
    for t in 0..<T {
        let g = gu + t * 2 * I, u = g + I, o = out + t * I
        for i in 0..<I {
            let a = g[i]
            o[i] = a / (1 + expf(-a)) * u[i]
        }
    }
}

/// In-place softmax of each row of x[R, C] over its first `valid` columns; columns past `valid` become 0.
@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int, valid: Int) {
    var m = -Float.infinity
    for c in 0..<valid { m = max(m, row[c]) }
    var s: Float = 0
    for c in 0..<valid { let e = expf(row[c] - m); row[c] = e; s += e }
    let inv = 1 / s
    for c in 0..<valid { row[c] *= inv }
    for c in valid..<count { row[c] = 0 }
}

/// Adds y[n] += x[n].
@inline(__always)
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] += x[i] }
}

/// Scales v[n] to unit L2 norm (a zero vector stays zero).
func l2Normalize(_ v: UnsafeMutablePointer<Float>, _ n: Int) {
    var ss: Float = 0
    for i in 0..<n { ss += v[i] * v[i] }
    let norm = ss.squareRoot()
    // torch.nn.functional.normalize divides by max(norm, 1e-12).
    let inv = 1 / max(norm, 1e-12)
    for i in 0..<n { v[i] *= inv }
}
