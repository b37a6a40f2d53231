/// What to do with texts when embedding them (the C `ullme_embed_params` plus the model's load parameters).
/// nil fields mean "what the model's embedder profile says" (`Model.embedder`: its sentence-transformers files,
/// a preset, else the ULLME defaults: mean, bidirectional, normalised, 512 tokens).
public struct EmbedOptions: Sendable {
    public var instruction: [UInt8] = []
    public var isQuery = true
    public var normalize: Bool? = nil
    public var pooling: Pooling? = nil
    public var attention: AttentionMode? = nil
    public var maxLength: Int? = nil
    public var batchSize = 32
    /// sentence-transformers' `prompt`: prepended to every text as it is. A prompt containing "{text}" is a
    /// template instead ("{instruction}" becomes `instruction`). Wins over `promptName` and the profile's template.
    public var prompt: [UInt8]? = nil
    /// sentence-transformers' `prompt_name`: one of the profile's named prompts.
    public var promptName: String? = nil
    /// Leave the prompt's tokens out of pooling (nil: the profile's `excludePrompt`).
    public var excludePrompt: Bool? = nil
    /// Keep the first `truncateDim` dimensions of each embedding (Matryoshka), re-normalised when normalising;
    /// nil: all of them.
    public var truncateDim: Int? = nil
    public init() {}

    /// The effective maximum length in tokens for `model` (before the model's own position limit).
    public func maxLength(for model: Model) -> Int { maxLength ?? model.embedder.maxLength ?? 512 }

    /// The length of each output embedding for `model`.
    public func dimensions(for model: Model) -> Int { truncateDim ?? model.config.hiddenSize }
}

public struct EmbedStats: Sendable, Equatable {
    public var texts = 0
    public var tokens = 0
    public var truncated = 0
}

/// One text as the model embeds it: the part before the text (the prompt), the text, the part after it.
struct FormattedText {
    var prefix: [UInt8], text: [UInt8], suffix: [UInt8]
    var addSpecial: Bool, appendEOS: Bool
    var full: [UInt8] { prefix + text + suffix }
}

extension Model {
    /// The exact string the reference embeds (docs/method.md §1): `{instruction}\n{text}` for queries,
    /// `{instruction}\nCandidate:\n{text}` for candidates. With no instruction the reference would
    /// produce "\n{text}"; we embed the text alone (documented in the header).
    public static func formatPrompt(_ text: [UInt8], instruction: [UInt8], isQuery: Bool) -> [UInt8] {
        let t = EmbedderProfile.ullme.template
        return format(text, template: Array((instruction.isEmpty ? t.noInstruction! : isQuery ? t.query : t.document).utf8),
                      instruction: instruction)!.full
    }

    /// Splits a template at its "{text}" and puts the instruction into "{instruction}" (nil: no "{text}").
    static func format(_ text: [UInt8], template: [UInt8], instruction: [UInt8], addSpecial: Bool = true,
                       appendEOS: Bool = false) -> FormattedText? {
        let marker = Array("{text}".utf8)
        guard let at = template.firstRange(of: marker) else { return nil }
        let ins = Array("{instruction}".utf8)
        func fill(_ part: ArraySlice<UInt8>) -> [UInt8] {
            var out: [UInt8] = [], rest = part
            while let r = rest.firstRange(of: ins) {
                out += rest[rest.startIndex..<r.lowerBound] + instruction
                rest = rest[r.upperBound...]
            }
            return out + rest
        }
        return FormattedText(prefix: fill(template[..<at.lowerBound]), text: text, suffix: fill(template[at.upperBound...]),
                             addSpecial: addSpecial, appendEOS: appendEOS)
    }

