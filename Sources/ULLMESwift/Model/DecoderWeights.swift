import CULLME
import Synchronization

/// A normalisation layer's parameters (bias only for LayerNorm).
struct NormWeights {
    var weight: [Float]
    var bias: [Float]?
}

/// How the linear layers (and the token embedding) keep their weights.
public enum WeightStorage: String, Sendable {
    /// Dequantised to float32 and packed once at load: the fastest products, 4 bytes a weight.
    case dense
    /// As stored in the file (GGUF quantised blocks, f16/bf16, f32), inside its mapping; each product
    /// dequantises the panels it needs right before use (QLoRA-style frozen base: no float32 copy of the
    /// weights is ever made). Bit-identical results to `dense`.
    case stored
    /// The file's integer quantisation (GGUF Q4_0 … Q8_0, Q4_K … Q6_K) re-laid out once at load as int8
    /// values with float32 group scales and offsets in the kernels' panel order (cullme_qpanels, 1.25 bytes
    /// a weight); each product dequantises one cache-sized block at a time. Bit-identical to `dense`, a third
    /// of its memory, faster on short inputs (less to read). Matrices with other types (f16, bf16, f32:
    /// safetensors models) are dense.
    case quantized
}

/// The decoder's weights. Linear weights are row-major [out, in], dense float32 dequantised once at load
/// (the exact mode: measured faster here than dequantising inside every product for models of this size)
/// or kept as stored in the file (`WeightStorage.stored`).
/// Q, K, V are fused into one [(nH + 2 nKV) * hd, C] matrix and gate, up into one [2 I, C] matrix, so a
/// layer runs two big products where the file has five. Gemma's (1 + w) norms are stored as 1 + w.
final class DecoderWeights: @unchecked Sendable {
    struct Layer {
        var attnNorm: NormWeights
        var wqkv: PackedMatrix, bqkv: [Float]?     // [(nH + 2 nKV) * hd, C]
        var qNorm: [Float]?, kNorm: [Float]?       // [hd] (gemma3)
        var wo: PackedMatrix, bo: [Float]?         // [C, nH * hd]
        var postAttnNorm: NormWeights?             // sandwich blocks
        var mlpNorm: NormWeights?                  // nil for parallel blocks (one norm feeds both branches)
        var wUp: PackedMatrix, bUp: [Float]?       // gated: [2 I, C] = gate | up; plain: [I, C] (fc1)
        var wDown: PackedMatrix, bDown: [Float]?   // [C, I]
        var postMlpNorm: NormWeights?
    }
    /// [V] rows of C as stored in the file: inside its mapping (stored storage) or in a copy of the tensor's
    /// bytes (dense storage; a quantised table is a fraction of its float32 size). Lookups dequantise one row.
    let tokenEmbeddingRows: [StoredRow]
    private let ownedEmbedding: UnsafeMutableRawBufferPointer?
    let storage: WeightStorage
    /// The precision asked for at load, whether the dense matrices hold bf16 panels (the CPU has
    /// AVX512_BF16 and the storage is dense), and what runs ("exact", "avx512_bf16", "avx512_vnni", ...,
    /// "exact fallback: ...").
    let precision: Precision
    let bf16: Bool
    let precisionPath: String
    /// Keeps the file mapping that stored rows point into alive.
    private let mappingOwner: AnyObject?
    let layers: [Layer]
    let finalNorm: NormWeights
    /// [V, C]; the token embedding when tied. A tied dense head is packed on first use (logits are for
    /// training and generation scores; embedding never pays its V × C floats).
    var lmHead: PackedMatrix { lmHeadStore.value }
    private let lmHeadStore: LazyMatrix
    let lmHeadBias: [Float]?
    let ropeFreqFactors: [Float]?
    let longropeFactors: (short: [Float], long: [Float])?
    let parameterCount: Int

    /// Where the tensors come from and how they are named.
    enum Naming { case huggingFace, gguf }

