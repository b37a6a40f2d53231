// Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_ (norm_type 2), which the reference
// calls through fabric.clip_gradients(model, optimizer, max_norm=1.0) every step:
//   total = ‖(‖g_1‖₂, …, ‖g_k‖₂)‖₂ over all gradients,  coef = max_norm / (total + 1e-6),
//   every gradient *= min(coef, 1)  (also when coef ≥ 1, a multiplication by exactly 1).
// Fabric passes error_if_nonfinite=True: a NaN/inf total norm is an error there; here it is returned
// (`isFinite` false) and the gradients are left untouched, for the caller to stop or skip the step.

/// Clips the gradients in place; returns the total norm before clipping.
@discardableResult
public func clipGradNorm(_ grads: [UnsafeMutableBufferPointer<Float>], maxNorm: Double) -> Float {
    var perTensor: [Float] = []
    for g in grads {
        var ss = 0.0
        for x in g { ss += Double(x) * Double(x) }
        perTensor.append(Float(ss.squareRoot()))
    }
    var ss = 0.0
    for n in perTensor { ss += Double(n) * Double(n) }
    let total = Float(ss.squareRoot())
    guard total.isFinite else { return total }
    let coef = min(Float(maxNorm) / (total + 1e-6), 1)
    for g in grads { for k in 0..<g.count { g[k] *= coef } }
    return total
}

/// Convenience over Swift arrays (copies through temporary buffers).
@discardableResult
public func clipGradNorm(_ grads: inout [[Float]], maxNorm: Double) -> Float {
    let gb = grads.map { g -> UnsafeMutableBufferPointer<Float> in
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.count)
        _ = b.initialize(from: g)
        return b
    }
    defer { gb.forEach { $0.deallocate() } }
    let total = clipGradNorm(gb, maxNorm: maxNorm)
    grads = gb.map { Array($0) }
    return total
}
