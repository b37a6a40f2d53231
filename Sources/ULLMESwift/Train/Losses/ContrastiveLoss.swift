import Glibc

// L_CL (docs/method.md §4): pytorch-metric-learning's NTXentLoss / SupConLoss with LpDistance(normalize_embeddings
// =True) or CosineSimilarity, optionally restricted to the pairs a MultiSimilarityMiner(epsilon) keeps,
// as the reference's ContrastiveLoss builds them. Forward and analytic backward side by side.
//
// Reference behaviours reproduced (pytorch-metric-learning 2.9.0):
// - The distance re-normalises its input rows: xn = x / max(‖x‖₂, 1e-12) (F.normalize), even though
//   the projected reps are already unit vectors; the gradient goes through that normalisation.
// - LpDistance gives d_ij = ‖xn_i − xn_j‖₂ (cdist, gradient 0 where d = 0); losses use s_ij = −d_ij
//   ("a distance that is not inverted is negated into a similarity"). CosineSimilarity: s_ij = xn_i·xn_j.
// - Pairs from labels: positive (i, j) when label_i == label_j and i ≠ j, negative when labels differ,
//   both over the full N×N matrix (row i is the anchor; (i, j) and (j, i) are separate pairs).
// - Miner (no gradient): the reference builds MultiSimilarityMiner(epsilon=0.25) without a distance,
//   so it always mines on its default CosineSimilarity c_ij = xn_i·xn_j, whatever is_distance says.
//   Per anchor row i that has both positives and negatives (compared in float32 as the reference):
//   hard positive j if c_ij − ε < max_neg c_in;   hard negative j if c_ij + ε > min_pos c_ip.
//   The loss then uses only the mined pairs (and its own distance).
// - If every pair list has at most one element (e.g. the miner kept one positive and one negative
//   pair, or none), the loss is 0 with zero gradient (GenericPairLoss.compute_loss).
// - NTXent: for each positive pair (a, p), loss = −log(e^{s_ap/T} / (e^{s_ap/T} + Σ_{(a,n) neg pairs}
//   e^{s_an/T}) + tiny), tiny = FLT_MIN; mean over positive pairs (MeanReducer, zero losses included).
//   No positive or no negative pair at all → 0.
// - SupCon: per anchor row i, ℓ_i = −(1/P_i) Σ_{p∈pos_i} (s_ip/T − logsumexp_{j∈pos_i∪neg_i} s_ij/T);
//   rows without positives give 0; reduction = mean over rows with ℓ_i > 0 in float32
//   (AvgNonZeroReducer), 0 if none. No positive or no negative pair at all → 0.
// The reference multiplies by world_size (1 on one process); callers do that if they shard the batch.

/// Which contrastive loss (the reference's `loss_type`; raw values are its names).
public enum ContrastiveLossKind: String, Sendable, CaseIterable {
    case ntxent = "NTXentLoss", supcon = "SupConLoss"
}

/// Configuration of L_CL; defaults are the reference's training config (docs/method.md §7).
public struct ContrastiveLossConfig: Sendable {
    public var kind: ContrastiveLossKind = .ntxent
    /// Must be > 0.
    public var temperature: Double = 0.05
    /// true: s = −‖xn_i − xn_j‖ (LpDistance); false: cosine similarity.
    public var isDistance: Bool = true
    /// Restrict the loss to MultiSimilarityMiner pairs.
    public var useMiner: Bool = true
    public var minerEpsilon: Double = 0.25
    public init() {}
}

/// Loss value, its gradient with respect to the reps, and the pair counts the loss used.
public struct ContrastiveLossOutput: Sendable {
    public var loss: Float
    /// dLoss/dReps, [N, D].
    public var dReps: [Float]
    public var positivePairs: Int
    public var negativePairs: Int
}

/// L_CL over reps[N, D] (row-major) with labels[N]; see the file header for the exact semantics.
public func contrastiveLoss(reps: [Float], labels: [Int], D: Int, config: ContrastiveLossConfig) -> ContrastiveLossOutput {
    let r = contrastiveLossDouble(reps: reps.map { Double($0) }, labels: labels, D: D, config: config)
    return ContrastiveLossOutput(loss: Float(r.loss), dReps: r.grad.map { Float($0) },
                                 positivePairs: r.positivePairs, negativePairs: r.negativePairs)
}

