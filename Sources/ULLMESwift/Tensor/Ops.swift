import CULLME
import Glibc

// Forward kernels on flat float buffers, shapes in the names (llm.c style): T tokens, C channels.
// FP32 throughout; matrix products go to OpenBLAS.
// Where backward passes live: the adjoint of `<op>Forward` is `<op>Backward` in Train/BackwardOps.swift (the
// whole-layer backward in Train/DecoderBackward.swift), so inference code holds no training code and one file
// lists every gradient; a new forward kernel used in training gets its adjoint there, under that name.

/// out[T, N] = x[T, K] · W[N, K]ᵀ (+ bias[N]) for weights that change (trainable: LoRA, projection head),
/// through OpenBLAS. Static model weights use the packed, batch-invariant overload in PackedMatrix.swift.
func linearForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                   bias: UnsafePointer<Float>?, T: Int, K: Int, N: Int) {
    guard T > 0 else { return }
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

/// out[T, C] = (x - mean) / sqrt(var + eps) * weight + bias, per row (nn.LayerNorm, biased variance).
func layerNormForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                      _ bias: UnsafePointer<Float>, T: Int, C: Int, eps: Float) {
    for t in 0..<T {
        let xr = x + t * C, yr = out + t * C
        var mean: Float = 0
        for c in 0..<C { mean += xr[c] }
        mean /= Float(C)
        var v: Float = 0
        for c in 0..<C { let d = xr[c] - mean; v += d * d }
        let inv = 1 / (v / Float(C) + eps).squareRoot()
        for c in 0..<C { yr[c] = (xr[c] - mean) * inv * weight[c] + bias[c] }
    }
}

/// The tanh approximation of GELU (gelu_new / gelu_pytorch_tanh).
@inline(__always)
func geluTanh(_ x: Float) -> Float {
    0.5 * x * (1 + tanhf(0.7978845608028654 * (x + 0.044715 * x * x * x)))
}

/// out[n] = gelu_tanh(x[n]) (phi's fc1 → fc2 MLP).
func geluTanhForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { out[i] = geluTanh(x[i]) }
}

/// out[T, I] = act(gu[T, 0..<I]) * gu[T, I..<2I] on a fused gate|up projection (SwiGLU: cullme_swiglu_forward;
/// GeGLU).
func gatedActivationForward(_ out: UnsafeMutablePointer<Float>, _ gu: UnsafePointer<Float>, T: Int, I: Int,
                            activation: Activation) {
    switch activation {
    case .silu: cullme_swiglu_forward(out, gu, Int64(T), Int64(I))
    case .geluTanh:
        for t in 0..<T {
            let g = gu + t * 2 * I, u = g + I, o = out + t * I
            for i in 0..<I { o[i] = geluTanh(g[i]) * u[i] }
        }
    }
}

/// x = tanh(x / cap) * cap (gemma's soft-capping).
func softcapInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
    for i in 0..<count { x[i] = tanhf(x[i] / cap) * cap }
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
