import CULLME
import Glibc

// Backward kernels, each the adjoint of a forward kernel in Tensor/Ops.swift or Model/Rope.swift and named after
// it (`rmsNormForward` -> `rmsNormBackward`); the rule is written once, at the top of Tensor/Ops.swift.
// Shapes in the names (T tokens, C channels); gradients accumulate (+=) where the name says so.

/// dX[T, K] += dY[T, N] · W[N, K] (the input gradient of a frozen linear layer W [N, K]); in bf16 by Wᵀ's
/// bf16 panels when W has them (training with base_precision bf16).
func linearBackwardInput(_ dX: UnsafeMutablePointer<Float>, _ dY: UnsafePointer<Float>, _ w: PackedMatrix, T: Int) {
    guard T > 0 else { return }
    let K = w.cols
    var tmp = [Float](repeating: 0, count: T * K)
    if let words = w.bf16Transposed {
        bf16Product(&tmp, dY, words, bias: nil, T: T, inner: w.rows, outputs: K)
        for i in 0..<(T * K) { dX[i] += tmp[i] }
        return
    }
    // Wᵀ's panels are made block by block from W (dense panels or stored rows) right before use: no
    // second copy of any weight is kept for training.
    storedProduct(&tmp, dY, w, bias: nil, T: T, outputs: K, K: w.rows, transposed: true)
    for i in 0..<(T * K) { dX[i] += tmp[i] }
}

/// dX[T, C] += RMSNorm backward of y = x · inv · w (w already including gemma's 1 + w).
func rmsNormBackward(_ dX: UnsafeMutablePointer<Float>, _ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                     _ w: UnsafePointer<Float>, T: Int, C: Int, eps: Float) {
    for t in 0..<T {
        let xr = x + t * C, gr = dY + t * C, dr = dX + t * C
        var ss: Float = 0
        for c in 0..<C { ss += xr[c] * xr[c] }
        let inv = 1 / (ss / Float(C) + eps).squareRoot()
        var dot: Float = 0
        for c in 0..<C { dot += gr[c] * w[c] * xr[c] }
        let k = dot * inv * inv * inv / Float(C)
        for c in 0..<C { dr[c] += gr[c] * w[c] * inv - xr[c] * k }
    }
}

/// dX[T, C] += LayerNorm backward (biased variance); the frozen weight and bias get no gradient.
func layerNormBackward(_ dX: UnsafeMutablePointer<Float>, _ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                       _ w: UnsafePointer<Float>, T: Int, C: Int, eps: Float) {
    for t in 0..<T {
        let xr = x + t * C, gr = dY + t * C, dr = dX + t * C
        var mean: Float = 0
        for c in 0..<C { mean += xr[c] }
        mean /= Float(C)
        var v: Float = 0
        for c in 0..<C { let d = xr[c] - mean; v += d * d }
        let inv = 1 / (v / Float(C) + eps).squareRoot()
        var sumG: Float = 0, sumGX: Float = 0
        for c in 0..<C {
            let g = gr[c] * w[c], xhat = (xr[c] - mean) * inv
            sumG += g; sumGX += g * xhat
        }
        for c in 0..<C {
            let g = gr[c] * w[c], xhat = (xr[c] - mean) * inv
            dr[c] += inv * (g - sumG / Float(C) - xhat * sumGX / Float(C))
        }
    }
}

/// In place: dY of a RoPE rotation → dX (the transpose rotation), per head, first `rotaryDim` dims.
func ropeBackward(_ d: UnsafeMutablePointer<Float>, rowStride: Int, T: Int, nHeads: Int, headDim: Int,
                  rotaryDim: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
    let half = rotaryDim / 2
    for t in 0..<T {
        let c = cos + t * half, s = sin + t * half
        for h in 0..<nHeads {
            let v = d + t * rowStride + h * headDim
            for i in 0..<half {
                let g1 = v[i], g2 = v[i + half]
                v[i] = g1 * c[i] + g2 * s[i]
                v[i + half] = g2 * c[i] - g1 * s[i]
            }
        }
    }
}

