import CULLME

@_cdecl("ullme_embed_default_params")
public func capi_embed_default_params() -> ullme_embed_params {
    var p = ullme_embed_params()
    p.struct_size = embedParamsSize
    p.instruction = nil
    p.instruction_len = Int(bitPattern: ULLME_NUL_TERMINATED_VALUE)
    p.is_query = 1
    p.normalize = -1
    p.prompt = nil
    p.prompt_len = Int(bitPattern: ULLME_NUL_TERMINATED_VALUE)
    p.prompt_name = nil
    p.exclude_prompt = -1
    p.truncate_dim = 0
    return p
}

/// ullme_embed_params' released layouts: as first released (up to progress_user); the current one adds the
/// prompt fields, exclude_prompt and truncate_dim.
let embedParamsLayouts = ParamsLayouts<ullme_embed_params>(name: "ullme_embed_params", olderEndingBefore: [\.prompt])
let embedParamsSizeV1 = embedParamsLayouts.older[0].size

/// Reads a caller's embed params without reading past its layout's fields.
func readEmbedParams(_ p: UnsafePointer<ullme_embed_params>) throws -> ullme_embed_params {
    try embedParamsLayouts.read(p, defaults: capi_embed_default_params()) { $0.struct_size = $1 }
}

/// A caller's (pointer, length) string: NULL means none with the default length or 0.
private func optionalBytes(_ p: UnsafePointer<CChar>?, _ len: Int, what: String) throws -> [UInt8]? {
    guard p != nil else {
        guard len == 0 || len == Int(bitPattern: ULLME_NUL_TERMINATED_VALUE) else {
            throw argError("ullme_embed_params.\(what) is NULL but \(what)_len is \(len)")
        }
        return nil
    }
    return try bytes(p, len, what: what)
}

@_cdecl("ullme_embed")
public func capi_embed(_ model: OpaquePointer?, _ texts: UnsafePointer<UnsafePointer<CChar>?>?, _ textLens: UnsafePointer<Int>?,
                       _ nTexts: Int, _ params: UnsafePointer<ullme_embed_params>?, _ out: UnsafeMutablePointer<Float>?,
                       _ outLen: Int, _ stats: UnsafeMutablePointer<ullme_embed_stats>?) -> Int32 {
    capiCall("ullme_embed") {
        let h = try handle(model)
        let p = try params.map(readEmbedParams) ?? capi_embed_default_params()
        guard (-1...1).contains(p.normalize) else { throw argError("ullme_embed_params.normalize must be -1, 0 or 1 (got \(p.normalize))") }
        guard (-1...1).contains(p.exclude_prompt) else {
            throw argError("ullme_embed_params.exclude_prompt must be -1, 0 or 1 (got \(p.exclude_prompt))")
        }
        guard nTexts >= 0, nTexts <= 1 << 28 else { throw argError("n_texts \(nTexts) out of range") }
        let hidden = Int(h.model.config.hiddenSize)
        guard p.truncate_dim >= 0, Int(p.truncate_dim) <= hidden else {
            throw argError("ullme_embed_params.truncate_dim must be 0 or in [1, \(hidden)] (got \(p.truncate_dim))")
        }
        let C = p.truncate_dim == 0 ? hidden : Int(p.truncate_dim)
        guard outLen >= 0, nTexts <= outLen / C else { throw argError("out holds \(outLen) floats, \(nTexts) embeddings of \(C) need \(nTexts * C)") }
        if nTexts == 0 { if let stats { stats.pointee = ullme_embed_stats() }; return }
        guard let texts else { throw argError("texts is NULL") }
        guard let out else { throw argError("out is NULL") }
        var list: [[UInt8]] = []
        list.reserveCapacity(nTexts)
        for i in 0..<nTexts {
            let len = textLens?[i] ?? Int(bitPattern: ULLME_NUL_TERMINATED_VALUE)
            list.append(try bytes(texts[i], len, what: "texts[\(i)]"))
        }
        var options = EmbedOptions()
        // A NULL instruction or prompt means "none" with the default length (NUL_TERMINATED) or 0; with any other
        // length the caller meant bytes it did not pass.
        options.instruction = try optionalBytes(p.instruction, p.instruction_len, what: "instruction") ?? []
        options.prompt = try optionalBytes(p.prompt, p.prompt_len, what: "prompt")
        options.promptName = try p.prompt_name.map {
            String(decoding: try bytes($0, Int(bitPattern: ULLME_NUL_TERMINATED_VALUE), what: "prompt_name"), as: UTF8.self)
        }
        options.isQuery = p.is_query != 0
        options.normalize = p.normalize == -1 ? nil : p.normalize != 0
        options.excludePrompt = p.exclude_prompt == -1 ? nil : p.exclude_prompt != 0
        options.truncateDim = p.truncate_dim == 0 ? nil : Int(p.truncate_dim)
        options.pooling = try Pooling(c: h.params.pooling)
        options.attention = try AttentionMode(c: h.params.attention)
        options.maxLength = Int(h.params.max_length)   // resolved at load (ModelHandle)
        options.batchSize = Int(h.params.batch_size)
        let callback = p.progress, user = p.progress_user
        let progress: ((Int, Int) -> Bool)? = callback.map { cb in { done, total in cb(user, done, total) == 0 } }
        let s = try h.model.embed(list, options: options, into: UnsafeMutableBufferPointer(start: out, count: nTexts * C),
                                  progress: progress)
        stats?.pointee = ullme_embed_stats(n_texts: s.texts, n_tokens: s.tokens, n_truncated: s.truncated)
    }
}

