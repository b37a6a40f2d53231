/// The backbone families (docs/method.md §1, plus qwen3), one decoder with per-family knobs.
/// Everything that tells one family from another lives in this file: the names files give it, the config
/// keys only it reads, its tensors' names and layouts (`FamilySpec`), its knobs (`applyFamilyDefaults`) and
/// which layers slide. Adding a family means a case here, its row in `spec` and its knobs; the config readers,
/// the weight loader, the LoRA targets and training follow.
public enum Family: String, Sendable, CaseIterable {
    case llama, mistral, qwen2, qwen3, phi, phi3, gemma2, gemma3

    /// The family table.
    var spec: FamilySpec {
        switch self {
        case .llama: FamilySpec(hfModelTypes: ["llama"], ggufArchitectures: ["llama"], hfSliding: .none, ggufSliding: .all,
                                readsAttentionBias: true, readsMLPBias: true, ggufRotaryPermuted: true)
        case .mistral: FamilySpec(hfModelTypes: ["mistral"], ggufArchitectures: ["mistral"], hfSliding: .all, ggufSliding: .all,
                                  ggufRotaryPermuted: true)
        case .qwen2: FamilySpec(hfModelTypes: ["qwen2"], ggufArchitectures: ["qwen2"], hfSliding: .fromMaxWindowLayers, ggufSliding: .none)
        // Qwen3 (Qwen3-Embedding too): qwen2 without q/k/v biases (attention_bias, default false) and with an
        // RMSNorm over head_dim on q and k before RoPE; head_dim is explicit (128 with hidden 1024 / 16 heads).
        case .qwen3: FamilySpec(hfModelTypes: ["qwen3"], ggufArchitectures: ["qwen3"], hfSliding: .fromMaxWindowLayers,
                                ggufSliding: .none, readsAttentionBias: true)
        case .phi: FamilySpec(hfModelTypes: ["phi"], ggufArchitectures: ["phi2"], hfSliding: .none, ggufSliding: .none,
                              hfUnsupportedFlags: ["qk_layernorm": "phi's q/k LayerNorm"],
                              outputProjection: "dense", hfFinalNorm: "model.final_layernorm")
        case .phi3: FamilySpec(hfModelTypes: ["phi3"], ggufArchitectures: ["phi3"], hfSliding: .all, ggufSliding: .all,
                               hfRopeTypeAliases: ["su": "longrope", "yarn": "longrope"], ggufLongRope: true,
                               fusedProjections: true)
        case .gemma2: FamilySpec(hfModelTypes: ["gemma2"], ggufArchitectures: ["gemma2"], hfSliding: .alternating, ggufSliding: .alternating,
                                 readsQueryPreAttnScalar: true, readsAttentionSoftcap: true, readsFinalSoftcap: true,
                                 hfNormsStoreOffset: true, tiesEmbeddingsByDefault: true)
        case .gemma3: FamilySpec(hfModelTypes: ["gemma3_text"], ggufArchitectures: ["gemma3"], hfSliding: .pattern(6), ggufSliding: .pattern(6),
                                 readsQueryPreAttnScalar: true, readsFinalSoftcap: true, hasLocalRope: true,
                                 hfUnsupportedFlags: ["use_bidirectional_attention": "EmbeddingGemma's bidirectional sliding windows"],
                                 hfNormsStoreOffset: true, tiesEmbeddingsByDefault: true)
        }
    }

    /// The family a config.json `model_type` / a GGUF `general.architecture` names (nil: unsupported).
    static func named(hf type: String) -> Family? { allCases.first { $0.spec.hfModelTypes.contains(type) } }
    static func named(gguf arch: String) -> Family? { allCases.first { $0.spec.ggufArchitectures.contains(arch) } }
    static var hfNames: [String] { allCases.flatMap(\.spec.hfModelTypes).sorted() }
    static var ggufNames: [String] { allCases.flatMap(\.spec.ggufArchitectures).sorted() }
}

/// Which layers of a family slide (causal mode only), as transformers / llama.cpp decide it.
enum SlidingRule: Equatable {
    case none                 // never (a window in the file is ignored)
    case all                  // a non-null window applies to every layer
    case fromMaxWindowLayers  // qwen: only with use_sliding_window, layer i slides iff i >= max_window_layers (or layer_types)
    case alternating          // gemma2: layers 0, 2, 4, ... (or layer_types)
    case pattern(Int)         // gemma3: every layer but each n-th (sliding_window_pattern, or layer_types)
}

