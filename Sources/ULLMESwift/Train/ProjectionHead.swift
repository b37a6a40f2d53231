import CULLME
import Glibc

// The projection head (docs/method.md §1), the L2 normalisation after it, and pooling backward.
// Reference (ullme/model/ullme.py): output_projection = Sequential(Linear(d, d), ReLU(), Linear(d, d)),
// both with bias and PyTorch's default Linear init (weight kaiming_uniform_(a=√5), i.e.
// U(−1/√d, 1/√d); bias U(−1/√d, 1/√d)); applied to the *unnormalised* pooled vector, then
// F.normalize(p=2, dim=-1, eps=1e-12). Trained fully (no LoRA).

/// proj(x) = W2 · relu(W1 · x + b1) + b2 on rows x [N, d]; weights row-major [out, in] as PyTorch.
public struct ProjectionHead: Sendable {
    public let dim: Int
    public var w1: [Float], b1: [Float], w2: [Float], b2: [Float]

    /// Given weights (e.g. loaded from a checkpoint): w [d, d], b [d].
    public init(dim: Int, w1: [Float], b1: [Float], w2: [Float], b2: [Float]) {
        precondition(w1.count == dim * dim && w2.count == dim * dim && b1.count == dim && b2.count == dim)
        self.dim = dim; self.w1 = w1; self.b1 = b1; self.w2 = w2; self.b2 = b2
    }

    /// Fresh weights with PyTorch's Linear init distribution, U(−1/√d, 1/√d) for weights and biases,
    /// drawn from `KeyedRandom(rawKey: seed)` (counters: w1, b1, w2, b2 consecutively). Not torch's stream.
    public init(dim: Int, seed: UInt64) {
        let rng = KeyedRandom(rawKey: seed), bound = 1 / Float(dim).squareRoot()
        var c: UInt64 = 0
        func draw(_ n: Int) -> [Float] {
            (0..<n).map { _ in defer { c += 1 }; return (rng.uniform(c) * 2 - 1) * bound }
        }
        let w1 = draw(dim * dim), b1 = draw(dim), w2 = draw(dim * dim), b2 = draw(dim)
        self.init(dim: dim, w1: w1, b1: b1, w2: w2, b2: b2)
    }

    /// What backward needs from forward.
    public struct Activations: Sendable {
        public var x: [Float]       // input [N, d]
        public var hidden: [Float]  // relu(W1 x + b1) [N, d]
        public var N: Int
    }

    /// Gradients of the four parameters (accumulated into by `backward`).
    public struct Gradients: Sendable {
        public var w1: [Float], b1: [Float], w2: [Float], b2: [Float]
        public init(dim: Int) {
            w1 = [Float](repeating: 0, count: dim * dim); w2 = w1
            b1 = [Float](repeating: 0, count: dim); b2 = b1
        }
    }

    /// out [N, d] = proj(x [N, d]).
    public func forward(_ x: [Float], N: Int) -> (out: [Float], activations: Activations) {
        precondition(x.count == N * dim)
        let d = dim
        var h = [Float](repeating: 0, count: N * d), out = [Float](repeating: 0, count: N * d)
        x.withUnsafeBufferPointer { xp in w1.withUnsafeBufferPointer { w in b1.withUnsafeBufferPointer { b in
            h.withUnsafeMutableBufferPointer { hp in
                linearForward(hp.baseAddress!, xp.baseAddress!, w.baseAddress!, bias: b.baseAddress!, T: N, K: d, N: d)
                for i in 0..<(N * d) where hp[i] < 0 { hp[i] = 0 }  // ReLU (relu(0) = 0)
            }
        } } }
        h.withUnsafeBufferPointer { hp in w2.withUnsafeBufferPointer { w in b2.withUnsafeBufferPointer { b in
            out.withUnsafeMutableBufferPointer { op in
                linearForward(op.baseAddress!, hp.baseAddress!, w.baseAddress!, bias: b.baseAddress!, T: N, K: d, N: d)
            }
        } } }
        return (out, Activations(x: x, hidden: h, N: N))
    }

