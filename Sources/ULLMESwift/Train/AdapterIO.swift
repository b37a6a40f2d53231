import Glibc

// LoRA adapters on disk, in PEFT's format (what `PeftModel.save_pretrained` writes and
// `PeftModel.from_pretrained(AutoModel.from_pretrained(base), dir)` loads), plus our projection head:
//
//   dir/adapter_config.json          peft_type LORA, task_type FEATURE_EXTRACTION, r, lora_alpha, ...
//   dir/adapter_model.safetensors    base_model.model.layers.{i}.{self_attn|mlp}.{module}.lora_A.weight [r, in]
//                                    base_model.model.layers.{i}.{self_attn|mlp}.{module}.lora_B.weight [out, r]
//   dir/projection_head.safetensors  0.weight [d, d], 0.bias [d], 2.weight [d, d], 2.bias [d]
//                                    (the names of nn.Sequential(Linear, ReLU, Linear)'s state_dict)
//
// Key names were checked against PEFT 0.21.2: it strips the adapter name ("default") when saving, and keys
// are relative to the wrapped model, so an adapter made on AutoModel (LlamaModel, ...) has
// `base_model.model.layers.…` while one made on AutoModelForCausalLM has `base_model.model.model.layers.…`.
// A CAUSAL_LM adapter does not load onto AutoModel (PeftModelForCausalLM needs generation methods), so we
// write FEATURE_EXTRACTION with the AutoModel keys; we read both forms.
//
// Q/K row order: our in-memory weights are always in the Hugging Face layout. A GGUF llama/mistral stores
// Q and K with the two rotary halves of every head interleaved (llama.cpp's converter permutes them), and
// DecoderWeights.unpermuteRotary undoes that at load, so row j of our fused Q (and K) block is row j of
// HF's q_proj (k_proj) whatever file the model came from. LoRA's B rows index those same output features
// (the adapter adds to the projection output before RoPE), so an adapter trained here on a GGUF model is
// a valid adapter for the HF checkpoint and vice versa, with no permutation of lora_B.

/// An adapter read from disk.
public struct LoadedAdapter: Sendable {
    public var lora: LoRAModel
    public var head: ProjectionHead?
    /// `base_model_name_or_path` of adapter_config.json (nil when absent).
    public var baseModelNameOrPath: String?
}

public enum AdapterIO {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"
    public static let headFileName = "projection_head.safetensors"

    // MARK: export

    /// Writes `lora` (and `head`, when given) into `dir` (created if needed) in PEFT's format. Every file is
    /// written atomically. Without a head, a projection_head.safetensors left in `dir` is removed so the
    /// directory never pairs an adapter with a stale head. All adapters must share rank, alpha and dropout
    /// (PEFT's rank_pattern / alpha_pattern are not written).
    public static func export(_ lora: LoRAModel, head: ProjectionHead? = nil, config: ModelConfig, to dir: String,
                              baseModelNameOrPath: String = "") throws {
        guard lora.adapters.count == config.nLayers else {
            throw ULLMEError.argument("the LoRA model has \(lora.adapters.count) layers, the model config \(config.nLayers)")
        }
        let known = config.loraTargets
        for t in lora.targets {
            guard let k = known.first(where: { $0.name == t.name }), k.site == t.site, k.columns == t.columns,
                  k.inFeatures == t.inFeatures else {
                throw ULLMEError.argument("LoRA target \(t.name) does not match this model's \(t.name)")
            }
        }
        let all = lora.adapters.joined()
        guard let first = all.first else { throw ULLMEError.argument("the LoRA model has no adapters") }
        guard all.allSatisfy({ $0.rank == first.rank && $0.alpha == first.alpha && $0.dropout == first.dropout }) else {
            throw ULLMEError.unsupported("adapters with different ranks, alphas or dropouts (PEFT rank_pattern) cannot be exported")
        }
        if let head, head.dim != config.hiddenSize {
            throw ULLMEError.argument("projection head of dimension \(head.dim) for a model of hidden size \(config.hiddenSize)")
        }
        try makeDirectories(dir)

        var tensors: [SafetensorsWriter.Tensor] = []
        for (layer, row) in lora.adapters.enumerated() {
            for (ti, a) in row.enumerated() {
                let t = lora.targets[ti]
                precondition(a.inFeatures == t.inFeatures && a.outFeatures == t.outFeatures)
                let m = config.peftModuleName(layer: layer, target: t)
                tensors.append(.init(name: m + ".lora_A.weight", shape: [a.rank, a.inFeatures], data: a.a))
                tensors.append(.init(name: m + ".lora_B.weight", shape: [a.outFeatures, a.rank], data: a.b))
            }
        }
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: dir + "/" + weightsFileName)

