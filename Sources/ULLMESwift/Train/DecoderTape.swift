/// Activations a training forward pass records for the backward pass (llm.c style: every buffer backward
/// reads, per layer). Probabilities are stored per sequence and head, each L × L, back to back.
/// With `checkpointed` (activation checkpointing / recomputation) forward keeps only each layer's input
/// (xIn) and backward recomputes that layer's activations right before it needs them, one layer at a time:
/// the tape shrinks from every activation of every layer to L × [T, C], for one extra forward pass.
final class DecoderTape {
    let checkpointed: Bool
    init(checkpointed: Bool = false) { self.checkpointed = checkpointed }
    struct Layer {
        var xIn: [Float] = []         // residual stream entering the layer [T, C]
        var n1: [Float] = []          // attention-norm output (qkv input) [T, C]
        var qkvPreNorm: [Float]? = nil // qkv projection before q/k norms (gemma3) [T, qkvDim]
        var qkv: [Float] = []         // q | k | v after norms and RoPE [T, qkvDim]
        var probs: [Float] = []       // softmax probabilities, per sequence and head
        var attnOut: [Float] = []     // attention output (o input) [T, nH hd]
        var oOut: [Float]? = nil      // o projection before the post-attention norm (sandwich) [T, C]
        var xMid: [Float] = []        // residual stream after the attention branch [T, C]
        var n2: [Float]? = nil        // MLP-norm output [T, C] (nil for parallel blocks: n1 feeds the MLP)
        var up: [Float] = []          // up (or gate | up) projection [T, upDim]
        var act: [Float] = []         // activation output (down input) [T, I]
        var mOut: [Float]? = nil      // down projection before the post-MLP norm (sandwich) [T, C]
        var lora: [[LoRAAdapter.Activations]] = []   // [target][sequence]
        var masks: [[[Float]?]] = []                 // [target][sequence]
    }
    var layers: [Layer] = []
    var xFinal: [Float] = []          // residual stream before the final norm [T, C]
    var logits: [Float]? = nil        // capped logits, when the final soft-cap needs them for backward
    var logitRows: [Int]? = nil       // the rows the logits (and dLogits) cover; nil: all T
    var lengths: [Int] = []
    var offsets: [Int] = []
    var attention = AttentionMode.causal
    /// Start of sequence s's probabilities for head 0 (head h adds h · L²).
    var probOffsets: [Int] = []

    /// Bytes of activations held by the tape now (what checkpointing saves; a test and the bench report it).
    var byteCount: Int {
        func n(_ a: [Float]?) -> Int { a?.count ?? 0 }
        var total = n(xFinal) + n(logits)
        for l in layers {
            total += n(l.xIn) + n(l.n1) + n(l.qkvPreNorm) + n(l.qkv) + n(l.probs) + n(l.attnOut) + n(l.oOut)
            total += n(l.xMid) + n(l.n2) + n(l.up) + n(l.act) + n(l.mOut)
            for t in l.lora { for a in t { total += a.xd.count + a.h.count } }
            for t in l.masks { for m in t { total += n(m) } }
        }
        return total * MemoryLayout<Float>.size
    }
}

/// How a training forward pass uses LoRA: the adapters, each sequence's index in the global batch
/// (its dropout key), and which kind of pass this is (encode and generate passes draw different masks).
struct LoRAContext {
    let model: LoRAModel
    let examples: [Int]
    let pass: UInt32
}