    /// Accumulates parameter gradients into `grads` and returns dX [N, d] for dOut [N, d].
    public func backward(dOut: [Float], activations a: Activations, grads: inout Gradients) -> [Float] {
        let N = a.N, d = dim
        precondition(dOut.count == N * d)
        // Layer 2: dW2 += dOutᵀ h, db2 += Σ dOut, dH = dOut W2, then ReLU: dH = 0 where h <= 0.
        var dH = [Float](repeating: 0, count: N * d)
        linearBackward(dY: dOut, x: a.hidden, w: w2, N: N, In: d, Out: d, dW: &grads.w2, dB: &grads.b2, dX: &dH)
        for i in 0..<(N * d) where a.hidden[i] <= 0 { dH[i] = 0 }
        var dX = [Float](repeating: 0, count: N * d)
        linearBackward(dY: dH, x: a.x, w: w1, N: N, In: d, Out: d, dW: &grads.w1, dB: &grads.b1, dX: &dX)
        return dX
    }
}

/// Backward of y[N, Out] = x[N, In] · Wᵀ + b: dW[Out, In] += dYᵀ x, dB += Σ_rows dY, dX[N, In] += dY W.
func linearBackward(dY: [Float], x: [Float], w: [Float], N: Int, In: Int, Out: Int,
                    dW: inout [Float], dB: inout [Float], dX: inout [Float]) {
    guard N > 0 else { return }
    dY.withUnsafeBufferPointer { g in x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in
        dW.withUnsafeMutableBufferPointer { dw in
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(Out), Int32(In), Int32(N),
                        1, g.baseAddress!, Int32(Out), xp.baseAddress!, Int32(In), 1, dw.baseAddress!, Int32(In))
        }
        dX.withUnsafeMutableBufferPointer { dx in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(In), Int32(Out),
                        1, g.baseAddress!, Int32(Out), wp.baseAddress!, Int32(In), 1, dx.baseAddress!, Int32(In))
        }
    } } }
    for r in 0..<N { for o in 0..<Out { dB[o] += dY[r * Out + o] } }
}

// MARK: - L2 normalisation (F.normalize(p=2, dim=-1, eps))

/// y[N, D] = x / max(‖x‖₂, eps) per row.
public func l2NormalizeForward(_ x: [Float], N: Int, D: Int, eps: Float = 1e-12) -> [Float] {
    precondition(x.count == N * D)
    var y = x
    for i in 0..<N {
        var ss = 0.0
        for d in 0..<D { ss += Double(x[i * D + d]) * Double(x[i * D + d]) }
        let den = max(Float(ss.squareRoot()), eps)
        for d in 0..<D { y[i * D + d] = x[i * D + d] / den }
    }
    return y
}

/// dX[N, D] for dY[N, D]: (dY − y (y·dY)) / ‖x‖ where ‖x‖ >= eps, dY / eps where the norm was clamped.
public func l2NormalizeBackward(x: [Float], dY: [Float], N: Int, D: Int, eps: Float = 1e-12) -> [Float] {
    precondition(x.count == N * D && dY.count == N * D)
    var dX = [Float](repeating: 0, count: N * D)
    for i in 0..<N {
        var ss = 0.0
        for d in 0..<D { ss += Double(x[i * D + d]) * Double(x[i * D + d]) }
        let n = ss.squareRoot()
        if n >= Double(eps) {
            var dot = 0.0
            for d in 0..<D { dot += Double(x[i * D + d]) / n * Double(dY[i * D + d]) }
            for d in 0..<D { dX[i * D + d] = Float((Double(dY[i * D + d]) - Double(x[i * D + d]) / n * dot) / n) }
        } else {
            for d in 0..<D { dX[i * D + d] = dY[i * D + d] / eps }
        }
    }
    return dX
}

// MARK: - Pooling backward

extension Pooling {
    /// Backward of `pool`: dHidden[L, C] (overwritten) from dPooled[C] over L real tokens.
    /// mean: dPooled / L each; weightedmean: dPooled · (t+1) / Σ(t+1); cls: all to token 0;
    /// lasttoken: all to token L−1 (others 0).
    public func poolBackward(_ dPooled: UnsafePointer<Float>, L: Int, C: Int, into dHidden: UnsafeMutablePointer<Float>) {
        dHidden.update(repeating: 0, count: L * C)
        guard L > 0 else { return }
        switch self {
        case .cls:
            for c in 0..<C { dHidden[c] = dPooled[c] }
        case .lastToken:
            for c in 0..<C { dHidden[(L - 1) * C + c] = dPooled[c] }
        case .mean, .weightedMean:
            var total: Float = 0
            for t in 0..<L { total += self == .mean ? 1 : Float(t + 1) }
            for t in 0..<L {
                let w = (self == .mean ? 1 : Float(t + 1)) / total
                for c in 0..<C { dHidden[t * C + c] = w * dPooled[c] }
            }
        }
    }
}