    init(config: ModelConfig, naming: Naming, storage: WeightStorage = .dense, precision: Precision = .exact,
         owner: AnyObject? = nil, tensor: (String) -> TensorRecord?) throws {
        precondition(storage != .stored || owner != nil, "stored weights need the owner of their mapping")
        self.storage = storage
        self.precision = precision
        let bf16 = precision.usesBF16(storage: storage)
        self.bf16 = bf16
        var int8Matrices = 0  // int8 mode: the linear layers that got integer panels
        mappingOwner = storage == .stored ? owner : nil
        let C = config.hiddenSize, hd = config.headDim, nH = config.nHeads, nKV = config.nKVHeads
        let I = config.intermediateSize, V = config.vocabSize
        let gguf = naming == .gguf
        // HF gemma stores w and computes (1 + w); llama.cpp's converter already added the 1.
        let family = config.family.spec
        let normOffset: Float = !gguf && family.hfNormsStoreOffset ? 1 : 0
        var count = 0

        func load(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let t = tensor(name) else { throw ULLMEError.format("missing tensor \(name)") }
            guard t.count == shape.reduce(1, *), t.shape.filter({ $0 != 1 }) == shape.filter({ $0 != 1 }) else {
                throw ULLMEError.format("tensor \(name) has shape \(t.shape), expected \(shape)")
            }
            var out = [Float](repeating: 0, count: t.count)
            try out.withUnsafeMutableBufferPointer { try dequantize(t, into: $0) }
            count += t.count
            return out
        }
        /// The stored rows of a 2-D tensor [rows, cols] (pointers into the file mapping).
        func storedRows(_ name: String, _ shape: [Int]) throws -> [StoredRow] {
            guard let t = tensor(name) else { throw ULLMEError.format("missing tensor \(name)") }
            guard t.count == shape.reduce(1, *), t.shape.filter({ $0 != 1 }) == shape.filter({ $0 != 1 }) else {
                throw ULLMEError.format("tensor \(name) has shape \(t.shape), expected \(shape)")
            }
            try checkStorage(t)
            let cols = shape.last!, rowBytes = t.type.byteCount(elements: cols)!
            count += t.count
            return (0..<(t.count / cols)).map { StoredRow(bytes: t.bytes.baseAddress! + $0 * rowBytes, type: t.type) }
        }
        /// A linear weight [rows, cols] in the chosen storage, rows optionally permuted by `permute`; `fast`
        /// false keeps it float32 in the bf16 and int8 modes.
        func linear(_ names: [String], rows: [Int], cols: Int, permute: [((Int, [Float]) -> [Float], ([StoredRow]) -> [StoredRow])?] = [],
                    fast: Bool = true) throws -> PackedMatrix {
            let int8 = precision == .int8 && fast
            if int8 || storage == .stored || (storage == .quantized && !(bf16 && fast)) {
                var all: [StoredRow] = []
                for (i, n) in names.enumerated() {
                    var r = try storedRows(n, [rows[i], cols])
                    if i < permute.count, let p = permute[i] { r = p.1(r) }
                    all += r
                }
                if int8, let m = PackedMatrix(quantizing: all, cols: cols, int8: true) {
                    int8Matrices += 1
                    return m
                }
                if storage == .stored { return PackedMatrix(storedRows: all, cols: cols) }
                if storage == .quantized { return PackedMatrix(quantizing: all, cols: cols) ?? denseMatrix(all, cols: cols, bf16: false) }
                return denseMatrix(all, cols: cols, bf16: false)  // int8 asked, no integer form, dense storage
            }
            var all: [Float] = []
            for (i, n) in names.enumerated() {
                var w = try load(n, [rows[i], cols])
                if i < permute.count, let p = permute[i] { w = p.0(cols, w) }
                all += w
            }
            return PackedMatrix(all, rows: all.count / cols, cols: cols, bf16: bf16 && fast)
        }
        func optional(_ name: String, _ shape: [Int]) throws -> [Float]? {
            tensor(name) == nil ? nil : try load(name, shape)
        }
        func norm(_ prefix: String, _ n: Int) throws -> NormWeights {
            var w = try load(prefix + ".weight", [n])
            if normOffset != 0 { w = w.map { $0 + normOffset } }
            let b = config.norm == .layer ? try load(prefix + ".bias", [n]) : nil
            return NormWeights(weight: w, bias: b)
        }
        // llama.cpp's converter interleaves the two rotary halves of every Q/K head for Llama-style
        // rope; undo it so one rotate-half RoPE serves both formats (transformers' reverse_permute).
        func unpermuteRotary<E>(_ w: [E], heads: Int, cols: Int) -> [E] {
            var out = w
            let half = hd / 2
            for h in 0..<heads { for j in 0..<half { for e in 0..<2 {
                let src = (h * hd + 2 * j + e) * cols, dst = (h * hd + e * half + j) * cols
                for c in 0..<cols { out[dst + c] = w[src + c] }
            } } }
            return out
        }
        let permuted = gguf && family.ggufRotaryPermuted

        let embName = gguf ? "token_embd.weight" : "model.embed_tokens.weight"
        let embeddingRows = try storedRows(embName, [V, C])
        if storage == .stored {
            tokenEmbeddingRows = embeddingRows
            ownedEmbedding = nil
        } else {
            // Copy the stored bytes out of the mapping, which dense storage does not keep.
            let t = tensor(embName)!
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: t.bytes.count, alignment: 64)
            copy.copyMemory(from: t.bytes)
            let rowBytes = t.type.byteCount(elements: C)!
            tokenEmbeddingRows = (0..<V).map { StoredRow(bytes: UnsafeRawPointer(copy.baseAddress! + $0 * rowBytes), type: t.type) }
            ownedEmbedding = copy
        }
        var layers: [Layer] = []
        layers.reserveCapacity(config.nLayers)
        let qkvRows = (nH + 2 * nKV) * hd
        for i in 0..<config.nLayers {
            let p = gguf ? "blk.\(i)." : "model.layers.\(i)."
            func name(hf: String, gguf ggufName: String) -> String { p + (gguf ? ggufName : hf) }

            let fastLayer = Precision.layerTakesReducedPrecision(i, of: config.nLayers)  // bf16 / int8 per-layer policy
            // Attention projections: fused in the file (phi3, some GGUFs) or separate. Always float32: the
            // softmax amplifies errors of q·k, and bf16 Q/K/V tripled the embeddings' distance to exact
            // (sum of 1 - cosine over the SmolLM2 parity texts 0.00202 vs 0.00066 with them exact).
            let fusedName = name(hf: "self_attn.qkv_proj", gguf: "attn_qkv")
            let wqkv: PackedMatrix
            var bqkv: [Float]? = nil
            if tensor(fusedName + ".weight") != nil {
                wqkv = try linear([fusedName + ".weight"], rows: [qkvRows], cols: C, fast: false)
                bqkv = try optional(fusedName + ".bias", [qkvRows])
            } else {
                let q = name(hf: "self_attn.q_proj", gguf: "attn_q"), k = name(hf: "self_attn.k_proj", gguf: "attn_k")
                let v = name(hf: "self_attn.v_proj", gguf: "attn_v")
                func perm(_ heads: Int) -> ((Int, [Float]) -> [Float], ([StoredRow]) -> [StoredRow])? {
                    permuted ? ({ unpermuteRotary($1, heads: heads, cols: $0) }, { unpermuteRotary($0, heads: heads, cols: 1) }) : nil
                }
                wqkv = try linear([q + ".weight", k + ".weight", v + ".weight"], rows: [nH * hd, nKV * hd, nKV * hd], cols: C,
                                  permute: [perm(nH), perm(nKV), nil], fast: false)
                if config.qkvBias {
                    var bq = try load(q + ".bias", [nH * hd]), bk = try load(k + ".bias", [nKV * hd])
                    if permuted { bq = unpermuteRotary(bq, heads: nH, cols: 1); bk = unpermuteRotary(bk, heads: nKV, cols: 1) }
                    bqkv = try bq + bk + load(v + ".bias", [nKV * hd])
                }
            }
            if config.qkvBias && bqkv == nil { throw ULLMEError.format("missing q/k/v biases in layer \(i)") }
            let o = name(hf: "self_attn." + family.outputProjection, gguf: "attn_output")

            // MLP: gated (gate | up fused at load, or fused in the file as phi3) or plain fc1/fc2 (phi).
            let wUp: PackedMatrix
            var bUp: [Float]? = nil
            let down: String
            if config.gatedMLP {
                let fusedUp = name(hf: "mlp.gate_up_proj", gguf: "ffn_up")
                if family.fusedProjections {
                    wUp = try linear([fusedUp + ".weight"], rows: [2 * I], cols: C, fast: fastLayer)
                } else {
                    wUp = try linear([name(hf: "mlp.gate_proj", gguf: "ffn_gate") + ".weight", name(hf: "mlp.up_proj", gguf: "ffn_up") + ".weight"],
                                     rows: [I, I], cols: C, fast: fastLayer)
                    if config.mlpBias {
                        bUp = try load(name(hf: "mlp.gate_proj", gguf: "ffn_gate") + ".bias", [I])
                            + load(name(hf: "mlp.up_proj", gguf: "ffn_up") + ".bias", [I])
                    }
                }
                down = name(hf: "mlp.down_proj", gguf: "ffn_down")
            } else {
                let fc1 = name(hf: "mlp.fc1", gguf: "ffn_up")
                wUp = try linear([fc1 + ".weight"], rows: [I], cols: C, fast: fastLayer)
                bUp = config.mlpBias ? try load(fc1 + ".bias", [I]) : nil
                down = name(hf: "mlp.fc2", gguf: "ffn_down")
            }
            let sandwich = config.block == .sandwich
            let mlpNormName: String? = switch config.block {
                case .parallel: nil
                case .sequential: name(hf: "post_attention_layernorm", gguf: "ffn_norm")
                case .sandwich: name(hf: "pre_feedforward_layernorm", gguf: "ffn_norm")
            }
            layers.append(Layer(
                attnNorm: try norm(name(hf: "input_layernorm", gguf: "attn_norm"), C),
                wqkv: wqkv, bqkv: bqkv,
                qNorm: config.qkNorm ? try norm(name(hf: "self_attn.q_norm", gguf: "attn_q_norm"), hd).weight : nil,
                kNorm: config.qkNorm ? try norm(name(hf: "self_attn.k_norm", gguf: "attn_k_norm"), hd).weight : nil,
                wo: try linear([o + ".weight"], rows: [C], cols: nH * hd, fast: fastLayer), bo: config.outputBias ? try load(o + ".bias", [C]) : nil,
                postAttnNorm: sandwich ? try norm(name(hf: "post_attention_layernorm", gguf: "post_attention_norm"), C) : nil,
                mlpNorm: try mlpNormName.map { try norm($0, C) },
                wUp: wUp, bUp: bUp,
                wDown: try linear([down + ".weight"], rows: [C], cols: I, fast: fastLayer), bDown: config.mlpBias ? try load(down + ".bias", [C]) : nil,
                postMlpNorm: sandwich ? try norm(name(hf: "post_feedforward_layernorm", gguf: "post_ffw_norm"), C) : nil))
        }
        self.layers = layers
        precisionPath = precision == .int8 && int8Matrices == 0
            ? "exact fallback: no linear layer has integer (GGUF-quantised) weights" : precision.path(storage: storage)
        finalNorm = try norm(gguf ? "output_norm" : family.hfFinalNorm, C)
        let head = gguf ? "output" : "lm_head"
        if config.tieWordEmbeddings || tensor(head + ".weight") == nil {
            if storage == .stored {
                lmHeadStore = LazyMatrix(PackedMatrix(storedRows: embeddingRows, cols: C))
            } else {
                let rows = tokenEmbeddingRows
                let quantize = storage == .quantized && !bf16
                lmHeadStore = LazyMatrix {
                    (quantize ? PackedMatrix(quantizing: rows, cols: C) : nil) ?? denseMatrix(rows, cols: C, bf16: bf16)
                }
            }
        } else {
            lmHeadStore = LazyMatrix(try linear([head + ".weight"], rows: [V], cols: C))
        }
        lmHeadBias = config.lmHeadBias ? try load(head + ".bias", [V]) : nil
        ropeFreqFactors = gguf ? try optional("rope_freqs.weight", [config.effectiveRotaryDim / 2]) : nil
        if gguf, let long = try optional("rope_factors_long.weight", [config.effectiveRotaryDim / 2]),
           let short = try optional("rope_factors_short.weight", [config.effectiveRotaryDim / 2]) {
            longropeFactors = (short, long)
        } else {
            longropeFactors = nil
        }
        parameterCount = count
    }

    /// `base`'s weights with every linear layer (LM head included) in the bf16 training form
    /// (PackedMatrix(trainingBF16:)): a training-only copy for `base_precision: bf16`; the norms, biases and
    /// token embedding are `base`'s own (kept alive through it). The LM head is converted on first use.
    init(trainingBF16Of base: DecoderWeights) {
        layers = base.layers.map { l in
            var l = l
            l.wqkv = PackedMatrix(trainingBF16: l.wqkv); l.wo = PackedMatrix(trainingBF16: l.wo)
            l.wUp = PackedMatrix(trainingBF16: l.wUp); l.wDown = PackedMatrix(trainingBF16: l.wDown)
            return l
        }
        lmHeadStore = LazyMatrix { PackedMatrix(trainingBF16: base.lmHead) }
        tokenEmbeddingRows = base.tokenEmbeddingRows
        ownedEmbedding = nil
        mappingOwner = base
        storage = base.storage
        precision = .bf16
        bf16 = true
        precisionPath = String(cString: cullme_gemm_bf16_path())
        finalNorm = base.finalNorm
        lmHeadBias = base.lmHeadBias
        ropeFreqFactors = base.ropeFreqFactors
        longropeFactors = base.longropeFactors
        parameterCount = base.parameterCount
    }

    deinit { ownedEmbedding?.deallocate() }

    /// Token `id`'s embedding row [C] into out, dequantised from its stored row.
    func embedding(_ id: Int, into out: UnsafeMutablePointer<Float>, C: Int) {
        let r = tokenEmbeddingRows[id]
        dequantizeRaw(r.type, r.bytes, out, count: C)
    }

    /// Bytes of weights this object holds in memory of its own (dense packed matrices, the lm head once
    /// packed, the copied token embedding); stored rows live in the file mapping and are not counted.
    var ownedBytes: Int {
        layers.reduce(0) { $0 + [$1.wqkv, $1.wo, $1.wUp, $1.wDown].reduce(0) { $0 + $1.ownedBytes } }
            + (lmHeadStore.built?.ownedBytes ?? 0) + (ownedEmbedding?.count ?? 0)
    }
}

/// Dense W from stored rows (float32 panels, or bf16 pairs).
private func denseMatrix(_ rows: [StoredRow], cols: Int, bf16: Bool) -> PackedMatrix {
    var w = [Float](repeating: 0, count: rows.count * cols)
    w.withUnsafeMutableBufferPointer { p in
        for (i, r) in rows.enumerated() { dequantizeRaw(r.type, r.bytes, p.baseAddress! + i * cols, count: cols) }
    }
    return PackedMatrix(w, rows: rows.count, cols: cols, bf16: bf16)
}

/// A matrix built on first use, once, whichever thread asks first.
final class LazyMatrix: Sendable {
    private let state: Mutex<PackedMatrix?>
    private let make: @Sendable () -> PackedMatrix

    init(_ ready: PackedMatrix) { state = Mutex(ready); make = { ready } }
    init(_ make: @escaping @Sendable () -> PackedMatrix) { state = Mutex(nil); self.make = make }

    var value: PackedMatrix { state.withLock { m in if m == nil { m = make() }; return m! } }
    /// The matrix if it has been built (no building).
    var built: PackedMatrix? { state.withLock { $0 } }
}

