/// The backward pass of TransformerDecoder.forward for a recorded tape: gradients flow from the final
/// hidden states (and/or the logits) down to the first layer's input, giving the gradient of every
/// LoRA A and B. Base weights are frozen: only their input gradients are computed.
extension TransformerDecoder {
    func normBackward(_ dX: UnsafeMutablePointer<Float>, _ dY: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                      _ w: NormWeights, T: Int, C: Int) {
        switch config.norm {
        case .rms: rmsNormBackward(dX, dY, x, w.weight, T: T, C: C, eps: config.normEps)
        case .layer: layerNormBackward(dX, dY, x, w.weight, T: T, C: C, eps: config.normEps)
        }
    }

    /// Through a sandwich block's post-norm (gemma): the gradient at the norm's input, or dY itself when
    /// the block has none.
    func postNormBackward(_ dY: [Float], _ norm: NormWeights?, input: [Float]?, T: Int, C: Int) -> [Float] {
        guard let norm, let input else { return dY }
        var d = [Float](repeating: 0, count: T * C)
        normBackward(&d, dY, input, norm, T: T, C: C)
        return d
    }

    /// - dHidden: gradient w.r.t. the final-norm hidden states [T, C], or nil.
    /// - dLogits: gradient w.r.t. the (soft-capped) logits [T, V] (or [rows, V] for the tape's logitRows), or nil.
    func backward(tape: DecoderTape, dHidden: [Float]?, dLogits: [Float]?, lora: LoRAContext?,
                  grads: inout LoRAGradients) {
        let C = config.hiddenSize, hd = config.headDim, nH = config.nHeads, nKV = config.nKVHeads
        let I = config.intermediateSize, V = config.vocabSize
        let qDim = nH * hd, qkvDim = (nH + 2 * nKV) * hd, upDim = config.gatedMLP ? 2 * I : I
        let T = tape.offsets.last ?? 0, lengths = tape.lengths, offsets = tape.offsets
        guard T > 0 else { return }

        // Gradient at the final-norm output.
        var dH = dHidden ?? [Float](repeating: 0, count: T * C)
        if var dL = dLogits {
            let R = dL.count / V
            if let cap = config.finalLogitSoftcap, let capped = tape.logits {
                for i in 0..<(R * V) { let t = capped[i] / cap; dL[i] *= 1 - t * t }
            }
            if let rows = tape.logitRows {
                var dRows = [Float](repeating: 0, count: R * C)
                linearBackwardInput(&dRows, dL, weights.lmHead, T: R)
                for (i, row) in rows.enumerated() { for c in 0..<C { dH[row * C + c] += dRows[i * C + c] } }
            } else {
                linearBackwardInput(&dH, dL, weights.lmHead, T: T)
            }
        }
        var dX = [Float](repeating: 0, count: T * C)
        normBackward(&dX, dH, tape.xFinal, weights.finalNorm, T: T, C: C)

        let (cosT, sinT) = rope.tables(lengths: lengths)
        let local = localRope?.tables(lengths: lengths)
        let targets = lora.map { Array($0.model.targets.enumerated()) } ?? []

        /// LoRA backward at a site: dIn[T, inWidth] += Σ adapters' input gradients; dA, dB accumulate.
        func loraBackward(_ site: LoRASite, layer: Int, rec: DecoderTape.Layer, dOut: [Float], outWidth: Int,
                          dIn: inout [Float], inWidth: Int) {
            guard let lora else { return }
            for (ti, target) in targets {
                guard target.site == site else { continue }
                // Forward recorded the sites in target order (targets are grouped by site), so slot = ti.
                let slot = ti
                let adapter = lora.model.adapters[layer][ti]
                for s in 0..<lengths.count {
                    let L = lengths[s], start = offsets[s]
                    var dY = [Float](repeating: 0, count: L * target.outFeatures)
                    for t in 0..<L {
                        for j in 0..<target.outFeatures { dY[t * target.outFeatures + j] = dOut[(start + t) * outWidth + target.columns.lowerBound + j] }
                    }
                    var dXs = [Float](repeating: 0, count: L * inWidth)
                    adapter.backward(dY: dY, activations: rec.lora[slot][s], mask: rec.masks[slot][s],
                                     dA: &grads.dA[layer][ti], dB: &grads.dB[layer][ti], dX: &dXs)
                    for i in 0..<(L * inWidth) { dIn[start * inWidth + i] += dXs[i] }
                }
            }
        }

        let batch = ForwardBatch(lengths: lengths, offsets: offsets, attention: tape.attention, cos: cosT, sin: sinT,
                                 local: local, probOffsets: tape.probOffsets, lora: lora)
        var buffers: LayerBuffers? = tape.checkpointed ? LayerBuffers(config: config, T: T) : nil
        for li in stride(from: weights.layers.count - 1, through: 0, by: -1) {
            let layer = weights.layers[li]
            var rec = tape.layers[li]
            tape.layers[li] = DecoderTape.Layer()   // the tape lets go of this layer: freed after its backward
            if tape.checkpointed {
                // Recompute this layer's activations from its recorded input (bit-identical to the first pass).
                var x = rec.xIn
                layerForward(li, x: &x, batch: batch, buffers: &buffers!, record: true, rec: &rec)
            }
            let sliding = config.isSliding(layer: li)
            // ---- MLP branch (x_out = x_mid + m), dX is the gradient at x_out.
            let dM = postNormBackward(dX, layer.postMlpNorm, input: rec.mOut, T: T, C: C)
            var dAct = [Float](repeating: 0, count: T * I)
            linearBackwardInput(&dAct, dM, layer.wDown, T: T)
            loraBackward(.down, layer: li, rec: rec, dOut: dM, outWidth: C, dIn: &dAct, inWidth: I)
            var dUp = [Float](repeating: 0, count: T * upDim)
            if config.gatedMLP {
                gatedActivationBackward(&dUp, dAct, rec.up, T: T, I: I, activation: config.activation)
            } else {
                for i in 0..<(T * I) { dUp[i] = dAct[i] * geluTanhDerivative(rec.up[i]) }
            }
            var dN2 = [Float](repeating: 0, count: T * C)
            linearBackwardInput(&dN2, dUp, layer.wUp, T: T)
            loraBackward(.up, layer: li, rec: rec, dOut: dUp, outWidth: upDim, dIn: &dN2, inWidth: C)

            // Gradient at x_mid (sequential/sandwich) — parallel blocks send dN2 to the attention norm instead.
            var dMid = dX
            var dN1 = [Float](repeating: 0, count: T * C)
            if let mlpNorm = layer.mlpNorm {
                normBackward(&dMid, dN2, rec.xMid, mlpNorm, T: T, C: C)
            } else {
                dN1 = dN2
            }

            // ---- attention branch (x_mid = x_in + a).
            let dA = postNormBackward(dMid, layer.postAttnNorm, input: rec.oOut, T: T, C: C)
            var dAttn = [Float](repeating: 0, count: T * qDim)
            linearBackwardInput(&dAttn, dA, layer.wo, T: T)
            loraBackward(.output, layer: li, rec: rec, dOut: dA, outWidth: C, dIn: &dAttn, inWidth: qDim)
            var dQKV = [Float](repeating: 0, count: T * qkvDim)
            let qkvBase = rec.qkv.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            let probsBase = rec.probs.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            let dOutBase = dAttn.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            let dBase = dQKV.withUnsafeMutableBufferPointer { UInt(bitPattern: $0.baseAddress) }
            parallelFor(lengths.count * nKV) { task in
                let s = task / nKV, g = task % nKV, L = lengths[s]
                var scratch = [Float](repeating: 0, count: L * L)
                attentionBackward(qkv: UnsafePointer(bitPattern: qkvBase)! + offsets[s] * qkvDim,
                                  probs: UnsafePointer(bitPattern: probsBase)! + tape.probOffsets[s],
                                  dOut: UnsafePointer(bitPattern: dOutBase)! + offsets[s] * qDim,
                                  dQKV: UnsafeMutablePointer(bitPattern: dBase)! + offsets[s] * qkvDim,
                                  scratch: &scratch, kvGroup: g, L: L, nH: nH, nKV: nKV, hd: hd, group: nH / nKV,
                                  scale: config.effectiveAttentionScale, softcap: config.attentionSoftcap)
            }
            dQKV.withUnsafeMutableBufferPointer { p in
                let (c, s) = (sliding && local != nil) ? local! : (cosT, sinT)
                ropeBackward(p.baseAddress!, rowStride: qkvDim, T: T, nHeads: nH, headDim: hd, rotaryDim: config.effectiveRotaryDim, cos: c, sin: s)
                ropeBackward(p.baseAddress! + qDim, rowStride: qkvDim, T: T, nHeads: nKV, headDim: hd, rotaryDim: config.effectiveRotaryDim, cos: c, sin: s)
            }
            if let qn = layer.qNorm, let kn = layer.kNorm, let pre = rec.qkvPreNorm {
                var d = dQKV
                pre.withUnsafeBufferPointer { x in d.withUnsafeMutableBufferPointer { dp in dQKV.withUnsafeBufferPointer { g in
                    for t in 0..<T {
                        let row = t * qkvDim
                        for i in 0..<(nH + nKV) * hd { dp[row + i] = 0 }
                        rmsNormBackward(dp.baseAddress! + row, g.baseAddress! + row, x.baseAddress! + row, qn, T: nH, C: hd, eps: config.normEps)
                        rmsNormBackward(dp.baseAddress! + row + qDim, g.baseAddress! + row + qDim, x.baseAddress! + row + qDim, kn, T: nKV, C: hd, eps: config.normEps)
                    }
                } } }
                dQKV = d
            }
            linearBackwardInput(&dN1, dQKV, layer.wqkv, T: T)
            loraBackward(.qkv, layer: li, rec: rec, dOut: dQKV, outWidth: qkvDim, dIn: &dN1, inWidth: C)
            // x_in feeds the residual (dMid, or dX for parallel blocks) and the attention norm.
            var dIn = layer.mlpNorm == nil ? dX : dMid
            normBackward(&dIn, dN1, rec.xIn, layer.attnNorm, T: T, C: C)
            dX = dIn
        }
    }
}
