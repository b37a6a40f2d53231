/// The decoder's weights as dense float32, dequantised once at load (the exact mode: sgemm on
/// fp32 weights was measured faster here than dequantising per matmul for models of this size).
/// Linear weights are row-major [out, in]. Q, K, V are fused into one [(nH + 2 nKV) * hd, C]
/// matrix and gate, up into one [2 I, C] matrix so each layer runs two big products instead of five.
final class DecoderWeights: @unchecked Sendable {
    struct Layer {
        var attnNorm: [Float]     // [C]
        var wqkv: [Float]         // [(nH + 2 nKV) * hd, C]
        var wo: [Float]           // [C, nH * hd]
        var mlpNorm: [Float]      // [C]
        var wGateUp: [Float]      // [2 I, C]
        var wDown: [Float]        // [C, I]
    }
    let tokenEmbedding: [Float]   // [V, C]
    let layers: [Layer]
    let finalNorm: [Float]        // [C]
    let lmHead: [Float]?          // [V, C]; nil when tied to the token embedding
    let ropeFreqFactors: [Float]?
    let parameterCount: Int

    /// Where the tensors come from and how they are named.
    enum Naming { case huggingFace, gguf }

    init(config: ModelConfig, naming: Naming, tensor: (String) -> TensorRecord?) throws {
        let C = config.hiddenSize, hd = config.headDim, nH = config.nHeads, nKV = config.nKVHeads
        let I = config.intermediateSize, V = config.vocabSize
        var count = 0

        func load(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let t = tensor(name) else { throw ULLMEError.format("missing tensor \(name)") }
            guard t.shape == shape else {
                throw ULLMEError.format("tensor \(name) has shape \(t.shape), expected \(shape)")
            }
            var out = [Float](repeating: 0, count: t.count)
            try out.withUnsafeMutableBufferPointer { try dequantize(t, into: $0) }
            count += t.count
            return out
        }
        // llama.cpp's converter interleaves the two rotary halves of every Q/K head; undo it so one
        // rotate-half RoPE serves both formats (transformers' reverse_permute).
        func unpermuteRotary(_ w: [Float], heads: Int) -> [Float] {
            var out = w
            let half = hd / 2
            for h in 0..<heads {
                for j in 0..<half {
                    for e in 0..<2 {
                        let src = (h * hd + 2 * j + e) * C, dst = (h * hd + e * half + j) * C
                        for c in 0..<C { out[dst + c] = w[src + c] }
                    }
                }
            }
            return out
        }

        let names: (Int) -> [String]
        switch naming {
        case .huggingFace:
            names = { i in ["model.layers.\(i).input_layernorm.weight", "model.layers.\(i).self_attn.q_proj.weight",
                            "model.layers.\(i).self_attn.k_proj.weight", "model.layers.\(i).self_attn.v_proj.weight",
                            "model.layers.\(i).self_attn.o_proj.weight", "model.layers.\(i).post_attention_layernorm.weight",
                            "model.layers.\(i).mlp.gate_proj.weight", "model.layers.\(i).mlp.up_proj.weight",
                            "model.layers.\(i).mlp.down_proj.weight"] }
        case .gguf:
            names = { i in ["blk.\(i).attn_norm.weight", "blk.\(i).attn_q.weight", "blk.\(i).attn_k.weight",
                            "blk.\(i).attn_v.weight", "blk.\(i).attn_output.weight", "blk.\(i).ffn_norm.weight",
                            "blk.\(i).ffn_gate.weight", "blk.\(i).ffn_up.weight", "blk.\(i).ffn_down.weight"] }
        }
        let embName = naming == .gguf ? "token_embd.weight" : "model.embed_tokens.weight"
        tokenEmbedding = try load(embName, [V, C])

        var layers: [Layer] = []
        layers.reserveCapacity(config.nLayers)
        for i in 0..<config.nLayers {
            let n = names(i)
            var q = try load(n[1], [nH * hd, C]), k = try load(n[2], [nKV * hd, C])
            if naming == .gguf { q = unpermuteRotary(q, heads: nH); k = unpermuteRotary(k, heads: nKV) }
            let v = try load(n[3], [nKV * hd, C])
            layers.append(Layer(
                attnNorm: try load(n[0], [C]), wqkv: q + k + v, wo: try load(n[4], [C, nH * hd]),
                mlpNorm: try load(n[5], [C]), wGateUp: try load(n[6], [I, C]) + load(n[7], [I, C]),
                wDown: try load(n[8], [C, I])))
        }
        self.layers = layers
        finalNorm = try load(naming == .gguf ? "output_norm.weight" : "model.norm.weight", [C])
        let headName = naming == .gguf ? "output.weight" : "lm_head.weight"
        if config.tieWordEmbeddings || tensor(headName) == nil {
            if naming == .huggingFace && !config.tieWordEmbeddings {
                throw ULLMEError.format("missing tensor lm_head.weight (tie_word_embeddings is false)")
            }
            lmHead = nil
        } else {
            lmHead = try load(headName, [V, C])
        }
        if naming == .gguf, let t = tensor("rope_freqs.weight") {
            ropeFreqFactors = try load(t.name, [config.headDim / 2])
        } else {
            ropeFreqFactors = nil
        }
        parameterCount = count
    }
}