/// One row of the family table: the names files give a family and the rules that are not knobs.
struct FamilySpec {
    var hfModelTypes: [String]
    var ggufArchitectures: [String]
    var hfSliding: SlidingRule
    var ggufSliding: SlidingRule
    // Config keys only some families read (config.json; the GGUF reader reads the same facts under `<arch>.`).
    /// config.json's `attention_bias` turns q/k/v/o biases on.
    var readsAttentionBias = false
    /// config.json's `mlp_bias` turns the MLP biases on.
    var readsMLPBias = false
    /// `query_pre_attn_scalar` s: attention scale 1/sqrt(s) instead of 1/sqrt(head_dim).
    var readsQueryPreAttnScalar = false
    /// `attn_logit_softcapping` / `final_logit_softcapping`: tanh soft-caps of attention scores / LM logits.
    var readsAttentionSoftcap = false
    var readsFinalSoftcap = false
    /// Sliding layers rotate with their own base: config.json `rope_local_base_freq` (or
    /// rope_parameters.sliding_attention.rope_theta), 10000 for a GGUF (llama.cpp fixes it).
    var hasLocalRope = false
    /// config.json flags (key: what it turns on) this family's decoder does not implement: true is refused.
    var hfUnsupportedFlags: [String: String] = [:]
    /// Older names of a rope scaling type in config.json (phi3's su / yarn are longrope).
    var hfRopeTypeAliases: [String: String] = [:]
    /// GGUF `rope.scaling.original_context_length` means longrope, its factors stored as tensors.
    var ggufLongRope = false
    // Tensor names and layouts (DecoderWeights; the LoRA targets name the same modules, as PEFT does).
    /// llama.cpp's converter permutes the q/k rows of llama/mistral (interleaved rotary pairs); undone at load.
    var ggufRotaryPermuted = false
    /// The attention output module: HF `self_attn.<name>` and the PEFT target.
    var outputProjection = "o_proj"
    /// The HF name of the final norm.
    var hfFinalNorm = "model.norm"
    /// The HF files fuse q|k|v (`self_attn.qkv_proj`) and gate|up (`mlp.gate_up_proj`), and PEFT targets those.
    var fusedProjections = false
    /// HF gemma stores norm weights w and computes (1 + w); llama.cpp's converter already added the 1.
    var hfNormsStoreOffset = false
    /// `tie_word_embeddings` when config.json does not say.
    var tiesEmbeddingsByDefault = false
}

/// How a normalisation layer computes (gemma's (1 + w) is folded into the weight at load).
public enum NormKind: String, Sendable { case rms, layer }

/// How the attention and MLP branches are arranged inside a layer.
public enum BlockKind: String, Sendable {
    case sequential  // x += attn(norm1(x)); x += mlp(norm2(x))                     (llama, mistral, qwen2, phi3)
    case parallel    // n = norm(x); x += attn(n) + mlp(n)                           (phi)
    case sandwich    // x += post1(attn(norm1(x))); x += post2(mlp(norm2(x)))        (gemma2, gemma3)
}

public enum Activation: String, Sendable { case silu, geluTanh = "gelu_tanh" }

