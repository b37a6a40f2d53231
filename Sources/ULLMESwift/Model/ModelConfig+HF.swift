import Glibc

/// Reading a Hugging Face config.json (transformers 4.x `rope_scaling`/`rope_theta` or 5.x `rope_parameters`).
/// The rules per family are those of docs/families.md (written from the transformers modeling files).
extension ModelConfig {
    public static func fromHF(_ json: JSONValue) throws -> ModelConfig {
        func int(_ key: String) throws -> Int {
            guard let v = json[key]?.int else { throw ULLMEError.format("config.json: missing or non-integer \"\(key)\"") }
            return v
        }
        func positiveFloat(_ key: String) -> Float? {
            guard let v = json[key]?.double, v > 0 else { return nil }
            return Float(v)
        }
        guard let type = json["model_type"]?.string else { throw ULLMEError.format("config.json: missing \"model_type\"") }
        guard let family = Family.named(hf: type) else {
            throw ULLMEError.unsupported("architecture \"\(type)\" (supported: \(Family.hfNames.joined(separator: ", ")))")
        }
        let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
        let rope = json["rope_parameters"] ?? json["rope_scaling"]
        // gemma3 nests rope parameters per layer type.
        let fullRope = rope?["full_attention"] ?? rope
        let theta = fullRope?["rope_theta"]?.double ?? json["rope_theta"]?.double ?? 10000
        var c = ModelConfig(
            architecture: type, family: family, hiddenSize: hidden, nLayers: try int("num_hidden_layers"), nHeads: heads,
            nKVHeads: json["num_key_value_heads"]?.int ?? heads,
            headDim: json["head_dim"]?.int ?? (heads > 0 ? hidden / heads : 0),
            intermediateSize: try int("intermediate_size"), vocabSize: try int("vocab_size"),
            maxPositions: json["max_position_embeddings"]?.int ?? 2048,
            normEps: Float(json["rms_norm_eps"]?.double ?? json["layer_norm_eps"]?.double ?? 1e-6), ropeTheta: Float(theta),
            ropeScaling: .none,
            tieWordEmbeddings: json["tie_word_embeddings"]?.bool ?? family.spec.tiesEmbeddingsByDefault)
        c.applyFamilyDefaults()

        let act = json["hidden_act"]?.string ?? json["hidden_activation"]?.string ?? "silu"
        switch act {
        case "silu", "swish": c.activation = .silu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": c.activation = .geluTanh
        default: throw ULLMEError.unsupported("config.json: hidden activation \"\(act)\" for \(type)")
        }
        let spec = family.spec
        if spec.readsAttentionBias {
            let attnBias = json["attention_bias"]?.bool ?? false
            c.qkvBias = attnBias; c.outputBias = attnBias
        }
        if spec.readsMLPBias { c.mlpBias = json["mlp_bias"]?.bool ?? false }
        if (json["pretraining_tp"]?.int ?? 1) != 1 { throw ULLMEError.unsupported("config.json: pretraining_tp != 1") }
        for (key, what) in spec.hfUnsupportedFlags.sorted(by: { $0.key < $1.key }) where json[key]?.bool == true {
            throw ULLMEError.unsupported("config.json: \(key) = true (\(what)) for \(type)")
        }
        if let prf = json["partial_rotary_factor"]?.double ?? rope?["partial_rotary_factor"]?.double, prf != 1 {
            guard prf > 0, prf < 1 else { throw ULLMEError.format("config.json: partial_rotary_factor \(prf) out of (0, 1]") }
            c.rotaryDim = Int(Double(c.headDim) * prf)
        }
        if spec.readsQueryPreAttnScalar, let s = json["query_pre_attn_scalar"]?.double, s > 0 {
            c.attentionScale = Float(1 / s.squareRoot())
        }
        if spec.readsAttentionSoftcap { c.attentionSoftcap = positiveFloat("attn_logit_softcapping") }
        if spec.readsFinalSoftcap { c.finalLogitSoftcap = positiveFloat("final_logit_softcapping") }
        if spec.hasLocalRope {
            c.localRopeTheta = Float(rope?["sliding_attention"]?["rope_theta"]?.double ?? json["rope_local_base_freq"]?.double ?? 10000)
        }
        try c.validateDimensions()   // before readSlidingWindow's per-layer arrays
        try c.readSlidingWindow(json)
        c.ropeScaling = try parseHFRopeScaling(fullRope, family: family, config: json, rotaryDim: c.effectiveRotaryDim)
        try c.validate()
        return c
    }

