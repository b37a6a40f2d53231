/// One GRL training step with GradCache (docs/method.md §4–§5), on tokenised examples:
///  1. every chunk is encoded without a tape: projected reps of all queries and candidates;
///  2. L_CL on the whole batch and its gradient w.r.t. each rep (the cache);
///  3. every chunk again: generation examples forward/backward (L_gen) giving the token-mean log-probs
///     that L_KL targets; L_KL on the chunk's dual scores; then the embedding backward of
///     cache + dL_KL/dreps. Gen and KL are batch means, so each chunk's mean is weighted chunk/batch.
/// Dropout masks are keyed by (seed, step, sequence, layer, target, pass), so both passes of a chunk
/// see the same masks and the gradients do not depend on the chunk size.

/// What a step optimises (the reference's use_gen / use_kl / loss_type / gen_loss_type switches).
public struct GRLLossConfig: Sendable {
    public var contrastive = ContrastiveLossConfig()
    public var useCL = true
    public var useGen = false
    public var gen = PreferenceLossConfig(kind: .sft)
    public var useKL = false
    /// Examples per GradCache chunk (the reference's gc_chunk_size); nil: the whole batch in one pass.
    public var chunkSize: Int? = 1
    /// Add each chunk's gen/KL mean unweighted, as the reference does (gradients then grow with the
    /// number of chunks); off by default (docs/method.md §5).
    public var referenceChunkWeighting = false
    public var weightCL: Float = 1, weightGen: Float = 1, weightKL: Float = 1
    public init() {}

    /// GRL, the paper's method: contrastive + DPO (sigmoid) generation loss + KL.
    public static var grl: GRLLossConfig {
        var c = GRLLossConfig()
        c.useGen = true; c.gen.kind = .sigmoid; c.useKL = true
        return c
    }
}

/// One tokenised training example: the embedding inputs and the generation examples of its candidates.
public struct GRLTokenizedExample: Sendable {
    /// Slot 0 the query, 1...P positives, P+1...P+N negatives (embedding inputs, already formatted).
    public var sequences: [[Int32]]
    /// One generation example per candidate (P positives then N negatives), with labels (-100 = no loss).
    public var generation: [[Int32]]
    public var generationLabels: [[Int32]]
    /// The example's index in the data order (its dropout key) and its contrastive label.
    public var index: Int
    public var label: Int
    public init(sequences: [[Int32]], generation: [[Int32]], generationLabels: [[Int32]], index: Int, label: Int) {
        self.sequences = sequences; self.generation = generation; self.generationLabels = generationLabels
        self.index = index; self.label = label
    }
}

public struct GRLStepLosses: Sendable, Equatable {
    public var total: Float = 0, contrastive: Float = 0, generative: Float = 0, kl: Float = 0
    public var tokens = 0
}

extension TrainingModel {
    /// Dropout key of slot `slot` of example `index` (64 slots per example: embedding 0..<32, generation 32..<64).
    static func sequenceKey(_ index: Int, _ slot: Int) -> Int { index * 64 + slot }

