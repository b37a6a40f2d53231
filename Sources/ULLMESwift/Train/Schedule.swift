import Glibc

// The reference's learning-rate schedule (ullme/main.py + ullme/trainer/utils.py
// get_cosine_annealing_schedule_with_warmup), a LambdaLR stepped once after every optimiser step:
//   total      = lr_max_steps = min(max_steps, steps_per_epoch × max_epochs)
//   cycles     = (is_cosine_annealing ? max(total // steps_per_epoch, 1) : 1)
//   per_cycle  = total // cycles                           (integer division)
//   warmup     = min(warmup_proportion × steps_per_epoch, 500)   (a float, not rounded)
//   r          = min_lr / lr
//   λ(s) = r                                  if s ≥ total
//          s' = s mod per_cycle
//          r + (1 − r) · s' / max(1, warmup)  if s' < warmup
//          max(r, ½(1 + r + cos(π · (s' − warmup) / max(1, per_cycle − warmup)) · (1 − r)))  otherwise
//   lr(s) = lr · λ(s), s = number of scheduler steps so far.
// LambdaLR applies λ(0) at construction, so the first optimiser step (s = 0) runs at lr · r = min_lr,
// not at 0; the k-th optimiser step (1-based) uses λ(k − 1).

public struct LRSchedule: Sendable, Equatable {
    public var lr: Double
    public var minLR: Double
    public var warmupSteps: Double
    public var totalSteps: Int
    public var cycles: Int

    /// Direct parameters (cycles ≥ 1; per-cycle length = totalSteps / cycles, integer division).
    public init(lr: Double, minLR: Double, warmupSteps: Double, totalSteps: Int, cycles: Int = 1) {
        precondition(lr > 0 && totalSteps > 0 && cycles >= 1 && totalSteps / cycles >= 1)
        self.lr = lr; self.minLR = minLR; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.cycles = cycles
    }

    /// As the reference's main.py derives it from the training arguments (docs/method.md §2, §7).
    public init(lr: Double = 1e-4, minLR: Double = 1e-7, warmupProportion: Double = 0.05, stepsPerEpoch: Int,
                maxEpochs: Int, maxSteps: Int = .max, cosineAnnealing: Bool = true) {
        precondition(stepsPerEpoch > 0 && maxEpochs > 0)
        let total = min(maxSteps, stepsPerEpoch * maxEpochs)
        let epochs = total / stepsPerEpoch > 0 ? total / stepsPerEpoch : 1
        self.init(lr: lr, minLR: minLR, warmupSteps: min(warmupProportion * Double(stepsPerEpoch), 500),
                  totalSteps: total, cycles: cosineAnnealing ? epochs : 1)
    }

    /// λ(step): the multiplier of the base learning rate after `step` scheduler steps.
    public func multiplier(step: Int) -> Double {
        let r = minLR / lr
        if step >= totalSteps { return r }
        let perCycle = totalSteps / cycles
        let s = Double(step % perCycle)
        if s < warmupSteps { return r + (1 - r) * s / max(1, warmupSteps) }
        let progress = (s - warmupSteps) / max(1, Double(perCycle) - warmupSteps)
        return max(r, 0.5 * (1 + r + cos(Double.pi * progress) * (1 - r)))
    }

    /// The learning rate of the optimiser step taken after `step` scheduler steps (0 for the first).
    public func learningRate(step: Int) -> Double { lr * multiplier(step: step) }
}
