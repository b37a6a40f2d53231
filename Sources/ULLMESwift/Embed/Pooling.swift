/// How one vector is made from a sequence's final hidden states (docs/method.md §1).
public enum Pooling: Int32, Sendable, CaseIterable {
    case mean = 0, weightedMean = 1, cls = 2, lastToken = 3

    public init(name: String) throws {
        switch name {
        case "mean": self = .mean
        case "weightedmean": self = .weightedMean
        case "cls": self = .cls
        case "lasttoken": self = .lastToken
        default: throw ULLMEError.argument("unknown pooling \"\(name)\" (expected mean, weightedmean, cls or lasttoken)")
        }
    }

    /// Pools hidden[L, C] (all real tokens) into out[C], leaving the first `skip` positions (the prompt) out as
    /// sentence-transformers' Pooling does with include_prompt false: weightedmean keeps the remaining tokens'
    /// position weights, cls takes the first remaining token; nothing left gives a zero vector.
    func pool(_ hidden: UnsafePointer<Float>, L: Int, C: Int, skip: Int = 0, into out: UnsafeMutablePointer<Float>) {
        for c in 0..<C { out[c] = 0 }
        guard skip < L else { return }
        switch self {
        case .cls:
            for c in 0..<C { out[c] = hidden[skip * C + c] }
        case .lastToken:
            for c in 0..<C { out[c] = hidden[(L - 1) * C + c] }
        case .mean, .weightedMean:
            // weightedmean: the i-th token (1-based) has weight i, as the reference's mask * cumsum(mask).
            var total: Float = 0
            for t in skip..<L {
                let w: Float = self == .mean ? 1 : Float(t + 1)
                total += w
                let row = hidden + t * C
                for c in 0..<C { out[c] += w * row[c] }
            }
            for c in 0..<C { out[c] /= total }
        }
    }
}

extension AttentionMode {
    public init(name: String) throws {
        switch name {
        case "bidirectional": self = .bidirectional
        case "causal": self = .causal
        default: throw ULLMEError.argument("unknown attention \"\(name)\" (expected bidirectional or causal)")
        }
    }
}