// MARK: - Labels and order (the reference's ContrastiveLoss.__call__)

/// Labels of the B·(1+P+N) reps in the reference's loss order: all queries (their own labels), then all
/// positives grouped by query (positive k of query b has queryLabels[b]), then all negatives, labelled
/// max(queryLabels) + 1 + i for the i-th negative (query-major: negative k of query b is i = b·N + k).
public func contrastiveLabels(queryLabels: [Int], P: Int, N: Int) -> [Int] {
    precondition(!queryLabels.isEmpty && P >= 0 && N >= 0)
    let B = queryLabels.count, top = queryLabels.max()!
    var out = queryLabels
    out.reserveCapacity(B * (1 + P + N))
    for b in 0..<B { for _ in 0..<P { out.append(queryLabels[b]) } }
    for i in 0..<(B * N) { out.append(top + 1 + i) }
    return out
}

/// Row in the loss order of slot s of query b, where a query's slots are laid out as the trainer
/// forwards them (GradCache layout [B, 1+P+N]): s = 0 the query, 1...P its positives, P+1... its negatives.
@inline(__always)
public func contrastiveRow(query b: Int, slot s: Int, B: Int, P: Int, N: Int) -> Int {
    if s == 0 { return b }
    if s <= P { return B + b * P + (s - 1) }
    return B + B * P + b * N + (s - 1 - P)
}

/// Reorders rows [B·(1+P+N), D] from the GradCache layout (query-major slots) into the loss order.
public func groupedToLossOrder(_ x: [Float], B: Int, P: Int, N: Int, D: Int) -> [Float] {
    let S = 1 + P + N
    precondition(x.count == B * S * D)
    var out = [Float](repeating: 0, count: x.count)
    for b in 0..<B { for s in 0..<S {
        let dst = contrastiveRow(query: b, slot: s, B: B, P: P, N: N) * D, src = (b * S + s) * D
        for d in 0..<D { out[dst + d] = x[src + d] }
    } }
    return out
}

/// Inverse of `groupedToLossOrder` (e.g. the GradCache cache dLoss/dReps back to the forward layout).
public func lossOrderToGrouped(_ x: [Float], B: Int, P: Int, N: Int, D: Int) -> [Float] {
    let S = 1 + P + N
    precondition(x.count == B * S * D)
    var out = [Float](repeating: 0, count: x.count)
    for b in 0..<B { for s in 0..<S {
        let src = contrastiveRow(query: b, slot: s, B: B, P: P, N: N) * D, dst = (b * S + s) * D
        for d in 0..<D { out[dst + d] = x[src + d] }
    } }
    return out
}

// MARK: - Core (float64 internally; float32 only where the reference's float32 decides a branch)

struct ContrastiveLossDouble {
    var loss: Double
    var grad: [Double]
    var positivePairs: Int
    var negativePairs: Int
}

