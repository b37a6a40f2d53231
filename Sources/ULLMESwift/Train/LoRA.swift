import CULLME
import Glibc

// LoRA adapter for one frozen linear layer W [out, in] (docs/method.md §2), as PEFT's lora.Linear:
//   y = W x (+ b)  +  scale · B · A · dropout(x),   scale = alpha / r
//   A [r, in]  kaiming_uniform_(a=√5) → U(−1/√in, 1/√in);   B [out, r] zeros.
// Dropout (probability p) is applied to the LoRA input only, with inverted scaling: mask values are 0 or
// 1/(1 − p). Masks come from `KeyedRandom` keyed by (seed, step, example, layer, site) and counted by
// token × in + feature, so an example gets the same mask however the batch is chunked (see Random.swift).
// Shapes per call: one example's T tokens, x [T, in], y [T, out].

public struct LoRAAdapter: Sendable {
    public let inFeatures: Int, outFeatures: Int, rank: Int
    public let alpha: Float
    public let dropout: Float
    /// A [rank, in], B [out, rank], row-major.
    public var a: [Float], b: [Float]
    public var scale: Float { alpha / Float(rank) }

    /// Given weights (e.g. a loaded adapter).
    public init(inFeatures: Int, outFeatures: Int, rank: Int = 16, alpha: Float = 32, dropout: Float = 0.1,
                a: [Float], b: [Float]) {
        precondition(a.count == rank * inFeatures && b.count == outFeatures * rank && dropout >= 0 && dropout < 1)
        self.inFeatures = inFeatures; self.outFeatures = outFeatures; self.rank = rank
        self.alpha = alpha; self.dropout = dropout; self.a = a; self.b = b
    }

    /// Fresh adapter: A ~ U(−1/√in, 1/√in) from `init` (counter = A's flat index), B = 0.
    public init(inFeatures: Int, outFeatures: Int, rank: Int = 16, alpha: Float = 32, dropout: Float = 0.1,
                init rng: KeyedRandom) {
        let bound = 1 / Float(inFeatures).squareRoot()
        let a = (0..<(rank * inFeatures)).map { (rng.uniform(UInt64($0)) * 2 - 1) * bound }
        self.init(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank, alpha: alpha, dropout: dropout,
                  a: a, b: [Float](repeating: 0, count: outFeatures * rank))
    }

    /// The dropout mask [T, in] for tokens tokenOffset ..< tokenOffset+T of one example: 0 or 1/(1−p).
    /// nil when p = 0 (or in eval mode, which callers express by not asking for a mask).
    public func dropoutMask(_ rng: KeyedRandom, T: Int, tokenOffset: Int = 0) -> [Float]? {
        guard dropout > 0 else { return nil }
        let keep = 1 / (1 - dropout), n = inFeatures
        // Element (t, i) takes counter (tokenOffset + t) · n + i: one contiguous run of counters.
        return [Float](unsafeUninitializedCapacity: T * n) { m, count in
            cullme_dropout_mask(rng.key, UInt64(tokenOffset * n), Int64(T * n), dropout, keep, m.baseAddress)
            count = T * n
        }
    }

    /// What backward needs: the (dropped-out) LoRA input and its rank-r projection.
    public struct Activations: Sendable {
        public var xd: [Float]  // dropout(x) [T, in]
        public var h: [Float]   // xd · Aᵀ [T, r]
        public var T: Int
    }

    /// y[T, out] += scale · (dropout(x) Aᵀ) Bᵀ for x[T, in]; `mask` [T, in] from `dropoutMask` or nil.
    public func forward(x: [Float], T: Int, mask: [Float]?, y: inout [Float]) -> Activations {
        precondition(x.count == T * inFeatures && y.count == T * outFeatures && (mask == nil || mask!.count == x.count))
        var xd = x
        if let mask { for k in 0..<xd.count { xd[k] *= mask[k] } }
        var h = [Float](repeating: 0, count: T * rank)
        guard T > 0 else { return Activations(xd: xd, h: h, T: T) }
        let r = Int32(rank), i = Int32(inFeatures), o = Int32(outFeatures)
        xd.withUnsafeBufferPointer { xp in a.withUnsafeBufferPointer { ap in h.withUnsafeMutableBufferPointer { hp in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), r, i, 1, xp.baseAddress!, i, ap.baseAddress!, i, 0, hp.baseAddress!, r)
        } } }
        h.withUnsafeBufferPointer { hp in b.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), o, r, scale, hp.baseAddress!, r, bp.baseAddress!, r, 1, yp.baseAddress!, o)
        } } }
        return Activations(xd: xd, h: h, T: T)
    }

    /// Backward for dY[T, out]: dA[r, in] += dhᵀ xd, dB[out, r] += scale · dYᵀ h, dX[T, in] += (dh A) ⊙ mask,
    /// with dh = scale · dY B. (dX is the LoRA path's contribution only; the frozen W adds dY W.)
    public func backward(dY: [Float], activations act: Activations, mask: [Float]?,
                         dA: inout [Float], dB: inout [Float], dX: inout [Float]) {
        let T = act.T
        precondition(dY.count == T * outFeatures && dA.count == a.count && dB.count == b.count && dX.count == T * inFeatures)
        guard T > 0 else { return }
        let r = Int32(rank), i = Int32(inFeatures), o = Int32(outFeatures)
        var dh = [Float](repeating: 0, count: T * rank)
        dY.withUnsafeBufferPointer { g in
            b.withUnsafeBufferPointer { bp in dh.withUnsafeMutableBufferPointer { dhp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), r, o, scale, g.baseAddress!, o, bp.baseAddress!, r, 0, dhp.baseAddress!, r)
            } }
            act.h.withUnsafeBufferPointer { hp in dB.withUnsafeMutableBufferPointer { dbp in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o, r, Int32(T), scale, g.baseAddress!, o, hp.baseAddress!, r, 1, dbp.baseAddress!, r)
            } }
        }
        dh.withUnsafeBufferPointer { dhp in
            act.xd.withUnsafeBufferPointer { xp in dA.withUnsafeMutableBufferPointer { dap in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, i, Int32(T), 1, dhp.baseAddress!, r, xp.baseAddress!, i, 1, dap.baseAddress!, i)
            } }
            var dxd = [Float](repeating: 0, count: T * inFeatures)
            a.withUnsafeBufferPointer { ap in dxd.withUnsafeMutableBufferPointer { dxp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), i, r, 1, dhp.baseAddress!, r, ap.baseAddress!, i, 0, dxp.baseAddress!, i)
            } }
            if let mask { for k in 0..<dxd.count { dX[k] += dxd[k] * mask[k] } }
            else { for k in 0..<dxd.count { dX[k] += dxd[k] } }
        }
    }
}