    /// The string a text is embedded as under `options` and this model's profile: an explicit prompt (or
    /// template), else a named prompt (the call's, or the profile's default when the call gives no
    /// instruction), else the profile's template with the instruction.
    func formatted(_ text: [UInt8], options: EmbedOptions) throws -> FormattedText {
        let t = embedder.template
        var prompt = options.prompt
        if prompt == nil, let name = options.promptName ?? (options.instruction.isEmpty ? embedder.defaultPromptName : nil) {
            guard let p = embedder.prompt(named: name) else {
                let known = embedder.prompts.map(\.name)
                throw ULLMEError.argument("prompt name \"\(name)\" not found (this model's prompts: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
            }
            prompt = Array(p.utf8)
        }
        // The profile's templates all hold "{text}" (EmbedderProfileTests); a prompt without one is a prefix.
        let side = options.isQuery ? t.query : t.document
        let template = prompt ?? Array((options.instruction.isEmpty ? t.noInstruction ?? side : side).utf8)
        return Model.format(text, template: template, instruction: options.instruction, addSpecial: t.addSpecial, appendEOS: t.appendEOS)
            ?? FormattedText(prefix: template, text: text, suffix: [], addSpecial: t.addSpecial, appendEOS: t.appendEOS)
    }

    /// How many leading tokens of `ids` (the tokens of `f`) belong to the prompt, by `rule`.
    func promptTokenCount(_ f: FormattedText, ids: [Int32], rule: PromptRule) throws -> Int {
        let tok = try requireTokenizer()
        switch rule {
        case .promptTokens:
            let alone = try promptTokens(f.prefix, maxLength: Int.max, addSpecial: f.addSpecial, fillEmpty: false).ids
            // sentence-transformers: a trailing special token of the prompt alone (the post-processor's EOS) does not count.
            let n = alone.count - (f.addSpecial && alone.last.map(tok.isSpecial) == true ? 1 : 0)
            return min(n, ids.count)
        case .textTokens:
            let suffix = f.addSpecial && !tok.suffixIds.isEmpty ? tok.suffixIds.count : f.appendEOS && tok.eosId != nil ? 1 : 0
            return max(0, ids.count - suffix - tok.encode(f.text, addSpecial: false).count)
        }
    }

    /// Tokenizes a formatted prompt (with the tokenizer's special tokens, or none), truncating the content so
    /// the whole sequence (specials included) fits `maxLength`, as `tokenizer(text, truncation=True)` does;
    /// `appendEOS` adds the EOS the tokenizer does not add itself.
    func promptTokens(_ prompt: [UInt8], maxLength: Int, addSpecial: Bool = true, appendEOS: Bool = false,
                      fillEmpty: Bool = true) throws -> (ids: [Int32], truncated: Bool) {
        let tok = try requireTokenizer()
        var content = tok.encode(prompt, addSpecial: false)
        let prefix = addSpecial ? tok.prefixIds : []
        var suffix = addSpecial ? tok.suffixIds : []
        if appendEOS, suffix.isEmpty, let eos = tok.eosId { suffix = [eos] }
        let budget = maxLength == Int.max ? Int.max : maxLength - prefix.count - suffix.count
        guard budget >= 0 else { throw ULLMEError.argument("max_length \(maxLength) leaves no room for the special tokens") }
        let truncated = content.count > budget
        if truncated { content.removeSubrange(budget...) }
        var ids = prefix
        ids.reserveCapacity(content.count + prefix.count + suffix.count)
        ids += content
        ids += suffix
        // An empty text with no special tokens still needs one position; use the BOS/EOS/pad token.
        if fillEmpty, ids.isEmpty, let fill = tok.bosId ?? tok.eosId ?? padTokenId { ids = [fill] }
        guard !ids.isEmpty || !fillEmpty else { throw ULLMEError.argument("empty text and the tokenizer has no BOS/EOS/pad token") }
        return (ids, truncated)
    }

    /// Embeds texts into out[n * D] (D = `options.dimensions(for:)`, the hidden size unless truncated).
    /// Sequences are sorted by length and run `batchSize` at a time; `progress(done, total)` returning false
    /// cancels.
    public func embed(_ texts: [[UInt8]], options: EmbedOptions, into out: UnsafeMutableBufferPointer<Float>,
                      progress: ((Int, Int) -> Bool)? = nil) throws -> EmbedStats {
        let C = config.hiddenSize
        guard options.maxLength(for: self) >= 1 else { throw ULLMEError.argument("max_length must be >= 1 (got \(options.maxLength(for: self)))") }
        guard options.batchSize >= 1 else { throw ULLMEError.argument("batch_size must be >= 1 (got \(options.batchSize))") }
        let D = options.dimensions(for: self)
        guard (1...C).contains(D) else { throw ULLMEError.argument("truncate_dim must be in [1, \(C)] (got \(D))") }
        guard out.count >= texts.count * D else {
            throw ULLMEError.argument("output buffer holds \(out.count) floats, \(texts.count) embeddings of \(D) need \(texts.count * D)")
        }
        let maxLength = min(options.maxLength(for: self), config.maxPositions)
        let pooling = options.pooling ?? embedder.pooling, attention = options.attention ?? embedder.attention
        let normalize = options.normalize ?? embedder.normalize
        let exclude = options.excludePrompt ?? embedder.excludePrompt
        var stats = EmbedStats(texts: texts.count)
        var tokenized: [[Int32]] = [], skipped: [Int] = []
        tokenized.reserveCapacity(texts.count)
        for text in texts {
            let f = try formatted(text, options: options)
            let (ids, truncated) = try promptTokens(f.full, maxLength: maxLength, addSpecial: f.addSpecial, appendEOS: f.appendEOS)
            if truncated { stats.truncated += 1 }
            stats.tokens += ids.count
            tokenized.append(ids)
            skipped.append(exclude ? try promptTokenCount(f, ids: ids, rule: embedder.promptRule) : 0)
        }
        // Longest first: similar lengths share a batch and the first batch shows the peak memory.
        let order = tokenized.indices.sorted { tokenized[$0].count > tokenized[$1].count }
        var done = 0
        var pooled = [Float](repeating: 0, count: D < C ? C : 0)  // the full vector before truncation
        for batchStart in stride(from: 0, to: order.count, by: options.batchSize) {
            let batch = Array(order[batchStart..<min(batchStart + options.batchSize, order.count)])
            let result = try forward(batch.map { tokenized[$0] }, attention: attention)
            result.hidden.withUnsafeBufferPointer { h in
                for (j, textIndex) in batch.enumerated() {
                    let start = result.offsets[j], L = result.offsets[j + 1] - start
                    let dst = out.baseAddress! + textIndex * D
                    if D == C {
                        pooling.pool(h.baseAddress! + start * C, L: L, C: C, skip: skipped[textIndex], into: dst)
                    } else {
                        pooled.withUnsafeMutableBufferPointer { full in
                            pooling.pool(h.baseAddress! + start * C, L: L, C: C, skip: skipped[textIndex], into: full.baseAddress!)
                            dst.update(from: full.baseAddress!, count: D)
                        }
                    }
                    if normalize { l2Normalize(dst, D) }
                }
            }
            done += batch.count
            if let progress, !progress(done, texts.count) { throw ULLMEError.cancelled }
        }
        return stats
    }
}
