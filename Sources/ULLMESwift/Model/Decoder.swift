import CULLME
import Glibc

/// Which tokens a token may attend to. Padding never matters: sequences are packed, not padded.
public enum AttentionMode: Int32, Sendable {
    case bidirectional = 0  // every token of a sequence sees every token of that sequence
    case causal = 1         // a token sees itself and the tokens before it
}

/// The output of one forward pass over a packed batch of sequences.
public struct DecoderOutput {
    /// Final-norm hidden states [T, C] of all sequences back to back (T = total tokens).
    public var hidden: [Float]
    /// Logits [T, V] when requested.
    public var logits: [Float]?
    /// Start of each sequence in the packed token axis; offsets[i + 1] - offsets[i] is its length.
    public var offsets: [Int]
}

/// The decoder forward pass (Llama family). Sequences of different lengths are packed into one
/// [T, C] activation so the linear layers run as single GEMMs with no padding waste; attention runs
/// per sequence and head. A sequence's result therefore never depends on the rest of the batch.
struct TransformerDecoder {
    let config: ModelConfig
    let weights: DecoderWeights
    let rope: RotaryEmbedding

    func forward(_ sequences: [[Int32]], attention: AttentionMode, wantLogits: Bool) throws -> DecoderOutput {
        let C = config.hiddenSize, hd = config.headDim, nH = config.nHeads, nKV = config.nKVHeads
        let I = config.intermediateSize, V = config.vocabSize
        let qDim = nH * hd, qkvDim = (nH + 2 * nKV) * hd
        var offsets = [0]
        var positions: [Int32] = []
        for s in sequences {
            guard !s.isEmpty else { throw ULLMEError.argument("empty token sequence") }
            guard s.count <= config.maxPositions else {
                throw ULLMEError.argument("sequence of \(s.count) tokens exceeds the model's \(config.maxPositions) positions")
            }
            for id in s where id < 0 || Int(id) >= V {
                throw ULLMEError.argument("token id \(id) outside the vocabulary [0, \(V))")
            }
            offsets.append(offsets.last! + s.count)
            positions.append(contentsOf: (0..<Int32(s.count)))
        }
        let T = offsets.last!
        let maxLen = sequences.map(\.count).max() ?? 0
        var x = [Float](repeating: 0, count: T * C)
        guard T > 0 else { return DecoderOutput(hidden: [], logits: wantLogits ? [] : nil, offsets: offsets) }

        // Embedding lookup.
        weights.tokenEmbedding.withUnsafeBufferPointer { emb in
            var t = 0
            for s in sequences { for id in s { for c in 0..<C { x[t * C + c] = emb[Int(id) * C + c] }; t += 1 } }
        }
        let (cosT, sinT) = rope.tables(positions: positions)
        var h = [Float](repeating: 0, count: T * C)
        var qkv = [Float](repeating: 0, count: T * qkvDim)
        var attnOut = [Float](repeating: 0, count: T * qDim)
        var scores = [Float](repeating: 0, count: maxLen * maxLen)
        var gu = [Float](repeating: 0, count: T * 2 * I)
        var act = [Float](repeating: 0, count: T * I)
        let scale = 1 / Float(hd).squareRoot()
        let group = nH / nKV

        for layer in weights.layers {
            // Attention block: x += Wo · attn(rope(Wqkv · norm(x))).
            rmsNormForward(&h, x, layer.attnNorm, T: T, C: C, eps: config.normEps)
            linearForward(&qkv, h, layer.wqkv, bias: nil, T: T, K: C, N: qkvDim)
            qkv.withUnsafeMutableBufferPointer { p in
                ropeForward(p.baseAddress!, rowStride: qkvDim, T: T, nHeads: nH, headDim: hd, rotaryDim: rope.rotaryDim, cos: cosT, sin: sinT)
                ropeForward(p.baseAddress! + qDim, rowStride: qkvDim, T: T, nHeads: nKV, headDim: hd, rotaryDim: rope.rotaryDim, cos: cosT, sin: sinT)
            }
            qkv.withUnsafeBufferPointer { qkvP in
                attnOut.withUnsafeMutableBufferPointer { outP in
                    scores.withUnsafeMutableBufferPointer { sP in
                        for s in 0..<sequences.count {
                            let start = offsets[s], L = offsets[s + 1] - start
                            let base = qkvP.baseAddress! + start * qkvDim
                            for head in 0..<nH {
                                let g = head / group
                                let q = base + head * hd, k = base + qDim + g * hd, v = base + qDim + nKV * hd + g * hd
                                let S = sP.baseAddress!
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(hd),
                                            scale, q, Int32(qkvDim), k, Int32(qkvDim), 0, S, Int32(L))
                                for i in 0..<L {
                                    softmaxRow(S + i * L, count: L, valid: attention == .causal ? i + 1 : L)
                                }
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L),
                                            1, S, Int32(L), v, Int32(qkvDim), 0,
                                            outP.baseAddress! + start * qDim + head * hd, Int32(qDim))
                            }
                        }
                    }
                }
            }
            linearForward(&h, attnOut, layer.wo, bias: nil, T: T, K: qDim, N: C)
            addInPlace(&x, h, T * C)

            // MLP block: x += Wdown · (silu(Wgate · norm(x)) * Wup · norm(x)).
            rmsNormForward(&h, x, layer.mlpNorm, T: T, C: C, eps: config.normEps)
            linearForward(&gu, h, layer.wGateUp, bias: nil, T: T, K: C, N: 2 * I)
            swigluForward(&act, gu, T: T, I: I)
            linearForward(&h, act, layer.wDown, bias: nil, T: T, K: I, N: C)
            addInPlace(&x, h, T * C)
        }
        rmsNormForward(&h, x, weights.finalNorm, T: T, C: C, eps: config.normEps)

        var logits: [Float]? = nil
        if wantLogits {
            var out = [Float](repeating: 0, count: T * V)
            linearForward(&out, h, weights.lmHead ?? weights.tokenEmbedding, bias: nil, T: T, K: C, N: V)
            logits = out
        }
        return DecoderOutput(hidden: h, logits: logits, offsets: offsets)
    }
}