        let targetNames = Set(lora.targets.map(\.name)).sorted()
        let fields: [(String, String)] = [
            ("alpha_pattern", "{}"),
            ("base_model_name_or_path", jsonString(baseModelNameOrPath)),
            ("bias", jsonString("none")),
            ("fan_in_fan_out", "false"),
            ("inference_mode", "true"),
            ("init_lora_weights", "true"),
            ("layers_to_transform", "null"),
            ("lora_alpha", jsonNumber(first.alpha)),
            ("lora_bias", "false"),
            ("lora_dropout", jsonNumber(first.dropout)),
            ("modules_to_save", "null"),
            ("peft_type", jsonString("LORA")),
            ("r", String(first.rank)),
            ("rank_pattern", "{}"),
            ("revision", "null"),
            ("target_modules", "[" + targetNames.map(jsonString).joined(separator: ", ") + "]"),
            ("task_type", jsonString("FEATURE_EXTRACTION")),
            ("use_dora", "false"),
            ("use_rslora", "false"),
        ]
        let json = "{\n" + fields.map { "  " + jsonString($0.0) + ": " + $0.1 }.joined(separator: ",\n") + "\n}\n"
        try writeFileAtomically(dir + "/" + configFileName, Array(json.utf8))

        let headPath = dir + "/" + headFileName
        if let head {
            let d = head.dim
            try SafetensorsWriter.write([.init(name: "0.weight", shape: [d, d], data: head.w1),
                                         .init(name: "0.bias", shape: [d], data: head.b1),
                                         .init(name: "2.weight", shape: [d, d], data: head.w2),
                                         .init(name: "2.bias", shape: [d], data: head.b2)],
                                        metadata: ["format": "pt"], to: headPath)
        } else if access(headPath, F_OK) == 0 {
            guard unlink(headPath) == 0 else {
                throw ULLMEError.io("\(headPath): cannot remove the stale head: \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: import

    /// Reads a PEFT LoRA adapter directory for a model of `config` (and projection_head.safetensors, if
    /// present). Targets with no tensors in the file get no adapter (absent from `lora.targets`); a target
    /// present in some layers only gets a zero adapter (A = B = 0) in the others. use_rslora (scale
    /// alpha/√r) is folded into the adapters' alpha (alpha·√r, so alpha/r is PEFT's scale). Unknown keys,
    /// shapes that do not fit the model and PEFT options that change the computation (fan_in_fan_out,
    /// DoRA, bias, rank/alpha patterns) are errors.
    public static func load(from dir: String, config: ModelConfig) throws -> LoadedAdapter {
        let configPath = dir + "/" + configFileName
        let cfg = try JSONValue.read(file: configPath)
        guard cfg.object != nil else { throw ULLMEError.format("\(configPath): not a JSON object") }
        func bad(_ m: String) -> ULLMEError { .format("\(configPath): \(m)") }
        func flag(_ key: String) throws -> Bool {
            guard let v = cfg[key], !v.isNull else { return false }
            guard let b = v.bool else { throw bad("\"\(key)\" must be true or false") }
            return b
        }
        guard let peftType = cfg["peft_type"]?.string else { throw bad("no \"peft_type\"") }
        guard peftType == "LORA" else { throw ULLMEError.unsupported("\(configPath): peft_type \(peftType) (only LORA is supported)") }
        guard let r = cfg["r"]?.int, r >= 1 else { throw bad("\"r\" must be a positive integer") }
        let alpha: Double
        if let v = cfg["lora_alpha"], !v.isNull {
            guard let a = v.double, a.isFinite else { throw bad("\"lora_alpha\" must be a number") }
            alpha = a
        } else { alpha = 8 }   // PEFT's default
        var dropout: Double = 0
        if let v = cfg["lora_dropout"], !v.isNull {
            guard let p = v.double, p >= 0, p < 1 else { throw bad("\"lora_dropout\" must be a number in [0, 1)") }
            dropout = p
        }
        if try flag("fan_in_fan_out") {
            throw ULLMEError.unsupported("\(configPath): fan_in_fan_out is true (GPT-2-style Conv1D weights); this engine's layers are Linear")
        }
        if try flag("use_dora") { throw ULLMEError.unsupported("\(configPath): DoRA adapters (use_dora) are not supported") }
        if try flag("lora_bias") { throw ULLMEError.unsupported("\(configPath): lora_bias adapters are not supported") }
        if let b = cfg["bias"], !b.isNull, b.string != "none" {
            throw ULLMEError.unsupported("\(configPath): bias \(b.string.map { "\"\($0)\"" } ?? "?") (only \"none\" is supported)")
        }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let v = cfg[key], !v.isNull, !(v.object?.isEmpty ?? false) {
                throw ULLMEError.unsupported("\(configPath): a non-empty \(key) (per-module ranks/alphas) is not supported")
            }
        }
        if let v = cfg["modules_to_save"], !v.isNull, !(v.array?.isEmpty ?? false) {
            throw ULLMEError.unsupported("\(configPath): modules_to_save (fully trained extra modules) is not supported")
        }
        let rslora = try flag("use_rslora")
        // PEFT's scale is alpha/r, or alpha/√r with rsLoRA; LoRAAdapter computes alpha/r.
        let effectiveAlpha = Float(rslora ? alpha * Double(r).squareRoot() : alpha)

        let weightsPath = dir + "/" + weightsFileName
        let file = try SafetensorsFile(path: weightsPath)
        let known = config.loraTargets
        var aW: [String: [Int: [Float]]] = [:], bW: [String: [Int: [Float]]] = [:]
        for t in file.tensors {
            guard let (layer, target, isA) = parseKey(t.name, targets: known), layer < config.nLayers else {
                throw ULLMEError.format("\(weightsPath): unexpected tensor \"\(t.name)\" for a \(config.architecture) model of "
                    + "\(config.nLayers) layers (expected base_model.model.[model.]layers.{i}.{self_attn|mlp}.{"
                    + known.map(\.name).joined(separator: "|") + "}.lora_{A|B}.weight)")
            }
            let shape = isA ? [r, target.inFeatures] : [target.outFeatures, r]
            guard t.shape == shape else {
                throw ULLMEError.format("\(weightsPath): \(t.name) has shape \(t.shape), expected \(shape) (r = \(r))")
            }
            var v = [Float](repeating: 0, count: t.count)
            try v.withUnsafeMutableBufferPointer { try dequantize(t, into: $0) }
            if isA { aW[target.name, default: [:]][layer] = v } else { bW[target.name, default: [:]][layer] = v }
        }
        let present = known.filter { aW[$0.name] != nil || bW[$0.name] != nil }
        guard !present.isEmpty else { throw ULLMEError.format("\(weightsPath): no LoRA tensors") }
        var adapters: [[LoRAAdapter]] = []
        for layer in 0..<config.nLayers {
            adapters.append(try present.map { t in
                let a = aW[t.name]?[layer], b = bW[t.name]?[layer]
                guard (a == nil) == (b == nil) else {
                    throw ULLMEError.format("\(weightsPath): layer \(layer) \(t.name) has lora_\(a == nil ? "B" : "A") but not lora_\(a == nil ? "A" : "B")")
                }
                return LoRAAdapter(inFeatures: t.inFeatures, outFeatures: t.outFeatures, rank: r, alpha: effectiveAlpha,
                                   dropout: Float(dropout),
                                   a: a ?? [Float](repeating: 0, count: r * t.inFeatures),
                                   b: b ?? [Float](repeating: 0, count: t.outFeatures * r))
            })
        }
        let lora = LoRAModel(targets: present, adapters: adapters)

        var head: ProjectionHead?
        let headPath = dir + "/" + headFileName
        if access(headPath, F_OK) == 0 {
            let hf = try SafetensorsFile(path: headPath)
            let d = config.hiddenSize
            let expected: [String: [Int]] = ["0.weight": [d, d], "0.bias": [d], "2.weight": [d, d], "2.bias": [d]]
            var w: [String: [Float]] = [:]
            for t in hf.tensors {
                guard let shape = expected[t.name] else {
                    throw ULLMEError.format("\(headPath): unexpected tensor \"\(t.name)\" (expected 0.weight, 0.bias, 2.weight, 2.bias)")
                }
                guard t.shape == shape else { throw ULLMEError.format("\(headPath): \(t.name) has shape \(t.shape), expected \(shape)") }
                var v = [Float](repeating: 0, count: t.count)
                try v.withUnsafeMutableBufferPointer { try dequantize(t, into: $0) }
                w[t.name] = v
            }
            guard let w1 = w["0.weight"], let b1 = w["0.bias"], let w2 = w["2.weight"], let b2 = w["2.bias"] else {
                throw ULLMEError.format("\(headPath): needs 0.weight, 0.bias, 2.weight and 2.bias")
            }
            head = ProjectionHead(dim: d, w1: w1, b1: b1, w2: w2, b2: b2)
        }
        return LoadedAdapter(lora: lora, head: head, baseModelNameOrPath: cfg["base_model_name_or_path"]?.string)
    }

    /// (layer, target, isA) of `base_model.model.[model.]layers.{i}.{group}.{module}.lora_{A|B}.weight`.
    static func parseKey(_ key: String, targets: [LoRATarget]) -> (Int, LoRATarget, Bool)? {
        var parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0] == "base_model", parts[1] == "model" else { return nil }
        parts.removeFirst(2)
        if parts.first == "model" { parts.removeFirst() }
        guard parts.count == 6, parts[0] == "layers", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
              parts[4] == "lora_A" || parts[4] == "lora_B", parts[5] == "weight",
              let t = targets.first(where: { $0.name == parts[3] }) else { return nil }
        let group = t.site == .qkv || t.site == .output ? "self_attn" : "mlp"
        guard parts[2] == group else { return nil }
        return (layer, t, parts[4] == "lora_A")
    }
}

/// A JSON number for a Float: an integer when integral (PEFT's lora_alpha is usually an int), else the
/// shortest decimal that reads back as the same Float.
func jsonNumber(_ x: Float) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return x.description
}

/// mkdir -p.
func makeDirectories(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw ULLMEError.io("\(prefix): cannot create the directory: \(String(cString: strerror(errno)))")
        }
        prefix += "/"
    }
    var st = stat()
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { throw ULLMEError.io("\(path): not a directory") }
}
