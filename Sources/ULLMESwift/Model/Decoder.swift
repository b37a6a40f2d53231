import CULLME
import Glibc

/// Which tokens a token may attend to. Padding never matters: sequences are packed, not padded.
public enum AttentionMode: Int32, Sendable {
    case bidirectional = 0  // every token of a sequence sees every token of that sequence (no window)
    case causal = 1         // a token sees itself and the tokens before it (within the sliding window, if any)
}

/// The output of one forward pass over a packed batch of sequences.
public struct DecoderOutput {
    /// Final-norm hidden states [T, C] of all sequences back to back (T = total tokens).
    public var hidden: [Float]
    /// Logits [T, V] when requested ([rows, V] for the rows `logitRows` asked for).
    public var logits: [Float]?
    /// Start of each sequence in the packed token axis; offsets[i + 1] - offsets[i] is its length.
    public var offsets: [Int]
}

/// The decoder forward pass, one implementation for every family (knobs in ModelConfig). Sequences of
/// different lengths are packed into one [T, C] activation so the linear layers run as single GEMMs with no
/// padding waste; attention runs per sequence and head. A sequence's result never depends on the batch.
struct TransformerDecoder {
    let config: ModelConfig
    let weights: DecoderWeights
    let rope: RotaryEmbedding
    let localRope: RotaryEmbedding?   // gemma3 sliding layers

    init(config: ModelConfig, weights: DecoderWeights) {
        self.config = config
        self.weights = weights
        var scaling = config.ropeScaling
        if case .longrope(_, _, let original, let factor) = scaling, let f = weights.longropeFactors {
            scaling = .longrope(short: f.short, long: f.long, originalMaxPositions: original, attentionFactor: factor)
        }
        rope = RotaryEmbedding(rotaryDim: config.effectiveRotaryDim, theta: config.ropeTheta, scaling: scaling,
                               freqFactors: weights.ropeFreqFactors)
        localRope = config.localRopeTheta.map { RotaryEmbedding(rotaryDim: config.effectiveRotaryDim, theta: $0, scaling: .none) }
    }

    func norm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: NormWeights, T: Int, C: Int) {
        parallelRows(T, width: C) { r in
            let o = out + r.lowerBound * C, i = x + r.lowerBound * C
            switch config.norm {
            case .rms: rmsNormForward(o, i, w.weight, T: r.count, C: C, eps: config.normEps)
            case .layer: layerNormForward(o, i, w.weight, w.bias!, T: r.count, C: C, eps: config.normEps)
            }
        }
    }

    /// x[T, C] += y[T, C], rows split across threads.
    func residualAdd(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, T: Int, C: Int) {
        parallelRows(T, width: C) { r in addInPlace(x + r.lowerBound * C, y + r.lowerBound * C, r.count * C) }
    }

    /// act[T, I] from up[T, upDim] (gated or plain), rows split across threads.
    func activation(_ act: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, T: Int, I: Int) {
        let upDim = config.gatedMLP ? 2 * I : I
        parallelRows(T, width: upDim) { r in
            if config.gatedMLP {
                gatedActivationForward(act + r.lowerBound * I, up + r.lowerBound * upDim, T: r.count, I: I, activation: config.activation)
            } else {
                geluTanhForward(act + r.lowerBound * I, up + r.lowerBound * I, count: r.count * I)
            }
        }
    }

    /// The forward pass. Training passes LoRA adapters and a tape that records what backward needs;
    /// inference passes neither and records nothing.
    /// `logitRows` (rows of the packed token axis, each at most once) limits the logits to those rows: the
    /// generation losses read only the labelled positions, and the LM head is a large share of their work.
    func forward(_ sequences: [[Int32]], attention: AttentionMode, wantLogits: Bool, logitRows: [Int]? = nil,
                 lora: LoRAContext? = nil, tape: DecoderTape? = nil) throws -> DecoderOutput {
        let C = config.hiddenSize, nH = config.nHeads, V = config.vocabSize
        var offsets = [0]
        for s in sequences {
            guard !s.isEmpty else { throw ULLMEError.argument("empty token sequence") }
            guard s.count <= config.maxPositions else {
                throw ULLMEError.argument("sequence of \(s.count) tokens exceeds the model's \(config.maxPositions) positions")
            }
            for id in s where id < 0 || Int(id) >= V {
                throw ULLMEError.argument("token id \(id) outside the vocabulary [0, \(V))")
            }
            offsets.append(offsets.last! + s.count)
        }
        let T = offsets.last!
        guard T > 0 else { return DecoderOutput(hidden: [], logits: wantLogits ? [] : nil, offsets: offsets) }
        let lengths = sequences.map(\.count)

        // Embedding lookup (gemma scales by sqrt(hidden)).
        var x = [Float](repeating: 0, count: T * C)
        x.withUnsafeMutableBufferPointer { xp in
            let scale = config.embeddingScale ?? 1
            var t = 0
            for s in sequences { for id in s {
                let row = xp.baseAddress! + t * C
                weights.embedding(Int(id), into: row, C: C)
                if scale != 1 { for c in 0..<C { row[c] *= scale } }
                t += 1
            } }
        }
        let (cosT, sinT) = rope.tables(lengths: lengths)
        let local = localRope?.tables(lengths: lengths)
        if let tape {
            tape.lengths = lengths; tape.offsets = offsets; tape.attention = attention
            var o = 0
            tape.probOffsets = lengths.map { L in defer { o += nH * L * L }; return o }
        }
        if let lora, lora.examples.count != sequences.count {
            throw ULLMEError.argument("LoRA context names \(lora.examples.count) examples for \(sequences.count) sequences")
        }
        let batch = ForwardBatch(lengths: lengths, offsets: offsets, attention: attention, cos: cosT, sin: sinT, local: local,
                                 probOffsets: tape?.probOffsets ?? [], lora: lora)
        var buffers = LayerBuffers(config: config, T: T)
        // With activation checkpointing the tape keeps only each layer's input; backward recomputes the rest.
        let recordAll = tape != nil && !(tape!.checkpointed)
        for li in weights.layers.indices {
            var rec = DecoderTape.Layer()
            if tape != nil { rec.xIn = x }
            layerForward(li, x: &x, batch: batch, buffers: &buffers, record: recordAll, rec: &rec)
            tape?.layers.append(rec)
        }
        var h = buffers.h
        tape?.xFinal = x
        norm(&h, x, weights.finalNorm, T: T, C: C)

        var logits: [Float]? = nil
        if wantLogits {
            if let rows = logitRows, rows.contains(where: { $0 < 0 || $0 >= T }) {
                throw ULLMEError.argument("logit rows must lie in [0, \(T))")
            }
            let R = logitRows?.count ?? T
            let input = logitRows.map { rows in rows.flatMap { h[($0 * C)..<(($0 + 1) * C)] } } ?? h
            var out = [Float](unsafeUninitializedCapacity: R * V) { _, n in n = R * V }  // every entry written
            linearForward(&out, input, weights.lmHead, bias: weights.lmHeadBias, T: R)
            if let cap = config.finalLogitSoftcap {
                softcapInPlace(&out, count: R * V, cap: cap)
                tape?.logits = out
            }
            tape?.logitRows = logitRows
            logits = out
        }
        return DecoderOutput(hidden: h, logits: logits, offsets: offsets)
    }
}

