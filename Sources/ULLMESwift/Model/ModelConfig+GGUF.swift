/// Reading GGUF metadata (llama.cpp key names: `{arch}.embedding_length`, ...).
extension ModelConfig {
    public static func fromGGUF(_ meta: [String: GGUFValue], vocabSizeFallback: Int) throws -> ModelConfig {
        guard let arch = meta["general.architecture"]?.string else { throw ULLMEError.format("GGUF: missing general.architecture") }
        guard let family = Family.named(gguf: arch) else {
            throw ULLMEError.unsupported("architecture \"\(arch)\" (supported: \(Family.ggufNames.joined(separator: ", ")))")
        }
        func int(_ key: String) throws -> Int {
            guard let v = meta["\(arch).\(key)"]?.int else { throw ULLMEError.format("GGUF: missing or non-integer \(arch).\(key)") }
            return v
        }
        func float(_ key: String) -> Float? { meta["\(arch).\(key)"]?.double.map(Float.init) }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let headDim = meta["\(arch).attention.key_length"]?.int ?? (heads > 0 ? hidden / heads : 0)
        var c = ModelConfig(
            architecture: arch, family: family, hiddenSize: hidden, nLayers: try int("block_count"), nHeads: heads,
            nKVHeads: meta["\(arch).attention.head_count_kv"]?.int ?? heads, headDim: headDim,
            intermediateSize: try int("feed_forward_length"),
            vocabSize: meta["\(arch).vocab_size"]?.int ?? vocabSizeFallback,
            maxPositions: meta["\(arch).context_length"]?.int ?? 2048,
            normEps: float("attention.layer_norm_rms_epsilon") ?? float("attention.layer_norm_epsilon") ?? 1e-5,
            ropeTheta: float("rope.freq_base") ?? 10000, ropeScaling: .none, tieWordEmbeddings: false)
        c.applyFamilyDefaults()
        // Per-layer arrays below, and DecoderWeights after, allocate by these: bound them first.
        try c.validateDimensions()
        if let type = meta["\(arch).rope.scaling.type"]?.string, type != "none" {
            guard type == "linear", let f = float("rope.scaling.factor"), f > 0 else {
                throw ULLMEError.unsupported("GGUF rope scaling type \"\(type)\"")
            }
            c.ropeScaling = .linear(factor: f)
        }
        if let rotary = meta["\(arch).rope.dimension_count"]?.int, rotary != headDim { c.rotaryDim = rotary }
        c.slidingWindow = meta["\(arch).attention.sliding_window"]?.int
        switch family.spec.ggufSliding {
        case .all:
            if c.slidingWindow != nil { c.slidingLayers = Array(repeating: true, count: c.nLayers) }
        case .none, .fromMaxWindowLayers:
            c.slidingWindow = nil
        case .alternating:
            c.slidingLayers = (0..<c.nLayers).map { ($0 + 1) % 2 != 0 }
        case .pattern(let every):
            // llama.cpp fixes gemma3's pattern (every 6th layer global).
            c.slidingLayers = (0..<c.nLayers).map { ($0 + 1) % every != 0 }
        }
        let spec = family.spec
        if spec.readsAttentionSoftcap { c.attentionSoftcap = float("attn_logit_softcapping") }
        if spec.readsFinalSoftcap { c.finalLogitSoftcap = float("final_logit_softcapping") }
        if spec.hasLocalRope { c.localRopeTheta = 10000 }
        if spec.ggufLongRope, let original = meta["\(arch).rope.scaling.original_context_length"]?.int, original > 0 {
            // Long/short factors arrive as tensors (rope_factors_long/short.weight); see DecoderWeights.
            c.ropeScaling = .longrope(short: [], long: [], originalMaxPositions: original,
                                      attentionFactor: float("rope.scaling.attn_factor") ?? 1)
        }
        return c
    }
}