    /// `world`: data-parallel ranks (DataParallel.swift). Each rank passes the same global batch, encodes and
    /// back-propagates only its slice, all-gathers the reps for L_CL and all-reduces losses and gradients,
    /// so every rank returns the global losses and holds the global batch's gradient.
    public func grlStep(_ batch: [GRLTokenizedExample], P: Int, N: Int, config: GRLLossConfig,
                        grads: inout Gradients, world: DataParallel? = nil) throws -> GRLStepLosses {
        let B = batch.count, S = 1 + P + N, K = P + N, D = head.dim
        guard B > 0 else { throw ULLMEError.argument("empty batch") }
        guard P >= 1, N >= 0, S <= 32 else { throw ULLMEError.argument("need 1 <= P and P + N < 32 (got P \(P), N \(N))") }
        for ex in batch {
            guard ex.sequences.count == S else { throw ULLMEError.argument("example \(ex.index) has \(ex.sequences.count) sequences, expected \(S)") }
            if config.useGen || config.useKL {
                guard ex.generation.count == K, ex.generationLabels.count == K else {
                    throw ULLMEError.argument("example \(ex.index) needs \(K) generation examples")
                }
            }
        }
        if config.useKL, !config.useGen || config.gen.kind == .sft {
            // GRL's KL needs a preference generation loss (docs/method.md §4), as the reference asserts.
            throw ULLMEError.argument("use_kl requires use_gen with a preference gen_loss_type (not sft)")
        }
        let chunkSize = max(1, config.chunkSize ?? B)
        let mine = world?.slice(B) ?? 0..<B  // this rank's examples (all of them when alone)
        let chunks = stride(from: mine.lowerBound, to: mine.upperBound, by: chunkSize).map { $0..<min($0 + chunkSize, mine.upperBound) }
        var losses = GRLStepLosses()

        // Pass 1: reps of every chunk, no tape. Layout [B, S, D] (query-major slots).
        var reps = [Float](repeating: 0, count: B * S * D)
        for chunk in chunks {
            let (seqs, keys) = embeddingInputs(batch, chunk)
            let projected = try encode(seqs, examples: keys).projected
            reps.replaceSubrange(chunk.lowerBound * S * D..<chunk.upperBound * S * D, with: projected)
        }
        if let world {  // every rank's slice of reps, so L_CL sees the whole global batch
            try world.allgather(&reps, counts: (0..<world.size).map { DataParallel.slice(B, rank: $0, size: world.size).count * S * D })
        }

        // L_CL on the full batch → the cache dL/dreps.
        var cache = [Float](repeating: 0, count: B * S * D)
        if config.useCL {
            let labels = contrastiveLabels(queryLabels: batch.map(\.label), P: P, N: N)
            let out = contrastiveLoss(reps: groupedToLossOrder(reps, B: B, P: P, N: N, D: D), labels: labels, D: D,
                                      config: config.contrastive)
            // A non-finite embedding makes the loss undefined: say so (NaN) rather than the 0 the miner would
            // give (its comparisons with NaN are false, so it drops every pair), for nonfinite_policy to act on.
            losses.contrastive = allFinite([reps]) ? out.loss : .nan
            cache = lossOrderToGrouped(out.dReps, B: B, P: P, N: N, D: D).map { $0 * config.weightCL }
        }

        // Pass 2: per chunk, generation then embedding backward.
        for chunk in chunks {
            let Bc = chunk.count
            let weight = config.referenceChunkWeighting ? Float(1) : Float(Bc) / Float(B)
            var dReps = Array(cache[chunk.lowerBound * S * D..<chunk.upperBound * S * D])
            if config.useGen {
                let (genMeans, genLoss) = try generationBackward(batch, chunk, P: P, N: N, config: config,
                                                                 scale: weight * config.weightGen, grads: &grads)
                losses.generative += genLoss * weight
                if config.useKL {
                    let chunkReps = Array(reps[chunk.lowerBound * S * D..<chunk.upperBound * S * D])
                    let dual = dualScoresForward(reps: chunkReps, B: Bc, K: K, D: D)
                    let kl = klLoss(dual: dual, gen: genMeans, B: Bc, K: K, temperature: config.contrastive.temperature)
                    losses.kl += kl.loss * weight
                    let s = weight * config.weightKL
                    let dFromKL = dualScoresBackward(reps: chunkReps, dDual: kl.dDual.map { $0 * s }, B: Bc, K: K, D: D)
                    for i in dReps.indices { dReps[i] += dFromKL[i] }
                }
            }
            let (seqs, keys) = embeddingInputs(batch, chunk)
            losses.tokens += seqs.reduce(0) { $0 + $1.count }
            try embeddingBackward(seqs, examples: keys, dReps: dReps, grads: &grads)
        }
        if let world {  // gen/KL are sums of per-example terms / B: summing the ranks' parts gives the batch's
            var parts = [Double(losses.generative), Double(losses.kl), Double(losses.tokens)]
            try world.allreduceSum(&parts)
            losses.generative = Float(parts[0]); losses.kl = Float(parts[1]); losses.tokens = Int(parts[2])
            try grads.allreduceSum(world)
        }
        losses.total = config.weightCL * losses.contrastive + config.weightGen * losses.generative + config.weightKL * losses.kl
        return losses
    }