/// The same loss in float64 (used by `contrastiveLoss` and by finite-difference tests).
func contrastiveLossDouble(reps x: [Double], labels: [Int], D: Int, config: ContrastiveLossConfig) -> ContrastiveLossDouble {
    precondition(D > 0 && x.count % D == 0 && x.count / D == labels.count, "reps [N, D] and labels [N]")
    precondition(config.temperature > 0, "temperature must be > 0")
    let N = labels.count, T = config.temperature
    var out = ContrastiveLossDouble(loss: 0, grad: [Double](repeating: 0, count: N * D), positivePairs: 0, negativePairs: 0)
    if N == 0 { return out }

    // 1. Row normalisation (F.normalize, eps 1e-12).
    let normEps = 1e-12
    var xn = [Double](repeating: 0, count: N * D), norms = [Double](repeating: 0, count: N)
    for i in 0..<N {
        var ss = 0.0
        for d in 0..<D { ss += x[i * D + d] * x[i * D + d] }
        norms[i] = ss.squareRoot()
        let den = max(norms[i], normEps)
        for d in 0..<D { xn[i * D + d] = x[i * D + d] / den }
    }

    // 2. Similarity matrix s (distance: s = −d).
    var S = [Double](repeating: 0, count: N * N)
    for i in 0..<N { for j in 0..<N {
        var acc = 0.0
        if config.isDistance {
            for d in 0..<D { let t = xn[i * D + d] - xn[j * D + d]; acc += t * t }
            S[i * N + j] = -acc.squareRoot()
        } else {
            for d in 0..<D { acc += xn[i * D + d] * xn[j * D + d] }
            S[i * N + j] = acc
        }
    } }

    // 3. Pairs (all, or mined).
    var pos: [(Int, Int)] = [], neg: [(Int, Int)] = []
    if config.useMiner {
        var C = S  // the miner's own distance: cosine similarity
        if config.isDistance {
            for i in 0..<N { for j in 0..<N {
                var acc = 0.0
                for d in 0..<D { acc += xn[i * D + d] * xn[j * D + d] }
                C[i * N + j] = acc
            } }
        }
        multiSimilarityMine(cosine: C, labels: labels, epsilon: config.minerEpsilon, pos: &pos, neg: &neg)
    } else {
        for i in 0..<N { for j in 0..<N where i != j && labels[i] == labels[j] { pos.append((i, j)) } }
        for i in 0..<N { for j in 0..<N where labels[i] != labels[j] { neg.append((i, j)) } }
    }
    out.positivePairs = pos.count
    out.negativePairs = neg.count
    if pos.count <= 1 && neg.count <= 1 { return out }
    if pos.isEmpty || neg.isEmpty { return out }

    // 4. Loss and dLoss/ds.
    var dS = [Double](repeating: 0, count: N * N)
    switch config.kind {
    case .ntxent: out.loss = ntxentForwardBackward(S: S, N: N, T: T, pos: pos, neg: neg, dS: &dS)
    case .supcon: out.loss = supconForwardBackward(S: S, N: N, T: T, pos: pos, neg: neg, dS: &dS)
    }

    // 5. Back through the similarity, then through the normalisation.
    var dxn = [Double](repeating: 0, count: N * D)
    for i in 0..<N { for j in 0..<N {
        let g = dS[i * N + j]
        if g == 0 { continue }
        if config.isDistance {
            let dist = -S[i * N + j]
            if dist == 0 { continue }  // cdist backward: 0 where the distance is 0
            let c = -g / dist
            for d in 0..<D {
                let v = c * (xn[i * D + d] - xn[j * D + d])
                dxn[i * D + d] += v
                dxn[j * D + d] -= v
            }
        } else {
            for d in 0..<D {
                dxn[i * D + d] += g * xn[j * D + d]
                dxn[j * D + d] += g * xn[i * D + d]
            }
        }
    } }
    for i in 0..<N {
        let gi = l2NormalizeBackwardRow(xn: xn, dxn: dxn, row: i, D: D, norm: norms[i], eps: normEps)
        for d in 0..<D { out.grad[i * D + d] = gi[d] }
    }
    return out
}

/// F.normalize backward for one row: y = x / max(‖x‖, eps).
@inline(__always)
private func l2NormalizeBackwardRow(xn: [Double], dxn: [Double], row i: Int, D: Int, norm: Double, eps: Double) -> [Double] {
    var g = [Double](repeating: 0, count: D)
    if norm >= eps {
        var dot = 0.0
        for d in 0..<D { dot += xn[i * D + d] * dxn[i * D + d] }
        for d in 0..<D { g[d] = (dxn[i * D + d] - xn[i * D + d] * dot) / norm }
    } else {
        for d in 0..<D { g[d] = dxn[i * D + d] / eps }
    }
    return g
}

