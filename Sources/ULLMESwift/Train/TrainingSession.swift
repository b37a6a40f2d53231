/// Optimisation settings (docs/method.md §2 defaults: AdamW, lr 1e-4 → min 1e-7, warmup 5 %, clip 1.0, no decay).
public struct OptimizerSettings: Sendable {
    public var learningRate = 1e-4
    public var minLearningRate = 1e-7
    public var weightDecay = 0.0
    public var gradClip = 1.0             // <= 0: no clipping
    public var warmupProportion = 0.05
    public var cosineAnnealing = true     // restart the warmup + cosine cycle every epoch
    public var stepsPerEpoch = 100        // a trainer sets it from its data
    public var maxEpochs = 10
    public var maxSteps = Int.max         // Int.max: every epoch
    public init() {}

    func validate() throws {
        guard learningRate > 0, minLearningRate >= 0, minLearningRate <= learningRate else {
            throw ULLMEError.argument("need 0 <= min_learning_rate <= learning_rate and learning_rate > 0")
        }
        guard stepsPerEpoch >= 1, maxEpochs >= 1, maxSteps >= 1 else { throw ULLMEError.argument("steps, epochs must be >= 1") }
        guard warmupProportion >= 0, weightDecay >= 0 else { throw ULLMEError.argument("warmup_proportion and weight_decay must be >= 0") }
    }
}

/// A model being trained: LoRA adapters + projection head, their gradients, AdamW and the schedule.
/// Gradients accumulate over backward calls until `optimizerStep()` applies and clears them.
public final class TrainingSession: @unchecked Sendable {
    public let model: TrainingModel
    public var grads: TrainingModel.Gradients
    public let settings: OptimizerSettings
    let optimizer: AdamW
    public let schedule: LRSchedule
    public private(set) var step = 0

    public init(model: TrainingModel, settings: OptimizerSettings) throws {
        // bf16 and int8 models keep no float32 weights (the backward's dY·W needs them) and their forward is not the
        // exact one the gradients are checked against: training refuses them rather than train on rounding
        // (on every CPU, also where bf16 fell back to exact, so a config behaves the same everywhere).
        guard model.model.precision == .exact else {
            throw ULLMEError.state("training needs precision exact; this model was loaded with precision \(model.model.precision.rawValue) (load it again with precision exact)")
        }
        try settings.validate()
        self.model = model
        self.settings = settings
        grads = model.zeroGradients()
        schedule = LRSchedule(lr: settings.learningRate, minLR: settings.minLearningRate,
                              warmupProportion: settings.warmupProportion, stepsPerEpoch: settings.stepsPerEpoch,
                              maxEpochs: settings.maxEpochs, maxSteps: settings.maxSteps, cosineAnnealing: settings.cosineAnnealing)
        optimizer = AdamW(parameterCounts: Self.parameters(model).map(\.count), config: AdamWConfig(weightDecay: settings.weightDecay))
        model.lora.step = 0
    }

    /// Every trainable tensor in a fixed order: per layer and target A, B; then the head's w1, b1, w2, b2.
    static func parameters(_ m: TrainingModel) -> [[Float]] {
        var out: [[Float]] = []
        for layer in m.lora.adapters { for a in layer { out.append(a.a); out.append(a.b) } }
        return out + [m.head.w1, m.head.b1, m.head.w2, m.head.b2]
    }

    static func flatten(_ g: TrainingModel.Gradients) -> [[Float]] {
        var out: [[Float]] = []
        for (la, lb) in zip(g.lora.dA, g.lora.dB) { for (a, b) in zip(la, lb) { out.append(a); out.append(b) } }
        return out + [g.head.w1, g.head.b1, g.head.w2, g.head.b2]
    }

    public var parameterCount: Int { Self.parameters(model).reduce(0) { $0 + $1.count } }

    /// What one optimiser step did: the scheduled rate, the gradient norm before clipping, and — when the
    /// update was not applied — what was not finite.
    public struct StepOutcome: Sendable, Equatable {
        public var learningRate: Double
        public var gradNorm: Float
        /// nil: the update was applied. Else "loss", "gradient norm" or "updated parameters": nothing changed
        /// (parameters, AdamW moments and AdamW's step count are as before the step; gradients are dropped).
        public var nonFinite: String?
    }