/// Copies one sequence's ids after checking pointer and length.
private func sequence(_ ids: UnsafePointer<Int32>?, _ n: Int, model: Model) throws -> [Int32] {
    guard n >= 1 else { throw argError("n_ids must be >= 1") }
    guard n <= model.config.maxPositions else { throw argError("n_ids \(n) exceeds the model's \(model.config.maxPositions) positions") }
    guard let ids else { throw argError("ids is NULL") }
    return Array(UnsafeBufferPointer(start: ids, count: n))
}

@_cdecl("ullme_hidden_states")
public func capi_hidden_states(_ model: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ nIds: Int, _ attention: ullme_attention,
                               _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) -> Int32 {
    capiCall("ullme_hidden_states") {
        let h = try handle(model)
        let seq = try sequence(ids, nIds, model: h.model)
        let mode = try AttentionMode(c: attention)
        let need = nIds * h.model.config.hiddenSize
        guard let out, outLen >= need else { throw argError("out must hold \(need) floats (got \(outLen))") }
        let result = try h.model.forward([seq], attention: mode)
        result.hidden.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: need) }
    }
}

@_cdecl("ullme_logits")
public func capi_logits(_ model: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ nIds: Int,
                        _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) -> Int32 {
    capiCall("ullme_logits") {
        let h = try handle(model)
        let seq = try sequence(ids, nIds, model: h.model)
        let need = nIds * h.model.config.vocabSize
        guard let out, outLen >= need else { throw argError("out must hold \(need) floats (got \(outLen))") }
        let result = try h.model.forward([seq], attention: .causal, wantLogits: true)
        result.logits!.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: need) }
    }
}

@_cdecl("ullme_gen_score")
public func capi_gen_score(_ model: OpaquePointer?, _ query: UnsafePointer<CChar>?, _ queryLen: Int,
                           _ passage: UnsafePointer<CChar>?, _ passageLen: Int, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    capiCall("ullme_gen_score") {
        let h = try handle(model)
        guard let out else { throw argError("score_out is NULL") }
        out.pointee = try h.model.generationScore(query: try bytes(query, queryLen, what: "query"),
                                                  passage: try bytes(passage, passageLen, what: "passage"),
                                                  maxLength: Int(h.params.max_length))
    }
}