/// What every layer of one forward pass shares: the packed batch, its RoPE tables, LoRA.
struct ForwardBatch {
    let lengths: [Int], offsets: [Int]
    let attention: AttentionMode
    let cos: [Float], sin: [Float]
    let local: (cos: [Float], sin: [Float])?
    /// Per-sequence start of the attention probabilities in a recorded layer (empty when not recording).
    let probOffsets: [Int]
    let lora: LoRAContext?
}

/// Work buffers of one layer, reused by every layer of a pass (no allocation per layer).
struct LayerBuffers {
    var h: [Float], h2: [Float], qkv: [Float], attnOut: [Float], up: [Float], act: [Float]
    init(config: ModelConfig, T: Int) {
        let C = config.hiddenSize, hd = config.headDim, nH = config.nHeads, nKV = config.nKVHeads
        let I = config.intermediateSize, upDim = config.gatedMLP ? 2 * I : I
        h = [Float](repeating: 0, count: T * C); h2 = h
        qkv = [Float](repeating: 0, count: T * (nH + 2 * nKV) * hd)
        attnOut = [Float](repeating: 0, count: T * nH * hd)
        up = [Float](repeating: 0, count: T * upDim)
        act = [Float](repeating: 0, count: T * I)
    }
}

extension TransformerDecoder {
    /// Adds every adapter of `site` to out[T, outWidth] for input[T, inWidth], per sequence (the dropout key),
    /// recording the adapters' activations and masks in `rec` when `record`.
    func applyLoRA(_ site: LoRASite, layer: Int, batch: ForwardBatch, input: UnsafePointer<Float>, inWidth: Int,
                   out: UnsafeMutablePointer<Float>, outWidth: Int, record: Bool, rec: inout DecoderTape.Layer) {
        guard let lora = batch.lora else { return }
        for (ti, target) in lora.model.targets.enumerated() where target.site == site {
            let adapter = lora.model.adapters[layer][ti]
            var acts: [LoRAAdapter.Activations] = [], masks: [[Float]?] = []
            for s in 0..<batch.lengths.count {
                let L = batch.lengths[s], start = batch.offsets[s]
                let xs = Array(UnsafeBufferPointer(start: input + start * inWidth, count: L * inWidth))
                let mask = lora.model.mask(layer: layer, target: ti, example: lora.examples[s], pass: lora.pass, T: L)
                var y = [Float](repeating: 0, count: L * target.outFeatures)
                let a = adapter.forward(x: xs, T: L, mask: mask, y: &y)
                for t in 0..<L {
                    let row = out + (start + t) * outWidth + target.columns.lowerBound
                    for j in 0..<target.outFeatures { row[j] += y[t * target.outFeatures + j] }
                }
                if record { acts.append(a); masks.append(mask) }
            }
            if record { rec.lora.append(acts); rec.masks.append(masks) }
        }
    }

