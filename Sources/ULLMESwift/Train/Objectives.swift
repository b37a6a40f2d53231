import CULLME
import Glibc

/// The two training objectives every GRL step is made of, on one frozen model with LoRA adapters and a
/// projection head:
///  - embedding: bidirectional (or causal) forward → pool → proj → L2-normalise → reps; the caller
///    supplies dLoss/dReps (exactly what GradCache caches), and gets LoRA and head gradients;
///  - causal LM: logits → next-token cross-entropy on given labels (-100 = ignored), mean over labels.
/// The arithmetic of the frozen base's products in training (TrainingModel.basePrecision, `base_precision`).
public enum TrainingPrecision: String, Sendable {
    /// float32, one FMA chain per element: the gradients the tests check against PyTorch (default).
    case exact
    /// Operands rounded to bfloat16, float32 sums (VDPBF16PS), in the forward and the backward's dY·W.
    case bf16
}

public final class TrainingModel: @unchecked Sendable {
    public let model: Model
    public let lora: LoRAModel
    public var head: ProjectionHead
    public var pooling: Pooling
    /// Attention of the embedding objective (bidirectional, as the reference).
    public var attention = AttentionMode.bidirectional
    /// Keep only each layer's input on the tape and recompute its activations in backward (same gradients,
    /// bit for bit; the tape shrinks from every activation of every layer to n_layers × [T, C]).
    public var activationCheckpointing = false
    /// Bytes the last backward call's tape held at the end of its forward pass (tests and benchmarks).
    public private(set) var lastTapeBytes = 0
    /// The frozen base's products in training: exact (float32, the default) or bf16 (AVX512_BF16 forward and
    /// backward products with float32 sums, as the reference trains in bf16; LoRA, head, gradients and AdamW stay
    /// float32). Setting bf16 makes the bf16 copy of the linear weights (the bytes of one float32 copy); where
    /// the CPU has no AVX512_BF16 the products stay exact and `basePrecisionPath` says so.
    public var basePrecision = TrainingPrecision.exact {
        didSet {
            guard basePrecision != oldValue else { return }
            let bf16 = basePrecision == .bf16 && cullme_gemm_bf16_available() != 0
            decoder = bf16 ? TransformerDecoder(config: model.config, weights: DecoderWeights(trainingBF16Of: model.decoder.weights))
                           : model.decoder
        }
    }
    /// What the frozen base's training products run: "exact", "avx512_bf16" or "exact fallback: ...".
    public var basePrecisionPath: String {
        basePrecision == .exact ? "exact" : decoder.weights.bf16 ? "avx512_bf16" : String(cString: cullme_gemm_bf16_path())
    }
    /// The decoder the objectives run: the model's own, or its bf16 training copy.
    private(set) var decoder: TransformerDecoder

    public init(model: Model, lora: LoRAModel, head: ProjectionHead, pooling: Pooling = .mean) {
        self.model = model; self.lora = lora; self.head = head; self.pooling = pooling
        decoder = model.decoder
    }

    /// Gradients of one step (or accumulated over several calls).
    public struct Gradients: Sendable {
        public var lora: LoRAGradients
        public var head: ProjectionHead.Gradients
    }

    public func zeroGradients() -> Gradients {
        Gradients(lora: LoRAGradients(lora), head: ProjectionHead.Gradients(dim: head.dim))
    }

    /// Embedding forward only: normalised projected reps [N, d] and normalised pooled reps [N, d].
    /// `examples` are the sequences' indices in the global batch (dropout keys).
    public func encode(_ sequences: [[Int32]], examples: [Int], attention: AttentionMode? = nil,
                       pass: UInt32 = 0) throws -> (projected: [Float], pooled: [Float]) {
        let out = try decoder.forward(sequences, attention: attention ?? self.attention, wantLogits: false,
                                            lora: LoRAContext(model: lora, examples: examples, pass: pass))
        let (pooled, _) = pool(out)
        let (proj, _) = head.forward(pooled, N: sequences.count)
        let d = head.dim
        return (l2NormalizeForward(proj, N: sequences.count, D: d), l2NormalizeForward(pooled, N: sequences.count, D: d))
    }

    func pool(_ out: DecoderOutput) -> ([Float], Int) {
        let C = model.config.hiddenSize, N = out.offsets.count - 1
        var pooled = [Float](repeating: 0, count: N * C)
        out.hidden.withUnsafeBufferPointer { h in pooled.withUnsafeMutableBufferPointer { p in
            for i in 0..<N {
                pooling.pool(h.baseAddress! + out.offsets[i] * C, L: out.offsets[i + 1] - out.offsets[i], C: C,
                             into: p.baseAddress! + i * C)
            }
        } }
        return (pooled, N)
    }

