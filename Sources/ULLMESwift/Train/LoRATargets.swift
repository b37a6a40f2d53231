/// Where LoRA adapters attach inside a decoder layer. Our layers fuse projections (q|k|v, gate|up), so a
/// target names the fused product it adds to (`site`) and the output columns it covers there.
public enum LoRASite: Int, Sendable, CaseIterable {
    case qkv = 0     // input: attention norm output [T, C];  output: q | k | v
    case output = 1  // input: attention output [T, nH hd];    output: [T, C]
    case up = 2      // input: MLP norm output [T, C];         output: gate | up (or fc1)
    case down = 3    // input: MLP activation [T, I];           output: [T, C]
}

/// One LoRA target module of a layer, named as PEFT names it (`q_proj`, `qkv_proj`, `fc1`, ...).
public struct LoRATarget: Sendable, Equatable {
    public var name: String
    public var site: LoRASite
    public var columns: Range<Int>     // output columns inside the fused product
    public var inFeatures: Int
    public var outFeatures: Int { columns.count }
}

extension ModelConfig {
    /// Every linear layer of attention and MLP with its family's module name (docs/method.md §2), as the family table
    /// names them: fused projections (phi3's qkv_proj / gate_up_proj) get one adapter each, as PEFT does.
    public var loraTargets: [LoRATarget] {
        let C = hiddenSize, q = nHeads * headDim, kv = nKVHeads * headDim, I = intermediateSize
        let spec = family.spec
        var targets = spec.fusedProjections
            ? [LoRATarget(name: "qkv_proj", site: .qkv, columns: 0..<(q + 2 * kv), inFeatures: C)]
            : [LoRATarget(name: "q_proj", site: .qkv, columns: 0..<q, inFeatures: C),
               LoRATarget(name: "k_proj", site: .qkv, columns: q..<(q + kv), inFeatures: C),
               LoRATarget(name: "v_proj", site: .qkv, columns: (q + kv)..<(q + 2 * kv), inFeatures: C)]
        targets.append(LoRATarget(name: spec.outputProjection, site: .output, columns: 0..<C, inFeatures: q))
        if !gatedMLP {  // phi: fc1 / fc2
            return targets + [LoRATarget(name: "fc1", site: .up, columns: 0..<I, inFeatures: C),
                              LoRATarget(name: "fc2", site: .down, columns: 0..<C, inFeatures: I)]
        }
        targets += spec.fusedProjections
            ? [LoRATarget(name: "gate_up_proj", site: .up, columns: 0..<(2 * I), inFeatures: C)]
            : [LoRATarget(name: "gate_proj", site: .up, columns: 0..<I, inFeatures: C),
               LoRATarget(name: "up_proj", site: .up, columns: I..<(2 * I), inFeatures: C)]
        return targets + [LoRATarget(name: "down_proj", site: .down, columns: 0..<C, inFeatures: I)]
    }

    /// PEFT's module path of a target in layer `layer` (for adapter files). PEFT 0.21 saves keys relative
    /// to the wrapped model: on `AutoModel` (the decoder alone, what an embedding model loads; task_type
    /// FEATURE_EXTRACTION) that is `base_model.model.layers.{i}...`; on `AutoModelForCausalLM` the decoder
    /// sits under `.model`, giving `base_model.model.model.layers.{i}...` (`causalLM: true`).
    public func peftModuleName(layer: Int, target: LoRATarget, causalLM: Bool = false) -> String {
        let group = target.site == .qkv || target.site == .output ? "self_attn" : "mlp"
        return (causalLM ? "base_model.model.model.layers." : "base_model.model.layers.") + "\(layer).\(group).\(target.name)"
    }
}

