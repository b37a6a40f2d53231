import Glibc

// AdamW exactly as torch.optim.AdamW (single-tensor CPU path, amsgrad off, maximize off), float32
// state, per element in this order:
//   param  *= 1 − lr·wd                                 (decoupled weight decay)
//   m       = m + (1 − β1)·(g − m)                       (exp_avg.lerp_(grad, 1 − β1))
//   v       = v·β2 + ((1 − β2)·g)·g                      (exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2))
//   bc1 = 1 − β1^t, bc2 = 1 − β2^t (float64 scalars, t = step count starting at 1)
//   denom   = sqrt(v) / sqrt(bc2) + eps                  (eps added after the bias-corrected sqrt)
//   param   = param + (−lr/bc1)·m / denom                (addcdiv_)
// Scalars are computed in float64 and rounded to float32 where torch's CPU kernels use them.
// Reference: main.py builds AdamW(lr, weight_decay (default 0), betas (0.9, 0.999)), eps default 1e-8.

/// AdamW hyper-parameters (the learning rate comes per step from the schedule).
public struct AdamWConfig: Sendable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var weightDecay: Double = 0.0
    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }
}

/// AdamW over a fixed list of parameter tensors (index i ↔ the i-th buffer given to `step`).
public final class AdamW {
    public let config: AdamWConfig
    /// Steps taken so far (torch's state["step"]).
    public private(set) var stepCount: Int = 0
    /// First and second moments, one float32 buffer per parameter tensor.
    public private(set) var expAvg: [[Float]]
    public private(set) var expAvgSq: [[Float]]

    public init(parameterCounts: [Int], config: AdamWConfig = AdamWConfig()) {
        self.config = config
        expAvg = parameterCounts.map { [Float](repeating: 0, count: $0) }
        expAvgSq = expAvg
    }

    /// Restores the state saved in a checkpoint (moments per parameter tensor and the step count).
    public func restore(expAvg m: [[Float]], expAvgSq v: [[Float]], stepCount: Int) {
        precondition(m.map(\.count) == expAvg.map(\.count) && v.map(\.count) == expAvgSq.map(\.count))
        expAvg = m; expAvgSq = v; self.stepCount = stepCount
    }

    /// One optimiser step at learning rate `lr` on every parameter buffer with its gradient.
    public func step(params: [UnsafeMutableBufferPointer<Float>], grads: [UnsafeBufferPointer<Float>], lr: Double) {
        precondition(params.count == expAvg.count && grads.count == expAvg.count)
        stepCount += 1
        let t = Double(stepCount), c = config
        let decay = Float(1 - lr * c.weightDecay)
        let w1 = Float(1 - c.beta1), b2 = Float(c.beta2), w2 = Float(1 - c.beta2)
        let bc1 = 1 - pow(c.beta1, t), bc2 = 1 - pow(c.beta2, t)
        let stepSize = Float(-(lr / bc1)), bc2Sqrt = Float(bc2.squareRoot()), eps = Float(c.eps)
        for i in 0..<params.count {
            let p = params[i], g = grads[i]
            precondition(p.count == expAvg[i].count && g.count == p.count)
            expAvg[i].withUnsafeMutableBufferPointer { m in expAvgSq[i].withUnsafeMutableBufferPointer { v in
                for k in 0..<p.count {
                    if c.weightDecay != 0 { p[k] *= decay }
                    let gk = g[k]
                    m[k] = m[k] + w1 * (gk - m[k])
                    v[k] = v[k] * b2 + (w2 * gk) * gk
                    let denom = v[k].squareRoot() / bc2Sqrt + eps
                    p[k] = p[k] + (stepSize * m[k]) / denom
                }
            } }
        }
    }

    /// Convenience over Swift arrays (copies through temporary buffers).
    public func step(_ params: inout [[Float]], grads: [[Float]], lr: Double) {
        precondition(params.count == grads.count)
        let pb = params.map { p -> UnsafeMutableBufferPointer<Float> in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: p.count)
            _ = b.initialize(from: p)
            return b
        }
        let gb = grads.map { g -> UnsafeMutableBufferPointer<Float> in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.count)
            _ = b.initialize(from: g)
            return b
        }
        defer { pb.forEach { $0.deallocate() }; gb.forEach { $0.deallocate() } }
        step(params: pb, grads: gb.map { UnsafeBufferPointer($0) }, lr: lr)
        params = pb.map { Array($0) }
    }
}