    /// Which layers slide and by how much (causal mode only).
    mutating func readSlidingWindow(_ json: JSONValue) throws {
        let window = json["sliding_window"]?.int
        let layerTypes = json["layer_types"]?.array?.compactMap(\.string)
        if let layerTypes, layerTypes.count != nLayers {
            throw ULLMEError.format("config.json: layer_types has \(layerTypes.count) entries for \(nLayers) layers")
        }
        let fromTypes = layerTypes?.map { $0 == "sliding_attention" }
        switch family.spec.hfSliding {
        case .none:
            slidingWindow = nil
        case .all:
            // A non-null window applies to every layer; layer_types is ignored.
            slidingWindow = window
            slidingLayers = Array(repeating: true, count: nLayers)
        case .fromMaxWindowLayers:
            guard json["use_sliding_window"]?.bool == true else { slidingWindow = nil; return }
            slidingWindow = window
            let firstSliding = json["max_window_layers"]?.int ?? nLayers
            slidingLayers = fromTypes ?? (0..<nLayers).map { $0 >= firstSliding }
        case .alternating:
            slidingWindow = window
            slidingLayers = fromTypes ?? (0..<nLayers).map { ($0 + 1) % 2 != 0 }
        case .pattern(let every):
            slidingWindow = window
            let pattern = json["sliding_window_pattern"]?.int ?? every
            slidingLayers = fromTypes ?? (0..<nLayers).map { pattern > 0 && ($0 + 1) % pattern != 0 }
        }
    }

    static func parseHFRopeScaling(_ rope: JSONValue?, family: Family, config: JSONValue, rotaryDim: Int) throws -> RopeScaling {
        guard let rope, !rope.isNull else { return .none }
        var kind = rope["rope_type"]?.string ?? rope["type"]?.string ?? "default"
        kind = family.spec.hfRopeTypeAliases[kind] ?? kind
        switch kind {
        case "default": return .none
        case "linear":
            guard let f = rope["factor"]?.double, f > 0 else { throw ULLMEError.format("rope scaling linear: missing factor") }
            return .linear(factor: Float(f))
        case "llama3":
            guard let f = rope["factor"]?.double, let lo = rope["low_freq_factor"]?.double,
                  let hi = rope["high_freq_factor"]?.double, let orig = rope["original_max_position_embeddings"]?.int,
                  f > 0, hi > lo, orig > 0 else {
                throw ULLMEError.format("rope scaling llama3: needs factor, low_freq_factor < high_freq_factor, original_max_position_embeddings")
            }
            return .llama3(factor: Float(f), lowFreqFactor: Float(lo), highFreqFactor: Float(hi), originalMaxPositions: orig)
        case "longrope":
            let short = (rope["short_factor"]?.array ?? []).compactMap { $0.double.map(Float.init) }
            let long = (rope["long_factor"]?.array ?? []).compactMap { $0.double.map(Float.init) }
            // The top-level original_max_position_embeddings wins over the one inside the rope dict.
            guard let original = config["original_max_position_embeddings"]?.int ?? rope["original_max_position_embeddings"]?.int,
                  original > 0 else { throw ULLMEError.format("rope scaling longrope: missing original_max_position_embeddings") }
            var attention: Float = 1
            if let a = rope["attention_factor"]?.double {
                attention = Float(a)
            } else {
                let maxPos = Double(config["max_position_embeddings"]?.int ?? original)
                let factor = rope["factor"]?.double ?? maxPos / Double(original)
                if factor > 1 { attention = Float((1 + log(factor) / log(Double(original))).squareRoot()) }
            }
            return .longrope(short: short, long: long, originalMaxPositions: original, attentionFactor: attention)
        default:
            throw ULLMEError.unsupported("rope scaling type \"\(kind)\"")
        }
    }
}