/// The hyper-parameters of a decoder, read from config.json or GGUF metadata.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: String          // as the file names it (e.g. "llama", "gemma3_text")
    public var family: Family
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

    // Family knobs (defaults are the Llama values).
    public var norm = NormKind.rms
    public var block = BlockKind.sequential
    public var activation = Activation.silu
    public var gatedMLP = true                 // gate/up/down (false: fc1/fc2 as phi)
    public var qkvBias = false
    public var outputBias = false              // o_proj / dense
    public var mlpBias = false
    public var lmHeadBias = false
    public var qkNorm = false                  // gemma3: RMSNorm over head_dim on q and k before RoPE
    public var rotaryDim = 0                   // 0 = head_dim
    public var attentionScale: Float = 0       // 0 = 1/sqrt(head_dim)
    public var attentionSoftcap: Float? = nil
    public var finalLogitSoftcap: Float? = nil
    public var embeddingScale: Float? = nil    // gemma: float32(sqrt(hidden))
    public var slidingWindow: Int? = nil       // causal mode only; bidirectional ignores it (as the reference)
    public var slidingLayers: [Bool] = []      // per layer; empty = none
    public var localRopeTheta: Float? = nil    // gemma3: theta of sliding layers (no scaling there)

    public var effectiveRotaryDim: Int { rotaryDim == 0 ? headDim : rotaryDim }
    public var effectiveAttentionScale: Float { attentionScale == 0 ? 1 / Float(headDim).squareRoot() : attentionScale }
    public func isSliding(layer: Int) -> Bool { layer < slidingLayers.count && slidingLayers[layer] && slidingWindow != nil }

    /// Checks the invariants the decoder relies on; a hostile file must not reach an out-of-bounds index.
    func validate() throws {
        func require(_ ok: Bool, _ what: String) throws { if !ok { throw ULLMEError.format("model config: \(what)") } }
        try validateDimensions()
        try require(nKVHeads > 0 && nHeads % nKVHeads == 0, "num_key_value_heads \(nKVHeads) must divide num_attention_heads \(nHeads)")
        try require(headDim > 0 && headDim % 2 == 0 && headDim <= 1024, "head_dim \(headDim) must be even and positive")
        try require(rotaryDim >= 0 && rotaryDim <= headDim && rotaryDim % 2 == 0, "rotary dim \(rotaryDim) must be even and <= head_dim")
        try require(maxPositions > 0, "max_position_embeddings \(maxPositions) must be positive")
        try require(normEps > 0 && normEps < 1, "norm epsilon \(normEps) out of range")
        try require(ropeTheta > 0, "rope_theta \(ropeTheta) must be positive")
        try require(slidingWindow.map { $0 > 0 } ?? true, "sliding_window must be positive")
        try require(attentionSoftcap.map { $0 > 0 } ?? true, "attn_logit_softcapping must be positive")
        try require(finalLogitSoftcap.map { $0 > 0 } ?? true, "final_logit_softcapping must be positive")
        if case .longrope(let short, let long, let original, _) = ropeScaling {
            try require(short.count == effectiveRotaryDim / 2 && long.count == effectiveRotaryDim / 2,
                        "longrope factors need \(effectiveRotaryDim / 2) values each")
            try require(original > 0, "original_max_position_embeddings must be positive")
        }
    }

    /// The bounds of the sizes read from a file, checked by the readers before anything is allocated
    /// from them (per-layer arrays, DecoderWeights); `validate()` checks everything else at the end.
    func validateDimensions() throws {
        func require(_ ok: Bool, _ what: String) throws { if !ok { throw ULLMEError.format("model config: \(what)") } }
        try require(nLayers > 0 && nLayers <= 1024, "num_hidden_layers \(nLayers) out of range")
        try require(hiddenSize > 0 && hiddenSize <= 65536, "hidden_size \(hiddenSize) out of range")
        try require(nHeads > 0 && nHeads <= 1024, "num_attention_heads \(nHeads) out of range")
        try require(intermediateSize > 0 && intermediateSize <= 1 << 20, "intermediate_size \(intermediateSize) out of range")
        try require(vocabSize > 0 && vocabSize <= 1 << 24, "vocab_size \(vocabSize) out of range")
    }

    /// The family's knobs, given its name and the dimensions already known.
    mutating func applyFamilyDefaults() {
        switch family {
        case .llama, .mistral: break
        case .qwen2: qkvBias = true
        case .qwen3: qkNorm = true
        case .phi:
            norm = .layer; block = .parallel; activation = .geluTanh; gatedMLP = false
            qkvBias = true; outputBias = true; mlpBias = true; lmHeadBias = true
        case .phi3: break
        case .gemma2, .gemma3:
            block = .sandwich; activation = .geluTanh
            embeddingScale = Float(Double(hiddenSize).squareRoot())
            qkNorm = family == .gemma3
        }
    }
}

extension ModelConfig {
    /// The detected family and every knob that differs from plain Llama, one "key: value" per line
    /// (printed by `ullme info`).
    public var knobsDescription: String {
        var lines = ["family: \(family.rawValue) (file architecture \"\(architecture)\")",
                     "norm: \(norm.rawValue), eps \(normEps)", "block: \(block.rawValue)",
                     "mlp: \(gatedMLP ? "gated" : "fc1/fc2"), \(activation.rawValue)",
                     "rope: theta \(ropeTheta), rotary dims \(effectiveRotaryDim) of \(headDim), scaling \(ropeScaling.name)",
                     "attention scale: \(effectiveAttentionScale)"]
        var biases: [String] = []
        if qkvBias { biases.append("qkv") }
        if outputBias { biases.append("output") }
        if mlpBias { biases.append("mlp") }
        if lmHeadBias { biases.append("lm_head") }
        lines.append("biases: \(biases.isEmpty ? "none" : biases.joined(separator: ", "))")
        if qkNorm { lines.append("q/k norm: yes") }
        if let w = slidingWindow {
            let n = (0..<nLayers).filter { isSliding(layer: $0) }.count
            lines.append("sliding window: \(w) on \(n) of \(nLayers) layers (causal mode only)")
        }
        if let t = localRopeTheta { lines.append("local rope theta: \(t)") }
        if let c = attentionSoftcap { lines.append("attention soft-cap: \(c)") }
        if let c = finalLogitSoftcap { lines.append("final logit soft-cap: \(c)") }
        if let s = embeddingScale { lines.append("embedding scale: \(s)") }
        lines.append("tied embeddings: \(tieWordEmbeddings)")
        return lines.joined(separator: "\n")
    }
}

extension RopeScaling {
    var name: String {
        switch self {
        case .none: return "none"
        case .linear(let f): return "linear x\(f)"
        case .llama3(let f, _, _, let o): return "llama3 x\(f) (original \(o))"
        case .longrope(_, _, let o, let a): return "longrope (original \(o), attention factor \(a))"
        }
    }
}
