/// What to do with texts when embedding them (the C `ullme_embed_params` plus the model's defaults).
public struct EmbedOptions: Sendable {
    public var instruction: [UInt8] = []
    public var isQuery = true
    public var normalize = true
    public var pooling = Pooling.mean
    public var attention = AttentionMode.bidirectional
    public var maxLength = 512
    public var batchSize = 32
    public init() {}
}

public struct EmbedStats: Sendable, Equatable {
    public var texts = 0
    public var tokens = 0
    public var truncated = 0
}

extension Model {
    /// The exact string the reference embeds (METHOD §1): `{instruction}\n{text}` for queries,
    /// `{instruction}\nCandidate:\n{text}` for candidates. With no instruction the reference would
    /// produce "\n{text}"; we embed the text alone (documented in the header).
    public static func formatPrompt(_ text: [UInt8], instruction: [UInt8], isQuery: Bool) -> [UInt8] {
        guard !instruction.isEmpty else { return text }
        return instruction + Array((isQuery ? "\n" : "\nCandidate:\n").utf8) + text
    }

    /// Tokenizes a formatted prompt with the tokenizer's special tokens, truncating the content so the
    /// whole sequence (specials included) fits `maxLength`, as `tokenizer(text, truncation=True)` does.
    func promptTokens(_ prompt: [UInt8], maxLength: Int) throws -> (ids: [Int32], truncated: Bool) {
        let tok = try requireTokenizer()
        var content = tok.encode(prompt, addSpecial: false)
        let bos = tok.addsBOS ? tok.bosId : nil, eos = tok.addsEOS ? tok.eosId : nil
        let budget = maxLength - (bos == nil ? 0 : 1) - (eos == nil ? 0 : 1)
        guard budget >= 0 else { throw ULLMEError.argument("max_length \(maxLength) leaves no room for the special tokens") }
        let truncated = content.count > budget
        if truncated { content.removeSubrange(budget...) }
        var ids: [Int32] = []
        ids.reserveCapacity(content.count + 2)
        if let bos { ids.append(bos) }
        ids += content
        if let eos { ids.append(eos) }
        // An empty text with no special tokens still needs one position; use the BOS/EOS/pad token.
        if ids.isEmpty, let fill = tok.bosId ?? tok.eosId ?? padTokenId { ids = [fill] }
        guard !ids.isEmpty else { throw ULLMEError.argument("empty text and the tokenizer has no BOS/EOS/pad token") }
        return (ids, truncated)
    }

    /// Embeds texts into out[n * C]. Sequences are sorted by length and run `batchSize` at a time;
    /// `progress(done, total)` returning false cancels.
    public func embed(_ texts: [[UInt8]], options: EmbedOptions, into out: UnsafeMutableBufferPointer<Float>,
                      progress: ((Int, Int) -> Bool)? = nil) throws -> EmbedStats {
        let C = config.hiddenSize
        guard options.maxLength >= 1 else { throw ULLMEError.argument("max_length must be >= 1 (got \(options.maxLength))") }
        guard options.batchSize >= 1 else { throw ULLMEError.argument("batch_size must be >= 1 (got \(options.batchSize))") }
        guard out.count >= texts.count * C else {
            throw ULLMEError.argument("output buffer holds \(out.count) floats, \(texts.count) embeddings need \(texts.count * C)")
        }
        let maxLength = min(options.maxLength, config.maxPositions)
        var stats = EmbedStats(texts: texts.count)
        var tokenized: [[Int32]] = []
        tokenized.reserveCapacity(texts.count)
        for text in texts {
            let prompt = Model.formatPrompt(text, instruction: options.instruction, isQuery: options.isQuery)
            let (ids, truncated) = try promptTokens(prompt, maxLength: maxLength)
            if truncated { stats.truncated += 1 }
            stats.tokens += ids.count
            tokenized.append(ids)
        }
        // Longest first: similar lengths share a batch and the first batch shows the peak memory.
        let order = tokenized.indices.sorted { tokenized[$0].count > tokenized[$1].count }
        var done = 0
        for batchStart in stride(from: 0, to: order.count, by: options.batchSize) {
            let batch = Array(order[batchStart..<min(batchStart + options.batchSize, order.count)])
            let result = try forward(batch.map { tokenized[$0] }, attention: options.attention)
            result.hidden.withUnsafeBufferPointer { h in
                for (j, textIndex) in batch.enumerated() {
                    let start = result.offsets[j], L = result.offsets[j + 1] - start
                    let dst = out.baseAddress! + textIndex * C
                    options.pooling.pool(h.baseAddress! + start * C, L: L, C: C, into: dst)
                    if options.normalize { l2Normalize(dst, C) }
                }
            }
            done += batch.count
            if let progress, !progress(done, texts.count) { throw ULLMEError.cancelled }
        }
        return stats
    }
}