@inline(__always)
func geluTanhDerivative(_ x: Float) -> Float {
    let k: Float = 0.7978845608028654
    let t = tanhf(k * (x + 0.044715 * x * x * x))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
}

/// dGU[T, 2I] = backward of act = f(gate) · up for dAct[T, I] (SwiGLU: cullme_swiglu_backward).
func gatedActivationBackward(_ dGU: UnsafeMutablePointer<Float>, _ dAct: UnsafePointer<Float>, _ gu: UnsafePointer<Float>,
                             T: Int, I: Int, activation: Activation) {
    switch activation {
    case .silu:
        parallelRows(T, width: 2 * I) { r in
            cullme_swiglu_backward(dGU + r.lowerBound * 2 * I, dAct + r.lowerBound * I, gu + r.lowerBound * 2 * I, Int64(r.count), Int64(I))
        }
    case .geluTanh:
        for t in 0..<T {
            let g = gu + t * 2 * I, u = g + I, dg = dGU + t * 2 * I, du = dg + I, da = dAct + t * I
            for i in 0..<I { dg[i] = da[i] * u[i] * geluTanhDerivative(g[i]); du[i] = da[i] * geluTanh(g[i]) }
        }
    }
}

/// Backward of the heads of one kv group of one sequence (see attentionHeadForward). Reads q|k|v (after
/// RoPE) and the saved probabilities; writes the group's parts of dQKV[L, qkvDim] (k and v accumulate over
/// the group's heads), so different groups can run in parallel.
func attentionBackward(qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                       dQKV: UnsafeMutablePointer<Float>, scratch dS: UnsafeMutablePointer<Float>, kvGroup: Int,
                       L: Int, nH: Int, nKV: Int, hd: Int, group: Int, scale: Float, softcap: Float?) {
    let qDim = nH * hd, qkvDim = (nH + 2 * nKV) * hd
    for head in (kvGroup * group)..<((kvGroup + 1) * group) {
        let g = head / group
        let q = qkv + head * hd, k = qkv + qDim + g * hd, v = qkv + qDim + nKV * hd + g * hd
        let dq = dQKV + head * hd, dk = dQKV + qDim + g * hd, dv = dQKV + qDim + nKV * hd + g * hd
        let P = probs + head * L * L
        let dO = dOut + head * hd
        // dV += Pᵀ dO;  dP = dO Vᵀ
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L),
                    1, P, Int32(L), dO, Int32(qDim), 1, dv, Int32(qkvDim))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(hd),
                    1, dO, Int32(qDim), v, Int32(qkvDim), 0, dS, Int32(L))
        // Softmax backward: dZ = P ⊙ (dP − Σ_j dP ⊙ P); masked entries have P = 0.
        for i in 0..<L {
            let p = P + i * L, d = dS + i * L
            var dot: Float = 0
            for j in 0..<L { dot += p[j] * d[j] }
            for j in 0..<L { d[j] = p[j] * (d[j] - dot) }
        }
        if let cap = softcap {
            // s = tanh(z / cap) · cap with z = scale · q·k: ds/dz = 1 − tanh²; recompute z.
            var z = [Float](repeating: 0, count: L * L)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(hd),
                        scale, q, Int32(qkvDim), k, Int32(qkvDim), 0, &z, Int32(L))
            for i in 0..<(L * L) { let t = tanhf(z[i] / cap); dS[i] *= 1 - t * t }
        }
        // dQ += scale dZ K;  dK += scale dZᵀ Q
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L),
                    scale, dS, Int32(L), k, Int32(qkvDim), 1, dq, Int32(qkvDim))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L),
                    scale, dS, Int32(L), q, Int32(qkvDim), 1, dk, Int32(qkvDim))
    }
}