    /// Layer `li` on the residual stream x[T, C], in place. With `record`, everything backward reads goes to
    /// `rec` (all but xIn, which the caller sets). The same call recomputes a checkpointed layer in backward:
    /// it is deterministic (same GEMM partition, dropout masks keyed by example and layer), so the
    /// recomputed activations are bit-identical to the first pass.
    func layerForward(_ li: Int, x: inout [Float], batch: ForwardBatch, buffers b: inout LayerBuffers,
                      record: Bool, rec: inout DecoderTape.Layer) {
        let C = config.hiddenSize, hd = config.headDim, nH = config.nHeads, nKV = config.nKVHeads
        let I = config.intermediateSize
        let qDim = nH * hd, qkvDim = (nH + 2 * nKV) * hd, upDim = config.gatedMLP ? 2 * I : I
        let T = batch.offsets.last!, lengths = batch.lengths, offsets = batch.offsets
        let layer = weights.layers[li]
        let scale = config.effectiveAttentionScale, group = nH / nKV, rotaryDim = config.effectiveRotaryDim
        let sliding = config.isSliding(layer: li)
        let window = batch.attention == .causal && sliding ? config.slidingWindow : nil
        // ---- attention branch: a = Wo · attn(rope(Wqkv · norm(x)))
        norm(&b.h, x, layer.attnNorm, T: T, C: C)
        linearForward(&b.qkv, b.h, layer.wqkv, bias: layer.bqkv, T: T)
        applyLoRA(.qkv, layer: li, batch: batch, input: b.h, inWidth: C, out: &b.qkv, outWidth: qkvDim, record: record, rec: &rec)
        if record { rec.n1 = b.h; if layer.qNorm != nil { rec.qkvPreNorm = b.qkv } }
        b.qkv.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            if let qn = layer.qNorm, let kn = layer.kNorm {
                for t in 0..<T {
                    rmsNormForward(base + t * qkvDim, base + t * qkvDim, qn, T: nH, C: hd, eps: config.normEps)
                    rmsNormForward(base + t * qkvDim + qDim, base + t * qkvDim + qDim, kn, T: nKV, C: hd, eps: config.normEps)
                }
            }
            let (c, s) = (sliding && batch.local != nil) ? batch.local! : (batch.cos, batch.sin)
            ropeForward(base, rowStride: qkvDim, T: T, nHeads: nH, headDim: hd, rotaryDim: rotaryDim, cos: c, sin: s)
            ropeForward(base + qDim, rowStride: qkvDim, T: T, nHeads: nKV, headDim: hd, rotaryDim: rotaryDim, cos: c, sin: s)
        }
        if record {
            rec.qkv = b.qkv
            rec.probs = [Float](repeating: 0, count: lengths.reduce(0) { $0 + nH * $1 * $1 })
        }
        // One task per (sequence, head, block of query rows): independent outputs, own score scratch.
        let probsBase = rec.probs.withUnsafeMutableBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let qkvBase = b.qkv.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let outBase = b.attnOut.withUnsafeMutableBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let probOffsets = record ? batch.probOffsets : nil
        let causal = batch.attention == .causal
        let tasks = attentionTasks(lengths: lengths, heads: nH)
        parallelFor(tasks.count) { ti in
            let task = tasks[ti], s = task.sequence, L = lengths[s]
            let rows = task.rows.count
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * L) { S in
                attentionRowsForward(qkv: UnsafePointer(bitPattern: qkvBase)! + offsets[s] * qkvDim,
                                     out: UnsafeMutablePointer(bitPattern: outBase)! + offsets[s] * qDim,
                                     scores: S.baseAddress!, head: task.head, rows: task.rows, L: L, nH: nH, nKV: nKV,
                                     hd: hd, group: group, scale: scale, softcap: config.attentionSoftcap, causal: causal,
                                     window: window,
                                     probsOut: probOffsets.map { UnsafeMutablePointer(bitPattern: probsBase)! + $0[s] })
            }
        }
        linearForward(&b.h2, b.attnOut, layer.wo, bias: layer.bo, T: T)
        applyLoRA(.output, layer: li, batch: batch, input: b.attnOut, inWidth: qDim, out: &b.h2, outWidth: C, record: record, rec: &rec)
        if record { rec.attnOut = b.attnOut }
        if let post = layer.postAttnNorm { if record { rec.oOut = b.h2 }; norm(&b.h2, b.h2, post, T: T, C: C) }

        // ---- MLP branch: m = Wdown · act(Wup · norm(x)) (parallel blocks reuse the attention input norm)
        residualAdd(&x, b.h2, T: T, C: C)
        if record { rec.xMid = x }
        // Parallel blocks (phi) have no MLP norm: h still holds the attention input norm(x).
        if let mlpNorm = layer.mlpNorm { norm(&b.h, x, mlpNorm, T: T, C: C); if record { rec.n2 = b.h } }
        linearForward(&b.up, b.h, layer.wUp, bias: layer.bUp, T: T)
        applyLoRA(.up, layer: li, batch: batch, input: b.h, inWidth: C, out: &b.up, outWidth: upDim, record: record, rec: &rec)
        activation(&b.act, b.up, T: T, I: I)
        linearForward(&b.h2, b.act, layer.wDown, bias: layer.bDown, T: T)
        applyLoRA(.down, layer: li, batch: batch, input: b.act, inWidth: I, out: &b.h2, outWidth: C, record: record, rec: &rec)
        if record { rec.up = b.up; rec.act = b.act }
        if let post = layer.postMlpNorm { if record { rec.mOut = b.h2 }; norm(&b.h2, b.h2, post, T: T, C: C) }
        residualAdd(&x, b.h2, T: T, C: C)
    }
}