    /// Clips the accumulated gradients (global norm), takes one AdamW step at the schedule's rate, clears the
    /// gradients and advances the step (which re-keys the dropout masks). Returns the rate and the norm
    /// before clipping. A non-finite norm skips the update (the gradients are dropped) and is returned.
    @discardableResult
    public func optimizerStep() -> (lr: Double, gradNorm: Float) {
        let o = optimizerStep(lossIsFinite: true)
        return (o.learningRate, o.gradNorm)
    }

    /// One step, applied only when everything is finite: the loss (`lossIsFinite`), the gradient norm and
    /// the parameters and AdamW moments the update produces (a finite gradient with a huge learning rate
    /// can still overflow them; the update is then rolled back). A step that is not applied leaves
    /// parameters, moments and AdamW's step count untouched and drops the gradients; `step` still advances
    /// when `advanceWhenSkipped` (the batch counts as consumed: nonfinite_policy skip), else stays (stop).
    public func optimizerStep(lossIsFinite: Bool, advanceWhenSkipped: Bool = true) -> StepOutcome {
        var g = Self.flatten(grads)
        let norm = settings.gradClip > 0 ? clipGradNorm(&g, maxNorm: settings.gradClip) : g.reduce(Float(0)) { $0 + $1.reduce(0) { $0 + $1 * $1 } }.squareRoot()
        let lr = schedule.learningRate(step: step)
        var nonFinite: String? = !lossIsFinite ? "loss" : !norm.isFinite ? "gradient norm" : nil
        if nonFinite == nil {
            var p = Self.parameters(model)
            let (m0, v0, t0) = (optimizer.expAvg, optimizer.expAvgSq, optimizer.stepCount)
            optimizer.step(&p, grads: g, lr: lr)
            if allFinite(p) && allFinite(optimizer.expAvg) && allFinite(optimizer.expAvgSq) {
                setParameters(p)
            } else {
                optimizer.restore(expAvg: m0, expAvgSq: v0, stepCount: t0)
                nonFinite = "updated parameters"
            }
        }
        grads = model.zeroGradients()
        if nonFinite == nil || advanceWhenSkipped {
            step += 1
            model.lora.step = UInt64(step)
        }
        return StepOutcome(learningRate: lr, gradNorm: norm, nonFinite: nonFinite)
    }

    /// Puts back parameters, optimiser state and the step (checkpoint resume).
    func restore(parameters p: [[Float]], expAvg: [[Float]], expAvgSq: [[Float]], optimizerSteps: Int, step: Int) {
        setParameters(p)
        optimizer.restore(expAvg: expAvg, expAvgSq: expAvgSq, stepCount: optimizerSteps)
        grads = model.zeroGradients()
        self.step = step
        model.lora.step = UInt64(step)
    }

    /// Scatters tensors in `parameters` order back into the adapters and the head.
    func setParameters(_ p: [[Float]]) {
        var i = 0
        for l in model.lora.adapters.indices { for t in model.lora.adapters[l].indices {
            model.lora.adapters[l][t].a = p[i]; model.lora.adapters[l][t].b = p[i + 1]; i += 2
        } }
        model.head.w1 = p[i]; model.head.b1 = p[i + 1]; model.head.w2 = p[i + 2]; model.head.b2 = p[i + 3]
    }
}

/// True when no element of any tensor is NaN or ±infinity.
func allFinite(_ tensors: [[Float]]) -> Bool {
    for t in tensors {
        var ok = true
        t.withUnsafeBufferPointer { b in for x in b where !x.isFinite { ok = false; break } }
        if !ok { return false }
    }
    return true
}

extension TrainingSession {
    /// LoRA adapters and a projection head on `model` as `config` says (rank, alpha, dropout, targets, seed,
    /// pooling, attention, activation checkpointing), with its optimiser over `stepsPerEpoch`-step epochs:
    /// what a GRL run (GRLTrainer) and a caller-driven trainer (ullme_trainer_new) both start from.
    public convenience init(model: Model, config: TrainConfig, stepsPerEpoch: Int) throws {
        let lora = LoRAModel(config: model.config, rank: config.loraRank, alpha: config.loraAlpha, dropout: config.loraDropout,
                             seed: config.seed, targetNames: config.loraTargets)
        let tm = TrainingModel(model: model, lora: lora, head: ProjectionHead(dim: model.config.hiddenSize, seed: config.seed),
                               pooling: config.pooling)
        tm.attention = config.attention
        tm.activationCheckpointing = config.activationCheckpointing
        tm.basePrecision = config.basePrecision
        var optimizer = config.optimizer
        optimizer.stepsPerEpoch = stepsPerEpoch
        try self.init(model: tm, settings: optimizer)
    }
}