    func embeddingInputs(_ batch: [GRLTokenizedExample], _ chunk: Range<Int>) -> ([[Int32]], [Int]) {
        var seqs: [[Int32]] = [], keys: [Int] = []
        for b in chunk { for (slot, s) in batch[b].sequences.enumerated() {
            seqs.append(s); keys.append(Self.sequenceKey(batch[b].index, slot))
        } }
        return (seqs, keys)
    }

    /// Forward/backward of the chunk's generation examples; returns the token-mean log-probs [Bc, K]
    /// (the KL target, detached) and the chunk's generative loss (a mean over the chunk), back-propagated
    /// with `scale`.
    func generationBackward(_ batch: [GRLTokenizedExample], _ chunk: Range<Int>, P: Int, N: Int, config: GRLLossConfig,
                            scale: Float, grads: inout Gradients) throws -> (means: [Float], loss: Float) {
        let K = P + N, Bc = chunk.count
        // Only the sequences some term reads: all K for KL; the positives for sft; first positive and
        // first negative for a preference loss.
        let needed: [Int] = config.useKL ? Array(0..<K) : (config.gen.kind == .sft ? Array(0..<P) : (N > 0 ? [0, P] : [0]))
        var seqs: [[Int32]] = [], labels: [[Int32]] = [], keys: [Int] = []
        for b in chunk { for k in needed {
            seqs.append(batch[b].generation[k]); labels.append(batch[b].generationLabels[k])
            keys.append(Self.sequenceKey(batch[b].index, 32 + k))
        } }
        let slot = Dictionary(uniqueKeysWithValues: needed.enumerated().map { ($1, $0) })
        let kind = config.gen.kind
        guard kind == .sft || N > 0 else { throw ULLMEError.argument("a preference gen loss needs neg_per_sample >= 1") }
        let result = try logProbBackward(seqs, labels: labels, examples: keys, dLossDSums: { sums, counts in
            var dSums = [Float](repeating: 0, count: sums.count)
            let row = { (b: Int, k: Int) in b * needed.count + slot[k]! }
            if kind == .sft {
                var rows: [Int] = []
                for b in 0..<Bc { for k in 0..<P { rows.append(row(b, k)) } }
                let out = sftLoss(sumLogps: rows.map { sums[$0] }, tokenCounts: rows.map { counts[$0] })
                for (i, r) in rows.enumerated() { dSums[r] = out.dSumLogps[i] * scale }
                return (out.loss, dSums)
            }
            let mean = kind.usesMeanLogps
            let logp = { (r: Int) in mean ? sums[r] / Float(max(1, counts[r])) : sums[r] }
            let chosen = (0..<Bc).map { row($0, 0) }, rejected = (0..<Bc).map { row($0, P) }
            let out = preferenceLoss(chosenLogps: chosen.map(logp), rejectedLogps: rejected.map(logp), config: config.gen)
            for b in 0..<Bc {
                let dc = chosen[b], dr = rejected[b]
                dSums[dc] += out.dChosen[b] * scale / (mean ? Float(max(1, counts[dc])) : 1)
                dSums[dr] += out.dRejected[b] * scale / (mean ? Float(max(1, counts[dr])) : 1)
            }
            return (out.loss, dSums)
        }, grads: &grads)
        var means = [Float](repeating: 0, count: Bc * K)
        if config.useKL {
            for b in 0..<Bc { for k in 0..<K {
                let r = b * needed.count + slot[k]!
                means[b * K + k] = result.logp.sums[r] / Float(max(1, result.logp.counts[r]))
            } }
        }
        return (means, result.loss)
    }
}
