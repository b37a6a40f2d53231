import CULLME
import Glibc

/// What an `ullme_trainer *` points to.
final class TrainerHandle {
    let session: TrainingSession
    let modelHandle: ModelHandle   // keeps the model alive while the trainer exists
    /// session.model.basePrecisionPath as a C string (what ullme_trainer_base_precision_path returns).
    let basePrecisionPath: UnsafeMutablePointer<CChar>
    init(session: TrainingSession, modelHandle: ModelHandle) {
        self.session = session
        self.modelHandle = modelHandle
        basePrecisionPath = strdup(session.model.basePrecisionPath)!
    }
    deinit { free(basePrecisionPath) }
}

func trainer(_ p: OpaquePointer?) throws -> TrainerHandle {
    guard let p else { throw argError("trainer is NULL") }
    return Unmanaged<TrainerHandle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

/// ullme_trainer_params' released layouts: as first released (up to is_cosine_annealing); the current one adds
/// activation_checkpointing and base_precision (released as reserved0, which had to be 0: exact).
let trainerParamsLayouts = ParamsLayouts<ullme_trainer_params>(
    name: "ullme_trainer_params", olderEndingBefore: [\.activation_checkpointing])
let trainerParamsSize = trainerParamsLayouts.currentSize
let trainerParamsSizeV1 = trainerParamsLayouts.older[0].size

/// Reads a caller's params struct without reading past its layout's fields.
func readTrainerParams(_ p: UnsafePointer<ullme_trainer_params>) throws -> ullme_trainer_params {
    try trainerParamsLayouts.read(p, defaults: capi_trainer_default_params()) { $0.struct_size = $1 }
}

@_cdecl("ullme_trainer_default_params")
public func capi_trainer_default_params() -> ullme_trainer_params {
    let c = TrainConfig(), o = c.optimizer  // the one set of defaults (the YAML's)
    return ullme_trainer_params(struct_size: trainerParamsSize, lora_rank: Int32(c.loraRank), lora_alpha: c.loraAlpha,
                                lora_dropout: c.loraDropout, seed: c.seed, learning_rate: o.learningRate,
                                min_learning_rate: o.minLearningRate, weight_decay: o.weightDecay, grad_clip: o.gradClip,
                                warmup_proportion: o.warmupProportion, steps_per_epoch: Int32(o.stepsPerEpoch),
                                max_epochs: Int32(o.maxEpochs), is_cosine_annealing: o.cosineAnnealing ? 1 : 0,
                                activation_checkpointing: c.activationCheckpointing ? 1 : 0,
                                base_precision: Int32(ULLME_PRECISION_DEFAULT.rawValue))
}

@_cdecl("ullme_trainer_new")
public func capi_trainer_new(_ model: OpaquePointer?, _ params: UnsafePointer<ullme_trainer_params>?,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    capiCall("ullme_trainer_new") {
        guard let out else { throw argError("out is NULL") }
        out.pointee = nil
        let h = try handle(model)
        let p = try params.map(readTrainerParams) ?? capi_trainer_default_params()
        guard p.activation_checkpointing == 0 || p.activation_checkpointing == 1 else {
            throw argError("activation_checkpointing must be 0 or 1")
        }
        let basePrecision: TrainingPrecision
        switch p.base_precision {
        case Int32(ULLME_PRECISION_DEFAULT.rawValue), Int32(ULLME_PRECISION_EXACT.rawValue): basePrecision = .exact
        case Int32(ULLME_PRECISION_BF16.rawValue): basePrecision = .bf16
        default: throw argError("base_precision must be ULLME_PRECISION_DEFAULT, _EXACT or _BF16 (got \(p.base_precision))")
        }
        guard p.lora_rank >= 1, p.lora_rank <= 4096 else { throw argError("lora_rank must be in [1, 4096]") }
        guard p.lora_alpha.isFinite, p.lora_alpha > 0 else { throw argError("lora_alpha must be positive") }
        guard p.lora_dropout >= 0, p.lora_dropout < 1 else { throw argError("lora_dropout must be in [0, 1)") }
        guard p.learning_rate.isFinite, p.min_learning_rate.isFinite, p.weight_decay.isFinite, p.grad_clip.isFinite,
              p.warmup_proportion.isFinite else { throw argError("non-finite optimiser setting") }
        // The C parameters as a training config (its other settings, the defaults), then the trainers' one factory.
        var c = TrainConfig()
        c.loraRank = Int(p.lora_rank); c.loraAlpha = p.lora_alpha; c.loraDropout = p.lora_dropout; c.seed = p.seed
        c.optimizer.learningRate = p.learning_rate; c.optimizer.minLearningRate = p.min_learning_rate
        c.optimizer.weightDecay = p.weight_decay; c.optimizer.gradClip = p.grad_clip
        c.optimizer.warmupProportion = p.warmup_proportion; c.optimizer.maxEpochs = Int(p.max_epochs)
        c.optimizer.cosineAnnealing = p.is_cosine_annealing != 0
        c.activationCheckpointing = p.activation_checkpointing != 0
        c.basePrecision = basePrecision
        c.pooling = try Pooling(c: h.params.pooling)
        let session = try TrainingSession(model: h.model, config: c, stepsPerEpoch: Int(p.steps_per_epoch))
        out.pointee = OpaquePointer(Unmanaged.passRetained(TrainerHandle(session: session, modelHandle: h)).toOpaque())
    }
}

@_cdecl("ullme_trainer_free")
public func capi_trainer_free(_ t: OpaquePointer?) {
    guard let t else { return }
    Unmanaged<TrainerHandle>.fromOpaque(UnsafeRawPointer(t)).release()
}

@_cdecl("ullme_trainer_base_precision_path")
public func capi_trainer_base_precision_path(_ t: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capiCall("ullme_trainer_base_precision_path") {
        let h = try trainer(t)
        guard let out else { throw argError("out is NULL") }
        out.pointee = UnsafePointer(h.basePrecisionPath)
    }
}

@_cdecl("ullme_trainer_parameter_count")
public func capi_trainer_parameter_count(_ t: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    capiCall("ullme_trainer_parameter_count") {
        let h = try trainer(t)
        guard let out else { throw argError("out is NULL") }
        out.pointee = Int64(h.session.parameterCount)
    }
}

/// Unpacks (ids, lengths, n) into sequences, validating every pointer, length and id.
func packedSequences(_ ids: UnsafePointer<Int32>?, _ lengths: UnsafePointer<Int>?, _ n: Int, model: Model) throws -> [[Int32]] {
    guard n >= 1, n <= 1 << 20 else { throw argError("n_seqs must be in [1, 2^20] (got \(n))") }
    guard let ids, let lengths else { throw argError("ids and lengths must not be NULL") }
    var out: [[Int32]] = [], offset = 0
    for i in 0..<n {
        let L = lengths[i]
        guard L >= 1, L <= model.config.maxPositions else { throw argError("lengths[\(i)] = \(L) outside [1, \(model.config.maxPositions)]") }
        out.append(Array(UnsafeBufferPointer(start: ids + offset, count: L)))
        offset += L
    }
    return out
}

func exampleKeys(_ p: UnsafePointer<Int64>?, _ n: Int) -> [Int] {
    guard let p else { return Array(0..<n) }
    return (0..<n).map { Int(truncatingIfNeeded: p[$0]) }
}

@_cdecl("ullme_trainer_embedding_backward")
public func capi_trainer_embedding_backward(_ t: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ lengths: UnsafePointer<Int>?,
                                            _ n: Int, _ examples: UnsafePointer<Int64>?, _ attention: ullme_attention,
                                            _ dReps: UnsafePointer<Float>?, _ dRepsLen: Int,
                                            _ repsOut: UnsafeMutablePointer<Float>?, _ repsLen: Int) -> Int32 {
    capiCall("ullme_trainer_embedding_backward") {
        let h = try trainer(t)
        let tm = h.session.model
        let seqs = try packedSequences(ids, lengths, n, model: tm.model)
        let D = tm.head.dim
        guard let dReps, dRepsLen == n * D else { throw argError("d_reps must hold n_seqs * dim = \(n * D) floats") }
        if repsOut != nil { guard repsLen >= n * D else { throw argError("reps_out must hold \(n * D) floats") } }
        let mode = try AttentionMode(c: attention)
        let reps = try tm.embeddingBackward(seqs, examples: exampleKeys(examples, n), dReps: Array(UnsafeBufferPointer(start: dReps, count: n * D)),
                                            attention: mode, grads: &h.session.grads)
        repsOut?.update(from: reps, count: n * D)
    }
}

@_cdecl("ullme_trainer_encode")
public func capi_trainer_encode(_ t: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ lengths: UnsafePointer<Int>?, _ n: Int,
                                _ attention: ullme_attention, _ repsOut: UnsafeMutablePointer<Float>?, _ repsLen: Int) -> Int32 {
    capiCall("ullme_trainer_encode") {
        let h = try trainer(t)
        let tm = h.session.model
        let seqs = try packedSequences(ids, lengths, n, model: tm.model)
        let D = tm.head.dim
        guard let repsOut, repsLen >= n * D else { throw argError("reps_out must hold n_seqs * dim = \(n * D) floats") }
        let mode = try AttentionMode(c: attention)
        tm.lora.training = false
        defer { tm.lora.training = true }
        let reps = try tm.encode(seqs, examples: Array(0..<n), attention: mode).projected
        repsOut.update(from: reps, count: n * D)
    }
}

@_cdecl("ullme_trainer_lm_backward")
public func capi_trainer_lm_backward(_ t: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ labels: UnsafePointer<Int32>?,
                                     _ lengths: UnsafePointer<Int>?, _ n: Int, _ lossOut: UnsafeMutablePointer<Float>?) -> Int32 {
    capiCall("ullme_trainer_lm_backward") {
        let h = try trainer(t)
        let tm = h.session.model
        let seqs = try packedSequences(ids, lengths, n, model: tm.model)
        guard let labels else { throw argError("labels is NULL") }
        var offset = 0
        let labelSeqs = seqs.map { s -> [Int32] in defer { offset += s.count }; return Array(UnsafeBufferPointer(start: labels + offset, count: s.count)) }
        let loss = try tm.causalLMBackward(seqs, labels: labelSeqs, examples: Array(0..<n), grads: &h.session.grads)
        lossOut?.pointee = loss
    }
}

@_cdecl("ullme_trainer_step")
public func capi_trainer_step(_ t: OpaquePointer?, _ lrOut: UnsafeMutablePointer<Double>?, _ normOut: UnsafeMutablePointer<Float>?) -> Int32 {
    capiCall("ullme_trainer_step") {
        let h = try trainer(t)
        let o = h.session.optimizerStep(lossIsFinite: true)
        lrOut?.pointee = o.learningRate
        normOut?.pointee = o.gradNorm
        if let what = o.nonFinite {
            throw ULLMEError.state("\(what) not finite (gradient norm \(o.gradNorm)): step skipped, gradients dropped")
        }
    }
}

@_cdecl("ullme_train_run")
public func capi_train_run(_ configPath: UnsafePointer<CChar>?, _ resume: Int32,
                           _ log: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<ullme_train_log>?) -> Int32)?,
                           _ user: UnsafeMutableRawPointer?) -> Int32 {
    capiCall("ullme_train_run") {
        guard let configPath else { throw argError("config_path is NULL") }
        let config = try TrainConfig.load(path: String(cString: configPath))
        let trainer = try GRLTrainer(config: config)
        if resume != 0 { try trainer.resumeIfPossible() }
        try trainer.run { r in
            guard let log else { return true }
            var rec = ullme_train_log(step: Int32(r.step), total_steps: Int32(r.totalSteps), epoch: Int32(r.epoch),
                                      loss: r.losses.total, contrastive: r.losses.contrastive, generative: r.losses.generative,
                                      kl: r.losses.kl, learning_rate: r.learningRate, grad_norm: r.gradNorm,
                                      seconds: r.seconds, tokens_per_second: r.tokensPerSecond,
                                      nonfinite: r.nonFinite == nil ? 0 : 1)
            return log(user, &rec) == 0
        }
    }
}
