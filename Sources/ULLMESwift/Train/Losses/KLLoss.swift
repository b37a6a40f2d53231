import Glibc

// L_KL, GRL (docs/method.md §4): make the embedding's ranking of a query's candidates agree with the LLM's
// generative judgement.
//
// Reference (ullme/trainer/loss.py KLLoss, gradcache_trainer.py forward_backward):
// - dual[b, k] = torch.cosine_similarity(projected_rep(query b), projected_rep(candidate k of b)) over
//   the K = P + N candidates in the trainer's slot order (P positives, then N negatives).
// - gen[b, k] = the token-mean log-prob of the generation example (query b, candidate k)
//   (get_batch_logps' second output, always the mean, whatever the preference loss uses).
// - loss = KLDivLoss(reduction="batchmean")(log_softmax(dual / T), softmax(gen).detach())
//        = Σ_{b,k} t_bk (log t_bk − log_softmax(dual_b / T)_k) / B,   t = softmax(gen) (no temperature).
// - T is the trainer's `temperature`, i.e. the contrastive temperature (0.05 in the reference config):
//   GradCacheTrainer builds KLLoss(temperature=temperature); KLLoss's own default 0.1 is never used.
// - A NaN loss becomes 0 (and then has no gradient).
// - In the reference each GradCache chunk adds its chunk's KL (batch-mean over the chunk) unweighted;
//   docs/method.md §5 weights it by chunk_size / batch_size — the caller applies that weight to dDual.

/// KL loss and its gradient with respect to the dual scores.
public struct KLLossOutput: Sendable {
    public var loss: Float
    /// dLoss/dDual, [B, K].
    public var dDual: [Float]
}

/// GRL's KL term over dual[B, K] and gen[B, K] (row-major) with temperature T (> 0).
public func klLoss(dual: [Float], gen: [Float], B: Int, K: Int, temperature T: Double) -> KLLossOutput {
    precondition(dual.count == B * K && gen.count == B * K && B > 0 && K > 0 && T > 0)
    var total = 0.0
    var g = [Double](repeating: 0, count: B * K)
    for b in 0..<B {
        let d = (0..<K).map { Double(dual[b * K + $0]) / T }, s = (0..<K).map { Double(gen[b * K + $0]) }
        let md = d.max()!, ms = s.max()!
        let lseD = md + log(d.reduce(0.0) { $0 + exp($1 - md) })
        let lseS = ms + log(s.reduce(0.0) { $0 + exp($1 - ms) })
        var tSum = 0.0
        for k in 0..<K {
            let logT = s[k] - lseS, t = exp(logT)
            let logP = d[k] - lseD
            total += (t > 0 ? t * logT : 0) - t * logP  // xlogy(t, t) − t · input
            tSum += t
            g[b * K + k] = -t
        }
        // d/d dual_bk of −Σ_j t_j log_softmax(d)_j = (softmax(d)_k Σ_j t_j − t_k) / T; then / B.
        for k in 0..<K { g[b * K + k] = (g[b * K + k] + exp(d[k] - lseD) * tSum) / (T * Double(B)) }
    }
    total /= Double(B)
    if total.isNaN || g.contains(where: { $0.isNaN }) {
        return KLLossOutput(loss: 0, dDual: [Float](repeating: 0, count: B * K))
    }
    return KLLossOutput(loss: Float(total), dDual: g.map { Float($0) })
}

/// torch.cosine_similarity(query, candidate) for every candidate of every query, from reps in the
/// trainer's layout [B, 1+K, D] (slot 0 the query, 1...K its candidates) → dual [B, K].
/// Each vector is divided by max(‖v‖, 1e-8) as torch does.
public func dualScoresForward(reps: [Float], B: Int, K: Int, D: Int) -> [Float] {
    precondition(reps.count == B * (1 + K) * D)
    var out = [Float](repeating: 0, count: B * K)
    reps.withUnsafeBufferPointer { r in
        for b in 0..<B {
            let q = r.baseAddress! + b * (1 + K) * D
            let nq = max(norm2(q, D), 1e-8)
            for k in 0..<K {
                let c = q + (1 + k) * D
                let nc = max(norm2(c, D), 1e-8)
                var dot = 0.0
                for i in 0..<D { dot += Double(q[i]) * Double(c[i]) }
                out[b * K + k] = Float(dot / (nq * nc))
            }
        }
    }
    return out
}

/// Backward of `dualScoresForward`: dDual [B, K] → dReps [B, 1+K, D] (the normalisation's Jacobian
/// included, as torch's autograd of cosine_similarity).
public func dualScoresBackward(reps: [Float], dDual: [Float], B: Int, K: Int, D: Int) -> [Float] {
    precondition(reps.count == B * (1 + K) * D && dDual.count == B * K)
    var dReps = [Double](repeating: 0, count: reps.count)
    reps.withUnsafeBufferPointer { r in
        for b in 0..<B {
            let base = b * (1 + K) * D
            let q = r.baseAddress! + base
            let nq = max(norm2(q, D), 1e-8)
            for k in 0..<K {
                let g = Double(dDual[b * K + k])
                if g == 0 { continue }
                let c = q + (1 + k) * D
                let nc = max(norm2(c, D), 1e-8)
                var dot = 0.0
                for i in 0..<D { dot += Double(q[i]) * Double(c[i]) }
                let cos = dot / (nq * nc)
                // d cos / d q = (ĉ − cos q̂) / ‖q‖,  d cos / d c = (q̂ − cos ĉ) / ‖c‖
                for i in 0..<D {
                    let qh = Double(q[i]) / nq, ch = Double(c[i]) / nc
                    dReps[base + i] += g * (ch - cos * qh) / nq
                    dReps[base + (1 + k) * D + i] += g * (qh - cos * ch) / nc
                }
            }
        }
    }
    return dReps.map { Float($0) }
}

@inline(__always)
private func norm2(_ v: UnsafePointer<Float>, _ D: Int) -> Double {
    var s = 0.0
    for i in 0..<D { s += Double(v[i]) * Double(v[i]) }
    return s.squareRoot()
}
