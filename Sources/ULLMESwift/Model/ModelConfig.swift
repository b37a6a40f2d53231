/// The hyper-parameters of a decoder, read from config.json or GGUF metadata.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: String
    public var hiddenSize: Int
    public var nLayers: Int
    public var nHeads: Int
    public var nKVHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var maxPositions: Int
    public var normEps: Float
    public var ropeTheta: Float
    public var ropeScaling: RopeScaling
    public var tieWordEmbeddings: Bool

    public static let supportedArchitectures: Set<String> = ["llama"]

    /// Checks the invariants the decoder relies on; a hostile file must not reach an out-of-bounds index.
    func validate() throws {
        func require(_ ok: Bool, _ what: String) throws { if !ok { throw ULLMEError.format("model config: \(what)") } }
        try require(hiddenSize > 0 && hiddenSize <= 65536, "hidden_size \(hiddenSize) out of range")
        try require(nLayers > 0 && nLayers <= 1024, "num_hidden_layers \(nLayers) out of range")
        try require(nHeads > 0 && nHeads <= 1024, "num_attention_heads \(nHeads) out of range")
        try require(nKVHeads > 0 && nHeads % nKVHeads == 0, "num_key_value_heads \(nKVHeads) must divide num_attention_heads \(nHeads)")
        try require(headDim > 0 && headDim % 2 == 0 && headDim <= 1024, "head_dim \(headDim) must be even and positive")
        try require(intermediateSize > 0 && intermediateSize <= 1 << 20, "intermediate_size \(intermediateSize) out of range")
        try require(vocabSize > 0 && vocabSize <= 1 << 24, "vocab_size \(vocabSize) out of range")
        try require(maxPositions > 0, "max_position_embeddings \(maxPositions) must be positive")
        try require(normEps > 0 && normEps < 1, "norm epsilon \(normEps) out of range")
        try require(ropeTheta > 0, "rope_theta \(ropeTheta) must be positive")
    }

    /// From a Hugging Face config.json (transformers 4.x `rope_scaling`/`rope_theta` or 5.x `rope_parameters`).
    public static func fromHF(_ json: JSONValue) throws -> ModelConfig {
        func int(_ key: String) throws -> Int {
            guard let v = json[key]?.int else { throw ULLMEError.format("config.json: missing or non-integer \"\(key)\"") }
            return v
        }
        guard let type = json["model_type"]?.string else { throw ULLMEError.format("config.json: missing \"model_type\"") }
        guard supportedArchitectures.contains(type) else {
            throw ULLMEError.unsupported("architecture \"\(type)\" (supported: \(supportedArchitectures.sorted().joined(separator: ", ")))")
        }
        for key in ["attention_bias", "mlp_bias"] where json[key]?.bool == true {
            throw ULLMEError.unsupported("config.json: \(key) = true is not supported for \(type)")
        }
        if let act = json["hidden_act"]?.string, act != "silu" {
            throw ULLMEError.unsupported("config.json: hidden_act \"\(act)\" (llama supports silu)")
        }
        let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
        let rope = json["rope_parameters"] ?? json["rope_scaling"]
        let theta = rope?["rope_theta"]?.double ?? json["rope_theta"]?.double ?? 10000
        var config = ModelConfig(
            architecture: type, hiddenSize: hidden, nLayers: try int("num_hidden_layers"), nHeads: heads,
            nKVHeads: json["num_key_value_heads"]?.int ?? heads,
            headDim: json["head_dim"]?.int ?? (heads > 0 ? hidden / heads : 0),
            intermediateSize: try int("intermediate_size"), vocabSize: try int("vocab_size"),
            maxPositions: json["max_position_embeddings"]?.int ?? 2048,
            normEps: Float(json["rms_norm_eps"]?.double ?? 1e-6), ropeTheta: Float(theta),
            ropeScaling: try parseHFRopeScaling(rope),
            tieWordEmbeddings: json["tie_word_embeddings"]?.bool ?? false)
        if config.architecture == "llama", json["pretraining_tp"]?.int ?? 1 != 1 {
            throw ULLMEError.unsupported("config.json: pretraining_tp != 1")
        }
        try config.validate()
        config.architecture = type
        return config
    }

    static func parseHFRopeScaling(_ rope: JSONValue?) throws -> RopeScaling {
        guard let rope, !rope.isNull else { return .none }
        let kind = rope["rope_type"]?.string ?? rope["type"]?.string ?? "default"
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
        default:
            throw ULLMEError.unsupported("rope scaling type \"\(kind)\"")
        }
    }

    /// From GGUF metadata (llama.cpp key names: `{arch}.embedding_length`, ...).
    public static func fromGGUF(_ meta: [String: GGUFValue], vocabSizeFallback: Int) throws -> ModelConfig {
        guard let arch = meta["general.architecture"]?.string else { throw ULLMEError.format("GGUF: missing general.architecture") }
        guard supportedArchitectures.contains(arch) else {
            throw ULLMEError.unsupported("architecture \"\(arch)\" (supported: \(supportedArchitectures.sorted().joined(separator: ", ")))")
        }
        func int(_ key: String) throws -> Int {
            guard let v = meta["\(arch).\(key)"]?.int else { throw ULLMEError.format("GGUF: missing or non-integer \(arch).\(key)") }
            return v
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let headDim = meta["\(arch).attention.key_length"]?.int ?? (heads > 0 ? hidden / heads : 0)
        var scaling = RopeScaling.none
        if let type = meta["\(arch).rope.scaling.type"]?.string, type != "none" {
            guard type == "linear", let f = meta["\(arch).rope.scaling.factor"]?.double, f > 0 else {
                throw ULLMEError.unsupported("GGUF rope scaling type \"\(type)\"")
            }
            scaling = .linear(factor: Float(f))
        }
        if let rotary = meta["\(arch).rope.dimension_count"]?.int, rotary != headDim {
            throw ULLMEError.unsupported("GGUF: partial rotary (\(rotary) of \(headDim)) for \(arch)")
        }
        let config = ModelConfig(
            architecture: arch, hiddenSize: hidden, nLayers: try int("block_count"), nHeads: heads,
            nKVHeads: meta["\(arch).attention.head_count_kv"]?.int ?? heads, headDim: headDim,
            intermediateSize: try int("feed_forward_length"),
            vocabSize: meta["\(arch).vocab_size"]?.int ?? vocabSizeFallback,
            maxPositions: meta["\(arch).context_length"]?.int ?? 2048,
            normEps: Float(meta["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
            ropeTheta: Float(meta["\(arch).rope.freq_base"]?.double ?? 10000),
            ropeScaling: scaling, tieWordEmbeddings: false)
        try config.validate()
        return config
    }
}
