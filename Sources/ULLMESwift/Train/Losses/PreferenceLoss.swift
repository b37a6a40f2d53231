import Glibc

// L_gen (docs/method.md §4) at the sequence level: the per-sequence combination of log-probabilities into the
// loss, and its gradient with respect to each sequence's log-probability. The token-level part
// (log-softmax of the LM head, d logp / d logits) belongs to the LM-head code.
//
// Reference (ullme/trainer/loss.py PreferenceLoss, gradcache_trainer.py forward_backward):
// - chosen = the first positive's generation example (gen slot 0), rejected = the first negative's
//   (gen slot P); logp = sum of the label tokens' log-probs, except `ipo` which uses their mean
//   (get_batch_logps(average_log_prob = loss_type == "ipo")).
// - reference-free (the trainer always passes reference_free=True): logits = logp_c − logp_r.
// - The per-example losses are reduced with .mean() over the batch (kto_pair: over its 2B terms).
// - `sft` is not a PreferenceLoss: the model's own causal-LM loss on the P positive generation
//   examples, i.e. the mean token cross-entropy over all their label tokens (one mean over the whole
//   batch of sequences, not a mean of per-sequence means).
// - kto_pair: the reference passes reference logps None and would fail on `policy − None`; we use
//   reference logps = 0 as docs/method.md §4 says (so its KL estimates are clamp(mean(logp), min 0), with
//   the gradient flowing through them as in the reference, i.e. not detached).
// - Defaults: beta 0.1, label smoothing 0.0 (the trainer's own default is 0.1, but main.py passes the
//   config's label_smoothing, default 0.0).

/// Which generative loss (the reference's `gen_loss_type`).
public enum GenLossKind: String, Sendable, CaseIterable {
    case sft, sigmoid, hinge, ipo, ktoPair = "kto_pair"

    /// true when the sequence log-prob fed to the loss is the token mean (ipo), false for the sum.
    public var usesMeanLogps: Bool { self == .ipo }
}

/// Configuration of a preference loss (docs/method.md §4 defaults).
public struct PreferenceLossConfig: Sendable {
    public var kind: GenLossKind = .sigmoid
    public var beta: Double = 0.1
    public var labelSmoothing: Double = 0.0
    public init(kind: GenLossKind = .sigmoid, beta: Double = 0.1, labelSmoothing: Double = 0.0) {
        self.kind = kind; self.beta = beta; self.labelSmoothing = labelSmoothing
    }
}

/// Batch-mean preference loss and its gradient with respect to each chosen / rejected log-prob.
public struct PreferenceLossOutput: Sendable {
    public var loss: Float
    public var dChosen: [Float]
    public var dRejected: [Float]
}

/// Sequence-level SFT loss (mean token cross-entropy) and its gradient with respect to each sequence's
/// summed log-prob (every token of sequence s then gets d loss / d logp_token = dSumLogps[s]).
public struct SFTLossOutput: Sendable {
    public var loss: Float
    public var dSumLogps: [Float]
}

/// sft: loss = −Σ_s sumLogps[s] / Σ_s tokenCounts[s]. Zero tokens in total gives loss 0, zero gradient.
public func sftLoss(sumLogps: [Float], tokenCounts: [Int]) -> SFTLossOutput {
    precondition(sumLogps.count == tokenCounts.count)
    let total = tokenCounts.reduce(0, +)
    guard total > 0 else { return SFTLossOutput(loss: 0, dSumLogps: [Float](repeating: 0, count: sumLogps.count)) }
    let s = sumLogps.reduce(0.0) { $0 + Double($1) }
    return SFTLossOutput(loss: Float(-s / Double(total)),
                         dSumLogps: [Float](repeating: Float(-1 / Double(total)), count: sumLogps.count))
}

@inline(__always) private func sigmoid(_ z: Double) -> Double { z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)) }
@inline(__always) private func logSigmoid(_ z: Double) -> Double { z < 0 ? z - log1p(exp(z)) : -log1p(exp(-z)) }

/// sigmoid / hinge / ipo / kto_pair on chosen and rejected log-probs [B] (sums; token means for ipo),
/// reference-free; the loss is the mean over the batch.
public func preferenceLoss(chosenLogps: [Float], rejectedLogps: [Float], config: PreferenceLossConfig) -> PreferenceLossOutput {
    precondition(chosenLogps.count == rejectedLogps.count && !chosenLogps.isEmpty)
    precondition(config.kind != .sft, "sft is not a preference loss: use sftLoss")
    let B = chosenLogps.count, beta = config.beta, eps = config.labelSmoothing
    let c = chosenLogps.map { Double($0) }, r = rejectedLogps.map { Double($0) }
    var dc = [Double](repeating: 0, count: B), dr = [Double](repeating: 0, count: B)
    var total = 0.0
    switch config.kind {
    case .sigmoid, .hinge, .ipo:
        for i in 0..<B {
            let x = c[i] - r[i]
            var l = 0.0, g = 0.0  // g = d loss_i / d x
            switch config.kind {
            case .sigmoid:
                l = -logSigmoid(beta * x) * (1 - eps) - logSigmoid(-beta * x) * eps
                g = -(1 - eps) * beta * sigmoid(-beta * x) + eps * beta * sigmoid(beta * x)
            case .hinge:
                l = max(0, 1 - beta * x)
                g = 1 - beta * x > 0 ? -beta : 0
            default:  // ipo
                let t = x - 1 / (2 * beta)
                l = t * t
                g = 2 * t
            }
            total += l
            dc[i] = g / Double(B)
            dr[i] = -g / Double(B)
        }
        total /= Double(B)
    case .ktoPair:
        // losses = cat(1 − σ(β(c_i − KL_r)), 1 − σ(β(KL_c − r_i))), KL_x = clamp(mean(x), min 0); mean over 2B.
        let meanC = c.reduce(0, +) / Double(B), meanR = r.reduce(0, +) / Double(B)
        let klC = max(meanC, 0), klR = max(meanR, 0)
        let w = 1 / Double(2 * B)
        var dKLc = 0.0, dKLr = 0.0
        for i in 0..<B {
            let su = sigmoid(beta * (c[i] - klR)), sv = sigmoid(beta * (klC - r[i]))
            total += (1 - su) + (1 - sv)
            let gu = -su * (1 - su) * beta * w  // d/d(c_i − KL_r)
            let gv = -sv * (1 - sv) * beta * w  // d/d(KL_c − r_i)
            dc[i] += gu; dKLr -= gu
            dr[i] -= gv; dKLc += gv
        }
        total *= w
        // clamp(min 0) passes the gradient where mean >= 0.
        if meanC >= 0 { for i in 0..<B { dc[i] += dKLc / Double(B) } }
        if meanR >= 0 { for i in 0..<B { dr[i] += dKLr / Double(B) } }
    case .sft:
        fatalError("unreachable")
    }
    return PreferenceLossOutput(loss: Float(total), dChosen: dc.map { Float($0) }, dRejected: dr.map { Float($0) })
}
