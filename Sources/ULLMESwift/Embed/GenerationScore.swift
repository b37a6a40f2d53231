import Glibc

extension Model {
    /// GRL's generation score of a (query, passage) pair: the token-mean log-likelihood of the generation
    /// example `{alignment_instruction}. Query:\n{query}\n\n{passage}\n` under causal attention, every token
    /// after the first scored (as the training labels cover every token). Higher = the LLM finds the pair more
    /// likely, so it can rerank candidates. Uses the attached adapter, if any.
    public func generationScore(query: [UInt8], passage: [UInt8],
                                alignmentInstruction: String = GRLTextFormat.passageToQueryInstruction,
                                maxLength: Int = 512) throws -> Float {
        let text = Array(GRLTextFormat.generationExample(alignmentInstruction: alignmentInstruction,
                                                         query: String(decoding: query, as: UTF8.self),
                                                         passage: String(decoding: passage, as: UTF8.self)).utf8)
        let ids = try promptTokens(text, maxLength: min(max(2, maxLength), config.maxPositions)).ids
        guard ids.count >= 2 else { throw ULLMEError.argument("the generation example has fewer than 2 tokens") }
        let V = config.vocabSize
        let logits = try forward([ids], attention: .causal, wantLogits: true).logits!
        var total = 0.0
        for t in 0..<(ids.count - 1) {
            let row = t * V
            var m = -Float.infinity
            for v in 0..<V { m = max(m, logits[row + v]) }
            var z = 0.0
            for v in 0..<V { z += Double(expf(logits[row + v] - m)) }
            total += Double(logits[row + Int(ids[t + 1])] - m) - log(z)
        }
        return Float(total / Double(ids.count - 1))
    }
}