/// MultiSimilarityMiner(epsilon) with its default CosineSimilarity (an inverted distance); see the header.
private func multiSimilarityMine(cosine C: [Double], labels: [Int], epsilon: Double,
                                 pos: inout [(Int, Int)], neg: inout [(Int, Int)]) {
    let N = labels.count
    let eps = Float(epsilon)
    // The reference sorts the similarity matrix in float32.
    @inline(__always) func m(_ i: Int, _ j: Int) -> Float { Float(C[i * N + j]) }
    for i in 0..<N {
        var hasPos = false, hasNeg = false
        var posMin = Float.greatestFiniteMagnitude, negMax = -Float.greatestFiniteMagnitude
        for j in 0..<N where j != i {
            let v = m(i, j)
            if labels[j] == labels[i] { hasPos = true; posMin = min(posMin, v) }
            else { hasNeg = true; negMax = max(negMax, v) }
        }
        guard hasPos && hasNeg else { continue }
        for j in 0..<N where j != i && labels[j] == labels[i] && m(i, j) - eps < negMax { pos.append((i, j)) }
        for j in 0..<N where labels[j] != labels[i] && m(i, j) + eps > posMin { neg.append((i, j)) }
    }
}

private let floatTiny = Double(Float.leastNormalMagnitude)  // torch.finfo(float32).tiny

/// NTXent: mean over positive pairs of −log(softmax of the positive among it and its anchor's negatives).
private func ntxentForwardBackward(S: [Double], N: Int, T: Double, pos: [(Int, Int)], neg: [(Int, Int)],
                                   dS: inout [Double]) -> Double {
    var negOf = [[Int]](repeating: [], count: N)
    for (a, n) in neg { negOf[a].append(n) }
    let K = Double(pos.count)
    var total = 0.0
    for (a, p) in pos {
        let lp = S[a * N + p] / T
        var m = lp
        for n in negOf[a] { m = max(m, S[a * N + n] / T) }
        let num = exp(lp - m)
        var den = num
        for n in negOf[a] { den += exp(S[a * N + n] / T - m) }
        let q = num / den
        total += -log(q + floatTiny)
        // d(−log(q + tiny))/dq = −1/(q + tiny); dq/dlp = q(1 − q); dq/dln = −q · e^{ln−m}/den
        let g = 1 / (K * T) / (q + floatTiny)
        dS[a * N + p] += -g * q * (1 - q)
        for n in negOf[a] { dS[a * N + n] += g * q * exp(S[a * N + n] / T - m) / den }
    }
    return total / K
}

/// SupCon with AvgNonZeroReducer: mean over anchor rows whose float32 loss is > 0.
private func supconForwardBackward(S: [Double], N: Int, T: Double, pos: [(Int, Int)], neg: [(Int, Int)],
                                   dS: inout [Double]) -> Double {
    var isPos = [Bool](repeating: false, count: N * N), isNeg = [Bool](repeating: false, count: N * N)
    for (a, p) in pos { isPos[a * N + p] = true }
    for (a, n) in neg { isNeg[a * N + n] = true }
    var rowLoss = [Double](repeating: 0, count: N), rowLSE = [Double](repeating: 0, count: N)
    var rowP = [Int](repeating: 0, count: N)
    for i in 0..<N {
        var m = -Double.infinity, P = 0
        for j in 0..<N where isPos[i * N + j] || isNeg[i * N + j] {
            m = max(m, S[i * N + j] / T)
            if isPos[i * N + j] { P += 1 }
        }
        rowP[i] = P
        if P == 0 { continue }
        var sum = 0.0
        for j in 0..<N where isPos[i * N + j] || isNeg[i * N + j] { sum += exp(S[i * N + j] / T - m) }
        let lse = m + log(sum)
        rowLSE[i] = lse
        var acc = 0.0
        for j in 0..<N where isPos[i * N + j] { acc += S[i * N + j] / T - lse }
        rowLoss[i] = -acc / Double(P)
    }
    let kept = (0..<N).filter { rowP[$0] > 0 && Float(rowLoss[$0]) > 0 }
    if kept.isEmpty { return 0 }
    let R = Double(kept.count)
    var total = 0.0
    for i in kept {
        total += rowLoss[i]
        let P = Double(rowP[i])
        for j in 0..<N {
            var g = 0.0
            if isPos[i * N + j] { g -= 1 / P }
            if isPos[i * N + j] || isNeg[i * N + j] { g += exp(S[i * N + j] / T - rowLSE[i]) }
            if g != 0 { dS[i * N + j] += g / (R * T) }
        }
    }
    return total / R
}