/// The LoRA adapters of a whole model: adapters[layer][target index], targets as `ModelConfig.loraTargets`
/// (optionally filtered by name). Dropout masks are keyed by (seed, step, example, layer, target).
public final class LoRAModel: @unchecked Sendable {
    public let targets: [LoRATarget]
    public var adapters: [[LoRAAdapter]]
    public var seed: UInt64
    /// The optimiser step (part of the dropout key); set by the trainer before each step.
    public var step: UInt64 = 0
    /// Training mode draws dropout masks; eval mode (false) applies none.
    public var training = true

    public init(config: ModelConfig, rank: Int = 16, alpha: Float = 32, dropout: Float = 0.1, seed: UInt64 = 0,
                targetNames: Set<String>? = nil) {
        let targets = config.loraTargets.filter { targetNames?.contains($0.name) ?? true }
        self.targets = targets
        self.seed = seed
        adapters = (0..<config.nLayers).map { layer in
            targets.enumerated().map { ti, t in
                LoRAAdapter(inFeatures: t.inFeatures, outFeatures: t.outFeatures, rank: rank, alpha: alpha, dropout: dropout,
                            init: KeyedRandom(seed: seed, step: UInt64.max, example: UInt64.max, layer: UInt32(layer),
                                              site: RandomSite(module: UInt32(ti), pass: 15)))
            }
        }
    }

    /// Given adapters (e.g. loaded from a file): adapters[layer][i] belongs to targets[i].
    public init(targets: [LoRATarget], adapters: [[LoRAAdapter]], seed: UInt64 = 0) {
        precondition(adapters.allSatisfy { $0.count == targets.count })
        self.targets = targets
        self.adapters = adapters
        self.seed = seed
    }

    /// Several adapters applied together (inference): per target, the ranks are concatenated, A = [A1; A2; ...]
    /// and B = [s1 B1 | s2 B2 | ...] with scale 1, so y = W x + Σ s_i B_i A_i x: the same as merging each adapter
    /// into the weights before the next (no dropout).
    public convenience init(stacking models: [LoRAModel], config: ModelConfig) {
        let targets = config.loraTargets.filter { t in models.contains { $0.targets.contains(t) } }
        let adapters = (0..<config.nLayers).map { layer in
            targets.map { t -> LoRAAdapter in
                let parts = models.compactMap { m in m.targets.firstIndex(of: t).map { m.adapters[layer][$0] } }
                let R = parts.reduce(0) { $0 + $1.rank }, out = t.outFeatures
                var b = [Float](repeating: 0, count: out * R)
                var col = 0
                for p in parts {
                    for o in 0..<out { for k in 0..<p.rank { b[o * R + col + k] = p.scale * p.b[o * p.rank + k] } }
                    col += p.rank
                }
                return LoRAAdapter(inFeatures: t.inFeatures, outFeatures: out, rank: R, alpha: Float(R), dropout: 0,
                                   a: parts.flatMap(\.a), b: b)
            }
        }
        self.init(targets: targets, adapters: adapters, seed: models.first?.seed ?? 0)
    }

    var parameterCount: Int { adapters.joined().reduce(0) { $0 + $1.a.count + $1.b.count } }

    /// The dropout mask of one example at one target (nil in eval mode or with p = 0).
    func mask(layer: Int, target: Int, example: Int, pass: UInt32, T: Int) -> [Float]? {
        guard training else { return nil }
        let adapter = adapters[layer][target]
        let rng = KeyedRandom(seed: seed, step: step, example: UInt64(example), layer: UInt32(layer),
                              site: RandomSite(module: UInt32(target), pass: pass))
        return adapter.dropoutMask(rng, T: T)
    }
}

/// Gradients of every LoRA A and B, same layout as `LoRAModel.adapters`.
public struct LoRAGradients: Sendable {
    public var dA: [[[Float]]]
    public var dB: [[[Float]]]
    public init(_ lora: LoRAModel) {
        dA = lora.adapters.map { $0.map { [Float](repeating: 0, count: $0.a.count) } }
        dB = lora.adapters.map { $0.map { [Float](repeating: 0, count: $0.b.count) } }
    }
}