/// One unit of attention work: query rows `rows` of head `head` of sequence `sequence`.
struct AttentionTask {
    let sequence: Int, head: Int, rows: Range<Int>
}

/// Query rows per attention task for a sequence of L tokens: the task's L-wide score rows stay within
/// ~256 KB (L2), so long inputs do not stream a 16 MB score matrix per head through memory; short inputs
/// keep one task per head. Depends on L only, so a sequence's result never depends on the batch.
func attentionQueryBlock(L: Int) -> Int { max(16, min(L, 65536 / L)) }

func attentionTasks(lengths: [Int], heads: Int) -> [AttentionTask] {
    var tasks: [AttentionTask] = []
    for (s, L) in lengths.enumerated() {
        let block = attentionQueryBlock(L: L)
        for head in 0..<heads {
            for r0 in stride(from: 0, to: L, by: block) { tasks.append(AttentionTask(sequence: s, head: head, rows: r0..<min(L, r0 + block))) }
        }
    }
    return tasks
}

/// Query rows `rows` of one attention head of one sequence: qkv[L, (nH + 2 nKV) hd] → out[L, nH hd] (row
/// stride nH hd), head `head`. Scores are scaled, soft-capped (gemma2), masked (causal and sliding window),
/// softmaxed in float32 (cullme_softmax_range); causal rows never read keys after the block's last row.
/// The probabilities go to probsOut + head · L² + row · L when given (training). `S` holds rows × L floats.
func attentionRowsForward(qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, scores S: UnsafeMutablePointer<Float>,
                          head: Int, rows: Range<Int>, L: Int, nH: Int, nKV: Int, hd: Int, group: Int, scale: Float,
                          softcap: Float?, causal: Bool, window: Int?, probsOut: UnsafeMutablePointer<Float>?) {
    let qDim = nH * hd, qkvDim = (nH + 2 * nKV) * hd
    let g = head / group, r0 = rows.lowerBound, M = rows.count
    let keys = causal ? rows.upperBound : L
    let q = qkv + r0 * qkvDim + head * hd, k = qkv + qDim + g * hd, v = qkv + qDim + nKV * hd + g * hd
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(keys), Int32(hd),
                scale, q, Int32(qkvDim), k, Int32(qkvDim), 0, S, Int32(L))
    for r in 0..<M {
        let i = r0 + r, row = S + r * L
        if let cap = softcap { for j in 0..<keys { row[j] = tanhf(row[j] / cap) * cap } }
        // Visible keys: all (bidirectional), k <= q (causal), q - W < k <= q (sliding window).
        let first = window.map { max(0, i - $0 + 1) } ?? 0
        let end = causal ? i + 1 : L
        cullme_softmax_range(row, Int64(L), Int64(first), Int64(end))
    }
    probsOut?.advanced(by: head * L * L + r0 * L).update(from: S, count: M * L)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(hd), Int32(keys),
                1, S, Int32(L), v, Int32(qkvDim), 0, out + r0 * qDim + head * hd, Int32(qDim))
}