    /// Embedding backward: forward with a tape, then back-propagate dReps [N, d] (the gradient of the loss
    /// w.r.t. the normalised projected reps). Returns the reps; accumulates into `grads`.
    @discardableResult
    public func embeddingBackward(_ sequences: [[Int32]], examples: [Int], dReps: [Float], attention: AttentionMode? = nil,
                                  pass: UInt32 = 0, grads: inout Gradients) throws -> [Float] {
        let N = sequences.count, d = head.dim, C = model.config.hiddenSize
        guard dReps.count == N * d else { throw ULLMEError.argument("dReps has \(dReps.count) values, expected \(N * d)") }
        let tape = DecoderTape(checkpointed: activationCheckpointing)
        let ctx = LoRAContext(model: lora, examples: examples, pass: pass)
        let out = try decoder.forward(sequences, attention: attention ?? self.attention, wantLogits: false, lora: ctx, tape: tape)
        let (pooled, _) = pool(out)
        let (proj, headActs) = head.forward(pooled, N: N)
        let reps = l2NormalizeForward(proj, N: N, D: d)
        let dProj = l2NormalizeBackward(x: proj, dY: dReps, N: N, D: d)
        let dPooled = head.backward(dOut: dProj, activations: headActs, grads: &grads.head)
        var dHidden = [Float](repeating: 0, count: out.hidden.count)
        dPooled.withUnsafeBufferPointer { dp in dHidden.withUnsafeMutableBufferPointer { dh in
            for i in 0..<N {
                pooling.poolBackward(dp.baseAddress! + i * C, L: out.offsets[i + 1] - out.offsets[i], C: C,
                                     into: dh.baseAddress! + out.offsets[i] * C)
            }
        } }
        lastTapeBytes = tape.byteCount
        decoder.backward(tape: tape, dHidden: dHidden, dLogits: nil, lora: ctx, grads: &grads.lora)
        return reps
    }

    /// Per-sequence sums of next-token log-probs over labelled positions, and their label counts.
    /// As HF shifts them, logit row t scores labels[s][t + 1]; a label of -100 is ignored.
    public struct TokenLogProbs { public var sums: [Float]; public var counts: [Int] }

    /// Causal forward with a tape, then backward of a loss of the per-sequence label log-prob sums:
    /// `dLossDSums(sums, counts)` returns the loss and dLoss/dsums[s] (SFT, DPO and KL all reduce to this).
    public func logProbBackward(_ sequences: [[Int32]], labels: [[Int32]], examples: [Int], pass: UInt32 = 1,
                                dLossDSums: ([Float], [Int]) -> (loss: Float, dSums: [Float]),
                                grads: inout Gradients) throws -> (loss: Float, logp: TokenLogProbs) {
        guard labels.count == sequences.count, zip(labels, sequences).allSatisfy({ $0.count == $1.count }) else {
            throw ULLMEError.argument("labels must have the shape of the sequences")
        }
        let V = model.config.vocabSize
        let tape = DecoderTape(checkpointed: activationCheckpointing)
        let ctx = LoRAContext(model: lora, examples: examples, pass: pass)
        // One target per labelled position: row (packed token axis) t predicts its sequence's token t + 1.
        var targets: [(row: Int, seq: Int, label: Int)] = []
        var offset = 0
        for (s, lab) in labels.enumerated() {
            for t in 0..<max(0, lab.count - 1) where lab[t + 1] != -100 {  // (an empty sequence: forward throws)
                let label = Int(lab[t + 1])
                guard label >= 0 && label < V else { throw ULLMEError.argument("label \(label) outside the vocabulary") }
                targets.append((offset + t, s, label))
            }
            offset += lab.count
        }
        // Logits of the labelled rows only ([targets.count, V], in target order).
        let out = try decoder.forward(sequences, attention: .causal, wantLogits: true, logitRows: targets.map(\.row),
                                      lora: ctx, tape: tape)
        var logits = out.logits!
        // dLogits row i = -softmax(logits row i) first (the log-sum-exp comes with it), scaled by its
        // sequence's dSum once the loss has them; d logp(label)/d logits = onehot - softmax.
        var dLogits = [Float](unsafeUninitializedCapacity: logits.count) { _, n in n = logits.count }
        var sums = [Float](repeating: 0, count: sequences.count), counts = [Int](repeating: 0, count: sequences.count)
        logits.withUnsafeBufferPointer { lp in dLogits.withUnsafeMutableBufferPointer { dp in
            let lAddress = UInt(bitPattern: lp.baseAddress), dAddress = UInt(bitPattern: dp.baseAddress)
            var logSumExp = [Float](repeating: 0, count: targets.count)
            logSumExp.withUnsafeMutableBufferPointer { lse in
                let lseAddress = UInt(bitPattern: lse.baseAddress)
                parallelRows(targets.count, width: V) { rows in
                    for i in rows {
                        UnsafeMutablePointer<Float>(bitPattern: lseAddress)![i] = cullme_log_softmax_scaled(
                            UnsafePointer<Float>(bitPattern: lAddress)! + i * V, Int64(V), 1,
                            UnsafeMutablePointer<Float>(bitPattern: dAddress)! + i * V)
                    }
                }
            }
            for (i, t) in targets.enumerated() {
                sums[t.seq] += lp[i * V + t.label] - logSumExp[i]
                counts[t.seq] += 1
            }
        } }
        logits = []
        let (loss, dSums) = dLossDSums(sums, counts)
        dLogits.withUnsafeMutableBufferPointer { dp in
            for (i, t) in targets.enumerated() {
                let g = dSums[t.seq], row = dp.baseAddress! + i * V
                for v in 0..<V { row[v] *= g }
                row[t.label] += g
            }
        }
        lastTapeBytes = tape.byteCount
        decoder.backward(tape: tape, dHidden: nil, dLogits: dLogits, lora: ctx, grads: &grads.lora)
        return (loss, TokenLogProbs(sums: sums, counts: counts))
    }

    /// HF's causal LM loss: mean cross-entropy over all labelled tokens of the batch.
    public func causalLMBackward(_ sequences: [[Int32]], labels: [[Int32]], examples: [Int], grads: inout Gradients) throws -> Float {
        try logProbBackward(sequences, labels: labels, examples: examples, dLossDSums: { sums, counts in
            let n = Float(max(1, counts.reduce(0, +)))
            return (-sums.reduce(0, +) / n, sums.map { _ in -1 / n })
        }, grads: &grads).loss
    }
}
